"""The VQ-VAE's hyperparameters."""

from __future__ import annotations

from dataclasses import dataclass

from aezoo import HParams, hparam


@dataclass(frozen=True)
class VQVAEHParams(HParams):
    """28×28 images and two stages give a 7×7 grid of codes, each one of ``codes`` vectors."""

    widths: tuple[int, ...] = hparam(
        (32, 64), "Channels of each conv stage; every stage halves height and width (28 → 14 → 7).", min=1
    )
    codes: int = hparam(512, "Number of code vectors in the codebook (K).", min=2, max=65536)
    code_dim: int = hparam(64, "Length of each code vector (D).", min=1, max=4096)
    commitment: float = hparam(
        0.25,
        "β: weight of the commitment loss ‖z_e − sg(e)‖², which keeps the encoder near its codes.",
        min=0.0,
    )
    decay: float = hparam(
        0.99,
        "Decay of the codebook's exponential moving averages (the codebook is learned by EMA).",
        min=0.0,
        max=0.9999,
    )
    restart_below: float = hparam(
        1.0,
        "A code whose moving-average use falls below this many vectors per batch is moved onto a random "
        "encoder output of the batch (dead-code restart); 0 never restarts.",
        min=0.0,
    )
    batch_norm: bool = hparam(True, "Batch normalisation after each convolution.")
    image_size: int = hparam(28, "Height and width of the images.", min=4, max=4096)
    channels: int = hparam(1, "Image channels (1 grey, 3 colour).", min=1, max=16)

    def validate(self) -> None:
        if self.image_size < 2 ** len(self.widths):
            raise self.invalid(
                "widths",
                f"has {len(self.widths)} stages, too many for {self.image_size}-pixel images "
                f"(at most {self.image_size.bit_length() - 1})",
            )
