"""``aezoo upscale MODEL IMAGE``: superres's own command, added through ``aezoo_register_commands``.

This module is imported for every ``aezoo`` command (its parser), so it imports nothing heavy at
its top; the model is loaded only when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aezoo import AezooError


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run", metavar="MODEL", help="super-resolution run folder, .safetensors file or pretrained name"
    )
    parser.add_argument("image", help="the image to upscale (PNG, JPEG, ...; any size)")
    parser.add_argument("-o", "--out", help="output image file (default: IMAGE-upscaled.png beside it)")


def run(args: argparse.Namespace) -> int:
    from aezoo.sources import open_source
    from aezoo_superres.model import SuperResolution

    model = open_source(args.run).model
    if not isinstance(model, SuperResolution):
        raise AezooError(f"{args.run} holds a {model.architecture!r} model, which does not upscale images")
    image = Path(args.image)
    out = Path(args.out) if args.out else image.with_name(f"{image.stem}-upscaled.png")
    print(model.upscale_file(image, out))
    return 0
