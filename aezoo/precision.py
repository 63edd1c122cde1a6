"""How a training step computes: in float32, or under autocast in bfloat16 or float16 (with a
gradient scaler for float16), optionally through a ``torch.compile``d loss.

The trainer asks a :class:`StepPrecision` for the model's updates (:meth:`StepPrecision.updates`,
which runs the model's forward and loss under autocast and, with ``--compile``, through the
compiled :meth:`~aezoo.AutoEncoder.loss`), and has it do the backward pass and the optimiser step
(scaled and unscaled for float16). Evaluation never goes through it: validation and test metrics
are computed eagerly in float32 whatever the training precision, so runs stay comparable.

The scaler's state is part of the checkpoint (:meth:`StepPrecision.state_dict`), so a float16 run
killed and resumed continues bit for bit.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch

from aezoo.errors import AezooError
from aezoo.model import AutoEncoder, Update

#: ``--precision`` values: the autocast dtype of each (None: no autocast).
PRECISIONS: dict[str, torch.dtype | None] = {
    "fp32": None,
    "bf16": torch.bfloat16,
    "fp16": torch.float16,
}


def check_precision(precision: str, device: torch.device) -> None:
    """A precision this device cannot train in is one line saying what to use instead."""
    if precision not in PRECISIONS:
        raise AezooError(f"--precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise AezooError(
            f"--precision fp16 needs a CUDA device (this run is on {device.type}); "
            "use --precision bf16 or fp32 there"
        )
    if precision == "bf16" and device.type not in ("cpu", "cuda"):
        raise AezooError(f"--precision bf16 runs on cpu or cuda, not {device.type}; use fp32 there")
    if precision == "bf16" and device.type == "cuda" and not _cuda_bf16(device):
        raise AezooError(
            f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 arithmetic "
            "(it needs compute capability 8.0 or newer); use --precision fp16"
        )


def check_compile_backend(backend: str) -> None:
    """A name torch.compile does not know is one line listing those it does."""
    import torch._dynamo

    if backend not in torch._dynamo.list_backends(exclude_tags=()):
        listed = ", ".join(["eager", "aot_eager", *torch._dynamo.list_backends()])
        raise AezooError(f"--compile-backend {backend!r} is not a torch.compile backend; use one of {listed}")


def _cuda_bf16(device: torch.device) -> bool:
    major, _ = torch.cuda.get_device_capability(device)
    return major >= 8


class StepPrecision:
    """The training step's arithmetic on ``device``: autocast, gradient scaling and compilation."""

    def __init__(
        self,
        precision: str,
        device: torch.device,
        *,
        compile_backend: str | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        check_precision(precision, device)
        self.precision = precision
        self.device = device
        self.dtype = PRECISIONS[precision]
        #: Scales float16 losses so small gradients survive; a no-op for the other precisions.
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
        self.compile_backend = compile_backend
        self._compiled: dict[int, Callable[..., Any]] = {}
        #: How many training forwards went through the compiled loss (0: the model never calls it).
        self.compiled_calls = 0
        self._echo = echo

    # -- the forward -----------------------------------------------------------------------------

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """Autocast to this precision's dtype (nothing for float32)."""
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def updates(self, model: AutoEncoder, inputs: Any, targets: Any, step: int) -> Iterator[Update]:
        """``model.training_step``'s updates, each computed under autocast (and with
        ``--compile``, through the compiled loss); the trainer's backward pass and optimiser step
        between them run outside it, as autocast asks."""
        steps = model.training_step(inputs, targets, step)
        while True:
            with self.autocast(), self._compiled_loss(model):
                update = next(steps, None)
            if update is None:
                break
            yield update
        if self.compile_backend is not None and not self.compiled_calls and self._echo is not None:
            self._echo(
                f"--compile: {model.architecture or type(model).__name__}'s training_step does not call "
                "its loss(), so its training steps run uncompiled"
            )
            self._echo = None  # said once

    @contextlib.contextmanager
    def _compiled_loss(self, model: AutoEncoder) -> Iterator[None]:
        """While a training forward runs, ``model.loss`` is its compiled version (an attribute of
        the instance: the weights keep their names, and evaluation calls the class's own)."""
        if self.compile_backend is None:
            yield
            return
        compiled = self._compiled.get(id(model))
        if compiled is None:
            compiled = self._compiled[id(model)] = self._compile(model)
        model.__dict__["loss"] = compiled
        try:
            yield
        except AezooError:
            raise
        except Exception as exc:
            if _is_compile_error(exc):
                raise AezooError(
                    f"--compile: torch.compile (backend {self.compile_backend}) could not compile "
                    f"{model.architecture or type(model).__name__}'s loss ({_first_line(exc)}); "
                    "train without --compile"
                ) from None
            raise
        finally:
            model.__dict__.pop("loss", None)

    def _compile(self, model: AutoEncoder) -> Callable[..., Any]:
        try:
            compiled = torch.compile(type(model).loss.__get__(model), backend=self.compile_backend)
        except Exception as exc:  # an unknown backend, a platform torch.compile does not support
            raise AezooError(
                f"--compile: torch.compile cannot use backend {self.compile_backend!r} here ({_first_line(exc)})"
            ) from None

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.compiled_calls += 1
            return compiled(*args, **kwargs)

        return counted

    # -- the backward pass and the step ------------------------------------------------------------

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled for float16."""
        self.scaler.scale(loss).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Bring ``optimizer``'s gradients back to their true size (before clipping them)."""
        self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; for float16, skipped when a gradient overflowed, and the scale
        adjusted."""
        self.scaler.step(optimizer)
        self.scaler.update()

    # -- the checkpoint ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The scaler's state (JSON: its scale and growth count), empty unless float16."""
        return dict(self.scaler.state_dict())

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state and self.scaler.is_enabled():
            self.scaler.load_state_dict(state)


def _is_compile_error(exc: BaseException) -> bool:
    """Whether ``exc`` comes from torch.compile itself (dynamo, a backend, the C++/Triton
    toolchain) rather than from the model's own code."""
    module = type(exc).__module__
    return module.startswith(("torch._dynamo", "torch._inductor", "torch._subclasses", "triton"))


def _first_line(exc: BaseException) -> str:
    """``Type: first line`` of the exception at the root of ``exc`` (what a backend raised)."""
    while True:
        inner = getattr(exc, "inner_exception", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
