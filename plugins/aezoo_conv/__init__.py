"""Built-in plugin: a convolutional autoencoder for small images."""

from __future__ import annotations

from pathlib import Path

import aezoo
from aezoo_conv.hparams import ConvHParams

PRETRAINED = Path(__file__).parent / "pretrained"


@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(
        aezoo.Architecture(
            name="conv",
            description="Convolutional autoencoder: conv stages → code → mirrored upsampling stages",
            hparams=ConvHParams,
            builder="aezoo_conv.model:build",
            default_dataset="mnist",
            smoke_hparams={"widths": (8, 16), "latent_dim": 16},
        )
    )


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    register(aezoo.Pretrained.from_folder("conv:mnist", PRETRAINED / "mnist"))
