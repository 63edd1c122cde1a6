"""The model contract every architecture implements.

An architecture's builder returns an :class:`AutoEncoder`: a ``torch.nn.Module`` with standalone
``encoder`` and ``decoder`` submodules (export traces each on its own) and the few methods the
shared trainer calls. The defaults cover a plain autoencoder; variants override only what differs:

========================  ===================================================================
need                      override
========================  ===================================================================
corrupt the input         :meth:`AutoEncoder.prepare_batch` (denoising)
input ≠ target            :meth:`AutoEncoder.prepare_batch` (super-resolution)
extra loss terms          :meth:`AutoEncoder.loss`, using ``step`` for warm-up (VAE β, KL)
several optimisers        :meth:`AutoEncoder.configure_optimizers` and
                          :meth:`AutoEncoder.training_step` yielding one :class:`Update` per
                          optimiser (adversarial AE)
schedules over steps      ``step`` passed to :meth:`AutoEncoder.loss` (scheduled sampling)
extra validation metrics  :meth:`AutoEncoder.evaluate`
what export traces        :meth:`AutoEncoder.export_parts` (several encoder outputs, extra
                          decoder inputs such as a temperature)
how outputs are used      :meth:`AutoEncoder.export_decoding` (the manifest's ``decoding``:
                          an image's layout and colour, a melody's tokens and MIDI)
========================  ===================================================================
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import torch
from torch import nn

from aezoo.data import Batch
from aezoo.hparams import HParams


@dataclasses.dataclass
class LossOutput:
    """The loss to minimise and detached numbers worth logging (``{"bce": ..., "kl": ...}``)."""

    loss: torch.Tensor
    logs: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Update:
    """One optimiser step: the trainer zeroes ``optimizer``'s gradients, back-propagates
    ``loss``, clips, and steps it."""

    loss: torch.Tensor
    optimizer: str = "model"
    logs: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The trainer's optimiser settings, handed to :meth:`AutoEncoder.configure_optimizers`."""

    name: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One input or output of an exported encoder or decoder, as other runtimes see it.

    ``dynamic`` maps an axis to its symbolic name (``{0: "batch"}``); every other axis is fixed
    at the size seen in the example. ``range`` is the value range the model expects or produces.
    ``sampling`` tells a runtime how to produce a value for an input (``{"kind": "normal", "mean":
    0, "std": 1}``, ``{"kind": "uniform", "low": ..., "high": ..., "rule": ...}``, ``{"kind":
    "constant", ...}``); export fills it in for the decoder's code when the part does not.
    ``classes`` marks an integer tensor of indices into ``classes`` choices (``0 … classes - 1``:
    the codes of a codebook, chosen from scores by the encoder and looked up by the decoder); a
    decoder input with it is drawn as ``{"kind": "indices", "classes": ...}``.
    """

    name: str
    description: str
    range: tuple[float, float] | None = None
    dynamic: dict[int, str] = dataclasses.field(default_factory=lambda: {0: "batch"})
    sampling: dict[str, Any] | None = None
    classes: int | None = None


#: Float outputs of an exported part match PyTorch within this, unless the part says otherwise.
DEFAULT_EXPORT_ATOL = 1e-5


@dataclasses.dataclass
class ExportPart:
    """What export traces for one part (``encoder`` or ``decoder``).

    Attributes:
        module: The standalone module; its ``forward`` takes the inputs in order.
        inputs, outputs: Their names, meaning and dynamic axes, in order.
        example: Fresh random arguments for a batch size (used to trace and to validate).
        from_model_inputs: Arguments computed from real model inputs (``prepare_batch``'s first
            element), to validate on a real batch.
        decisions: For integer outputs chosen step by step as an argmax (an autoregressive
            decoder's tokens): ``decisions(args, outputs)`` gives, for such an output's name, the
            PyTorch scores each element is the argmax of over their last axis. Validation then
            tells a near-tie that flips a choice (reported with its position) from a real mismatch.
        atol: The largest absolute difference between PyTorch and ONNX this part's float outputs may
            show at fp32 (default: :data:`DEFAULT_EXPORT_ATOL`). Raise it only for outputs that
            accumulate rounding over many steps, such as the logits of a recurrent decoder.
    """

    module: nn.Module
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    example: Callable[[int], tuple[torch.Tensor, ...]]
    from_model_inputs: Callable[[Any], tuple[torch.Tensor, ...]]
    decisions: (
        Callable[[tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]], dict[str, torch.Tensor]] | None
    ) = None
    atol: float | None = None

    def tolerance(self, override: float | None = None) -> float:
        """The tolerance validation applies: ``override`` when given, else the part's own."""
        if override is not None:
            return override
        return self.atol if self.atol is not None else DEFAULT_EXPORT_ATOL


OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")


def make_optimizer(params: Any, config: OptimizerConfig) -> torch.optim.Optimizer:
    """An optimiser of the configured kind over ``params``."""
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay}
    if config.name == "adam":
        return torch.optim.Adam(params, **kwargs)
    if config.name == "adamw":
        return torch.optim.AdamW(params, **kwargs)
    if config.name == "sgd":
        return torch.optim.SGD(params, momentum=0.9, nesterov=True, **kwargs)
    if config.name == "rmsprop":
        return torch.optim.RMSprop(params, **kwargs)
    raise ValueError(f"unknown optimizer {config.name!r}; choose one of {', '.join(OPTIMIZERS)}")


#: What :meth:`AutoEncoder.configure_optimizers` returns: name → optimiser, or name →
#: (optimiser, scheduler) where the scheduler is stepped once per training step.
Optimizers = dict[str, "torch.optim.Optimizer | tuple[torch.optim.Optimizer, Any]"]


class AutoEncoder(nn.Module):
    """Base class of every aezoo model. Subclasses set ``self.encoder`` and ``self.decoder``.

    ``architecture`` and ``hparams`` are filled in by :meth:`aezoo.Architecture.build`.
    """

    architecture: str = ""
    hparams: HParams
    encoder: nn.Module
    decoder: nn.Module
    #: ``aezoo reconstruct RUN FILES`` also writes the reconstructions with :meth:`save_outputs`
    #: (for outputs a picture does not replace, such as MIDI melodies).
    writes_reconstructions: bool = False
    #: The most examples :meth:`pictures` draws (``aezoo reconstruct -n`` allows up to this).
    pictured_examples: int = 16
    #: Conformance checks this model is known to fail: check name → the reason, reported as an
    #: expected failure by ``aezoo check`` and in pytest (:mod:`aezoo.testing`).
    conformance_xfail: ClassVar[Mapping[str, str]] = {}

    # -- data ----------------------------------------------------------------------------------

    def prepare_batch(self, batch: Batch, *, train: bool) -> tuple[Any, Any]:
        """Turn a dataset batch (on the model's device) into ``(inputs, targets)``.

        ``train`` is False for validation and test; randomness there (noise, crops) must come
        from the global torch generator, which the trainer seeds identically for every
        evaluation. A batch without the keys the model reads (a dataset of another kind) raises
        :class:`aezoo.AezooError` naming the data it reads (image models get this from
        ``ImageAutoEncoder.images_in``); the conformance kit checks it.
        """
        raise NotImplementedError

    # -- inference -----------------------------------------------------------------------------

    def encode(self, inputs: Any) -> Any:
        """The code of ``inputs`` (deterministic: a VAE returns the posterior mean)."""
        return self.encoder(inputs)

    def decode(self, code: Any) -> Any:
        return self.decoder(code)

    def forward(self, inputs: Any) -> Any:
        """The reconstruction (or prediction) of ``inputs``."""
        return self.decode(self.encode(inputs))

    # -- training ------------------------------------------------------------------------------

    def loss(self, inputs: Any, targets: Any, step: int | None = None) -> LossOutput:
        """The training objective on one batch. ``step`` is the global step during training
        (for warm-ups and schedules) and None in evaluation (schedules at their end)."""
        raise NotImplementedError

    def configure_optimizers(self, config: OptimizerConfig) -> Optimizers:
        """Optimisers by name; the default is one over all parameters, named ``"model"``."""
        return {"model": make_optimizer(self.parameters(), config)}

    def training_step(self, inputs: Any, targets: Any, step: int) -> Iterator[Update]:
        """Yield one :class:`Update` per optimiser step. Code after a ``yield`` runs after the
        trainer has stepped that optimiser, so alternating updates read naturally."""
        out = self.loss(inputs, targets, step)
        yield Update(out.loss, "model", out.logs)

    @torch.no_grad()
    def evaluate(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        """Per-batch mean metrics for validation and test; must include ``"loss"``."""
        out = self.loss(inputs, targets, None)
        return {"loss": out.loss, **out.logs}

    def example_batch(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        """A random batch in the format of the architecture's dataset (conformance checks and
        export validation use it, so no dataset is needed)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement example_batch()")

    # -- export --------------------------------------------------------------------------------

    def export_parts(self) -> dict[str, ExportPart]:
        """The parts export traces: ``{"encoder": ..., "decoder": ...}``. The default encodes
        the prepared input into one ``code`` tensor and decodes it into one ``output``."""

        def encoder_example(n: int) -> tuple[torch.Tensor, ...]:
            return (self.prepare_batch(self.example_batch(n), train=False)[0],)

        def decoder_example(n: int) -> tuple[torch.Tensor, ...]:
            with torch.no_grad():
                code = self.encode(*encoder_example(n))
            return (torch.randn_like(code),)

        return {
            "encoder": ExportPart(
                self.encoder,
                [TensorSpec("input", "the model input, as prepare_batch() makes it")],
                [TensorSpec("code", "the code (latent vector)")],
                encoder_example,
                lambda inputs: (inputs,),
            ),
            "decoder": ExportPart(
                self.decoder,
                [TensorSpec("code", "the code (latent vector)")],
                [TensorSpec("output", "the reconstruction")],
                decoder_example,
                lambda inputs: (self.encode(inputs),),
            ),
        }

    def export_decoding(self) -> dict[str, Any] | None:
        """The manifest's ``decoding`` section: how a runtime turns the decoder's outputs into
        something a person sees or hears, by data kind (``{"kind": "image", ...}`` or ``{"kind":
        "melody", ...}``; ``aezoo/onnx/manifest.schema.json`` defines each kind's fields). None
        (the default) leaves it out; image models get theirs from :class:`aezoo.image.ImageAutoEncoder`."""
        return None

    # -- generation ----------------------------------------------------------------------------

    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None) -> Any:
        """``n`` new outputs decoded from the prior, a tensor of ``n`` rows (``aezoo sample``
        draws many in batches and concatenates them). Models without a prior cannot sample."""
        from aezoo.errors import AezooError

        raise AezooError(
            f"{self.architecture} has no prior to sample from; sampling needs a model whose codes "
            "follow a known distribution (see `aezoo list`)"
        )

    def read_examples(self, paths: list[str], **options: Any) -> Batch:
        """A dataset-format batch from the user's own files (images, MIDI files...), for
        ``aezoo reconstruct RUN FILES`` and ``aezoo interpolate RUN A B``."""
        from aezoo.errors import AezooError

        raise AezooError(f"{self.architecture} cannot read your files; use examples of its dataset")

    def save_outputs(self, outputs: Any, path: str | os.PathLike[str]) -> list[Path]:
        """Write decoded outputs as files a person can open (images: one PNG grid); returns them."""
        from aezoo.errors import AezooError

        raise AezooError(f"{self.architecture} does not know how to save its outputs as files")

    # -- reporting -----------------------------------------------------------------------------

    @torch.no_grad()
    def pictures(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        """Pictures written into the run folder after training: file stem → image ``[C, H, W]``
        with values in [0, 1]. The default is none."""
        return {}

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        return torch.device("cpu")


@runtime_checkable
class LikelihoodModel(Protocol):
    """Models that estimate log p(x) (``aezoo evaluate --nll``)."""

    def log_likelihood(self, inputs: Any, targets: Any, samples: int) -> torch.Tensor:
        """log p(targets) per example in nats, importance-sampled with ``samples`` samples."""
        ...


class GaussianPrior:
    """Mixin for models whose codes follow N(0, I) (VAE, adversarial AE): they can sample, and
    latent plots draw the prior. Set ``latent_size``; ``decode`` turns codes into outputs."""

    latent_size: int

    def sample_latent(
        self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        device = next(self.parameters()).device  # type: ignore[attr-defined]
        return torch.randn(n, self.latent_size, generator=generator, device=device) * temperature

    @torch.no_grad()
    def sample(self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None) -> Any:
        return self.decode(self.sample_latent(n, temperature=temperature, generator=generator))  # type: ignore[attr-defined]
