"""``midi:PATH`` streamed (``aezoo train --stream``): the folder is parsed once into a file of windows
in the cache (one byte per step, every usable file's windows in order of name) and each batch reads
just its rows from it, so memory holds a row number per window instead of the windows.

The file is named by what it was parsed from (each MIDI file's path, size and modification time,
the window length and :data:`FORMAT`): a later load of the same folder, a resume, reads it again
without parsing. Splits and deduplication are :func:`aezoo_musicvae.datasets.split_pieces`'s, so a
streamed dataset holds the windows of the in-memory one, in the same order, with its fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo.data import Batch, DataOptions, DataSplits
from aezoo.errors import AezooError
from aezoo.fileio import atomic_path, write_json
from aezoo_musicvae.datasets import (
    SPLITS,
    assign_pieces,
    melody_info,
    require_pieces,
    scan_midi_folder,
)
from aezoo_musicvae.midi import midi_files
from aezoo_musicvae.representation import unique_row_indices

#: Part of every window file's name: bump it when parsing or the file's layout changes.
FORMAT = 1
CACHE_FOLDER = "midi-windows"


class WindowFileSplit:
    """Windows read from a window file by row number: ``{"tokens": int64 [N, steps]}``."""

    #: Fixed rows, the same at every read: fingerprinted as the in-memory tensor they stand for.
    rows_on_disk = True

    def __init__(self, path: Path, steps: int, rows: np.ndarray) -> None:
        self.path, self.steps, self.rows = path, steps, rows

    def __len__(self) -> int:
        return len(self.rows)

    def fetch(self, indices: Sequence[int]) -> torch.Tensor:
        rows = self.rows[np.asarray(indices, dtype=np.int64)]
        if not len(rows):
            return torch.zeros((0, self.steps), dtype=torch.int64)
        try:
            table = np.memmap(self.path, dtype=np.uint8, mode="r").reshape(-1, self.steps)
            windows = table[rows].astype(np.int64)  # a copy: the mapping closes with `table`
        except (OSError, ValueError, IndexError) as exc:
            raise AezooError(
                f"{self.path} (the parsed windows of a streamed MIDI folder) is unreadable ({exc}); "
                "delete it and load the folder again"
            ) from None
        return torch.from_numpy(windows)

    def assemble(self, fetched: torch.Tensor, indices: torch.Tensor) -> Batch:
        return {"tokens": fetched}

    def batch(self, indices: torch.Tensor) -> Batch:
        return self.assemble(self.fetch(indices.tolist()), indices)


def window_file(cache: Path, folder: Path, files: Sequence[Path], bars: int) -> Path:
    """Where the windows of ``files`` (under ``folder``) are kept: named by what they are parsed from."""
    listing = [(str(f.relative_to(folder)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    key = json.dumps([FORMAT, str(folder.resolve()), bars, listing])
    return cache / CACHE_FOLDER / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}-{bars}bar.tokens"


def write_window_file(path: Path, folder: Path, bars: int) -> dict[str, Any]:
    """Parse ``folder`` into ``path`` (a file at a time, never all windows in memory) and its
    description beside it (``.json``: names, windows per file, the summary); the description."""
    names: list[str] = []
    counts: list[int] = []
    with atomic_path(path) as tmp, open(tmp, "wb") as out:

        def keep(name: str, rows: np.ndarray) -> None:
            if rows.min() < 0 or rows.max() > 255:
                raise ValueError(f"{name}: a token outside 0-255 cannot be stored in one byte")
            out.write(np.ascontiguousarray(rows, dtype=np.uint8).tobytes())
            names.append(name)
            counts.append(len(rows))

        summary = scan_midi_folder(str(folder), bars, keep)
    description = {"format": FORMAT, "steps": bars * 16, "names": names, "counts": counts, "summary": summary}
    write_json(path.with_suffix(".json"), description)
    return description


def read_description(path: Path, steps: int) -> dict[str, Any] | None:
    """The description of a window file, or None when either file is missing or they disagree."""
    try:
        description = json.loads(path.with_suffix(".json").read_text())
        size = path.stat().st_size
    except (OSError, ValueError):
        return None
    if description.get("format") != FORMAT or description.get("steps") != steps:
        return None
    return description if sum(description["counts"]) * steps == size else None


def load_window_file(spec: str, argument: str, bars: int, options: DataOptions) -> DataSplits:
    """``midi:PATH`` streamed: the window file (parsed now unless the cache has it) split by piece
    and deduplicated as :func:`aezoo_musicvae.datasets.split_pieces` does in memory."""
    folder = Path(argument).expanduser()
    files = midi_files(folder)
    steps = bars * 16
    path = window_file(options.cache_dir(), folder, files, bars)
    description = read_description(path, steps) or write_window_file(path, folder, bars)
    names, counts, summary = description["names"], description["counts"], description["summary"]
    require_pieces(spec, len(names), bars, summary)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    assignment = assign_pieces(len(names), options.split_seed)
    seen: set[bytes] = set()
    splits: dict[str, WindowFileSplit] = {}
    info: dict[str, Any] = {"pieces": {}, "windows": {}, "duplicates_removed": {}}
    with open(path, "rb") as windows:
        for split in SPLITS:
            kept = []
            for piece in assignment[split]:  # a piece's windows at a time
                windows.seek(int(starts[piece]) * steps)
                table = np.fromfile(windows, np.uint8, counts[piece] * steps).reshape(-1, steps)
                kept.append(starts[piece] + np.asarray(unique_row_indices(table, seen), np.int64))
            rows = np.concatenate(kept) if kept else np.zeros(0, np.int64)
            splits[split] = WindowFileSplit(path, steps, rows)
            info["pieces"][split] = len(assignment[split])
            info["windows"][split] = len(rows)
            info["duplicates_removed"][split] = sum(counts[p] for p in assignment[split]) - len(rows)
    info["test_pieces"] = [names[i] for i in assignment["test"]]
    extra = {"source": str(argument), **summary}
    return DataSplits(spec, splits["train"], splits["val"], splits["test"], melody_info(bars, info, extra))
