"""The melody representation of MusicVAE's melody converter, and windows cut from melodies.

A melody is one event per sixteenth-note step (16 steps per bar of 4/4), one of 90 classes:

====  ==========================================================
0     no event: the current note (or silence) goes on
1     note off: the current note ends, silence follows
2…89  note on: MIDI pitch 21 + (class − 2), A0 to C8 (piano range)
====  ==========================================================

Notes come from scores or MIDI files as :class:`Note` (pitch, start and end in steps). They are
made monophonic (where notes overlap the highest wins), split into melodies wherever a bar or
more of silence falls, and each melody is cut into windows of ``bars`` bars sliding by one bar.
Pitches outside 21–108 are transposed by octaves into range, or their window is dropped.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

NUM_CLASSES = 90
NO_EVENT = 0
NOTE_OFF = 1
FIRST_NOTE_CLASS = 2
MIN_PITCH = 21
MAX_PITCH = 108
STEPS_PER_BAR = 16
STEPS_PER_QUARTER = 4
OUT_OF_RANGE = ("transpose", "drop")

# The intermediate, pitch-valued form (as magenta's Melody): -2 no event, -1 note off, else pitch.
_HOLD = -2
_OFF = -1


@dataclasses.dataclass(frozen=True, order=True)
class Note:
    """A note in steps (sixteenth notes from the start of a bar-aligned piece); ``end`` exclusive."""

    start: int
    end: int
    pitch: int


def pitch_to_class(pitch: int) -> int:
    """The note-on class of a MIDI pitch in 21–108."""
    if not MIN_PITCH <= pitch <= MAX_PITCH:
        raise ValueError(f"pitch {pitch} is outside {MIN_PITCH}–{MAX_PITCH}")
    return FIRST_NOTE_CLASS + pitch - MIN_PITCH


def class_to_pitch(event: int) -> int:
    """The MIDI pitch of a note-on class (2…89)."""
    if not FIRST_NOTE_CLASS <= event < NUM_CLASSES:
        raise ValueError(f"class {event} is not a note on")
    return MIN_PITCH + event - FIRST_NOTE_CLASS


# -- notes → melodies ------------------------------------------------------------------------------


def monophonic(notes: Iterable[Note]) -> list[Note]:
    """One note at a time; where notes overlap the highest wins.

    Notes are taken in order of onset, highest first at a shared onset. A note starting while a
    higher one sounds is dropped; a note starting while a lower (or equal) one sounds cuts that
    one short. Lengths are at least one step.
    """
    ordered = sorted(notes, key=lambda n: (n.start, -n.pitch))
    out: list[Note] = []
    for note in ordered:
        note = Note(note.start, max(note.end, note.start + 1), note.pitch)
        if out and out[-1].end > note.start:
            current = out[-1]
            if current.pitch > note.pitch or current.start == note.start:
                continue  # a higher note sounds (or one as high started with it): it wins
            out[-1] = Note(current.start, note.start, current.pitch)
        out.append(note)
    return out


def split_at_silence(notes: Sequence[Note], gap_steps: int = STEPS_PER_BAR) -> list[list[Note]]:
    """Monophonic ``notes`` split into melodies wherever ``gap_steps`` or more of silence fall."""
    melodies: list[list[Note]] = []
    for note in notes:
        if melodies and note.start - melodies[-1][-1].end < gap_steps:
            melodies[-1].append(note)
        else:
            melodies.append([note])
    return melodies


def melody_array(notes: Sequence[Note]) -> tuple[np.ndarray, int]:
    """A melody (monophonic, sorted notes) as pitch-valued events from the bar of its first note
    to the bar line after its last note: ``(events, first_bar)``; -2 hold, -1 note off, else the
    MIDI pitch."""
    origin = (notes[0].start // STEPS_PER_BAR) * STEPS_PER_BAR
    end = notes[-1].end - origin
    length = -(-end // STEPS_PER_BAR) * STEPS_PER_BAR
    events = np.full(length, _HOLD, dtype=np.int16)
    for note in notes:
        start, stop = note.start - origin, note.end - origin
        if stop < length and events[stop] == _HOLD:
            events[stop] = _OFF
        events[start] = note.pitch
    return events, origin // STEPS_PER_BAR


def to_classes(events: np.ndarray) -> np.ndarray:
    """Pitch-valued events (in range) → classes 0…89."""
    out = events.astype(np.int64) - MIN_PITCH + FIRST_NOTE_CLASS
    out[events == _HOLD] = NO_EVENT
    out[events == _OFF] = NOTE_OFF
    return out


# -- windows ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class WindowStats:
    """What happened to the windows cut from some melodies (all counts)."""

    windows: int = 0
    kept: int = 0
    dropped: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    notes_transposed: int = 0
    windows_transposed: int = 0

    def add(self, other: WindowStats) -> None:
        self.windows += other.windows
        self.kept += other.kept
        self.dropped.update(other.dropped)
        self.notes_transposed += other.notes_transposed
        self.windows_transposed += other.windows_transposed

    def to_dict(self) -> dict[str, object]:
        return {
            "windows": self.windows,
            "kept": self.kept,
            "dropped": dict(sorted(self.dropped.items())),
            "notes_transposed_by_octaves": self.notes_transposed,
            "windows_with_transposed_notes": self.windows_transposed,
        }


def _fit_range(window: np.ndarray) -> tuple[np.ndarray, int]:
    """Out-of-range pitches moved by whole octaves into 21–108; returns the count moved."""
    pitches = window >= 0
    low = pitches & (window < MIN_PITCH)
    high = pitches & (window > MAX_PITCH)
    if not (low.any() or high.any()):
        return window, 0
    out = window.copy()
    out[low] += 12 * -(-(MIN_PITCH - out[low]) // 12)
    out[high] -= 12 * -(-(out[high] - MAX_PITCH) // 12)
    return out, int(low.sum() + high.sum())


def windows(
    notes: Sequence[Note], bars: int, *, out_of_range: str = "transpose", stats: WindowStats | None = None
) -> np.ndarray:
    """Every window of ``bars`` bars (sliding by one bar) of the melodies in ``notes``, as classes
    ``int64 [K, bars * 16]``.

    ``notes`` are any notes of one instrument or voice: they are made monophonic and split at a
    bar of silence first. Windows without a note onset are dropped, and so are windows with an
    out-of-range pitch when ``out_of_range="drop"`` (``"transpose"`` moves such notes by octaves).
    Duplicates are not removed here (see :func:`unique_rows`).
    """
    if out_of_range not in OUT_OF_RANGE:
        raise ValueError(f"out_of_range must be one of {OUT_OF_RANGE}, got {out_of_range!r}")
    stats = stats if stats is not None else WindowStats()
    size = bars * STEPS_PER_BAR
    rows = []
    for melody in split_at_silence(monophonic(notes)):
        events, _ = melody_array(melody)
        for start in range(0, len(events) - size + 1, STEPS_PER_BAR):
            window = events[start : start + size]
            stats.windows += 1
            if not (window >= 0).any():
                stats.dropped["no note starts in it"] += 1
                continue
            fitted, moved = _fit_range(window)
            if moved:
                if out_of_range == "drop":
                    stats.dropped["pitch outside 21-108"] += 1
                    continue
                stats.notes_transposed += moved
                stats.windows_transposed += 1
            rows.append(to_classes(fitted))
            stats.kept += 1
    if not rows:
        return np.zeros((0, size), dtype=np.int64)
    return np.stack(rows)


def unique_rows(rows: np.ndarray, seen: set[bytes] | None = None) -> np.ndarray:
    """``rows`` without duplicates, in order of first appearance; rows already in ``seen`` are
    dropped too, and ``seen`` is updated (so several sets can be deduplicated against each other)."""
    return rows[unique_row_indices(rows, seen)]


def unique_row_indices(rows: np.ndarray, seen: set[bytes] | None = None) -> list[int]:
    """Which of ``rows`` :func:`unique_rows` keeps (``seen`` updated the same way)."""
    seen = seen if seen is not None else set()
    keep = []
    for i, row in enumerate(rows):
        key = row.astype(np.int8).tobytes()
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return keep


# -- classes → notes -------------------------------------------------------------------------------


def events_to_notes(events: Sequence[int]) -> list[Note]:
    """The notes a class sequence plays: a note on sounds until the next note on, note off, or
    the end. Holds and note offs with no note sounding are silence."""
    notes: list[Note] = []
    current: tuple[int, int] | None = None  # (start, pitch)
    for step, event in enumerate(int(e) for e in events):
        if event == NO_EVENT:
            continue
        if current is not None:
            notes.append(Note(current[0], step, current[1]))
            current = None
        if event >= FIRST_NOTE_CLASS:
            current = (step, class_to_pitch(event))
    if current is not None:
        notes.append(Note(current[0], len(events), current[1]))
    return notes


def notes_to_events(notes: Sequence[Note], steps: int) -> np.ndarray:
    """Monophonic in-range notes starting in ``[0, steps)`` as ``steps`` classes (the inverse of
    :func:`events_to_notes` for sequences it produced)."""
    events = np.full(steps, NO_EVENT, dtype=np.int64)
    for note in notes:
        if note.end < steps and events[note.end] == NO_EVENT:
            events[note.end] = NOTE_OFF
        events[note.start] = pitch_to_class(note.pitch)
    return events
