"""ABC tune books read by the ABC 2.1 standard, and how far that reading differs from music21's
default.

music21 reads ABC as version 1.3 unless the text declares another in its first 100 characters
(``%abc-2.1``; ``ABCFile.readstr``): an accidental then applies to its own note only. Under 2.0 and
later (``ABCHandler._accidentalPropagation``) it lasts to the bar line, for every note of the same
letter in any octave (music21's default, ``%%propagate-accidentals pitch``; a file's own
``%%propagate-accidentals`` directive is honoured). The tune books of music21's corpus (Ryan's,
O'Neill's, Nottingham) are written the 2.1 way but declare no version, so they are read here with
the version given explicitly. (An ``I:abc-version`` field sets the version only after the notes
are read, too late for accidentals.)
"""

from __future__ import annotations

import collections
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: The standard the tune books follow: an accidental lasts to the bar line.
ABC_2_1 = (2, 1, 0)
#: music21's default reading: an accidental applies to one note.
ABC_1_3 = (1, 3, 0)


def read_abc(text: str, version: tuple[int, int, int] = ABC_2_1) -> Any:
    """ABC ``text`` as a music21 ``Score`` (one tune) or ``Opus`` (a book of tunes with ``X:``
    numbers), read as ABC ``version`` (:data:`ABC_1_3` reads it as music21's parser does by
    default, honouring a ``%abc-X.Y`` line). Never touches music21's pickle cache."""
    from music21 import abcFormat, stream

    handler = abcFormat.ABCFile(abcVersion=version).readstr(text)
    if handler.definesReferenceNumbers():
        return abcFormat.translate.abcToStreamOpus(handler)
    score = stream.Score()
    abcFormat.translate.abcToStreamScore(handler, score)
    return score


def read_abc_file(path: str | Path, version: tuple[int, int, int] = ABC_2_1) -> Any:
    """An ABC file (UTF-8, as music21 reads it) by :func:`read_abc`."""
    return read_abc(Path(path).read_text(encoding="utf-8"), version)


def tunes_of(score: Any) -> list[Any]:
    """The tunes of a parsed ABC file: an Opus's scores, or the one score."""
    from music21 import stream

    return list(score.scores) if isinstance(score, stream.Opus) else [score]


def note_pitches(tune: Any) -> list[tuple[int, ...]]:
    """The MIDI pitches of each note and chord of a tune as written, in order."""
    return [tuple(sorted(p.midi for p in n.pitches)) for n in tune.flatten().notes]


def changed_notes(a: Sequence[tuple[int, ...]], b: Sequence[tuple[int, ...]]) -> int:
    """Notes whose pitches differ between two readings of one tune (a note only one has counts)."""
    return sum(x != y for x, y in zip(a, b, strict=False)) + abs(len(a) - len(b))


def _meters(tune: Any) -> frozenset[str]:
    from music21 import meter

    return frozenset(ts.ratioString for ts in tune.recurse().getElementsByClass(meter.TimeSignature))


def accidental_changes(
    paths: Sequence[Path], meters: frozenset[str] | None = None, progress: Any = None
) -> dict[str, dict[str, int]]:
    """Per tune book (a file's folder): how many notes change pitch between music21's default
    reading (:data:`ABC_1_3`) and the ABC 2.1 reading. Each book gets ``files``, ``tunes``,
    ``notes``, ``tunes_changed`` and ``notes_changed`` (and ``unreadable`` files); with ``meters``,
    also the same counts over the tunes entirely in those meters (``*_in_meters``), the ones a
    dataset keeps. ``progress`` wraps the paths (a tqdm, say)."""
    books: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for path in progress(paths) if progress is not None else paths:
        book = books[path.parent.name]
        book["files"] += 1
        try:
            text = path.read_text(encoding="utf-8")
            old, new = tunes_of(read_abc(text, ABC_1_3)), tunes_of(read_abc(text, ABC_2_1))
        except Exception:  # music21 raises many kinds on a malformed file
            book["unreadable"] += 1
            continue
        for before, after in zip(old, new, strict=False):
            a, b = note_pitches(before), note_pitches(after)
            changed = changed_notes(a, b)
            counts = {
                "tunes": 1,
                "notes": len(b),
                "tunes_changed": int(changed > 0),
                "notes_changed": changed,
            }
            book.update(counts)
            if meters is not None and (found := _meters(after)) and found <= meters:
                book.update({f"{key}_in_meters": value for key, value in counts.items()})
    keys = ("files", "unreadable", "tunes", "notes", "tunes_changed", "notes_changed")
    if meters is not None:
        keys += ("tunes_in_meters", "notes_in_meters", "tunes_changed_in_meters", "notes_changed_in_meters")
    return {name: {key: int(book[key]) for key in keys} for name, book in sorted(books.items())}
