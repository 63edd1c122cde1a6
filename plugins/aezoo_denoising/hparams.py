from __future__ import annotations

from dataclasses import dataclass

from aezoo import HParamError, HParams, hparam


@dataclass(frozen=True)
class DenoisingHParams(HParams):
    """A conv autoencoder's hyperparameters plus the corruption. The default is the lesson's
    recipe: noise drawn from N(0.5, 0.3) added to every pixel, then clamped to [0, 1]."""

    widths: tuple[int, ...] = hparam(
        (32, 64, 128), "Channels of each conv stage; every stage halves height and width.", min=1
    )
    latent_dim: int | None = hparam(
        128, "Size of the code after a linear layer; none keeps the last feature map as the code.", min=1
    )
    downsample: str = hparam("stride", "How a stage halves the size.", choices=("stride", "maxpool"))
    upsample: str = hparam("transpose", "How a decoder stage doubles it.", choices=("transpose", "nearest"))
    batch_norm: bool = hparam(True, "Batch normalisation after each convolution.")
    kernel_size: int = hparam(3, "Convolution kernel size (odd).", min=1, max=11)
    image_size: int = hparam(28, "Height and width of the images.", min=4, max=4096)
    channels: int = hparam(1, "Image channels (1 grey, 3 colour).", min=1, max=16)
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

    def validate(self) -> None:
        owner = (self.architecture, self.noun)
        if self.kernel_size % 2 == 0:
            raise HParamError(owner, "kernel_size", f"must be odd, got {self.kernel_size}")
        if self.image_size < 2 ** len(self.widths):
            raise HParamError(
                owner,
                "widths",
                f"has {len(self.widths)} stages, too many for {self.image_size}-pixel images "
                f"(at most {self.image_size.bit_length() - 1})",
            )
