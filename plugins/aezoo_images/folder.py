"""``images:PATH``: a folder of photos as a dataset — random patches to train on, whole images
to validate and test on. Held in memory, or with ``DataOptions.stream`` read from the files a batch
at a time (:mod:`aezoo.streaming`): the same batches either way, crops drawn in the same order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo.data import Batch, DataOptions, DataSplits
from aezoo.errors import AezooError
from aezoo.streaming import Packed, pack, unpack

EXTENSIONS = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}
PATCH = 64  # divisible by 2 and 4; x3 models crop to 63
PATCHES_PER_IMAGE = 64


def image_files(path: Path) -> list[Path]:
    """The image files of folder ``path``, sorted by name."""
    if not path.is_dir():
        raise AezooError(f"images:{path}: no such folder; give a folder of image files")
    files = [file for file in sorted(path.iterdir()) if file.suffix.lower() in EXTENSIONS]
    if not files:
        raise AezooError(f"images:{path}: no image files ({', '.join(sorted(EXTENSIONS))}) in the folder")
    return files


def _in_folder(error: AezooError) -> AezooError:
    return AezooError(f"{error}; remove it from the folder")


def decode_image(file: Path) -> torch.Tensor:
    """The image in ``file`` as ``uint8 [3, H, W]`` (grey repeated to RGB); one line naming the
    file when it cannot be read."""
    from aezoo.image import open_image

    try:
        with open_image(file) as img:  # an oversized or unreadable file is one line naming it
            rgb = img.convert("RGB")
    except AezooError as exc:
        raise _in_folder(exc) from None
    return torch.from_numpy(np.ascontiguousarray(np.asarray(rgb).transpose(2, 0, 1)))


def image_size(file: Path) -> tuple[int, int]:
    """``(height, width)`` of the image in ``file`` from its header, without decoding it."""
    from aezoo.image import open_image

    try:
        with open_image(file) as img:
            width, height = img.size
    except AezooError as exc:
        raise _in_folder(exc) from None
    return height, width


def read_folder(path: Path) -> tuple[list[str], list[torch.Tensor]]:
    """Every image of ``path`` as ``uint8 [3, H, W]`` (grey images repeated to RGB), sorted by name."""
    files = image_files(path)
    return [file.name for file in files], [decode_image(file) for file in files]


def random_patch(image: torch.Tensor, patch: int) -> torch.Tensor:
    """A random ``patch``×``patch`` crop of ``image`` with a random flip and 90° turn, drawn from the
    global generator (seeded and checkpointed by the trainer)."""
    _, h, w = image.shape
    top = int(torch.randint(0, h - patch + 1, ()))
    left = int(torch.randint(0, w - patch + 1, ()))
    crop = image[:, top : top + patch, left : left + patch]
    if torch.rand(()) < 0.5:
        crop = crop.flip(2)
    return torch.rot90(crop, int(torch.randint(0, 4, ())), dims=(1, 2))


class PatchSplit:
    """Random ``patch``×``patch`` crops (:func:`random_patch`). One epoch is ``per_image`` crops of
    each image."""

    def __init__(
        self, images: list[torch.Tensor], patch: int = PATCH, per_image: int = PATCHES_PER_IMAGE
    ) -> None:
        self.images = [im for im in images if min(im.shape[1:]) >= patch]
        self.patch = patch
        self.per_image = per_image

    def __len__(self) -> int:
        return len(self.images) * self.per_image

    def batch(self, indices: torch.Tensor) -> Batch:
        crops = [random_patch(self.images[i % len(self.images)], self.patch) for i in indices.tolist()]
        return {"image": torch.stack(crops).contiguous()}


class WholeImageSplit:
    """Whole images, one per batch (they differ in size)."""

    max_batch_size = 1

    def __init__(self, names: list[str], images: list[torch.Tensor]) -> None:
        self.names, self.images = names, images

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, indices: torch.Tensor) -> Batch:
        if len(indices) != 1:
            raise ValueError("whole images of different sizes come one per batch")
        return {"image": self.images[int(indices[0])].unsqueeze(0)}


class PatchFileSplit:
    """:class:`PatchSplit` streamed: each batch decodes the files it crops (in a worker) and crops
    them when the trainer takes it, so the crops are :class:`PatchSplit`'s, draw for draw."""

    def __init__(self, files: list[Path], patch: int = PATCH, per_image: int = PATCHES_PER_IMAGE) -> None:
        self.files, self.patch, self.per_image = files, patch, per_image

    def __len__(self) -> int:
        return len(self.files) * self.per_image

    def fetch(self, indices: Sequence[int]) -> tuple[list[int], Packed]:
        """The images the crops of ``indices`` come from, decoded: which, and their pixels."""
        wanted = sorted({i % len(self.files) for i in indices})
        return wanted, pack([decode_image(self.files[i]) for i in wanted])

    def assemble(self, fetched: tuple[list[int], Packed], indices: torch.Tensor) -> Batch:
        wanted, pixels = fetched
        images = dict(zip(wanted, unpack(pixels), strict=True))
        crops = [random_patch(images[i % len(self.files)], self.patch) for i in indices.tolist()]
        return {"image": torch.stack(crops).contiguous()}

    def batch(self, indices: torch.Tensor) -> Batch:
        return self.assemble(self.fetch(indices.tolist()), indices)


class WholeImageFileSplit:
    """:class:`WholeImageSplit` streamed: each image decoded from its file when asked for."""

    max_batch_size = 1

    def __init__(self, names: list[str], files: list[Path]) -> None:
        self.names, self.files = names, files

    def __len__(self) -> int:
        return len(self.files)

    def fetch(self, indices: Sequence[int]) -> torch.Tensor:
        if len(indices) != 1:
            raise ValueError("whole images of different sizes come one per batch")
        return decode_image(self.files[int(indices[0])])

    def assemble(self, fetched: torch.Tensor, indices: torch.Tensor) -> Batch:
        return {"image": fetched.unsqueeze(0)}

    def batch(self, indices: torch.Tensor) -> Batch:
        return self.assemble(self.fetch(indices.tolist()), indices)


def load_folder(options: DataOptions, argument: str | None) -> DataSplits:
    path = Path(argument or "").expanduser()
    files = image_files(path)
    names = [file.name for file in files]
    every = list(range(len(files)))
    held_out = every[::10] if len(files) >= 10 else []  # every 10th image validates
    train = [i for i in every if i % 10] if held_out else every
    val = held_out or every
    splits: dict[str, Any]
    if options.stream:
        sizes = [image_size(file) for file in files]  # an unreadable header is refused now
        big_enough = [i for i in train if min(sizes[i]) >= PATCH]
        splits = {
            "train": PatchFileSplit([files[i] for i in big_enough]),
            "val": WholeImageFileSplit([names[i] for i in val], [files[i] for i in val]),
            "all": WholeImageFileSplit(names, files),
        }
    else:
        images = [decode_image(file) for file in files]
        splits = {
            "train": PatchSplit([images[i] for i in train]),
            "val": WholeImageSplit([names[i] for i in val], [images[i] for i in val]),
            "all": WholeImageSplit(names, images),
        }
    info = {
        "kind": "image",
        "channels": 3,
        "patch": PATCH,
        "files": len(files),
        "validation_files": [names[i] for i in val],
    }
    return DataSplits(
        f"images:{path}", splits["train"], splits["val"], splits["val"], info, extra={"all": splits["all"]}
    )
