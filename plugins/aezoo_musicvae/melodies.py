"""``melodies``: every melody source of the plugin in one dataset (the Bach chorales' soprano lines
and the folk tunes), with each source's held-out pieces kept as their own splits.

Each source is split by piece exactly as it is on its own (the same seeded shuffle of its pieces),
so a chorale or tune held out of ``bach-chorales`` or ``folk-tunes`` is held out here too. The
splits are then concatenated and deduplicated across the whole dataset: train (chorales first),
then validation, then test, each window kept once, in the first split that has it. ``extra``
holds each source's share of the held-out splits, ``val-SOURCE`` (deduplicated against the
combined training split) and ``test-SOURCE`` (against the combined training and validation
splits), so ``aezoo evaluate RUN --split test-folk-tunes`` scores one source.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aezoo.data import DataOptions, DataSplits, TensorSplit
from aezoo_musicvae.corpus import FOLK_COLLECTIONS, chorale_melodies, folk_melodies
from aezoo_musicvae.datasets import (
    SPLITS,
    assign_pieces,
    check_pieces,
    melody_pieces,
    split_rows,
    tensor_split,
)
from aezoo_musicvae.representation import Note, unique_rows

#: The sources, in the order their windows are combined.
SOURCES = ("bach-chorales", "folk-tunes")
SOURCE_DESCRIPTIONS = {
    "bach-chorales": "music21 corpus, soprano parts of the Bach chorales",
    "folk-tunes": "music21 corpus: " + ", ".join(FOLK_COLLECTIONS) + " (ABC 2.1, repeats written out)",
}

#: A source's parsed melodies: ``(names, notes, skipped reasons)``.
Melodies = tuple[list[str], list[list[Note]], dict[str, int]]


def source_melodies(root: Path) -> dict[str, Melodies]:
    """The melodies of every source in :data:`SOURCES`, parsed once and cached under ``root``."""
    return {"bach-chorales": chorale_melodies(root), "folk-tunes": folk_melodies(root)}


def combine_sources(dataset: str, sources: Mapping[str, Melodies], bars: int, seed: int = 0) -> DataSplits:
    """The combined dataset of ``sources`` (``{name: melodies}``, combined in that order), each split
    by piece with ``seed`` as on its own; ``extra`` has ``val-NAME`` and ``test-NAME`` of each."""
    steps = bars * 16
    rows: dict[str, dict[str, np.ndarray]] = {}
    per_source: dict[str, dict[str, Any]] = {}
    test_pieces: list[str] = []
    for name, (names, melodies, skipped) in sources.items():
        pieces, kept_names, stats = melody_pieces(names, melodies, bars)
        check_pieces(f"{dataset} ({name})", len(pieces), bars)
        assignment = assign_pieces(len(pieces), seed)
        rows[name] = {split: split_rows(pieces, assignment[split], steps) for split in SPLITS}
        per_source[name] = {
            "source": SOURCE_DESCRIPTIONS.get(name, name),
            "pieces": {split: len(assignment[split]) for split in SPLITS},
            "windows_before_deduplication": {split: len(rows[name][split]) for split in SPLITS},
            "windows": {},
            "skipped_pieces": skipped,
            "extraction": stats.to_dict(),
        }
        test_pieces += [kept_names[i] for i in assignment["test"]]

    seen: set[bytes] = set()  # every window of the combined splits so far
    combined: dict[str, TensorSplit] = {}
    extra: dict[str, TensorSplit] = {}
    info: dict[str, Any] = {"pieces": {}, "windows": {}, "duplicates_removed": {}}
    for split in SPLITS:
        earlier = set(seen)  # the combined splits before this one
        parts = []
        for name in sources:
            own = unique_rows(rows[name][split], set(earlier)) if split != "train" else rows[name][split]
            kept = unique_rows(own, seen)  # across sources too: each window once in the split
            parts.append(kept)
            if split == "train":
                per_source[name]["windows"][split] = len(kept)
            else:
                extra[f"{split}-{name}"] = tensor_split(own)
                per_source[name]["windows"][split] = len(own)
        table = np.concatenate(parts) if parts else np.zeros((0, steps), np.int64)
        combined[split] = tensor_split(table)
        info["pieces"][split] = sum(s["pieces"][split] for s in per_source.values())
        info["windows"][split] = len(table)
        info["duplicates_removed"][split] = sum(len(r[split]) for r in rows.values()) - len(table)
    info = {
        "kind": "melody",
        "bars": bars,
        "steps": steps,
        "classes": 90,
        "source": " + ".join(sources),
        "sources": per_source,
        **info,
        "extra_splits": {key: len(split) for key, split in extra.items()},
        "test_pieces": test_pieces,
    }
    return DataSplits(dataset, combined["train"], combined["val"], combined["test"], info, extra)


def load_melodies(options: DataOptions, argument: str | None = None, bars: int = 2) -> DataSplits:
    dataset = "melodies" if bars == 2 else f"melodies-{bars}bar"
    return combine_sources(dataset, source_melodies(options.cache_dir()), bars, options.split_seed)


def load_melodies_4bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_melodies(options, argument, bars=4)


def load_melodies_8bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_melodies(options, argument, bars=8)


def load_melodies_16bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_melodies(options, argument, bars=16)
