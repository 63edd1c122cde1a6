"""Built-in plugin: a variational autoencoder (convolutional by default, or dense)."""

from __future__ import annotations

from pathlib import Path

import aezoo
from aezoo_vae.hparams import VAEHParams

PRETRAINED = Path(__file__).parent / "pretrained"


@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(
        aezoo.Architecture(
            name="vae",
            description="Variational autoencoder: Gaussian posterior, N(0, I) prior, Bernoulli likelihood",
            hparams=VAEHParams,
            builder="aezoo_vae.model:build",
            default_dataset="mnist",
            smoke_hparams={"widths": (8, 16), "hidden": (32,), "latent_dim": 4, "binarize": True},
        )
    )


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    register(aezoo.Pretrained.from_folder("vae:mnist-2d", PRETRAINED / "mnist-2d"))
    register(aezoo.Pretrained.from_folder("vae:mnist", PRETRAINED / "mnist"))
