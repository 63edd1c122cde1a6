from __future__ import annotations

from dataclasses import dataclass

from aezoo import HParams, hparam


@dataclass(frozen=True)
class DenseHParams(HParams):
    latent_dim: int = hparam(32, "Size of the code.", min=1, max=65536)
    hidden: tuple[int, ...] = hparam(
        (512,), "Widths of the hidden layers between pixels and code (mirrored in the decoder).", min=1
    )
    activation: str = hparam("relu", "Hidden-layer activation.", choices=("relu", "gelu", "silu", "tanh"))
    image_size: int = hparam(28, "Height and width of the images.", min=1, max=4096)
    channels: int = hparam(1, "Image channels (1 grey, 3 colour).", min=1, max=16)
