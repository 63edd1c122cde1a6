"""``images:PATH``: a folder of photos as a dataset — random patches to train on, whole images
to validate and test on."""

from __future__ import annotations

from pathlib import Path

import torch

from aezoo.data import Batch, DataOptions, DataSplits
from aezoo.errors import AezooError

EXTENSIONS = {".bmp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}
PATCH = 64  # divisible by 2 and 4; x3 models crop to 63
PATCHES_PER_IMAGE = 64


def read_folder(path: Path) -> tuple[list[str], list[torch.Tensor]]:
    """Every image of ``path`` as ``uint8 [3, H, W]`` (grey images repeated to RGB), sorted by name."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_dir():
        raise AezooError(f"images:{path}: no such folder; give a folder of image files")
    names, images = [], []
    for file in sorted(path.iterdir()):
        if file.suffix.lower() not in EXTENSIONS:
            continue
        try:
            with Image.open(file) as img:
                rgb = img.convert("RGB")
                data = torch.frombuffer(bytearray(rgb.tobytes()), dtype=torch.uint8)
                images.append(data.reshape(rgb.size[1], rgb.size[0], 3).permute(2, 0, 1).contiguous())
                names.append(file.name)
        except (UnidentifiedImageError, OSError) as exc:
            raise AezooError(
                f"{file} is not an image PIL can read ({exc}); remove it from the folder"
            ) from None
    if not images:
        raise AezooError(f"images:{path}: no image files ({', '.join(sorted(EXTENSIONS))}) in the folder")
    return names, images


class PatchSplit:
    """Random ``patch``×``patch`` crops with random flips and 90° turns, drawn from the global
    generator (seeded and checkpointed by the trainer). One epoch is ``per_image`` crops of each
    image."""

    def __init__(
        self, images: list[torch.Tensor], patch: int = PATCH, per_image: int = PATCHES_PER_IMAGE
    ) -> None:
        self.images = [im for im in images if min(im.shape[1:]) >= patch]
        self.patch = patch
        self.per_image = per_image

    def __len__(self) -> int:
        return len(self.images) * self.per_image

    def batch(self, indices: torch.Tensor) -> Batch:
        crops = []
        for index in indices.tolist():
            image = self.images[index % len(self.images)]
            _, h, w = image.shape
            top = int(torch.randint(0, h - self.patch + 1, ()))
            left = int(torch.randint(0, w - self.patch + 1, ()))
            crop = image[:, top : top + self.patch, left : left + self.patch]
            if torch.rand(()) < 0.5:
                crop = crop.flip(2)
            crop = torch.rot90(crop, int(torch.randint(0, 4, ())), dims=(1, 2))
            crops.append(crop)
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


def load_folder(options: DataOptions, argument: str | None) -> DataSplits:
    path = Path(argument or "").expanduser()
    names, images = read_folder(path)
    held_out = set(range(0, len(images), 10)) if len(images) >= 10 else set()
    train = [im for i, im in enumerate(images) if i not in held_out] if held_out else images
    val_names = [n for i, n in enumerate(names) if i in held_out] or names
    val_images = [im for i, im in enumerate(images) if i in held_out] or images
    val = WholeImageSplit(val_names, val_images)
    info = {
        "kind": "image",
        "channels": 3,
        "patch": PATCH,
        "files": len(images),
        "validation_files": val_names,
    }
    return DataSplits(
        f"images:{path}", PatchSplit(train), val, val, info, extra={"all": WholeImageSplit(names, images)}
    )
