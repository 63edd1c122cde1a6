"""Built-in plugin: super-resolution (the encoder sees the low-resolution image, the decoder
writes the high-resolution one)."""

from __future__ import annotations

from pathlib import Path

import aezoo
from aezoo_superres.hparams import SuperResHParams

PRETRAINED = Path(__file__).parent / "pretrained"


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


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    register(aezoo.Pretrained.from_folder("superres:t91-x2", PRETRAINED / "t91-x2"))


@aezoo.hookimpl
def aezoo_register_commands(register):
    register(
        aezoo.Command(
            "upscale",
            "upscale your image with a super-resolution model",
            arguments="aezoo_superres.cli:arguments",
            handler="aezoo_superres.cli:run",
            description="Upscale an image file of any size with a super-resolution model (a luminance model "
            "restores colour by BT.601, as the export's page does); the result goes beside it.",
        )
    )
