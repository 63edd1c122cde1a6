"""musicvae at length (issue #14): the 4-, 8- and 16-bar datasets, window files, how much a decoder
uses z, interpolations of the data's kind, and the smoke runs of benchmarks/musicvae_length.py and
benchmarks/musicvae_gpu.py (10 chorales parsed once; no folk tune book is read)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
import tarfile

import numpy as np
import pytest
import torch

import aezoo
from aezoo.errors import AezooError
from aezoo.plugins import load_data
from aezoo_musicvae import analysis, corpus
from aezoo_musicvae.representation import pitch_to_class
from aezoo_musicvae.windowfile import save_window_file
from tests.conftest import REPO

BARS = (2, 4, 16)


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def chorales(tmp_path_factory):
    """``(cache root, window files by bars)``: 10 chorales parsed once, cut into 2-, 4- and 16-bar
    windows, each saved as a window file."""
    root = tmp_path_factory.mktemp("chorale-cache")
    names, melodies, _ = corpus.chorale_melodies(root, corpus.chorale_paths()[:10])
    files = {}
    for bars in BARS:
        name = "bach-chorales" if bars == 2 else f"bach-chorales-{bars}bar"
        data = corpus._corpus_splits(name, names, melodies, bars, 0, {})
        files[bars] = save_window_file(data, root / "windows" / f"{name}.npz")
    return root, files


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def c(pitch: int) -> int:
    return pitch_to_class(pitch)


# -- datasets --------------------------------------------------------------------------------------


def test_every_melody_dataset_comes_in_4_8_and_16_bars(chorales, monkeypatch):
    root, _ = chorales
    names = set(aezoo.list_datasets())
    for base in ("bach-chorales", "folk-tunes", "melodies", "midi"):
        assert {base, f"{base}-4bar", f"{base}-8bar", f"{base}-16bar"} <= names
    monkeypatch.setenv("AEZOO_CACHE", str(root))
    every = corpus.chorale_paths()
    monkeypatch.setattr(corpus, "chorale_paths", lambda: every[:10])
    data = load_data("bach-chorales-8bar")
    assert data.info["bars"] == 8 and data.train.tensors["tokens"].shape[1] == 128
    assert data.name == "bach-chorales-8bar"


def test_a_window_file_holds_the_same_splits_and_mistakes_are_one_line(chorales, tmp_path):
    _, files = chorales
    data = load_data(f"melody-windows:{files[4]}")
    with np.load(files[4]) as npz:
        assert npz["split-train"].dtype == np.uint8
        assert torch.equal(data.test.tensors["tokens"], torch.from_numpy(npz["split-test"].astype(np.int64)))
    assert data.info["bars"] == 4 and data.info["saved_from"] == "bach-chorales-4bar"
    assert data.info["windows"]["train"] == len(data.train) > 0
    with pytest.raises(AezooError, match="no such file"):
        load_data(f"melody-windows:{tmp_path / 'missing.npz'}")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(AezooError, match="is not a melody window file"):
        load_data(f"melody-windows:{tmp_path / 'junk.npz'}")
    broken = tmp_path / "broken.npz"
    with np.load(files[4]) as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["split-val"] = np.full((3, 64), 95, dtype=np.uint8)  # not a class
    np.savez(broken, **arrays)
    with pytest.raises(AezooError, match="split 'val' is not 64-step windows of classes 0…89"):
        load_data(f"melody-windows:{broken}")


# -- z usage and interpolation ---------------------------------------------------------------------


class Copier(torch.nn.Module):
    """A stand-in model whose code is the melody itself: decoding z gives back z's melody, or
    ``fixed`` whatever z is (a decoder that ignores z)."""

    def __init__(self, fixed: torch.Tensor | None = None) -> None:
        super().__init__()
        self.fixed = fixed
        self.device = torch.device("cpu")

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens.float()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        if self.fixed is not None:
            return self.fixed.expand(len(z), -1)
        return z.round().long()


def test_z_usage_is_the_gap_between_own_and_another_melodys_code():
    tokens = torch.zeros(6, 16, dtype=torch.long)
    for i in range(6):
        tokens[i, 0], tokens[i, 8] = c(60 + i), c(70 + i)
    other = analysis.other_melody(6)
    assert sorted(other.tolist()) == list(range(6)) and all(other[i] != i for i in range(6))
    used = analysis.z_usage(Copier(), tokens)
    assert used == {"own_note_accuracy": 1.0, "other_note_accuracy": 0.0, "z_gap": 1.0}
    ignored = analysis.z_usage(Copier(fixed=tokens[0]), tokens)
    assert ignored["own_note_accuracy"] == ignored["other_note_accuracy"] == pytest.approx(1 / 6)
    assert ignored["z_gap"] == 0.0


def test_an_interpolation_is_in_kind_when_density_and_range_lie_between_the_ends():
    a = torch.zeros(32, dtype=torch.long)
    a[[0, 8, 16, 24]] = torch.tensor([c(60), c(62), c(64), c(62)])  # 2 onsets per bar, 60-64
    b = torch.zeros(32, dtype=torch.long)
    b[::4] = torch.tensor([c(p) for p in (62, 64, 65, 67, 65, 64, 62, 64)])  # 4 per bar, 62-67
    shape = analysis.melody_shape
    assert shape(a) == analysis.MelodyShape(2.0, 60, 64) and shape(b).density == 4.0
    middle = torch.zeros(32, dtype=torch.long)
    middle[[0, 4, 8, 16, 20, 24]] = c(61)
    assert analysis.in_kind(shape(middle), shape(a), shape(b), density_slack=0, pitch_slack=0) == (True, True)
    high = middle.clone()
    high[20] = c(80)
    assert analysis.in_kind(shape(high), shape(a), shape(b), density_slack=0, pitch_slack=2) == (True, False)
    silent = torch.zeros(32, dtype=torch.long)
    assert analysis.in_kind(shape(silent), shape(a), shape(b), density_slack=5, pitch_slack=5) == (
        False,
        False,
    )
    tokens = torch.stack([a, b])
    stats, paths = analysis.interpolation_in_kind(Copier(fixed=middle), tokens, pairs=2, points=5)
    assert stats == {
        "pairs": 2,
        "points": 5,
        "in_kind_density": 1.0,
        "in_kind_pitch_range": 1.0,
        "in_kind_both": 1.0,
    }
    assert paths.shape == (2, 7, 32)  # each path framed by its two original melodies
    assert sorted(paths[:, 0].tolist()) == sorted(tokens.tolist())
    assert torch.equal(paths[:, -1], paths[:, 0].flip(0))
    assert torch.equal(paths[:, 1:-1], middle.expand(2, 5, 32))
    stats, _ = analysis.interpolation_in_kind(Copier(fixed=high), tokens, pairs=2, points=5)
    assert (stats["in_kind_density"], stats["in_kind_pitch_range"], stats["in_kind_both"]) == (1.0, 0.0, 0.0)


class Sampler(Copier):
    """A stand-in model whose prior samples are ``drawn``, cycled."""

    def __init__(self, drawn: torch.Tensor) -> None:
        super().__init__()
        self.drawn = drawn

    def sample(
        self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return self.drawn.repeat(n // len(self.drawn) + 1, 1)[:n]


def test_prior_samples_are_in_kind_when_density_and_range_lie_within_the_held_out_ones():
    a = torch.zeros(32, dtype=torch.long)
    a[[0, 8, 16, 24]] = torch.tensor([c(60), c(62), c(64), c(62)])  # 2 onsets per bar, 60-64
    b = torch.zeros(32, dtype=torch.long)
    b[::4] = torch.tensor([c(p) for p in (62, 64, 65, 67, 65, 64, 62, 64)])  # 4 per bar, 62-67
    middle = torch.zeros(32, dtype=torch.long)
    middle[[0, 4, 8, 16, 20, 24]] = c(61)  # 3 per bar, 61
    high = middle.clone()
    high[20] = c(80)  # above every held-out melody
    dense = torch.zeros(32, dtype=torch.long)
    dense[::2] = c(62)  # 8 per bar
    silent = torch.zeros(32, dtype=torch.long)
    drawn = torch.stack([middle, middle, middle, middle, high, dense, silent, silent])
    # batches of 8, 8 and 4 (the stand-in starts each batch at the first of drawn)
    stats = analysis.prior_in_kind(Sampler(drawn), torch.stack([a, b]), samples=20, batch_size=8, q=0.0)
    assert stats["samples"] == 20 and stats["temperature"] == 1.0
    assert stats["prior_in_kind_density"] == pytest.approx(14 / 20)  # middle and high
    assert stats["prior_in_kind_pitch_range"] == pytest.approx(14 / 20)  # middle and dense
    assert stats["prior_in_kind_both"] == pytest.approx(12 / 20)  # middle
    assert stats["prior_silent"] == pytest.approx(4 / 20)
    assert stats["held_out_density"] == 3.0
    assert stats["prior_density"] == pytest.approx((2 * (5 * 3 + 8) + 4 * 3) / 20)
    with pytest.raises(ValueError, match="no note"):
        analysis.prior_in_kind(Sampler(drawn), torch.stack([silent, silent]))


def test_a_real_decoder_that_ignores_z_shows_no_gap(chorales):
    model = aezoo.create("musicvae", enc_rnn_size=(8,), z_size=4, dec_rnn_size=(8,))
    with torch.no_grad():
        model.decoder.initial.weight.zero_()
        model.decoder.rnn.layers[0].weight_ih_l0[:, -4:].zero_()  # z's share of the inputs
    tokens = load_data(f"melody-windows:{chorales[1][2]}").test.tensors["tokens"]
    usage = analysis.z_usage(model, tokens)
    assert usage["z_gap"] == 0.0 and usage["own_note_accuracy"] == usage["other_note_accuracy"]


# -- the benchmark scripts' smoke runs -------------------------------------------------------------


def _place(files, work, bars=(2, 4)):
    (work / "data").mkdir(parents=True)
    for b in bars:
        shutil.copy(files[b], work / "data" / files[b].name)


def test_the_length_benchmark_measures_both_decoders_and_resumes(chorales, tmp_path):
    _, files = chorales
    work, results = tmp_path / "work", tmp_path / "results"
    _place(files, work)
    length = _script("musicvae_length")
    payload = length.main(["--smoke", "--work", str(work), "--results", str(results)])
    rows = {row["model"]: row for row in payload["rows"]}
    keys = {f"bach-chorales-{b}bar-{d}" for b in (2, 4) for d in ("flat", "hierarchical")}
    assert set(rows) == keys
    for row in rows.values():
        assert row["trained_steps"] == row["steps"] == 4 and row["threads"] == 1 and row["device"] == "cpu"
        for name in ("test_sampled_note_accuracy", "z_own_note_accuracy", "z_other_note_accuracy"):
            assert 0.0 <= row[name] <= 1.0
        assert row["z_gap"] == pytest.approx(row["z_own_note_accuracy"] - row["z_other_note_accuracy"])
        assert (results / row["interpolation_picture"]).stat().st_size > 0
        test = load_data(row["dataset"]).test.tensors["tokens"][:16]
        assert row["test_hold_share"] == pytest.approx(float((test == 0).float().mean()))
    for b in (2, 4):  # equal parameter counts, within a flat decoder's one unit of width
        flat, hier = rows[f"bach-chorales-{b}bar-flat"], rows[f"bach-chorales-{b}bar-hierarchical"]
        assert abs(flat["params"] - hier["params"]) / hier["params"] < 0.01
        assert flat["hparams"]["dec_rnn_size"] != hier["hparams"]["dec_rnn_size"] == [16]
    assert (results / "musicvae_length-quick.png").read_bytes()[:4] == b"\x89PNG"
    # More steps for one of them: its run continues from its checkpoint; the other rows are kept.
    again = length.main(
        ["--smoke", "--work", str(work), "--results", str(results), "--steps", "6", "--bars", "2"]
    )
    after = {row["model"]: row for row in again["rows"]}
    assert after["bach-chorales-2bar-flat"]["trained_steps"] == 6
    assert after["bach-chorales-4bar-flat"] == rows["bach-chorales-4bar-flat"]
    metrics = [
        json.loads(line) for line in (work / "runs" / "bach-chorales-2bar-flat-w16" / "metrics.jsonl").open()
    ]
    assert [r["step"] for r in metrics if r["split"] == "train"] == [4, 6]  # resumed, not retrained


def test_a_recipe_change_is_tried_under_its_own_tag_and_never_replaces_other_rows(chorales, tmp_path):
    _, files = chorales
    work, results = tmp_path / "work", tmp_path / "results"
    _place(files, work, bars=(2,))
    length = _script("musicvae_length")
    common = ["--smoke", "--bars", "2", "--decoders", "flat", "--work", str(work), "--results", str(results)]
    with pytest.raises(SystemExit) as untagged:  # argparse: a usage line, exit 2
        length.main([*common, "--set", "sampling_rate=0.5"])
    assert untagged.value.code == 2
    with pytest.raises(SystemExit, match="hyperparameter 'sampling_rat' does not exist"):
        length.main([*common, "--tag", "x", "--set", "sampling_rat=0.5"])
    with pytest.raises(SystemExit, match="own options"):
        length.main([*common, "--tag", "x", "--set", "bars=4"])
    plain = length.main(common)["rows"]
    tried = length.main([*common, "--tag", "sampled", "--set", "sampling_rate=0.5"])["rows"]
    rows = {row["model"]: row for row in tried}
    assert rows["bach-chorales-2bar-flat"] == plain[0]  # the plain recipe's row is kept
    changed = rows["bach-chorales-2bar-flat-sampled"]
    assert changed["hparams"]["sampling_rate"] == 0.5 and changed["series"] == "bach-chorales, sampled"
    assert plain[0]["hparams"]["sampling_rate"] == 0.0
    # The same key with other settings (a smaller budget) is refused, not overwritten, without --force.
    before = (results / "musicvae_length-quick.json").read_text()
    with pytest.raises(SystemExit, match="other steps; give --tag NAME to keep both, or --force"):
        length.main([*common, "--steps", "2"])
    assert (results / "musicvae_length-quick.json").read_text() == before


def test_a_curriculum_starts_each_longer_decoder_from_its_shorter_run(chorales, tmp_path):
    _, files = chorales
    work, results = tmp_path / "work", tmp_path / "results"
    _place(files, work)
    length = _script("musicvae_length")
    common = ["--smoke", "--work", str(work), "--results", str(results)]
    length.main([*common, "--bars", "2", "--tag", "short"])
    short = str(work / "runs" / "bach-chorales-2bar-{decoder}-short-w16")
    with pytest.raises(SystemExit) as untagged:
        length.main([*common, "--bars", "4", "--init-from", short])
    assert untagged.value.code == 2
    with pytest.raises(SystemExit, match="is not a trained run"):
        length.main([*common, "--bars", "4", "--tag", "c", "--init-from", str(tmp_path / "none-{decoder}")])
    rows = length.main([*common, "--bars", "4", "--tag", "curriculum", "--init-from", short])["rows"]
    for decoder in ("flat", "hierarchical"):
        row = next(r for r in rows if r["model"] == f"bach-chorales-4bar-{decoder}-curriculum")
        assert row["init_from"] == short.replace("{decoder}", decoder) and row["init_steps"] == 4
        run = aezoo.load(work / "runs" / f"bach-chorales-4bar-{decoder}-curriculum-w16")
        assert run.hparams.bars == 4


def test_the_gpu_command_plans_once_and_continues_across_runs(chorales, tmp_path):
    _, files = chorales
    work, results = tmp_path / "work", tmp_path / "results"
    _place(files, work, bars=(2,))
    gpu = _script("musicvae_gpu")
    common = ["--smoke", "--widths", "8", "--work", str(work), "--results", str(results)]
    first = gpu.main([*common, "--session-steps", "2"])  # a short loan: half the steps
    assert not first["done"] and not (results / "musicvae_length-quick.json").exists()
    plan = json.loads((work / "plan.json").read_text())
    assert plan["width"] == 8 and plan["steps"] == 4 and plan["probes"][0]["step_s"]["flat"] > 0
    assert all(gpu.trained_steps(work / "runs" / f"bach-chorales-{d}") == 2 for d in ("flat", "hierarchical"))
    second = gpu.main([*common, "--pack", str(tmp_path / "parts")])
    assert second["done"] and json.loads((work / "plan.json").read_text()) == plan
    rows = {row["decoder"]: row for row in second["rows"]}
    assert set(rows) == {"flat", "hierarchical"}
    for decoder, row in rows.items():
        assert row["model"] == f"bach-chorales-{decoder}-gpu-w8" and row["trained_steps"] == 4
        assert row["params"] == plan["params"][decoder] and 0 <= row["z_own_note_accuracy"] <= 1
        metrics = (work / "runs" / f"bach-chorales-{decoder}" / "metrics.jsonl").read_text().splitlines()
        assert [json.loads(r)["step"] for r in metrics if '"train"' in r] == [2, 4]  # resumed
    assert abs(rows["flat"]["params"] - rows["hierarchical"]["params"]) / rows["flat"]["params"] < 0.02
    (part,) = (tmp_path / "parts").iterdir()
    with tarfile.open(part) as tar:
        names = set(tar.getnames())
    assert {
        "work/plan.json",
        "work/data/bach-chorales.npz",
        "work/runs/bach-chorales-flat/last.safetensors",
    } <= names


def test_the_melody_entry_benchmark_measures_what_the_card_records_and_the_prior():
    """benchmarks/melody_entry.py on the shipped entry: its per-source figures are the card's, and
    melodies drawn from the prior are counted in kind."""
    import argparse

    from aezoo import pretrained

    torch.set_num_threads(1)
    entry = _script("melody_entry")
    row = entry.measure("musicvae:melody-2bar", argparse.Namespace(samples=32, pairs=4))
    full = pretrained.card(pretrained.entry("musicvae:melody-2bar"))["metrics"]["full"]
    for source in ("chorales", "folk"):
        for metric in ("sampled_accuracy", "sampled_note_accuracy"):
            assert row[source][metric] == pytest.approx(full[f"{source}_{metric}"]["value"], rel=1e-4)
        assert 0.0 < row[source]["z_gap"] <= 1.0 and 0.0 <= row[source]["interpolation_in_kind_both"] <= 1.0
    assert row["prior"]["samples"] == 32 and 0.0 <= row["prior"]["prior_in_kind_both"] <= 1.0
    assert "| musicvae:melody-2bar | chorales (305) |" in entry.table([row])
