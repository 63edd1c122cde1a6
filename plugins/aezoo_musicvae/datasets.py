"""Melody datasets: Bach chorale soprano lines and folk tunes (music21's corpus), and a folder of
MIDI files.

All are split by piece (80 % train, 10 % validation, 10 % test of the pieces, by a seeded
shuffle), never by window. Windows are then deduplicated across the whole dataset: each distinct
window is kept once, in the first split that has it (train, then validation, then test), so
validation and test hold only windows the model never trained on. A batch is
``{"tokens": int64 [N, bars * 16]}`` (classes of :mod:`aezoo_musicvae.representation`).
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo.data import DataOptions, DataSplits, TensorSplit
from aezoo.errors import AezooError
from aezoo.fileio import atomic_path
from aezoo_musicvae.representation import STEPS_PER_QUARTER, Note, WindowStats, unique_rows, windows

CACHE_VERSION = 1
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1
MIN_PIECES = 3
CHORALE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")


def _say(line: str) -> None:
    print(f"aezoo: {line}", file=sys.stderr)


def _progress(items: Sequence[Any], desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(items, desc=desc, unit="file", disable=None, leave=False, file=sys.stderr)


# -- splitting -------------------------------------------------------------------------------------


def split_pieces(
    pieces: Sequence[np.ndarray], names: Sequence[str], bars: int, seed: int = 0
) -> tuple[dict[str, TensorSplit], dict[str, Any]]:
    """Windows of each piece → train/val/test splits by piece, deduplicated across the dataset."""
    n = len(pieces)
    if n < MIN_PIECES:
        raise ValueError(f"need at least {MIN_PIECES} pieces, got {n}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    n_test = max(1, round(n * TEST_FRACTION))
    n_val = max(1, round(n * VAL_FRACTION))
    assignment = {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }
    steps = bars * 16
    seen: set[bytes] = set()
    splits: dict[str, TensorSplit] = {}
    info: dict[str, Any] = {"pieces": {}, "windows": {}, "duplicates_removed": {}}
    for split in ("train", "val", "test"):
        chosen = [pieces[i] for i in assignment[split]]
        rows = np.concatenate(chosen) if chosen else np.zeros((0, steps), np.int64)
        kept = unique_rows(rows, seen)
        splits[split] = TensorSplit({"tokens": torch.from_numpy(np.ascontiguousarray(kept, dtype=np.int64))})
        info["pieces"][split] = len(chosen)
        info["windows"][split] = len(kept)
        info["duplicates_removed"][split] = len(rows) - len(kept)
    info["test_pieces"] = [names[i] for i in assignment["test"]]
    return splits, info


def _splits(
    name: str, pieces: list[np.ndarray], names: list[str], bars: int, seed: int, extra: dict[str, Any]
) -> DataSplits:
    if len(pieces) < MIN_PIECES:
        raise AezooError(
            f"{name}: only {len(pieces)} pieces hold a {bars}-bar melody in 4/4; at least {MIN_PIECES} are "
            "needed so whole pieces can be held out for validation and test"
        )
    splits, info = split_pieces(pieces, names, bars, seed)
    info = {"kind": "melody", "bars": bars, "steps": bars * 16, "classes": 90, **info, **extra}
    return DataSplits(name, splits["train"], splits["val"], splits["test"], info)


# -- scores from music21's corpus ------------------------------------------------------------------

#: Pieces of one corpus file: ``(name, notes)``, or ``(name, reason)`` for a piece that is skipped.
Pieces = list[tuple[str, list[Note] | str]]


def _require_music21(dataset: str) -> None:
    try:
        import music21  # noqa: F401
    except ImportError:
        raise AezooError(
            f"{dataset} reads scores shipped with music21, which is not installed; "
            "pip install 'aezoo[music]' (or music21)"
        ) from None


def part_notes(part: Any, meters: frozenset[str]) -> list[Note]:
    """The notes of one music21 part in steps, bars aligned to its bar lines (a pickup is shifted to
    the end of bar 0; chords keep their highest pitch). Raises ValueError with the reason when the
    part is not entirely in ``meters`` (each a bar of four quarter notes) or has no notes."""
    from music21 import meter, stream

    signatures = {ts.ratioString for ts in part.recurse().getElementsByClass(meter.TimeSignature)}
    if not signatures or not signatures <= meters:
        raise ValueError(
            f"not in {' or '.join(sorted(meters))} ({', '.join(sorted(signatures)) or 'no time signature'})"
        )
    measures = list(part.getElementsByClass(stream.Measure))
    full = next((m for m in measures if m.duration.quarterLength == 4), None)
    shift = (-float(full.offset)) % 4 if full is not None else 0.0
    notes = []
    for element in part.stripTies().flatten().notes:
        length = float(element.quarterLength)
        if length <= 0:
            continue  # grace notes
        pitch = max(p.midi for p in element.pitches)
        start = round((float(element.offset) + shift) * STEPS_PER_QUARTER)
        end = round((float(element.offset) + shift + length) * STEPS_PER_QUARTER)
        notes.append(Note(start, max(end, start + 1), pitch))
    if not notes:
        raise ValueError("no notes")
    return notes


def _parse_score(path: str | Path) -> Any:
    from music21 import converter

    # forceSource/storePickle: never read or write music21's pickle cache.
    return converter.parseFile(str(path), forceSource=True, storePickle=False)


def _cache_file(root: Path, dataset: str, stem: str, names: Sequence[str]) -> Path:
    import music21

    key = hashlib.sha256(json.dumps([CACHE_VERSION, music21.__version__, list(names)]).encode()).hexdigest()[
        :16
    ]
    return root / dataset / f"{stem}-{key}.npz"


def corpus_melodies(
    cache: Path, paths: Sequence[Path], parse: Callable[[Path], Pieces]
) -> tuple[list[str], list[list[Note]], dict[str, int]]:
    """``(names, notes, skipped reasons)`` of the pieces that ``parse`` finds in ``paths``, parsed
    once and kept in ``cache``: an ``.npz`` of integer arrays and strings (never a pickle)."""
    if cache.exists():
        try:
            with np.load(cache, allow_pickle=False) as data:
                names = [str(s) for s in data["names"]]
                counts, table = data["counts"], data["notes"]
                skipped = json.loads(str(data["skipped"]))
            bounds = np.concatenate([[0], np.cumsum(counts)])
            melodies = [
                [Note(int(s), int(e), int(p)) for s, e, p in table[bounds[i] : bounds[i + 1]]]
                for i in range(len(names))
            ]
            return names, melodies, skipped
        except (OSError, KeyError, ValueError) as exc:
            _say(f"{cache} is unreadable ({exc}); parsing the scores again")
    _say(f"parsing {len(paths)} score files from music21's corpus (once: cached in {cache.parent})")
    names, melodies, skipped = [], [], collections.Counter()
    for path in _progress(paths, "scores"):
        for name, notes in parse(path):
            if isinstance(notes, str):
                skipped[notes.split(" (")[0]] += 1
                continue
            names.append(name)
            melodies.append(notes)
    table = np.array([[n.start, n.end, n.pitch] for m in melodies for n in m], dtype=np.int32).reshape(-1, 3)
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(
            f,
            names=np.array(names, dtype=str),
            counts=np.array([len(m) for m in melodies], dtype=np.int64),
            notes=table,
            skipped=np.array(json.dumps(dict(skipped))),
        )
    return names, melodies, dict(skipped)


def _corpus_splits(
    dataset: str,
    names: list[str],
    melodies: list[list[Note]],
    bars: int,
    seed: int,
    extra: dict[str, Any],
) -> DataSplits:
    stats = WindowStats()
    pieces, kept_names = [], []
    for name, notes in zip(names, melodies, strict=True):
        rows = windows(notes, bars, stats=stats)
        if len(rows):
            pieces.append(rows)
            kept_names.append(name)
    return _splits(dataset, pieces, kept_names, bars, seed, {**extra, "extraction": stats.to_dict()})


# -- Bach chorales ---------------------------------------------------------------------------------


def chorale_paths() -> list[Path]:
    """The Bach chorale scores inside music21's corpus, sorted."""
    from music21 import corpus

    paths = corpus.getComposer("bach")
    return sorted(Path(p) for p in paths if Path(p).suffix.lower() in CHORALE_SUFFIXES)


def soprano_notes(path: str | Path) -> list[Note]:
    """The soprano line of a chorale score in steps, bars aligned to the score's bar lines (a
    pickup is shifted to the end of bar 0). Raises ValueError with the reason when the piece has
    no soprano part or is not entirely in 4/4."""
    score = _parse_score(path)
    parts = [p for p in score.parts if "soprano" in (p.partName or "").lower()]
    if not parts:
        raise ValueError("no soprano part")
    return part_notes(parts[0], frozenset({"4/4"}))


def chorale_melodies(
    root: Path, paths: Sequence[Path] | None = None, parse: Callable[[Path], list[Note]] = soprano_notes
) -> tuple[list[str], list[list[Note]], dict[str, int]]:
    """``(names, soprano notes, skipped reasons)`` of the chorales, parsed once and cached under
    ``root/bach-chorales/`` (``root``: the per-user cache, see :func:`aezoo.data.cache_root`)."""
    _require_music21("bach-chorales")
    paths = list(paths) if paths is not None else chorale_paths()

    def one_piece(path: Path) -> Pieces:
        try:
            return [(path.name, parse(path))]
        except ValueError as exc:
            return [(path.name, str(exc))]

    cache = _cache_file(root, "bach-chorales", "soprano", [p.name for p in paths])
    return corpus_melodies(cache, paths, one_piece)


def load_bach_chorales(options: DataOptions, argument: str | None = None, bars: int = 2) -> DataSplits:
    names, melodies, skipped = chorale_melodies(options.cache_dir())
    extra = {"source": "music21 corpus, soprano parts", "skipped_pieces": skipped}
    dataset = "bach-chorales" if bars == 2 else f"bach-chorales-{bars}bar"
    return _corpus_splits(dataset, names, melodies, bars, options.split_seed, extra)


def load_bach_chorales_16bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_bach_chorales(options, argument, bars=16)


# -- folk and fiddle tunes -------------------------------------------------------------------------

#: The tune collections of music21's corpus (ABC files, one melody line per tune): Ryan's Mammoth
#: Collection (1883), O'Neill's Music of Ireland (1903, "1850 melodies") and the Nottingham Music
#: Database.
FOLK_COLLECTIONS = ("ryansMammoth", "oneills1850", "nottingham-dataset")
#: Meters whose bar is four quarter notes, so 16 sixteenth-note steps: common and cut time.
FOLK_METERS = frozenset({"4/4", "2/2"})


def folk_paths() -> list[Path]:
    """The ABC files of :data:`FOLK_COLLECTIONS` inside music21's corpus, sorted."""
    from music21 import corpus

    paths = [Path(p) for p in corpus.getPaths(fileExtensions=("abc",))]
    return sorted(p for p in paths if p.parent.name in FOLK_COLLECTIONS)


def tune_notes(score: Any) -> list[Note]:
    """The melody of one tune with its repeats written out (a tune whose repeat marks music21
    cannot expand is read as written). ValueError when it is not in 4/4 or 2/2."""
    from music21 import repeat

    part = score.parts[0] if score.parts else score
    with contextlib.suppress(repeat.ExpanderException):
        part = part.expandRepeats()
    return part_notes(part, FOLK_METERS)


def folk_tunes(path: Path) -> Pieces:
    """Every tune of one ABC file (a file may hold a whole book of them)."""
    from music21 import stream

    try:
        score = _parse_score(path)
    except Exception as exc:  # music21 raises many kinds on a malformed file
        return [(f"{path.parent.name}/{path.name}", f"unreadable ({type(exc).__name__})")]
    tunes = list(score.scores) if isinstance(score, stream.Opus) else [score]
    pieces: Pieces = []
    for number, tune in enumerate(tunes):
        name = f"{path.parent.name}/{path.name}" + (f"#{number}" if len(tunes) > 1 else "")
        try:
            pieces.append((name, tune_notes(tune)))
        except ValueError as exc:
            pieces.append((name, str(exc)))
    return pieces


def folk_melodies(
    root: Path, paths: Sequence[Path] | None = None
) -> tuple[list[str], list[list[Note]], dict[str, int]]:
    """``(names, notes, skipped reasons)`` of the folk tunes, parsed once (about 6 minutes) and
    cached under ``root/folk-tunes/``."""
    _require_music21("folk-tunes")
    paths = list(paths) if paths is not None else folk_paths()
    names = [f"{p.parent.name}/{p.name}" for p in paths]
    return corpus_melodies(_cache_file(root, "folk-tunes", "tunes", names), paths, folk_tunes)


def load_folk_tunes(options: DataOptions, argument: str | None = None, bars: int = 2) -> DataSplits:
    names, melodies, skipped = folk_melodies(options.cache_dir())
    extra = {
        "source": "music21 corpus: " + ", ".join(FOLK_COLLECTIONS) + " (repeats written out)",
        "skipped_pieces": skipped,
    }
    dataset = "folk-tunes" if bars == 2 else f"folk-tunes-{bars}bar"
    return _corpus_splits(dataset, names, melodies, bars, options.split_seed, extra)


def load_folk_tunes_16bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_folk_tunes(options, argument, bars=16)


# -- a folder of MIDI files ------------------------------------------------------------------------


def read_midi_folder(folder: str, bars: int) -> tuple[list[np.ndarray], list[str], dict[str, Any]]:
    """Windows of every usable MIDI file under ``folder``, and a summary of what was dropped."""
    from aezoo_musicvae.midi import UnusableMidi, midi_files, read_notes

    files = midi_files(folder)
    stats = WindowStats()
    dropped: collections.Counter = collections.Counter()
    pieces, names = [], []
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
        pieces.append(table)
        names.append(str(path.relative_to(Path(folder).expanduser())))
    summary = {"files": len(files), "files_kept": len(pieces), "files_dropped": dict(dropped)}
    summary["extraction"] = stats.to_dict()
    return pieces, names, summary


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
    assert argument is not None  # the registry insists on it
    pieces, names, summary = read_midi_folder(argument, bars)
    spec = f"midi:{argument}" if bars == 2 else f"midi-{bars}bar:{argument}"
    if len(pieces) < MIN_PIECES:
        dropped = ", ".join(f"{n} {why}" for why, n in summary["files_dropped"].items()) or "none"
        raise AezooError(
            f"{spec}: {len(pieces)} of {summary['files']} MIDI files hold a {bars}-bar melody in 4/4; "
            f"at least {MIN_PIECES} are needed so whole pieces can be held out for validation and test "
            f"(dropped: {dropped})"
        )
    data = _splits(spec, pieces, names, bars, options.split_seed, {"source": str(argument), **summary})
    _say(_describe_midi(spec, data))
    return data


def load_midi_folder_16bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_midi_folder(options, argument, bars=16)
