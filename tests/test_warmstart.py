"""Warm starts (``--init-from``): a new run begins from a run's, a file's or a pretrained model's
weights; weights that do not fit are one line before any folder is made."""

from __future__ import annotations

import shutil

import pytest
import torch

import aezoo
from aezoo.errors import AezooError
from aezoo.runs import Run
from aezoo.trainer import TrainConfig

TINY = {"hidden": (16,), "latent_dim": 4}


def config(**overrides) -> TrainConfig:
    values = {"batch_size": 32, "limit_train": 64, "limit_eval": 32, "device": "cpu", "evaluate_test": False}
    return TrainConfig(**{**values, **overrides})


def _close(a: torch.nn.Module, b: torch.nn.Module, atol: float) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.allclose(sa[k].float(), sb[k].float(), atol=atol) for k in sa)


def test_a_warm_start_begins_from_the_source_weights_and_trains_on(mnist_dir, tmp_path):
    source = aezoo.train(
        "dense", hparams=TINY, config=config(max_steps=4), out=tmp_path / "a", progress=False
    )
    # a learning rate too small to move anything: the new run's model is the source's
    still = aezoo.train(
        "dense",
        hparams=TINY,
        config=config(max_steps=1, lr=1e-12, init_from=str(source.path)),
        out=tmp_path / "b",
        progress=False,
    )
    assert _close(still.load_model("cpu"), source.load_model("cpu"), atol=1e-6)
    assert still.config["trainer"]["init_from"] == str(source.path)
    fresh = aezoo.train(
        "dense", hparams=TINY, config=config(max_steps=1, lr=1e-12), out=tmp_path / "c", progress=False
    )
    assert not _close(fresh.load_model("cpu"), source.load_model("cpu"), atol=1e-3)
    # its first step's loss is the trained model's, below a fresh start's
    first = still.metrics("train")[0]["loss"]
    assert first < fresh.metrics("train")[0]["loss"]


def test_a_pretrained_name_starts_a_fine_tune(mnist_dir, tmp_path):
    hparams = aezoo.load("dense:mnist").hparams.to_dict()
    run = aezoo.train(
        "dense",
        hparams=hparams,
        config=config(max_steps=1, lr=1e-12, init_from="dense:mnist"),
        out=tmp_path / "ft",
        progress=False,
    )
    assert _close(run.load_model("cpu"), aezoo.load("dense:mnist"), atol=1e-3)  # fp16 storage


@pytest.mark.parametrize(
    ("source", "hparams", "arch", "message"),
    [
        (
            "run",
            {"hidden": (32,), "latent_dim": 4},
            "dense",
            r"do not fit this dense model: .* is \[16, 784\] there",
        ),
        ("run", {}, "conv", "holds a 'dense' model; this run trains 'conv'"),
        ("missing", TINY, "dense", "--init-from .*nowhere: .*does not exist"),
        ("dense:nope", TINY, "dense", "--init-from dense:nope: "),
    ],
)
def test_a_source_that_does_not_fit_is_one_line_and_makes_no_folder(
    mnist_dir, tmp_path, source, hparams, arch, message
):
    run = aezoo.train("dense", hparams=TINY, config=config(max_steps=2), out=tmp_path / "a", progress=False)
    spec = {"run": str(run.path), "missing": str(tmp_path / "nowhere")}.get(source, source)
    with pytest.raises(AezooError, match=message):
        aezoo.train(
            arch,
            hparams=hparams,
            config=config(max_steps=2, init_from=spec),
            out=tmp_path / "b",
            progress=False,
        )
    assert not (tmp_path / "b").exists()


def test_the_command_line_warm_start(mnist_dir, tmp_path, cli):
    source = aezoo.train(
        "dense", hparams=TINY, config=config(max_steps=2), out=tmp_path / "a", progress=False
    )
    common = ["train", "dense", "--set", "hidden=16", "--set", "latent_dim=4", "--max-steps", "1",
              "--limit-train", "64", "--limit-eval", "32", "--batch-size", "32", "--no-test", "--no-progress"]  # fmt: skip
    code, _, err = cli(*common, "--init-from", str(source.path), "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert aezoo.load(tmp_path / "b").state_dict().keys() == source.load_model("cpu").state_dict().keys()
    code, _, err = cli(
        *common, "--set", "hidden=8", "--init-from", str(source.path), "--out", str(tmp_path / "c")
    )
    assert (
        code == 2 and err.count("\n") == 1 and "do not fit this dense model" in err and "Traceback" not in err
    )


def test_a_replay_whose_source_now_holds_other_weights_says_so(mnist_dir, tmp_path, cli):
    source = aezoo.train(
        "dense", hparams=TINY, config=config(max_steps=2), out=tmp_path / "a", progress=False
    )
    common = ["--max-steps", "1", "--no-progress"]
    code, _, err = cli("train", "dense", "--set", "hidden=16", "--set", "latent_dim=4", *common,
                       "--limit-train", "64", "--limit-eval", "32", "--batch-size", "32", "--no-test",
                       "--init-from", str(source.path), "--out", str(tmp_path / "b"))  # fmt: skip
    assert code == 0, err
    recorded = Run(tmp_path / "b").config["init_weights"]
    assert recorded["from"] == str(source.path) and len(recorded["sha256"]) == 64
    recipe = str(tmp_path / "b" / "config.json")
    # the same source: the replay starts from the same weights and records the same digest
    code, _, err = cli("train", "--config", recipe, "--out", str(tmp_path / "c"))
    assert code == 0, err
    assert Run(tmp_path / "c").config["init_weights"] == recorded
    # the source's weights replaced by others (another seed's): one line, and nothing is made
    other = aezoo.train(
        "dense", hparams=TINY, config=config(max_steps=2, seed=1), out=tmp_path / "o", progress=False
    )
    shutil.copyfile(other.path / "model.safetensors", source.path / "model.safetensors")
    code, _, err = cli("train", "--config", recipe, "--out", str(tmp_path / "d"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err
    assert f"started from --init-from {source.path}, whose weights were {recorded['sha256'][:12]}" in err
    assert not (tmp_path / "d").exists()
    # naming the source on the command line starts from what it holds now
    code, _, err = cli(
        "train", "--config", recipe, "--init-from", str(source.path), "--out", str(tmp_path / "e")
    )
    assert code == 0, err
    assert Run(tmp_path / "e").config["init_weights"]["sha256"] != recorded["sha256"]
