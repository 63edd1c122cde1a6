"""Melody windows in one file: a parsed melody dataset's splits saved as a compressed ``.npz`` (one
byte per step, never a pickle) and read back as the ``melody-windows:PATH`` dataset.

Parsing the folk tune books takes minutes and needs music21 and its corpus; the file needs neither,
so a parsed dataset can be carried to another machine (a GPU) and trained on there with the same
windows in the same splits. The file holds each split (``train``, ``val``, ``test`` and any extra
ones) and the original dataset's name and ``info``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import torch

from aezoo.data import DataOptions, DataSplits
from aezoo.errors import AezooError
from aezoo.fileio import atomic_path
from aezoo_musicvae.datasets import tensor_split
from aezoo_musicvae.representation import NUM_CLASSES

#: Written into every file; bump it when the layout changes.
FORMAT = 1
SPLIT_PREFIX = "split-"


def _rows(split: object) -> np.ndarray:
    """Every window of a split as ``uint8 [K, steps]``."""
    tokens = split.batch(torch.arange(len(split)))["tokens"]  # type: ignore[attr-defined]
    return tokens.numpy().astype(np.uint8)


def save_window_file(data: DataSplits, path: str | Path) -> Path:
    """Write the windows of every split of a melody dataset to ``path`` (atomically)."""
    if data.info.get("kind") != "melody":
        raise AezooError(f"{data.name} is not a melody dataset; only melody windows can be saved")
    splits = {"train": data.train, "val": data.val, "test": data.test, **data.extra}
    arrays = {f"{SPLIT_PREFIX}{name}": _rows(split) for name, split in splits.items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            format=np.array(FORMAT),
            dataset=np.array(data.name),
            info=np.array(json.dumps(data.info)),
            **arrays,
        )
    return path


def load_window_file(options: DataOptions, argument: str | None = None) -> DataSplits:
    """``melody-windows:PATH``: the splits saved by :func:`save_window_file`."""
    assert argument is not None  # the registry insists on it
    path = Path(argument).expanduser()
    spec = f"melody-windows:{argument}"
    if not path.is_file():
        raise AezooError(f"{spec}: no such file; write one with aezoo_musicvae.windowfile.save_window_file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if int(npz["format"]) != FORMAT:
                raise AezooError(f"{spec}: written in format {int(npz['format'])}; this aezoo reads {FORMAT}")
            info = json.loads(str(npz["info"]))
            source = str(npz["dataset"])
            splits = {k.removeprefix(SPLIT_PREFIX): npz[k] for k in npz.files if k.startswith(SPLIT_PREFIX)}
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise AezooError(f"{spec} is not a melody window file ({type(exc).__name__}: {exc})") from None
    steps = int(info.get("steps", 0))
    missing = [name for name in ("train", "val", "test") if name not in splits]
    if missing:
        raise AezooError(f"{spec} is not a melody window file (no {', '.join(missing)} split)")
    for name, rows in splits.items():
        if rows.ndim != 2 or rows.shape[1] != steps or (rows.size and int(rows.max()) >= NUM_CLASSES):
            raise AezooError(
                f"{spec}: split {name!r} is not {steps}-step windows of classes 0…{NUM_CLASSES - 1}"
            )
    tensors = {name: tensor_split(rows) for name, rows in splits.items()}
    info = {**info, "windows_file": str(argument), "saved_from": source}
    extra = {name: split for name, split in tensors.items() if name not in ("train", "val", "test")}
    return DataSplits(spec, tensors["train"], tensors["val"], tensors["test"], info, extra)
