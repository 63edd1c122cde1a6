"""The page's melody view (exports/web/aezoo_web/melody.js) in a real browser (Debian's chromium,
headless) on an export of the pretrained musicvae:melody-2bar: the tokens onnxruntime-web decodes
equal onnxruntime's in Python, Sample draws a piano roll, the MIDI files it downloads are the
Python writer's, and interpolation decodes A and B at its ends."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aezoo
from aezoo.evaluation import slerp
from aezoo.serve import ExportServer
from tests.melody_checks import check_midi, gumbel, same_choices
from tests.test_web import WEB, browser_or_skip, running

DRIVER = WEB / "tests" / "melody.test.mjs"
POINTS = 5
SEEDED = {"temperature": 0.9, "seed": 1234}
ENDS = [{"temperature": 0.5, "seed": 1}, {"temperature": 0.5, "seed": 2}]
TEMPERATURES = [0.0, 0.0, 0.5, 1.0, 1.5]


@pytest.fixture(scope="module")
def browsed(melody_export: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The driver's report on one visit to the page, with the inputs it was given."""
    chromium, node = browser_or_skip()
    tmp = tmp_path_factory.mktemp("melody-page")
    exported = aezoo.load_export(melody_export)
    decoding = exported.manifest["decoding"]
    rule = exported.decoder.inputs[2]["sampling"]
    n = len(TEMPERATURES)
    z = (
        np.random.default_rng(0)
        .standard_normal((n, exported.decoder.inputs[0]["shape"][1]))
        .astype(np.float32)
    )
    z[0] = 0  # the prior's mean
    noise = gumbel(rule, (n, decoding["steps"], decoding["classes"]), seed=1)
    noise[0] = 0  # argmax
    cases = {
        "decode": [{"z": z.tolist(), "temperature": TEMPERATURES, "noise": noise.tolist()}],
        "seeded": SEEDED,
        "ends": ENDS,
    }
    (tmp / "cases.json").write_text(json.dumps(cases))
    (tmp / "downloads").mkdir()
    with running(ExportServer(melody_export, port=0)) as server:
        command = [node, str(DRIVER), server.url, "--cases", str(tmp / "cases.json")]
        command += ["--downloads", str(tmp / "downloads"), "--points", str(POINTS)]
        command += ["--screenshot", str(tmp / "melody.png")]
        began = time.monotonic()
        result = subprocess.run(
            command,
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, "CHROMIUM": chromium},
        )
        browsed_in = time.monotonic() - began
    assert result.returncode == 0, result.stderr + result.stdout[-3000:]
    report = json.loads(result.stdout)
    print(f"browser {report['browser']}: {browsed_in:.1f} s; screenshot {tmp / 'melody.png'}")
    return {"report": report, "exported": exported, "z": z, "noise": noise, "decoding": decoding, "tmp": tmp}


def valid(tokens: list[int], decoding: dict[str, Any]) -> bool:
    return len(tokens) == decoding["steps"] and all(
        isinstance(t, int) and 0 <= t < decoding["classes"] for t in tokens
    )


def test_the_page_opens_its_melody_view(browsed):
    report = browsed["report"]
    assert report["ready"]["supported"] and report["view"] == "melody" and report["errors"] == []


def test_decode_gives_onnxruntimes_tokens(browsed):
    [got] = browsed["report"]["decoded"]
    want, ties = same_choices(
        browsed["exported"], browsed["z"], TEMPERATURES, browsed["noise"], got, "onnxruntime-web"
    )
    print("\n".join(ties) or "no near-ties: every token identical")
    assert np.asarray(got).shape == want.shape == (len(TEMPERATURES), browsed["decoding"]["steps"])
    assert len(ties) <= 1, ties  # a near-tie is rare: two in five melodies would be a pattern


def test_a_seeded_sample_is_reproducible_gumbel_noise_decoded_like_onnxruntime(browsed):
    report, decoding = browsed["report"], browsed["decoding"]
    seeded, again = report["seeded"], report["seededAgain"]
    assert seeded == again, "the same seed gave another sample"
    assert (seeded["seed"], seeded["temperature"]) == (SEEDED["seed"], SEEDED["temperature"])
    noise = np.asarray(seeded["noise"], dtype=np.float32).reshape(1, decoding["steps"], decoding["classes"])
    rule = browsed["exported"].decoder.inputs[2]["sampling"]
    low, high = (-np.log(-np.log(np.float64(rule[k]))) for k in ("u_low", "u_high"))
    assert low - 1e-4 <= noise.min() and noise.max() <= high + 1e-4
    # standard Gumbel: mean γ = 0.5772, standard deviation π/√6 = 1.2825 (2,880 draws: ±0.07, ±0.05)
    assert abs(noise.mean() - 0.5772) < 0.1 and abs(noise.std() - 1.2825) < 0.08
    _, ties = same_choices(
        browsed["exported"],
        [seeded["z"]],
        SEEDED["temperature"],
        noise,
        [seeded["tokens"]],
        "onnxruntime-web",
    )
    print("\n".join(ties))
    assert report["a"]["z"] != report["b"]["z"] and report["a"]["noise"] != report["b"]["noise"]


def test_sample_draws_the_melody_on_the_piano_roll(browsed):
    clicked, decoding = browsed["report"]["clicked"], browsed["decoding"]
    from aezoo_musicvae.representation import events_to_notes

    assert valid(clicked["tokens"], decoding) and len(clicked["z"]) == 64
    assert clicked["temperature"] == "0.80" and "temperature 0.8" in clicked["label"]
    notes = [{"start": n.start, "end": n.end, "pitch": n.pitch} for n in events_to_notes(clicked["tokens"])]
    assert clicked["notes"] == notes and notes, "the page's notes are not the tokens' notes"
    roll, color = clicked["roll"], clicked["noteColor"]
    assert roll["width"] > 600 and roll["height"] > 200
    assert len(roll["noteCells"]) == sum(n["end"] - n["start"] for n in notes)
    off = [c for c in roll["noteCells"] if c["rgba"][:3] != color]
    assert not off, f"cells of notes not drawn in the note colour: {off[:3]}"
    assert roll["emptyCells"] and all(c["rgba"][:3] != color for c in roll["emptyCells"])
    print(f"Sample click to playable notes: {clicked['lastSampleMs']:.1f} ms")
    assert 0 < clicked["lastSampleMs"] < 10_000


def test_play_schedules_every_note_and_stop_stops(browsed):
    clicked, path = browsed["report"]["clicked"], browsed["report"]["path"]
    assert clicked["play"]["stopEnabled"] and clicked["stopped"]["playing"] is None
    seconds = browsed["decoding"]["steps"] * browsed["decoding"]["midi"]["seconds_per_step"]
    assert clicked["play"]["playing"] == {
        "playing": "melody",
        "notes": len(clicked["notes"]),
        "seconds": seconds,
    }
    assert path["play"]["playing"]["playing"] == "path"
    assert path["play"]["playing"]["seconds"] == pytest.approx(POINTS * seconds)


def test_the_downloaded_midi_file_is_the_python_writers(browsed):
    clicked, decoding = browsed["report"]["clicked"], browsed["decoding"]
    download = Path(clicked["download"]["file"])
    assert clicked["download"]["suggested"].endswith(".mid")
    assert list(download.read_bytes()) == clicked["hookBytes"]
    check_midi(download, [clicked["tokens"]], decoding)


def test_interpolation_decodes_a_and_b_at_its_ends(browsed):
    report, exported, decoding = browsed["report"], browsed["exported"], browsed["decoding"]
    path = report["path"]
    assert path["items"] == POINTS and len(path["tokens"]) == len(path["codes"]) == POINTS
    assert all(valid(tokens, decoding) for tokens in path["tokens"])
    codes = np.asarray(path["codes"], dtype=np.float32)
    a, b = (np.asarray(report[k]["z"], dtype=np.float32) for k in ("a", "b"))
    assert np.array_equal(codes[0], a) and np.array_equal(codes[-1], b)
    import torch

    expected = slerp(torch.from_numpy(a), torch.from_numpy(b), torch.linspace(0, 1, POINTS)).numpy()
    assert np.abs(codes - expected).max() < 1e-5, "not aezoo's spherical interpolation"
    zeros = np.zeros((POINTS, decoding["steps"], decoding["classes"]), np.float32)
    _, ties = same_choices(exported, codes, 0.0, zeros, path["tokens"], "onnxruntime-web")
    print("\n".join(ties))
    ends = exported.decoder(np.stack([a, b]), np.zeros(2, np.float32), zeros[:2])["tokens"]
    assert path["tokens"][0] == ends[0].tolist() and path["tokens"][-1] == ends[1].tolist()
    assert path["tokens"][0] != path["tokens"][-1]
    assert path["selected"] == path["tokens"][1]
    download = Path(path["download"]["file"])
    assert list(download.read_bytes()) == path["hookBytes"]
    check_midi(download, path["tokens"], decoding)
