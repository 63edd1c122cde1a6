from __future__ import annotations

from dataclasses import dataclass

from aezoo import HParams, hparam


@dataclass(frozen=True)
class AAEHParams(HParams):
    latent_dim: int = hparam(2, "Size of the code (2 to see it against the prior).", min=1, max=4096)
    hidden: tuple[int, ...] = hparam(
        (512, 512), "Widths of the encoder's hidden layers (mirrored in the decoder).", min=1
    )
    disc_hidden: tuple[int, ...] = hparam((512, 512), "Widths of the discriminator's hidden layers.", min=1)
    adversarial_weight: float = hparam(
        1.0, "Scale of the generator (encoder-fools-discriminator) loss.", min=0.0, max=100.0
    )
    disc_lr_scale: float = hparam(
        0.5, "Discriminator learning rate as a multiple of --lr.", min=1e-4, max=100.0
    )
    gen_lr_scale: float = hparam(
        0.5, "Generator (encoder) learning rate as a multiple of --lr.", min=1e-4, max=100.0
    )
    image_size: int = hparam(28, "Height and width of the images.", min=4, max=4096)
    channels: int = hparam(1, "Image channels.", min=1, max=16)
