"""Melody datasets from music21's corpus: the soprano lines of the Bach chorales, and the folk
tunes of its ABC tune books (read by the ABC 2.1 standard: see :mod:`aezoo_musicvae.abcfiles`).

Each is parsed once and cached as integer arrays (never a pickle), then split by piece as
:mod:`aezoo_musicvae.datasets` describes.
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aezoo.data import DataOptions, DataSplits
from aezoo.errors import AezooError
from aezoo.fileio import atomic_path
from aezoo_musicvae.abcfiles import accidental_changes, read_abc_file, tunes_of
from aezoo_musicvae.datasets import _progress, _say, _splits, melody_pieces
from aezoo_musicvae.representation import STEPS_PER_QUARTER, Note

#: Part of every cache's key: bump it when parsing changes (2: ABC read by the 2.1 standard).
CACHE_VERSION = 2
CHORALE_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn")

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


def check_meters(part: Any, meters: frozenset[str]) -> None:
    """ValueError with the reason unless the part is entirely in ``meters``."""
    from music21 import meter

    signatures = {ts.ratioString for ts in part.recurse().getElementsByClass(meter.TimeSignature)}
    if not signatures or not signatures <= meters:
        raise ValueError(
            f"not in {' or '.join(sorted(meters))} ({', '.join(sorted(signatures)) or 'no time signature'})"
        )


def part_notes(part: Any, meters: frozenset[str]) -> list[Note]:
    """The notes of one music21 part in steps, bars aligned to its bar lines (a pickup is shifted to
    the end of bar 0; chords keep their highest pitch). Raises ValueError with the reason when the
    part is not entirely in ``meters`` (each a bar of four quarter notes) or has no notes."""
    from music21 import stream

    check_meters(part, meters)
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
    pieces, kept_names, stats = melody_pieces(names, melodies, bars)
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


def load_bach_chorales_4bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_bach_chorales(options, argument, bars=4)


def load_bach_chorales_8bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_bach_chorales(options, argument, bars=8)


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
    check_meters(part, FOLK_METERS)  # before expanding: most tunes are in other meters
    with contextlib.suppress(repeat.ExpanderException):
        part = part.expandRepeats()
    return part_notes(part, FOLK_METERS)


def folk_tunes(path: Path) -> Pieces:
    """Every tune of one ABC file (a file may hold a whole book of them), read by the ABC 2.1
    standard: an accidental lasts to the bar line."""
    try:
        tunes = tunes_of(read_abc_file(path))
    except Exception as exc:  # music21 raises many kinds on a malformed file
        return [(f"{path.parent.name}/{path.name}", f"unreadable ({type(exc).__name__})")]
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


def folk_accidental_changes(paths: Sequence[Path] | None = None) -> dict[str, dict[str, int]]:
    """Per tune book, how many notes of the folk tunes change pitch between music21's default
    reading and the ABC 2.1 reading used here (:func:`aezoo_musicvae.abcfiles.accidental_changes`;
    ``*_in_meters``: the tunes in 4/4 or 2/2). Parses every file twice (about 12 minutes)."""
    _require_music21("folk-tunes")
    paths = list(paths) if paths is not None else folk_paths()
    return accidental_changes(paths, FOLK_METERS, progress=lambda items: _progress(items, "ABC files"))


def load_folk_tunes(options: DataOptions, argument: str | None = None, bars: int = 2) -> DataSplits:
    names, melodies, skipped = folk_melodies(options.cache_dir())
    extra = {
        "source": "music21 corpus: " + ", ".join(FOLK_COLLECTIONS) + " (ABC 2.1, repeats written out)",
        "skipped_pieces": skipped,
    }
    dataset = "folk-tunes" if bars == 2 else f"folk-tunes-{bars}bar"
    return _corpus_splits(dataset, names, melodies, bars, options.split_seed, extra)


def load_folk_tunes_4bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_folk_tunes(options, argument, bars=4)


def load_folk_tunes_8bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_folk_tunes(options, argument, bars=8)


def load_folk_tunes_16bar(options: DataOptions, argument: str | None = None) -> DataSplits:
    return load_folk_tunes(options, argument, bars=16)
