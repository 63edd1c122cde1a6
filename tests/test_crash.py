"""Runs survive kills: SIGKILL at random instants and inside every step of a checkpoint's save,
then ``--resume``, ends with exactly the weights, best weights and metrics of a run never killed."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from tests.conftest import REPO


#: 3 epochs of 16 steps, a checkpoint every 4 steps and at each epoch's end, the best model
#: published whenever the validation loss improves: every kind of save happens many times.
def train_args(max_steps: int = 48) -> list[str]:
    return ["train", "dense", "--set", "hidden=16", "--set", "latent_dim=4", "--limit-train", "256",
            "--limit-eval", "64", "--batch-size", "16", "--max-steps", str(max_steps), "--save-every", "4",
            "--no-test", "--no-progress"]  # fmt: skip


TRAIN = train_args()
#: Where a kill is injected (aezoo.trainstate.crashpoint): before a save starts, with the new file
#: written but not yet renamed into place, just after the rename, after the best model's publication.
INJECTED = [
    "save:2",
    "written:3",
    "committed:5",
    "published:1",
    "written:7",
    "save:12",
    "committed:9",
    "published:2",
]
TIMED = 12


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **extra}
    env.pop("AEZOO_PLUGINS", None)
    return env


def _aezoo(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aezoo", *args],
        capture_output=True,
        text=True,
        env=env or _env(),
        cwd=REPO,
        timeout=300,
    )


def _tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict


def _records(run: Path) -> list[dict]:
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]


def _finish(run: Path) -> str:
    """Resume a killed run until it is done; a run killed before writing its config starts again."""
    if not (run / "config.json").exists():
        result = _aezoo(*TRAIN, "--out", str(run))
    else:
        result = _aezoo("train", "--resume", str(run), "--no-progress")
    assert result.returncode == 0, result.stderr
    return result.stderr


def _trial(index: int, kill: str | float, reference: Path, root: Path) -> str:
    run = root / f"run-{index}"
    if isinstance(kill, str):
        killed = _aezoo(*TRAIN, "--out", str(run), env=_env(AEZOO_CRASH_AT=kill))
        assert killed.returncode == -9, f"{kill}: the injected kill did not happen ({killed.returncode})"
    else:
        process = subprocess.Popen(
            [sys.executable, "-m", "aezoo", *TRAIN, "--out", str(run)],
            stderr=subprocess.DEVNULL, env=_env(), cwd=REPO,
        )  # fmt: skip
        deadline = time.monotonic() + 120
        while not (run / "config.json").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(kill)
        process.kill()
        process.wait()
    _finish(run)
    for name in ("last.safetensors", "model.safetensors"):
        want, got = _tensors(reference / name), _tensors(run / name)
        assert want.keys() == got.keys(), f"trial {index} ({kill}): {name} holds other tensors"
        differ = [k for k in want if not torch.equal(want[k], got[k])]
        assert not differ, (
            f"trial {index} ({kill}): {name} differs from the uninterrupted run in {differ[:3]}"
        )
    assert _records(run) == _records(reference), f"trial {index} ({kill}): metrics.jsonl differs"
    assert not list(run.glob(".*.tmp")), f"trial {index} ({kill}): temporary files were left behind"
    return f"{kill}: identical"


def test_twenty_kills_at_random_instants_and_inside_saves_all_resume_bit_for_bit(mnist_dir, tmp_path):
    reference = tmp_path / "reference"
    started = time.monotonic()
    result = _aezoo(*TRAIN, "--out", str(reference))
    assert result.returncode == 0, result.stderr
    duration = time.monotonic() - started
    rng = random.Random(20261202)
    # timed kills anywhere from start-up to the end; injected ones inside each step of a save
    kills: list[str | float] = [rng.uniform(0, duration) for _ in range(TIMED)] + INJECTED
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(
            pool.map(lambda item: _trial(item[0], item[1], reference, tmp_path), enumerate(kills))
        )
    assert len(outcomes) == 20


def test_a_second_writer_is_refused_with_the_pid_that_holds_the_run(mnist_dir, tmp_path):
    run = tmp_path / "run"
    slow = [*train_args(max_steps=100_000), "--epochs", "10000"]  # still training while the others try
    process = subprocess.Popen(
        [sys.executable, "-m", "aezoo", *slow, "--out", str(run)],
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        cwd=REPO,
    )
    try:
        deadline = time.monotonic() + 120
        while not (run / "last.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        resumed = _aezoo("train", "--resume", str(run))
        assert resumed.returncode == 2 and "Traceback" not in resumed.stderr
        assert f"is being written by another aezoo process (PID {process.pid})" in resumed.stderr
        again = _aezoo(*TRAIN, "--out", str(run))  # a start racing for the same folder
        assert again.returncode == 2 and "already exists and is not empty" in again.stderr
        config = (run / "config.json").read_text()
    finally:
        process.kill()
        process.wait()
    assert (run / "config.json").read_text() == config  # neither touched the run's files
    resumed = _aezoo("train", "--resume", str(run), "--max-steps", "8", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr  # the kernel released the dead process's lock


@pytest.mark.parametrize("extra", [["--epochs", "1"], []])
def test_a_resume_with_nothing_to_do_leaves_the_config_alone(mnist_dir, tmp_path, extra):
    run = tmp_path / "run"
    assert _aezoo(*train_args(max_steps=4), "--out", str(run)).returncode == 0
    before = (run / "config.json").read_bytes()
    result = _aezoo("train", "--resume", str(run), *extra, "--max-steps", "4")
    assert result.returncode == 0 and "nothing to do" in result.stderr
    assert (run / "config.json").read_bytes() == before


@pytest.mark.parametrize(("nth_save", "step", "best"), [(2, 8, None), (5, 16, 16)])
def test_a_stop_signal_during_a_save_stops_after_it_and_says_how_to_continue(
    mnist_dir, tmp_path, monkeypatch, nth_save, step, best
):
    """SIGTERM while a checkpoint is written (the 2nd: mid-epoch; the 5th: the epoch's validation
    checkpoint, a new best): the save completes, the best weights are published, the run stops
    there with the line that says how to continue, and the resume ends as the uninterrupted run."""
    import signal

    import aezoo
    from aezoo import training, trainstate
    from aezoo.checkpoint import read_metadata
    from aezoo.stopping import Stopped
    from aezoo.trainer import TrainConfig

    real_save, saves = trainstate.save, []

    def save_with_a_signal(trainer, ranks=None):
        saves.append(trainer.pos.step)
        if len(saves) == nth_save:
            os.kill(os.getpid(), signal.SIGTERM)  # handled while the save below runs
        return real_save(trainer, ranks)

    monkeypatch.setattr(trainstate, "save", save_with_a_signal)
    run, lines = tmp_path / "run", []
    config = TrainConfig(max_steps=48, batch_size=16, limit_train=256, limit_eval=64, save_every=4,
                         device="cpu", threads=1, evaluate_test=False)  # fmt: skip
    hparams = {"hidden": (16,), "latent_dim": 4}
    with pytest.raises(Stopped) as stopped:
        aezoo.train("dense", hparams=hparams, config=config, out=run, progress=False, echo=lines.append)
    assert stopped.value.exit_code == 143
    assert "saving a checkpoint: stopping as soon as it is written" in lines
    assert lines[-1] == f"stopped at step {step}, saved; continue with: aezoo train --resume {run}"
    assert int(read_metadata(run / "last.safetensors")["aezoo.step"]) == step
    if best is None:
        assert not (run / "model.safetensors").exists()
    else:
        assert int(read_metadata(run / "model.safetensors")["aezoo.step"]) == best
    monkeypatch.setattr(trainstate, "save", real_save)
    training.resume(run, progress=False, echo=lines.append)
    reference = aezoo.train(
        "dense", hparams=hparams, config=config, out=tmp_path / "reference", progress=False
    )
    for name in ("last.safetensors", "model.safetensors"):
        want, got = _tensors(reference.path / name), _tensors(run / name)
        assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want), name
