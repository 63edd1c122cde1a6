"""What the browser and Node melody tests check alike: tokens against onnxruntime in Python (near-ties
reported as the exporter's validation reports them), and MIDI files against pretty_midi and
aezoo_musicvae's own writer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo.onnx import validation


def gumbel(rule: dict[str, Any], shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Noise by the manifest's rule: -log(-log(u)), u uniform in [u_low, u_high]."""
    u = np.random.default_rng(seed).uniform(rule["u_low"], rule["u_high"], shape)
    return (-np.log(-np.log(u))).astype(np.float32)


def same_choices(
    exported: Any, z: Any, temperature: Any, noise: np.ndarray, got: Any, runtime: str
) -> tuple[np.ndarray, list[str]]:
    """onnxruntime's tokens for these inputs; asserts ``got`` (another runtime's) equals them, except
    after a near-tie (two scores within 2 · atol where they first differ), which is returned as a
    line like the exporter's validation."""
    z = np.asarray(z, dtype=np.float32)
    temperature = np.broadcast_to(np.asarray(temperature, dtype=np.float32), (len(z),)).copy()
    want = exported.decoder(z, temperature, noise)
    scores = want["logits"] + temperature[:, None, None] * noise
    atol = exported.manifest["models"]["decoder"]["atol"]
    report = validation.compare(
        runtime,
        ["tokens"],
        [torch.from_numpy(want["tokens"])],
        [np.asarray(got, dtype=np.int64)],
        atol,
        {"tokens": torch.from_numpy(scores)},
    )
    check = report.outputs[0]
    assert check.passed, f"{runtime} chose other tokens than onnxruntime in Python: {check.note}"
    ties = [
        f"{runtime}: near-tie at melody {t.example}, step {t.position[0]}: onnxruntime chose {t.torch_choice}, "
        f"{runtime} {t.onnx_choice}, its two best scores {t.gap:.2g} apart; later steps not compared"
        for t in report.near_ties
    ]
    return want["tokens"], ties


def check_midi(path: Path, melodies: Sequence[Sequence[int]], decoding: dict[str, Any]) -> None:
    """``path`` parses (pretty_midi) to the notes of ``melodies`` played one after another, with the
    manifest's tempo, time signature, program, velocity and resolution, and is byte for byte the
    file pretty_midi writes for those notes as aezoo_musicvae.midi.write_melody builds it (for one
    melody: write_melody's own file)."""
    import pretty_midi

    from aezoo_musicvae.midi import write_melody
    from aezoo_musicvae.representation import events_to_notes

    midi = decoding["midi"]
    steps, seconds = decoding["steps"], midi["seconds_per_step"]
    want = [
        (n.start + k * steps, n.end + k * steps, n.pitch)
        for k, tokens in enumerate(melodies)
        for n in events_to_notes(tokens)
    ]
    pm = pretty_midi.PrettyMIDI(str(path))
    assert pm.resolution == midi["ticks_per_quarter"]
    times, tempi = pm.get_tempo_changes()
    assert times.tolist() == [0.0] and abs(tempi[0] - midi["tempo_qpm"]) < 1e-6
    signatures = [(ts.numerator, ts.denominator, ts.time) for ts in pm.time_signature_changes]
    assert signatures == [(*decoding["time_signature"], 0.0)]
    assert [(i.program, i.is_drum, i.name) for i in pm.instruments] == [
        (midi["program"], False, midi["track_name"])
    ]
    notes = pm.instruments[0].notes
    got = np.array([(n.start / seconds, n.end / seconds) for n in notes]).reshape(-1, 2)
    assert [(round(s), round(e), n.pitch) for (s, e), n in zip(got, notes, strict=True)] == want
    assert np.allclose(got, np.rint(got), atol=1e-6), "notes off the sixteenth-note grid"
    assert all(n.velocity == midi["velocity"] for n in notes)

    reference = pretty_midi.PrettyMIDI(resolution=midi["ticks_per_quarter"], initial_tempo=midi["tempo_qpm"])
    reference.time_signature_changes.append(pretty_midi.TimeSignature(*decoding["time_signature"], 0.0))
    instrument = pretty_midi.Instrument(program=midi["program"], name=midi["track_name"])
    for start, end, pitch in want:
        instrument.notes.append(pretty_midi.Note(midi["velocity"], pitch, start * seconds, end * seconds))
    reference.instruments.append(instrument)
    python = path.with_name(f"{path.stem}-pretty_midi.mid")
    reference.write(str(python))
    assert path.read_bytes() == python.read_bytes(), f"{path.name} differs from pretty_midi's file"
    if len(melodies) == 1:
        write_melody(list(melodies[0]), python)
        assert path.read_bytes() == python.read_bytes(), f"{path.name} differs from write_melody's file"
