"""aezoo-vqvae: a VQ-VAE plugin for aezoo, registered through the ``aezoo`` entry-point group.

This module stays light (no torch import) so ``aezoo list`` stays fast: the model is built by
``aezoo_vqvae.model:build`` only when one is needed.
"""

from __future__ import annotations

from pathlib import Path

import aezoo
from aezoo_vqvae.hparams import VQVAEHParams

PRETRAINED = Path(__file__).parent / "pretrained"


@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(
        aezoo.Architecture(
            name="vqvae",
            description="VQ-VAE: images → a grid of integer codes from a learned codebook → images",
            hparams=VQVAEHParams,
            builder="aezoo_vqvae.model:build",
            default_dataset="mnist",
            smoke_hparams={"widths": (8, 16), "codes": 32, "code_dim": 8},
        )
    )


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    # weights (fp16), the recipe that trained them and the model card, shipped in the package
    register(aezoo.Pretrained.from_folder("vqvae:mnist", PRETRAINED / "mnist"))
