from __future__ import annotations

from dataclasses import dataclass

from aezoo import HParams, hparam


@dataclass(frozen=True)
class SuperResHParams(HParams):
    """For photos train on luminance with an L1 loss, e.g.
    ``aezoo train superres --dataset images:PATH --set loss=l1``; the defaults suit MNIST 14 → 28."""

    scale: int = hparam(2, "Upscaling factor.", choices=(2, 3, 4))
    channels: int = hparam(1, "1: grey images, or the luminance (Y) of colour ones; 3: RGB.", choices=(1, 3))
    features: int = hparam(64, "Feature channels at low resolution.", min=1, max=1024)
    depth: int = hparam(6, "3×3 convolutions in the decoder's body (residual).", min=1, max=64)
    loss: str = hparam(
        "bce",
        "bce: Bernoulli pixels, no skip (MNIST); l1 or mse: the network adds a residual to bicubic upsampling (photos).",
        choices=("bce", "l1", "mse"),
    )

    def validate(self) -> None:
        if self.loss == "bce" and self.channels != 1:
            raise self.invalid("loss", "bce is for grey images (channels=1); use l1 for RGB")
