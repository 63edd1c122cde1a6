"""Built-in plugin: a convolutional denoising autoencoder (corrupted input, clean target)."""

from __future__ import annotations

from pathlib import Path

import aezoo
from aezoo_denoising.hparams import DenoisingHParams

PRETRAINED = Path(__file__).parent / "pretrained"


@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(
        aezoo.Architecture(
            name="denoising",
            description="Denoising conv autoencoder: Gaussian or salt-and-pepper noise in, clean image out",
            hparams=DenoisingHParams,
            builder="aezoo_denoising.model:build",
            default_dataset="mnist",
            smoke_hparams={"widths": (8, 16), "latent_dim": 16},
        )
    )


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    register(aezoo.Pretrained.from_folder("denoising:mnist", PRETRAINED / "mnist"))
