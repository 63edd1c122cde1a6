from __future__ import annotations

from dataclasses import dataclass

from aezoo import hparam
from aezoo_conv.hparams import ConvHParams


@dataclass(frozen=True)
class DenoisingHParams(ConvHParams):
    """The conv autoencoder's hyperparameters plus the corruption. The default is the lesson's
    recipe: noise drawn from N(0.5, 0.3) added to every pixel, then clamped to [0, 1]."""

    noise: str = hparam("gaussian", "Corruption of the input.", choices=("gaussian", "salt-pepper"))
    noise_level: float = hparam(
        0.3,
        "Gaussian: standard deviation of the added noise; salt-pepper: fraction of pixels flipped.",
        min=0.0,
        max=1.0,
    )
    noise_mean: float = hparam(
        0.5, "Gaussian: mean of the added noise (the lesson adds N(0.5, 0.3)).", min=-1.0, max=1.0
    )
