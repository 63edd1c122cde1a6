"""Built-in plugin: a fully connected autoencoder."""

from __future__ import annotations

from pathlib import Path

import aezoo
from aezoo_dense.hparams import DenseHParams

PRETRAINED = Path(__file__).parent / "pretrained"


@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(
        aezoo.Architecture(
            name="dense",
            description="Fully connected autoencoder: pixels → hidden layers → code → pixels",
            hparams=DenseHParams,
            builder="aezoo_dense.model:build",
            default_dataset="mnist",
            smoke_hparams={"hidden": (64,), "latent_dim": 8},
        )
    )


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    register(aezoo.Pretrained.from_folder("dense:mnist", PRETRAINED / "mnist"))
