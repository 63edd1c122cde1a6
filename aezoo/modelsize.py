"""How big a model is before it is built, so that untrusted hyperparameters (a weights file's
metadata, ``--set``, a recipe) cannot make aezoo allocate more memory than the machine has.

The model is built on PyTorch's ``meta`` device, which records every tensor's shape and dtype
and allocates nothing; its state is then measured against this machine's memory and, for a
weights file, compared with the tensors the file's header declares (no tensor data is read).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from aezoo.errors import AezooError

#: What training holds per parameter beyond the weights themselves: gradients and Adam's two moments.
TRAINING_COPIES = 4


@dataclasses.dataclass(frozen=True)
class MetaState:
    """A model's state as shapes and dtypes: what a weights file must hold to fill it."""

    tensors: dict[str, tuple[tuple[int, ...], torch.dtype]]
    #: State names that alias another (tied weights), which a weights file stores once.
    aliases: frozenset[str]

    @property
    def numel(self) -> int:
        return sum(_numel(shape) for name, (shape, _) in self.tensors.items() if name not in self.aliases)

    @property
    def nbytes(self) -> int:
        return sum(
            _numel(shape) * _itemsize(dtype)
            for name, (shape, dtype) in self.tensors.items()
            if name not in self.aliases
        )


def meta_state(arch: Any, hparams: Any, where: str = "") -> MetaState | None:
    """The state ``arch`` would build from ``hparams``, measured on the meta device; None when the
    architecture's builder cannot run there (it reads tensor values while building). Values its
    builder fails on (a layer too large to address, say) are one :class:`AezooError`."""
    try:
        with torch.device("meta"), _SkipInitialisation():
            model = arch.build(hparams)
    except AezooError:
        raise
    except Exception as exc:
        if not _builds_on_meta(arch):  # a builder that needs real tensors: nothing can be measured
            return None
        reason = " ".join(str(exc).split()).split(" Exception raised from")[0][:160] or type(exc).__name__
        prefix = f"{where}: " if where else ""
        raise AezooError(
            f"{prefix}a {arch.name} model cannot be built from these hyperparameters ({reason})"
        ) from None
    state = model.state_dict(keep_vars=True)
    owned = {name for name, _ in model.named_parameters()} | {name for name, _ in model.named_buffers()}
    tensors = {name: (tuple(value.shape), value.dtype) for name, value in state.items()}
    return MetaState(tensors, frozenset(name for name in state if name not in owned))


class _SkipInitialisation(TorchFunctionMode):
    """Weight initialisation is skipped on meta tensors, which hold no values: some of it (``normal_``)
    would otherwise import torch's compiler, seconds on a first call, just to do nothing."""

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func in _RANDOM_FILLS or getattr(func, "__module__", "") == "torch.nn.init":
            tensor = args[0] if args else kwargs.get("tensor")
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
        return func(*args, **kwargs)


_RANDOM_FILLS = {
    torch.Tensor.normal_,
    torch.Tensor.uniform_,
    torch.Tensor.log_normal_,
    torch.Tensor.exponential_,
    torch.Tensor.cauchy_,
    torch.Tensor.geometric_,
    torch.Tensor.random_,
    torch.Tensor.bernoulli_,
}


def _builds_on_meta(arch: Any) -> bool:
    """Whether ``arch`` builds on the meta device with its default hyperparameters."""
    try:
        with torch.device("meta"), _SkipInitialisation():
            arch.build(arch.make_hparams())
    except Exception:
        return False
    return True


def memory_limit() -> int | None:
    """The bytes of memory this machine (or its container's limit) has, None where unknown."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        total = None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
        if limit.isdigit():
            total = min(total, int(limit)) if total else int(limit)
    except OSError:
        pass
    return total if total and total > 0 else None


def check_fits(arch: Any, hparams: Any, *, training: bool = False, where: str = "") -> MetaState | None:
    """Refuse, in one line, a model whose weights (times :data:`TRAINING_COPIES` for ``training``)
    would not fit in this machine's memory; return its measured state (None: not measurable)."""
    state = meta_state(arch, hparams, where)
    if state is None:
        return None
    limit = memory_limit()
    copies = TRAINING_COPIES if training else 1
    if limit is not None and state.nbytes * copies > limit:
        need = f"training it needs about {_size(state.nbytes * copies)}, " if training else ""
        prefix = f"{where}: " if where else ""
        raise AezooError(
            f"{prefix}a {arch.name} model with these hyperparameters has {state.numel:,} parameters "
            f"({_size(state.nbytes)}); {need}more than this machine's {_size(limit)} of memory can hold; "
            "choose smaller hyperparameters"
        )
    return state


def check_file_tensors(
    state: MetaState, found: Mapping[str, tuple[tuple[int, ...], str]], *, architecture: str, where: str
) -> None:
    """Refuse a weights file whose tensors (``name -> (shape, safetensors dtype)``, from its header)
    are not the ones a model built from its own metadata has, before that model is allocated."""

    def refuse(detail: str) -> AezooError:
        return AezooError(
            f"{where}: weights do not fit a {architecture!r} model with these hyperparameters ({detail}); "
            "the file is damaged or was not written by aezoo"
        )

    unexpected = sorted(set(found) - set(state.tensors))
    if unexpected:
        raise refuse(f"unexpected tensor {unexpected[0]!r}" + _more(unexpected))
    missing = sorted(set(state.tensors) - set(found) - state.aliases)
    if missing:
        raise refuse(f"missing tensor {missing[0]!r}" + _more(missing))
    for name, (shape, dtype_name) in sorted(found.items()):
        want_shape, want_dtype = state.tensors[name]
        if tuple(shape) != want_shape:
            raise refuse(f"{name} is {list(shape)} in the file, {list(want_shape)} in the model")
        dtype = _SAFETENSORS_DTYPES.get(dtype_name)
        fits = dtype is not None and (
            dtype == want_dtype or (dtype.is_floating_point and want_dtype.is_floating_point)
        )
        if not fits:
            raise refuse(
                f"{name} is {dtype_name} in the file, {str(want_dtype).removeprefix('torch.')} in the model"
            )


_SAFETENSORS_DTYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _itemsize(dtype: torch.dtype) -> int:
    return torch.empty((), dtype=dtype, device="meta").element_size()


def _size(nbytes: int) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes / 1e3:.1f} kB"


def _more(names: list[str]) -> str:
    return f" and {len(names) - 1} more" if len(names) > 1 else ""
