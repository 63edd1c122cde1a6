"""Built-in plugin: super-resolution (the encoder sees the low-resolution image, the decoder
writes the high-resolution one)."""

from __future__ import annotations

import aezoo
from aezoo_superres.hparams import SuperResHParams


@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(
        aezoo.Architecture(
            name="superres",
            description="Super-resolution AE: low-resolution image in, ×2/×3/×4 image out (PixelShuffle)",
            hparams=SuperResHParams,
            builder="aezoo_superres.model:build",
            default_dataset="mnist",
            smoke_hparams={"features": 8, "depth": 2},
        )
    )
