"""Built-in plugin: an adversarial autoencoder (Makhzani et al., 2016)."""

from __future__ import annotations

import aezoo
from aezoo_aae.hparams import AAEHParams


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
