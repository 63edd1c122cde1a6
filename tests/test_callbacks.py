"""Trainer callbacks: registered through the hook (aezoo's own too), their state saved in every
checkpoint so a resume behaves as if never stopped, early stopping, TensorBoard read back with its
own reader, and a callback that raises named with its plugin."""

from __future__ import annotations

import json
import math
from typing import ClassVar

import pytest
import torch

import aezoo
from aezoo.callbacks import Callback
from aezoo.errors import AezooError
from aezoo.trainer import TrainConfig
from tests.test_crash import _aezoo, _env, _tensors

TINY = {"hidden": (16,), "latent_dim": 4}


def config(**overrides) -> TrainConfig:
    values = {"batch_size": 32, "limit_train": 128, "limit_eval": 64, "device": "cpu", "evaluate_test": True}
    return TrainConfig(**{**values, **overrides})


class Counter(Callback):
    """Counts steps and validations; its count must survive a resume."""

    def __init__(self) -> None:
        self.steps = 0
        self.seen: list[str] = []

    def on_run_start(self, trainer):
        self.seen.append(f"start@{trainer.pos.step}")

    def on_step_end(self, trainer):
        self.steps += 1

    def on_validation(self, trainer, record):
        self.seen.append(f"val@{record['step']}")

    def on_checkpoint(self, trainer, path):
        assert path.name == "last.safetensors" and path.exists()

    def on_run_end(self, trainer, record):
        self.seen.append(f"end:{record['split'] if record else None}")

    def state_dict(self):
        return {"steps": self.steps}

    def load_state_dict(self, state):
        self.steps = state["steps"]


class CountingPlugin:
    made: ClassVar[list[Counter]] = []

    @staticmethod
    @aezoo.hookimpl
    def aezoo_register_callbacks(register):
        def build(cfg):
            if "counter" not in (cfg.callbacks or ()):
                return None
            CountingPlugin.made.append(Counter())
            return CountingPlugin.made[-1]

        register(aezoo.TrainerCallback("counter", build, "counts steps"))


def test_a_plugins_callback_sees_every_event_and_its_state_survives_a_resume(mnist_dir, tmp_path):
    from aezoo.plugins import host, register_plugin
    from aezoo.training import resume

    register_plugin(CountingPlugin, name="counting")
    assert host().records["counting"].callbacks == ["counter"]
    assert {"metrics-log", "progress", "pictures", "early-stop", "tensorboard"} <= set(
        host().records["aezoo"].callbacks
    )
    CountingPlugin.made.clear()
    run = aezoo.train(
        "dense",
        hparams=TINY,
        config=config(max_steps=6, callbacks=("counter",)),
        out=tmp_path / "r",
        progress=False,
    )
    first = CountingPlugin.made[-1]
    assert first.steps == 6 and first.seen == ["start@0", "val@4", "val@6", "end:test"]
    resume(run.path, max_steps=10, progress=False)
    again = CountingPlugin.made[-1]
    assert again is not first and again.steps == 10  # 6 restored from the checkpoint, then 4 more
    assert again.seen == ["start@6", "val@8", "val@10", "end:test"]
    with pytest.raises(AezooError, match=r"no trainer callback 'countr'; did you mean 'counter'\?"):
        aezoo.train(
            "dense", hparams=TINY, config=config(max_steps=2, callbacks=("countr",)), out=tmp_path / "x"
        )


def test_a_callback_that_raises_is_named_with_its_plugin_and_the_run_keeps_its_checkpoint(
    mnist_dir, tmp_path
):
    from aezoo.plugins import register_plugin

    class Broken(Callback):
        def on_validation(self, trainer, record):
            if record["step"] >= 8:
                raise ZeroDivisionError("the logger's server went away")

    class BrokenPlugin:
        @staticmethod
        @aezoo.hookimpl
        def aezoo_register_callbacks(register):
            register(aezoo.TrainerCallback("flaky-logger", lambda cfg: Broken()))

    register_plugin(BrokenPlugin, name="flaky")
    with pytest.raises(AezooError) as raised:
        aezoo.train("dense", hparams=TINY, config=config(max_steps=12), out=tmp_path / "r", progress=False)
    assert str(raised.value) == (
        "callback 'flaky-logger' (registered in code (plugin 'flaky')) failed in on_validation at step 8: "
        "ZeroDivisionError: the logger's server went away; the run keeps its last checkpoint"
    )
    last = _tensors(tmp_path / "r" / "last.safetensors")  # the epoch before: whole, resumable
    assert all(torch.isfinite(v).all() for k, v in last.items() if not k.startswith("@"))


def test_early_stopping_stops_when_the_metric_stalls_and_a_resume_has_nothing_left(mnist_dir, tmp_path):
    # a loss that falls never "improves" when larger is better: it stops after 2 epochs of patience
    run = aezoo.train(
        "dense",
        hparams=TINY,
        config=config(epochs=20, early_stop="loss:2:max"),
        out=tmp_path / "r",
        progress=False,
    )
    val = run.metrics("val")
    assert [r["step"] for r in val] == [4, 8, 12] and run.metrics("test")
    from aezoo.training import resume

    resume(run.path, progress=False)  # the stop is part of the checkpoint
    assert [r["step"] for r in run.metrics("val")] == [4, 8, 12]
    with pytest.raises(
        AezooError, match=r"setting 'early_stop' must be METRIC:PATIENCE\[:max\] \(patience must be"
    ):
        config(early_stop="loss:often")
    with pytest.raises(
        AezooError, match=r"--early-stop psnr: validation reports no 'psnr'; it reports loss, bce"
    ):
        aezoo.train(
            "dense",
            hparams=TINY,
            config=config(max_steps=4, early_stop="psnr:1"),
            out=tmp_path / "p",
            progress=False,
        )
    assert not (tmp_path / "p").exists()  # known before any folder or step


def test_the_selected_validation_metric_chooses_the_best_model(mnist_dir, tmp_path):
    tests = {}
    for select in ("loss", "bce", "loss:max"):
        run = aezoo.train(
            "dense",
            hparams=TINY,
            config=config(epochs=4, select=select),
            out=tmp_path / select,
            progress=False,
        )
        metric, _, mode = select.partition(":")
        val = run.metrics("val")
        chosen = (max if mode == "max" else min)(val, key=lambda r: r[metric])
        tests[select] = run.metrics("test")[-1]
        assert len(val) == 4 and tests[select]["step"] == chosen["step"]
        assert run.config["trainer"]["select"] == select
    # The same training (same seed), another model kept: the worst validation loss tests worse.
    assert tests["loss:max"]["step"] == 4 and tests["loss"]["step"] > 4
    assert tests["loss:max"]["loss"] > tests["loss"]["loss"]


def test_a_resumed_run_keeps_choosing_by_its_selected_metric(mnist_dir, tmp_path):
    from aezoo.training import resume

    whole = aezoo.train(
        "dense", hparams=TINY, config=config(epochs=4, select="bce:max"), out=tmp_path / "w", progress=False
    )
    halves = aezoo.train(
        "dense", hparams=TINY, config=config(epochs=2, select="bce:max"), out=tmp_path / "h", progress=False
    )
    resume(halves.path, epochs=4, progress=False)
    assert [r["bce"] for r in halves.metrics("val")] == [r["bce"] for r in whole.metrics("val")]
    assert halves.metrics("test")[-1] == whole.metrics("test")[-1]
    assert whole.metrics("test")[-1]["step"] == max(whole.metrics("val"), key=lambda r: r["bce"])["step"]


def test_a_selected_metric_that_validation_does_not_report_is_one_line_before_any_folder(mnist_dir, tmp_path):
    with pytest.raises(AezooError, match=r"setting 'select' must be METRIC or METRIC:max \(the direction"):
        config(select="loss:up")
    with pytest.raises(
        AezooError, match=r"--select psnr: validation reports no 'psnr'; it reports loss, bce"
    ):
        aezoo.train(
            "dense",
            hparams=TINY,
            config=config(max_steps=4, select="psnr"),
            out=tmp_path / "p",
            progress=False,
        )
    assert not (tmp_path / "p").exists()  # known before any folder or step


def test_killed_and_resumed_with_early_stopping_and_tensorboard_it_ends_as_if_never_stopped(
    mnist_dir, tmp_path
):
    """The kill comes just before the third epoch's checkpoint, after its metrics and events were
    written; early stopping's patience and TensorBoard's position come back from the second's, and
    TensorBoard's own reader sees each step once (the events after the checkpoint were purged)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    args = ["train", "dense", "--set", "hidden=16", "--set", "latent_dim=4", "--limit-train", "128",
            "--limit-eval", "64", "--batch-size", "32", "--epochs", "20", "--early-stop", "loss:3:max",
            "--tensorboard", "--no-progress"]  # fmt: skip
    straight = _aezoo(*args, "--out", str(tmp_path / "a"))
    assert straight.returncode == 0 and "stopped early: val loss has not improved" in straight.stderr
    killed = _aezoo(*args, "--out", str(tmp_path / "b"), env=_env(AEZOO_CRASH_AT="save:3"))
    assert killed.returncode == -9
    resumed = _aezoo("train", "--resume", str(tmp_path / "b"), "--no-progress")
    assert resumed.returncode == 0 and "stopped early" in resumed.stderr, resumed.stderr
    for name in ("last.safetensors", "model.safetensors"):
        a, b = _tensors(tmp_path / "a" / name), _tensors(tmp_path / "b" / name)
        assert all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()
    metrics = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in metrics if r["split"] == "val"] == [4, 8, 12, 16]
    events = EventAccumulator(str(tmp_path / "b" / "tensorboard"))
    events.Reload()
    for split in ("train", "val"):
        scalars = events.Scalars(f"{split}/loss")
        want = [(r["step"], r["loss"]) for r in metrics if r["split"] == split]
        assert [(s.step, s.value) for s in scalars] == [
            (step, pytest.approx(loss, rel=1e-6)) for step, loss in want
        ]
    test = events.Scalars("test/loss")
    assert len(test) == 1 and math.isclose(test[0].value, metrics[-1]["loss"], rel_tol=1e-6)
