from __future__ import annotations

from dataclasses import dataclass

from aezoo import HParamError, HParams, hparam


@dataclass(frozen=True)
class ConvHParams(HParams):
    """The classic Keras-blog geometry is ``widths=16,8,8 latent_dim=none downsample=maxpool
    upsample=nearest batch_norm=false`` (code: the 8×4×4 feature map, 128 numbers)."""

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
