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
========================  ===================================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

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

    # -- data ----------------------------------------------------------------------------------

    def prepare_batch(self, batch: Batch, *, train: bool) -> tuple[Any, Any]:
        """Turn a dataset batch (on the model's device) into ``(inputs, targets)``.

        ``train`` is False for validation and test; randomness there (noise, crops) must come
        from the global torch generator, which the trainer seeds identically for every
        evaluation.
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
