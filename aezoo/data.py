"""Datasets as the trainer sees them: in-memory splits served a batch of indices at a time.

Loaders registered through :func:`aezoo.hookspecs.aezoo_register_datasets` return
:class:`DataSplits`. Each split hands out batches as dictionaries of tensors; image datasets keep
their pixels as one ``uint8`` tensor and the model normalises each batch on the fly, which is far
faster than one PIL → ``ToTensor`` call per image.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from aezoo.errors import AezooError

DATA_ENV = "AEZOO_DATA"
CACHE_ENV = "AEZOO_CACHE"
OFFLINE_ENV = "AEZOO_OFFLINE"

Batch = dict[str, torch.Tensor]


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Where datasets live: ``explicit`` (``--data-dir``), else ``$AEZOO_DATA``, else a per-user
    cache directory."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("aezoo")) / "data"


def cache_root() -> Path:
    """Where loaders keep what they derive from the data (parsed scores...): ``$AEZOO_CACHE``,
    else a per-user cache directory. Never the data root, which may be shared and read-only."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("aezoo")) / "derived"


def downloads_allowed() -> bool:
    """False when ``$AEZOO_OFFLINE`` is set: loaders use only what is on disk."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("1", "true", "yes", "on")


@dataclasses.dataclass(frozen=True)
class DataOptions:
    """What a dataset loader is asked for."""

    root: Path
    download: bool = True
    #: Seed of the fixed slice of the training set used for validation.
    split_seed: int = 0
    #: Number of validation examples, or None for the dataset's default.
    val_size: int | None = None
    #: Where to cache what is derived from the data (default: :func:`cache_root`).
    cache: Path | None = None
    #: Read folder datasets from disk a batch at a time (:mod:`aezoo.streaming`) instead of
    #: holding them in memory; datasets that cannot stream ignore it.
    stream: bool = False

    def cache_dir(self) -> Path:
        return self.cache if self.cache is not None else cache_root()


@runtime_checkable
class Split(Protocol):
    """A split of a dataset: a length and a way to gather a batch by indices."""

    def __len__(self) -> int: ...

    def batch(self, indices: torch.Tensor) -> Batch: ...


def batch_limit(split: Split, wanted: int) -> int:
    """``wanted``, or less where a split cannot stack more (images of different sizes: 1)."""
    limit = getattr(split, "max_batch_size", None)
    return min(wanted, limit) if limit else wanted


class TensorSplit:
    """A split held in memory as tensors sharing their first dimension."""

    def __init__(self, tensors: Mapping[str, torch.Tensor]) -> None:
        sizes = {len(t) for t in tensors.values()}
        if len(sizes) != 1:
            raise ValueError(f"tensors of a split must share their first dimension, got {sizes}")
        self.tensors = dict(tensors)

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def batch(self, indices: torch.Tensor) -> Batch:
        return {k: t[indices] for k, t in self.tensors.items()}

    def head(self, n: int) -> TensorSplit:
        """The first ``n`` examples."""
        return TensorSplit({k: t[:n] for k, t in self.tensors.items()})


@dataclasses.dataclass
class DataSplits:
    """Train, validation and test splits of one dataset, and what a model needs to know of it.

    ``info`` is free-form and JSON-compatible; image datasets give ``{"kind": "image",
    "shape": [C, H, W], "classes": [...]}``.
    """

    name: str
    train: Split
    val: Split
    test: Split
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: More named splits for evaluation (an image folder's ``all``: every image at full size).
    extra: dict[str, Split] = dataclasses.field(default_factory=dict)

    def split(self, name: str) -> Split:
        """A split by name: train, val, test, or one of ``extra``."""
        splits = {"train": self.train, "val": self.val, "test": self.test, **self.extra}
        if name not in splits:
            raise AezooError(
                f"dataset {self.name!r} has no split {name!r}; choose one of {', '.join(splits)}"
            )
        return splits[name]

    def limited(self, train: int | None = None, eval: int | None = None) -> DataSplits:
        """The first examples of each split (tests, smoke runs)."""

        def cut(split: Split, n: int | None) -> Split:
            if n is None or n >= len(split):
                return split
            if isinstance(split, TensorSplit):
                return split.head(n)
            return _Head(split, n)

        return dataclasses.replace(
            self,
            train=cut(self.train, train),
            val=cut(self.val, eval),
            test=cut(self.test, eval),
            extra={name: cut(split, eval) for name, split in self.extra.items()},
        )


class _Head:
    def __init__(self, split: Split, n: int) -> None:
        self.split, self.n = split, n
        self.max_batch_size = getattr(split, "max_batch_size", None)

    def __len__(self) -> int:
        return self.n

    def batch(self, indices: torch.Tensor) -> Batch:
        return self.split.batch(indices)


def train_val_split(
    tensors: Mapping[str, torch.Tensor], val_size: int, seed: int
) -> tuple[TensorSplit, TensorSplit]:
    """A fixed-seed slice of ``val_size`` examples for validation; the rest for training."""
    n = len(next(iter(tensors.values())))
    if not 0 < val_size < n:
        raise AezooError(f"validation size must be between 1 and {n - 1}, got {val_size}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = order[:val_size].sort().values, order[val_size:].sort().values
    return (
        TensorSplit({k: t[train_idx] for k, t in tensors.items()}),
        TensorSplit({k: t[val_idx] for k, t in tensors.items()}),
    )


def iterate(split: Split, batch_size: int, order: torch.Tensor | None = None, start: int = 0):
    """Yield batches of ``split`` in ``order`` (default: as stored), from batch number ``start``."""
    if order is None:
        order = torch.arange(len(split))
    for lo in range(start * batch_size, len(order), batch_size):
        yield split.batch(order[lo : lo + batch_size])


def first_examples(split: Split, n: int) -> Batch:
    """The first ``n`` examples as one batch, or as many as the split can stack (whole images
    of different sizes: one)."""
    indices = torch.arange(min(n, len(split)))
    return split.batch(indices[: batch_limit(split, len(indices))])


#: Examples of a split that is not held as tensors hashed by :func:`fingerprint` (their batches
#: may be drawn at random: crops; they are drawn under a fixed seed).
FINGERPRINT_EXAMPLES = 512


def fingerprint(data: DataSplits) -> str:
    """A short hash of what a dataset holds (split sizes and contents), so a replay can tell that a
    subset or a re-parsed corpus is not the data a recipe was trained on."""
    import hashlib

    digest = hashlib.sha256()
    splits = {"train": data.train, "val": data.val, "test": data.test, **data.extra}
    with torch.random.fork_rng():
        for name, split in splits.items():
            digest.update(f"{name}:{len(split)};".encode())
            if isinstance(split, TensorSplit):
                batches = [split.tensors]
            elif getattr(split, "rows_on_disk", False):
                _digest_rows(digest, split)
                continue
            else:
                torch.manual_seed(0)
                n = min(len(split), FINGERPRINT_EXAMPLES)
                batches = list(iterate(split, batch_limit(split, 64), torch.arange(n)))
            for batch in batches:
                for key in sorted(batch):
                    tensor = batch[key].contiguous()
                    digest.update(f"{key}{tuple(tensor.shape)}{tensor.dtype}".encode())
                    digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:16]


def _digest_rows(digest: Any, split: Split, chunk: int = 4096) -> None:
    """Hash a split that sets ``rows_on_disk`` (fixed-shape rows read from a file, the same at every
    read) exactly as :func:`fingerprint` hashes the :class:`TensorSplit` holding them, ``chunk``
    rows at a time: a dataset streamed from disk has the fingerprint it has in memory."""
    n = len(split)
    first = split.batch(torch.arange(min(n, 1)))
    for key in sorted(first):
        digest.update(f"{key}{(n, *first[key].shape[1:])}{first[key].dtype}".encode())
        for lo in range(0, n, chunk):
            rows = split.batch(torch.arange(lo, min(n, lo + chunk)))[key].contiguous()
            digest.update(rows.view(torch.uint8).numpy().tobytes())


def describe_data(data: DataSplits) -> dict[str, Any]:
    """``data.info`` with what a run records about the data: split sizes and :func:`fingerprint`."""
    sizes = {"train": len(data.train), "val": len(data.val), "test": len(data.test)}
    return {**data.info, "sizes": sizes, "fingerprint": fingerprint(data)}


#: Stands for the data root in a dataset's argument (``images:{data}/sr/train``), so recipes that
#: name a folder of data work on every machine.
DATA_ROOT_MARK = "{data}"


def to_device(batch: Batch, device: torch.device) -> Batch:
    """``batch`` on ``device``. To a CUDA device, through page-locked (pinned) memory and without
    waiting for the copy: the GPU copies it after the work already queued while this process goes
    on to the next batch (a copy from ordinary memory would wait for that work to finish)."""
    if device.type == "cpu":
        return batch
    if device.type == "cuda":
        return {k: _pinned(v).to(device, non_blocking=True) for k, v in batch.items()}
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def _pinned(tensor: torch.Tensor) -> torch.Tensor:
    """``tensor`` in page-locked memory when it is in the CPU's (as is, elsewhere or pinned already)."""
    if tensor.device.type != "cpu" or tensor.is_pinned():
        return tensor
    return tensor.pin_memory()
