"""Building blocks for image autoencoders: batch normalisation, Bernoulli loss and pictures.

Image datasets hand out ``batch["image"]`` as ``uint8`` ``[N, H, W]`` or ``[N, C, H, W]``; models
see ``float32`` in [0, 1].
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aezoo.data import Batch
from aezoo.errors import AezooError
from aezoo.fileio import atomic_path
from aezoo.model import AutoEncoder, ExportPart, LossOutput, TensorSpec

#: The most pixels an image file may have: checked from its header, before anything is decoded, so a
#: small file claiming an enormous picture (a decompression bomb) is one line, not gigabytes.
MAX_IMAGE_PIXELS = 64_000_000


@contextlib.contextmanager
def open_image(path: str | os.PathLike[str]) -> Iterator[Any]:
    """``with open_image(path) as img:`` a PIL image whose size was checked against
    :data:`MAX_IMAGE_PIXELS` before decoding; a missing, unreadable, truncated or oversized file
    (in opening it or decoding it inside the block) is one :class:`AezooError` naming it."""
    from PIL import Image, UnidentifiedImageError

    unreadable = (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError)
    bombs = (Image.DecompressionBombError, Image.DecompressionBombWarning)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
    except FileNotFoundError:
        raise AezooError(f"{path} does not exist") from None
    except IsADirectoryError:
        raise AezooError(f"{path} is a folder; give an image file") from None
    except bombs as exc:
        raise AezooError(f"{path} is too large to decode ({exc})") from None
    except unreadable as exc:
        raise AezooError(f"{path} is not an image PIL can read ({exc})") from None
    with img:
        width, height = img.size
        if width * height > MAX_IMAGE_PIXELS:
            raise AezooError(
                f"{path} is {width:,}×{height:,} pixels, more than aezoo decodes ({MAX_IMAGE_PIXELS:,}); "
                "make it smaller"
            )
        try:
            yield img
        except unreadable as exc:
            raise AezooError(f"{path} is not an image PIL can read ({exc})") from None


def read_images(
    paths: list[str] | list[Path], channels: int, size: tuple[int, int] | None = None, invert: bool = False
) -> torch.Tensor:
    """User image files → ``uint8 [N, C, H, W]``: converted to grey (1 channel) or RGB, resized
    to ``size`` (height, width) when given, optionally inverted (dark digits on white paper)."""
    from PIL import Image

    if channels not in (1, 3):
        raise AezooError(f"image files are read as grey (1 channel) or RGB (3), not {channels} channels")
    images = []
    for path in paths:
        with open_image(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
            array = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8)
            tensor = array.reshape(img.size[1], img.size[0], channels).permute(2, 0, 1)
        images.append(255 - tensor if invert else tensor)
    if size is None and len({tuple(t.shape) for t in images}) > 1:
        raise AezooError("the images differ in size; give them one at a time")
    return torch.stack(images)


def save_picture(image: torch.Tensor, path: str | os.PathLike[str]) -> Path:
    """Write a ``[C, H, W]`` picture in [0, 1] as PNG, atomically."""
    from torchvision.utils import save_image

    path = Path(path)
    with atomic_path(path) as tmp:
        save_image(image.detach().float().cpu().clamp(0, 1), tmp, format="png")
    return path


def to_float(images: torch.Tensor) -> torch.Tensor:
    """``uint8`` pixels → ``float32`` in [0, 1] with a channel dimension (``[N, C, H, W]``)."""
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    return images.float()


class ImageDecoder(nn.Module):
    """A decoder producing pixel logits; calling it gives probabilities in [0, 1]."""

    def logits(self, code: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, code: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(code))


class ImageAutoEncoder(AutoEncoder):
    """An autoencoder of images with a Bernoulli likelihood (per-pixel binary cross-entropy).

    Subclasses set ``image_shape`` (``(C, H, W)``; H and W None for any size), ``encoder`` and an
    :class:`ImageDecoder`.
    """

    image_shape: tuple[int, int | None, int | None]
    decoder: ImageDecoder

    def prepare_batch(self, batch: Batch, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.images_in(batch)
        self.check_images(images)
        return images, images

    def images_in(self, batch: Batch) -> torch.Tensor:
        """The batch's images as floats in [0, 1]; a batch without images (a melody dataset's,
        say) is a user error."""
        if "image" not in batch:
            raise AezooError(
                f"{self.architecture or type(self).__name__} reads images (batch key 'image'), got "
                f"{sorted(batch)}; train it on an image dataset (`aezoo datasets` lists them)"
            )
        return to_float(batch["image"])

    def check_images(self, images: torch.Tensor) -> None:
        """A wrong image shape is a user error naming both shapes."""
        if tuple(images.shape[1:]) != tuple(self.image_shape):
            want = "×".join(map(str, self.image_shape))
            got = "×".join(map(str, images.shape[1:]))
            raise AezooError(
                f"{self.architecture or type(self).__name__} expects images of shape {want} "
                f"(channels×height×width), got {got}; set the model's image hyperparameters "
                "to match the dataset"
            )

    def reconstruction_logits(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.decoder.logits(self.encode(inputs))

    def loss(self, inputs: Any, targets: Any, step: int | None = None) -> LossOutput:
        logits = self.reconstruction_logits(inputs)
        bce = F.binary_cross_entropy_with_logits(logits, targets)
        logs = {"bce": bce.detach()}
        if not self.training:  # only reported in evaluation: training steps stay lean
            logs["mse"] = F.mse_loss(torch.sigmoid(logits), targets)
        return LossOutput(bce, logs)

    def example_batch(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        shape = (batch_size, *self.image_shape)
        return {
            "image": torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator, device=self.device)
        }

    def export_parts(self) -> dict[str, ExportPart]:
        parts = super().export_parts()
        c, h, w = self.image_shape
        pixels = TensorSpec(
            "image",
            f"images, float32 [batch, {c}, {h}, {w}], pixel values scaled to [0, 1] (uint8 / 255)",
            (0.0, 1.0),
        )
        parts["encoder"].inputs = [pixels]
        parts["encoder"].outputs = [TensorSpec("code", "the code (latent vector) of each image")]
        parts["decoder"].inputs = [TensorSpec("code", "a code (latent vector) per image")]
        parts["decoder"].outputs = [
            TensorSpec(
                "image", "reconstructed images, probabilities of a pixel being on, in [0, 1]", (0.0, 1.0)
            )
        ]
        return parts

    def export_decoding(self) -> dict[str, Any] | None:
        """Images: the decoder's first output, ``[batch, C, H, W]`` in its range, grey or RGB
        (export adds the dataset's polarity where it knows it)."""
        output = self.export_parts()["decoder"].outputs[0]
        channels = self.image_shape[0]
        return {
            "kind": "image",
            "output": output.name,
            "layout": "NCHW",
            "channels": channels,
            "color": "grey" if channels == 1 else "rgb",
            "range": list(output.range or (0.0, 1.0)),
            "to_8bit": "round(clamp((value - range[0]) / (range[1] - range[0]), 0, 1) * 255)",
        }

    def read_examples(self, paths: list[str], *, invert: bool = False, **options: Any) -> Batch:
        """Image files, converted to the model's channels and (if fixed) size."""
        c, h, w = self.image_shape
        return {
            "image": read_images(paths, c, (h, w) if h is not None and w is not None else None, invert=invert)
        }

    def save_outputs(self, outputs: torch.Tensor, path: str | os.PathLike[str]) -> list[Path]:
        """Decoded images as one PNG grid (up to 16 per row)."""
        from torchvision.utils import make_grid

        grid = make_grid(
            outputs.detach().float().cpu().clamp(0, 1), nrow=min(16, len(outputs)), pad_value=1.0
        )
        return [save_picture(grid, Path(path).with_suffix(".png"))]

    @torch.no_grad()
    def pictures(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        """``reconstructions``: originals over reconstructions, up to 16 per row."""
        n = min(self.pictured_examples, len(inputs))
        rows = [targets[:n], self(inputs[:n])]
        return {"reconstructions": image_rows(rows)}


def image_rows(rows: list[torch.Tensor], pad: int = 2) -> torch.Tensor:
    """Stack equally long batches of images as rows of one picture (``torchvision.utils``)."""
    from torchvision.utils import make_grid

    n = len(rows[0])
    stacked = torch.cat([r[:n].detach().float().cpu().clamp(0, 1) for r in rows])
    return make_grid(stacked, nrow=n, padding=pad, pad_value=1.0)


def side_by_side(pictures: list[torch.Tensor], gap: int = 8) -> torch.Tensor:
    """Pictures ``[C, H, W]`` left to right on white, top-aligned."""
    height = max(p.shape[1] for p in pictures)
    channels = max(p.shape[0] for p in pictures)
    width = sum(p.shape[2] for p in pictures) + gap * (len(pictures) - 1)
    canvas = torch.ones(channels, height, width)
    x = 0
    for p in pictures:
        canvas[:, : p.shape[1], x : x + p.shape[2]] = p.expand(channels, -1, -1)
        x += p.shape[2] + gap
    return canvas
