"""Splitting melody datasets by piece, and the dataset of a folder of MIDI files (the corpus
datasets are in :mod:`aezoo_musicvae.corpus`, the combined one in :mod:`aezoo_musicvae.melodies`).

All are split by piece (80 % train, 10 % validation, 10 % test of the pieces, by a seeded
shuffle), never by window. Windows are then deduplicated across the whole dataset: each distinct
window is kept once, in the first split that has it (train, then validation, then test), so
validation and test hold only windows the model never trained on. A batch is
``{"tokens": int64 [N, bars * 16]}`` (classes of :mod:`aezoo_musicvae.representation`).
"""

from __future__ import annotations

import collections
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo.data import DataOptions, DataSplits, TensorSplit
from aezoo.errors import AezooError
from aezoo_musicvae.representation import Note, WindowStats, unique_rows, windows

VAL_FRACTION = 0.1
TEST_FRACTION = 0.1
MIN_PIECES = 3
SPLITS = ("train", "val", "test")


def _say(line: str) -> None:
    print(f"aezoo: {line}", file=sys.stderr)


def _progress(items: Sequence[Any], desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file", disable=None, leave=False, file=sys.stderr)


# -- splitting -------------------------------------------------------------------------------------


def assign_pieces(n: int, seed: int = 0) -> dict[str, list[int]]:
    """Indices of the pieces in each split (sorted): a seeded shuffle of ``n`` pieces, the first
    10 % (at least one) for test, the next 10 % for validation, the rest for training."""
    if n < MIN_PIECES:
        raise ValueError(f"need at least {MIN_PIECES} pieces, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, round(n * TEST_FRACTION))
    n_val = max(1, round(n * VAL_FRACTION))
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def split_rows(pieces: Sequence[np.ndarray], indices: Sequence[int], steps: int) -> np.ndarray:
    """The windows of the chosen pieces, in order, as one ``[K, steps]`` array."""
    chosen = [pieces[i] for i in indices]
    return np.concatenate(chosen) if chosen else np.zeros((0, steps), np.int64)


def tensor_split(rows: np.ndarray) -> TensorSplit:
    """Windows as a split of ``{"tokens": int64 [K, steps]}``."""
    return TensorSplit({"tokens": torch.from_numpy(np.ascontiguousarray(rows, dtype=np.int64))})


def split_pieces(
    pieces: Sequence[np.ndarray], names: Sequence[str], bars: int, seed: int = 0
) -> tuple[dict[str, TensorSplit], dict[str, Any]]:
    """Windows of each piece → train/val/test splits by piece, deduplicated across the dataset."""
    assignment = assign_pieces(len(pieces), seed)
    seen: set[bytes] = set()
    splits: dict[str, TensorSplit] = {}
    info: dict[str, Any] = {"pieces": {}, "windows": {}, "duplicates_removed": {}}
    for split in SPLITS:
        rows = split_rows(pieces, assignment[split], bars * 16)
        kept = unique_rows(rows, seen)
        splits[split] = tensor_split(kept)
        info["pieces"][split] = len(assignment[split])
        info["windows"][split] = len(kept)
        info["duplicates_removed"][split] = len(rows) - len(kept)
    info["test_pieces"] = [names[i] for i in assignment["test"]]
    return splits, info


def check_pieces(name: str, count: int, bars: int) -> None:
    """Too few pieces to hold whole ones out is a user error."""
    if count < MIN_PIECES:
        raise AezooError(
            f"{name}: only {count} pieces hold a {bars}-bar melody in 4/4; at least {MIN_PIECES} are "
            "needed so whole pieces can be held out for validation and test"
        )


def melody_pieces(
    names: Sequence[str], melodies: Sequence[Sequence[Note]], bars: int
) -> tuple[list[np.ndarray], list[str], WindowStats]:
    """The windows of each melody that has any, their names, and what extraction dropped."""
    stats = WindowStats()
    pieces, kept_names = [], []
    for name, notes in zip(names, melodies, strict=True):
        rows = windows(notes, bars, stats=stats)
        if len(rows):
            pieces.append(rows)
            kept_names.append(name)
    return pieces, kept_names, stats


def _splits(
    name: str, pieces: list[np.ndarray], names: list[str], bars: int, seed: int, extra: dict[str, Any]
) -> DataSplits:
    check_pieces(name, len(pieces), bars)
    splits, info = split_pieces(pieces, names, bars, seed)
    return DataSplits(name, splits["train"], splits["val"], splits["test"], melody_info(bars, info, extra))


# -- a folder of MIDI files ------------------------------------------------------------------------


def scan_midi_folder(folder: str, bars: int, keep: Callable[[str, np.ndarray], None]) -> dict[str, Any]:
    """Read every MIDI file under ``folder``: ``keep(name, windows)`` for each file that holds a
    ``bars``-bar melody (its windows, ``int64 [K, bars * 16]``), in order of name; a summary of what
    was dropped and why (an unreadable file is dropped and counted, not an error)."""
    from aezoo_musicvae.midi import UnusableMidi, midi_files, read_notes

    files = midi_files(folder)
    stats = WindowStats()
    dropped: collections.Counter = collections.Counter()
    kept = 0
    for path in _progress(files, "MIDI files"):
        try:
            instruments = read_notes(path)
        except UnusableMidi as exc:
            dropped[str(exc).split(" (")[0]] += 1
            continue
        rows = [windows(notes, bars, stats=stats) for notes in instruments]
        table = np.concatenate(rows)
        if not len(table):
            dropped[f"no {bars}-bar melody"] += 1
            continue
        keep(str(path.relative_to(Path(folder).expanduser())), table)
        kept += 1
    summary: dict[str, Any] = {"files": len(files), "files_kept": kept, "files_dropped": dict(dropped)}
    summary["extraction"] = stats.to_dict()
    return summary


def read_midi_folder(folder: str, bars: int) -> tuple[list[np.ndarray], list[str], dict[str, Any]]:
    """Windows of every usable MIDI file under ``folder``, and a summary of what was dropped."""
    pieces: list[np.ndarray] = []
    names: list[str] = []

    def keep(name: str, rows: np.ndarray) -> None:
        pieces.append(rows)
        names.append(name)

    summary = scan_midi_folder(folder, bars, keep)
    return pieces, names, summary


def require_pieces(spec: str, count: int, bars: int, summary: dict[str, Any]) -> None:
    """Too few files with a melody to hold whole pieces out is a user error (naming what was dropped)."""
    if count < MIN_PIECES:
        dropped = ", ".join(f"{n} {why}" for why, n in summary["files_dropped"].items()) or "none"
        raise AezooError(
            f"{spec}: {count} of {summary['files']} MIDI files hold a {bars}-bar melody in 4/4; "
            f"at least {MIN_PIECES} are needed so whole pieces can be held out for validation and test "
            f"(dropped: {dropped})"
        )


def melody_info(bars: int, split_info: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """A melody dataset's ``info``: its windows, its splits (:func:`split_pieces`) and ``extra``."""
    return {"kind": "melody", "bars": bars, "steps": bars * 16, "classes": 90, **split_info, **extra}


def _describe_midi(spec: str, data: DataSplits) -> str:
    info = data.info
    dropped = ", ".join(f"{n} {why}" for why, n in sorted(info["files_dropped"].items())) or "none"
    ext = info["extraction"]
    windows_dropped = dict(ext["dropped"])
    duplicates = sum(info["duplicates_removed"].values())
    if duplicates:
        windows_dropped["duplicates"] = duplicates
    w_text = ", ".join(f"{n} {why}" for why, n in windows_dropped.items()) or "none"
    kept = info["windows"]
    return (
        f"{spec}: {info['files']} MIDI files, {info['files_kept']} kept; dropped: {dropped}. "
        f"{sum(kept.values())} windows of {info['bars']} bars ({kept['train']} train / {kept['val']} val / "
        f"{kept['test']} test); windows dropped: {w_text}; "
        f"{ext['notes_transposed_by_octaves']} notes transposed by octaves into 21-108"
    )


def load_midi_folder(options: DataOptions, argument: str | None = None, bars: int = 2) -> DataSplits:
    """``midi:PATH``: held in memory, or with ``options.stream`` read from a file of windows a batch
    at a time (:mod:`aezoo_musicvae.streamed`); the same windows in the same splits either way."""
    assert argument is not None  # the registry insists on it
    spec = f"midi:{argument}" if bars == 2 else f"midi-{bars}bar:{argument}"
    if options.stream:
        from aezoo_musicvae.streamed import load_window_file

        data = load_window_file(spec, argument, bars, options)
    else:
        pieces, names, summary = read_midi_folder(argument, bars)
        require_pieces(spec, len(pieces), bars, summary)
        data = _splits(spec, pieces, names, bars, options.split_seed, {"source": str(argument), **summary})
    _say(_describe_midi(spec, data))
    return data


def load_midi_folder_4bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_midi_folder(options, argument, bars=4)


def load_midi_folder_8bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_midi_folder(options, argument, bars=8)


def load_midi_folder_16bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_midi_folder(options, argument, bars=16)
