"""The commands around a trained run: reconstruct, evaluate, sample, plot, upscale."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

import aezoo
from aezoo.trainer import TrainConfig
from tests.test_cli import aezoo as cli

TINY = TrainConfig(max_steps=8, batch_size=32, limit_train=256, limit_eval=200, device="cpu", log_every=2)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    import os

    from tests.conftest import data_dir

    root = data_dir()
    if root is None:
        pytest.skip("full MNIST not found")
    os.environ.setdefault("AEZOO_DATA", str(root))
    base = tmp_path_factory.mktemp("runs")
    made = {}
    for name, hparams in (
        ("conv", {"widths": (8, 16), "latent_dim": 16}),
        ("vae", {"network": "dense", "hidden": (64,), "latent_dim": 2, "binarize": True}),
        ("superres", {"features": 8, "depth": 2}),
    ):
        made[name] = aezoo.train(name, hparams=hparams, config=TINY, out=base / name, progress=False).path
    return made


def test_reconstruct_test_examples_and_your_images(runs, tmp_path):
    result = cli("reconstruct", str(runs["conv"]), "-n", "8")
    assert result.returncode == 0, result.stderr
    with Image.open(runs["conv"] / "reconstructions-test.png") as picture:
        assert picture.size == (8 * 30 + 2, 2 * 30 + 2)
    mine = tmp_path / "digit.png"
    Image.fromarray(np.full((40, 40), 255, np.uint8)).save(mine)
    out = tmp_path / "mine.png"
    result = cli("reconstruct", str(runs["conv"]), str(mine), str(mine), "--invert", "-o", str(out))
    assert result.returncode == 0, result.stderr
    with Image.open(out) as picture:
        assert picture.size == (2 * 30 + 2, 2 * 30 + 2)


def test_evaluate_prints_metrics_and_the_pca_baseline(runs):
    result = cli("evaluate", str(runs["conv"]), "--baseline", "pca", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["examples"] == 10000 and report["metrics"]["bce"] > 0
    pca = report["pca"]
    assert pca["components"] == 16 and 0 < pca["pca_mse"] < 0.1 and pca["model_mse"] > 0
    table = cli("evaluate", str(runs["conv"]), "--baseline", "pca", "--limit", "300")
    assert "vs PCA with 16 components" in table.stdout and "MSE" in table.stdout


def test_evaluate_nll_of_a_binarised_vae(runs):
    result = cli("evaluate", str(runs["vae"]), "--nll", "--samples", "20", "--limit", "64", "--json")
    assert result.returncode == 0, result.stderr
    nll = json.loads(result.stdout)["nll"]
    assert nll["examples"] == 64 and 50 < nll["nll"] < 600


def test_sample_and_plots(runs, tmp_path):
    result = cli("sample", str(runs["vae"]), "-n", "12", "-o", str(tmp_path / "s"))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "s.png") as picture:
        assert picture.size == (12 * 30 + 2, 30 + 2)
    for what in ("curves", "latent", "manifold"):
        out = tmp_path / f"{what}.png"
        result = cli("plot", what, str(runs["vae"]), "-o", str(out), "--steps", "5")
        assert result.returncode == 0, result.stderr
        assert out.stat().st_size > 1000
    with Image.open(tmp_path / "manifold.png") as picture:
        assert picture.size == (5 * 29 + 1, 5 * 29 + 1)
    assert cli("plot", "latent", str(runs["conv"]), "-o", str(tmp_path / "c.png")).returncode == 0


def test_upscale_command(runs, tmp_path):
    source = tmp_path / "small.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (15, 20), dtype=np.uint8)).save(source)
    result = cli("upscale", str(runs["superres"]), str(source), "-o", str(tmp_path / "big.png"))
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "big.png") as picture:
        assert picture.size == (40, 30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sample", "{conv}"], "conv has no prior to sample from"),
        (["evaluate", "{conv}", "--nll"], "conv has no likelihood to estimate"),
        (["evaluate", "{superres}", "--baseline", "pca"], "not a vector"),
        (["upscale", "{conv}", "x.png", "-o", "y.png"], "does not upscale images"),
        (["plot", "manifold", "{vae}", "--dims", "0,9"], "--dims must be two different dimensions"),
        (["evaluate", "{conv}", "--split", "everything"], "has no split 'everything'"),
        (["evaluate", "{conv}", "--device", "gpu0"], "--device 'gpu0' is not a device"),
        (["evaluate", "{conv}", "--device", "cuda:64"], "CUDA"),
        (["reconstruct", "{conv}", "missing.png"], "missing.png does not exist"),
        (["plot", "curves", "not/a/run"], "is not a run folder"),
        (["sample", "{vae}", "-n", "20000"], "-n must be between 1 and 10,000, got 20000"),
        (["sample", "{vae}", "--temperature", "inf"], "--temperature must be a positive number, got inf"),
        (["reconstruct", "{conv}", "-n", "17"], "-n must be between 1 and 16 (the examples a conv picture"),
        (
            ["plot", "manifold", "{conv}", "--dims", "0,1"],
            "conv has none, so its manifold spans the principal",
        ),
        (["evaluate", "{vae}", "--samples", "5"], "--samples sets the importance samples of --nll"),
    ],
)
def test_command_mistakes_are_one_line(runs, args, message):
    args = [a.format(**{k: str(v) for k, v in runs.items()}) for a in args]
    result = cli(*args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("run", "flag", "message"),
    [("superres", ["--baseline", "pca"], "not a vector"), ("conv", ["--nll"], "no likelihood to estimate")],
)
def test_an_evaluation_that_cannot_apply_is_refused_before_any_is_done(
    runs, monkeypatch, capsys, run, flag, message
):
    from aezoo import evaluation
    from aezoo.cli import main

    def no_evaluation(*args, **kwargs):
        raise AssertionError("the model was evaluated first")

    monkeypatch.setattr(evaluation, "evaluate_split", no_evaluation)
    assert main(["evaluate", str(runs[run]), *flag]) == 2
    assert message in capsys.readouterr().err


def test_the_pca_baseline_reports_the_models_own_metrics(runs):
    result = cli("evaluate", str(runs["conv"]), "--baseline", "pca", "--json", "--limit", "200")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["pca"]["model_mse"] == report["metrics"]["mse"]
    assert report["pca"]["model_bce"] == report["metrics"]["bce"]
    assert report["pca"]["pca_mse"] > 0 and report["pca"]["components"] > 0


def test_interpolate_between_two_images(runs, tmp_path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(a)
    Image.fromarray(np.full((28, 28), 255, np.uint8)).save(b)
    result = cli(
        "interpolate", str(runs["vae"]), str(a), str(b), "--steps", "6", "-o", str(tmp_path / "path")
    )
    assert result.returncode == 0, result.stderr
    with Image.open(tmp_path / "path.png") as picture:
        assert picture.size == (6 * 30 + 2, 30 + 2)


def test_slerp_keeps_the_ends_and_the_norm():
    import torch

    from aezoo.evaluation import slerp

    a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
    path = slerp(a, b, torch.linspace(0, 1, 5))
    assert torch.allclose(path[0], a) and torch.allclose(path[-1], b)
    assert torch.allclose(path.norm(dim=1), torch.ones(5), atol=1e-6)


def test_reconstruct_whole_photos_of_different_sizes_side_by_side(runs, tmp_path):
    for i, (h, w) in enumerate(((40, 50), (36, 30), (44, 44))):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (h, w, 3), dtype=np.uint8)).save(
            tmp_path / f"{i}.png"
        )
    out = tmp_path / "sr.png"
    result = cli(
        "reconstruct",
        str(runs["superres"]),
        "--dataset",
        f"images:{tmp_path}",
        "--split",
        "all",
        "-n",
        "3",
        "-o",
        str(out),
    )
    assert result.returncode == 0, result.stderr
    with Image.open(out) as picture:  # three (bicubic, model, truth) columns, 8 pixels apart
        widths = [50 + 4, 30 + 4, 44 + 4]
        assert picture.size[0] == sum(widths) + 2 * 8
    report = cli(
        "evaluate", str(runs["superres"]), "--dataset", f"images:{tmp_path}", "--split", "all", "--json"
    )
    metrics = json.loads(report.stdout)["metrics"]
    assert report.returncode == 0 and {"psnr_y", "ssim_y", "bicubic_psnr_y", "bicubic_ssim_y"} <= set(metrics)
