"""MIDI files in and out (pretty_midi): notes quantised to sixteenth-note steps, melodies written
at 120 quarter notes per minute so every note lands exactly on a tick."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

from aezoo.errors import AezooError
from aezoo.fileio import atomic_path
from aezoo_musicvae.representation import STEPS_PER_QUARTER, Note, events_to_notes

MIDI_SUFFIXES = (".mid", ".midi")
QPM = 120.0
SECONDS_PER_STEP = 60.0 / QPM / STEPS_PER_QUARTER
#: Ticks per quarter note of written files: 120 ticks per sixteenth note.
RESOLUTION = 480
VELOCITY = 80
PROGRAM = 0  # acoustic grand piano
TRACK_NAME = "aezoo musicvae melody"


class UnusableMidi(Exception):
    """A MIDI file aezoo cannot take a melody from; the message says why (one short phrase)."""


def read_notes(path: str | os.PathLike[str]) -> list[list[Note]]:
    """The notes of every non-drum instrument of a MIDI file, quantised to sixteenth notes with
    bars starting at the file's beginning. Raises :class:`UnusableMidi` with the reason when the
    file is unreadable, not in 4/4, or has no pitched notes."""
    import pretty_midi

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pretty_midi warns about meta events on other tracks
            pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as exc:  # mido and pretty_midi raise many kinds for a bad file
        detail = str(exc).strip().splitlines()[0][:80] if str(exc).strip() else type(exc).__name__
        raise UnusableMidi(f"not a readable MIDI file ({detail})") from None
    other = sorted({f"{ts.numerator}/{ts.denominator}" for ts in pm.time_signature_changes} - {"4/4"})
    if other:
        raise UnusableMidi(f"not in 4/4 (time signature {', '.join(other)})")
    ticks_per_step = pm.resolution / STEPS_PER_QUARTER
    instruments = []
    for instrument in pm.instruments:
        if instrument.is_drum:
            continue
        notes = []
        for n in instrument.notes:
            start = round(pm.time_to_tick(n.start) / ticks_per_step)
            end = round(pm.time_to_tick(n.end) / ticks_per_step)
            notes.append(Note(start, max(end, start + 1), int(n.pitch)))
        if notes:
            instruments.append(notes)
    if not instruments:
        has_drums = any(i.is_drum and i.notes for i in pm.instruments)
        raise UnusableMidi("only drums" if has_drums else "no notes")
    return instruments


def midi_files(folder: str | os.PathLike[str]) -> list[Path]:
    """The ``.mid``/``.midi`` files under ``folder`` (recursively), sorted."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise AezooError(f"{root}: no such folder; give a folder of MIDI files (.mid, .midi)")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in MIDI_SUFFIXES and p.is_file())
    if not files:
        raise AezooError(f"{root} holds no MIDI files (.mid, .midi)")
    return files


def write_melody(events: Sequence[int], path: str | os.PathLike[str]) -> Path:
    """Write a class sequence as a one-track 4/4 MIDI file at 120 qpm (piano), atomically."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=QPM)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    instrument = pretty_midi.Instrument(program=PROGRAM, name=TRACK_NAME)
    for note in events_to_notes(events):
        instrument.notes.append(
            pretty_midi.Note(
                velocity=VELOCITY,
                pitch=note.pitch,
                start=note.start * SECONDS_PER_STEP,
                end=note.end * SECONDS_PER_STEP,
            )
        )
    pm.instruments.append(instrument)
    path = Path(path)
    with atomic_path(path) as tmp:
        pm.write(str(tmp))
    return path
