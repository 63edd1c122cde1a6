"""Built-in plugin: an adversarial autoencoder (Makhzani et al., 2016)."""

from __future__ import annotations

from pathlib import Path

import aezoo
from aezoo_aae.hparams import AAEHParams

PRETRAINED = Path(__file__).parent / "pretrained"


@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(
        aezoo.Architecture(
            name="aae",
            description="Adversarial autoencoder: a discriminator pushes the codes towards a N(0, I) prior",
            hparams=AAEHParams,
            builder="aezoo_aae.model:build",
            default_dataset="mnist",
            smoke_hparams={"hidden": (32,), "disc_hidden": (16,), "latent_dim": 2},
        )
    )


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    register(aezoo.Pretrained.from_folder("aae:mnist-2d", PRETRAINED / "mnist-2d"))
