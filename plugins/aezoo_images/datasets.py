"""MNIST and Fashion-MNIST through torchvision, held as ``uint8`` tensors.

The files are looked for under the data root (torchvision's ``MNIST/raw`` layout) and downloaded
there when missing. Offline and without the files, ``mnist`` falls back to the subset of MNIST that
ships inside this package (``data/mnist-subset.npz``: the first 10,000 training and the first 2,000
test digits, CC BY-SA 3.0; see ``data/MNIST-SUBSET.md``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from aezoo.data import DataOptions, DataSplits, TensorSplit, train_val_split
from aezoo.errors import AezooError

VAL_SIZE = 5000
SUBSET_FILE = Path(__file__).parent / "data" / "mnist-subset.npz"
SUBSET_TRAIN, SUBSET_TEST, SUBSET_VAL = 10_000, 2_000, 1_000
SUBSET_NAME = "aezoo's shipped subset: the first 10,000 training and first 2,000 test digits"
MNIST_CLASSES = [str(i) for i in range(10)]
FASHION_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip


def load_mnist(options: DataOptions, argument: str | None = None) -> DataSplits:
    from torchvision.datasets import MNIST

    try:
        return _load(MNIST, "mnist", options, MNIST_CLASSES)
    except _Unavailable as exc:
        print(
            f"aezoo: MNIST is not in {options.root} and could not be downloaded ({exc}); using the "
            f"subset aezoo ships ({SUBSET_TRAIN:,} training and {SUBSET_TEST:,} test digits). For the "
            "full set, put torchvision's MNIST/raw files under --data-dir or $AEZOO_DATA, or go online once.",
            file=sys.stderr,
        )
        return load_mnist_subset(options)


def load_fashion_mnist(options: DataOptions, argument: str | None = None) -> DataSplits:
    from torchvision.datasets import FashionMNIST

    try:
        return _load(FashionMNIST, "fashion-mnist", options, FASHION_CLASSES)
    except _Unavailable as exc:
        raise AezooError(
            f"Fashion-MNIST is not in {options.root}/FashionMNIST/raw and could not be downloaded "
            f"({exc}); go online once, or put torchvision's FashionMNIST/raw files under "
            "--data-dir or $AEZOO_DATA"
        ) from None


class _Unavailable(Exception):
    pass


def _load(cls, name: str, options: DataOptions, classes: list[str]) -> DataSplits:
    root = str(options.root)
    try:
        train = cls(root, train=True, download=options.download)
        test = cls(root, train=False, download=options.download)
    except (RuntimeError, OSError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _Unavailable(reason) from None
    tensors = {"image": train.data.contiguous(), "label": train.targets.long()}
    train_split, val_split = train_val_split(tensors, options.val_size or VAL_SIZE, options.split_seed)
    test_split = TensorSplit({"image": test.data.contiguous(), "label": test.targets.long()})
    return DataSplits(name, train_split, val_split, test_split, _info(classes))


def load_mnist_subset(options: DataOptions) -> DataSplits:
    """The MNIST subset shipped with aezoo: the first 10,000 training digits (1,000 of them, a
    fixed-seed slice, for validation) and the first 2,000 test digits, in MNIST's own order."""
    try:
        with np.load(SUBSET_FILE) as arrays:
            tensors = {name: torch.from_numpy(np.ascontiguousarray(arrays[name])) for name in arrays.files}
    except (OSError, ValueError, KeyError) as exc:
        raise AezooError(
            f"{SUBSET_FILE} (aezoo's MNIST subset) is unreadable ({exc}); reinstall aezoo, or put "
            "MNIST/raw under --data-dir"
        ) from None
    images, labels = tensors["train_images"], tensors["train_labels"].long()
    test_images, test_labels = tensors["test_images"], tensors["test_labels"].long()
    if images.shape != (SUBSET_TRAIN, 28, 28) or test_images.shape != (SUBSET_TEST, 28, 28):
        raise AezooError(f"{SUBSET_FILE} does not hold the expected digits; reinstall aezoo")
    train, val = train_val_split(
        {"image": images, "label": labels}, options.val_size or SUBSET_VAL, options.split_seed
    )
    test = TensorSplit({"image": test_images, "label": test_labels})
    info = _info(MNIST_CLASSES)
    info["subset"] = SUBSET_NAME
    return DataSplits("mnist", train, val, test, info)


#: How the pixels of MNIST-style datasets read: 0 is the background.
POLARITY = "light on dark: 0 (black) is the background, 1 (white) the ink or the garment"


def _info(classes: list[str]) -> dict:
    return {"kind": "image", "shape": [1, 28, 28], "classes": classes, "polarity": POLARITY}
