"""Folk tunes: how many notes change pitch between the two ways of reading ABC accidentals.

    python benchmarks/abc_accidentals.py      # → benchmarks/results/abc_accidentals.json

music21 reads an ABC accidental the ABC 1.x way (it applies to its note only) unless a file declares
`%abc-2.1`; the tune books in its corpus follow ABC 2.1 (it lasts to the bar line). The folk-tunes
dataset parses them the 2.1 way; this counts, per tune book, the notes whose pitch the choice changes.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import music21
from common import write_result

from aezoo_musicvae import corpus


def main() -> int:
    started = time.time()
    books = corpus.folk_accidental_changes()
    rows = [{"book": name, **counts} for name, counts in books.items()]
    total = {k: sum(b[k] for b in books.values()) for k in next(iter(books.values()))}
    path = write_result(
        "abc_accidentals",
        "python benchmarks/abc_accidentals.py",
        rows,
        music21=music21.__version__,
        total=total,
        seconds=round(time.time() - started),
    )
    for row in rows:
        print(
            f"{row['book']}: {row['notes_changed']} of {row['notes']} notes in {row['tunes_changed']} of {row['tunes']} tunes"
        )
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
