"""Training on several processes: two ranks on the CPU (gloo) learn as one process does with the
same global batch, write one run folder, survive a killed rank, and resume bit for bit."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import aezoo
from aezoo.checkpoint import read_metadata
from aezoo.distributed import Context
from aezoo.recipes import read_recipe
from tests.test_crash import _aezoo, _env, _records, _tensors, train_args

#: 3 epochs of 16 steps of 16 examples, a checkpoint every 4 steps (tests/test_crash.py's run).
TRAIN = train_args(max_steps=48)
TWO = ["--nproc", "2"]


def _on_two(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``aezoo ARGS --nproc 2``; no process may abort as it exits (gloo's threads, when the process
    group is not destroyed first: "terminate called without an active exception")."""
    result = _aezoo(*args, *TWO, env=env)
    assert "terminate called" not in result.stderr and "SIGABRT" not in result.stderr, result.stderr
    return result


def _train_losses(run: Path) -> list[float]:
    return [r["loss"] for r in _records(run) if r["split"] == "train"]


def _step(path: Path) -> int:
    return int(read_metadata(path)["aezoo.step"])


@pytest.mark.parametrize(("examples", "batch", "world"), [(256, 16, 2), (101, 16, 3), (50, 7, 2), (33, 4, 4)])
def test_a_step_s_slices_make_up_the_single_process_batch(examples, batch, world):
    order = torch.randperm(examples, generator=torch.Generator().manual_seed(0))
    values = torch.rand(examples, dtype=torch.float64)  # one loss per example
    shards = [Context(rank=r, world_size=world).shard(order, batch) for r in range(world)]
    single = Context().shard(order, batch)
    steps = Context(world_size=world).steps_per_epoch(examples, batch)
    for step in range(steps):
        slices = [s.order[step * s.batch_size : (step + 1) * s.batch_size] for s in shards]
        want = single.order[step * batch : (step + 1) * batch]
        assert torch.equal(torch.cat(slices), want), f"step {step}: the ranks' slices are not the batch"
        assert all(len(piece) >= 1 for piece in slices)
        # what averaging the ranks' weighted mean losses gives: the mean over the whole batch
        averaged = sum(s.weight(step) * values[piece].mean() for s, piece in zip(shards, slices, strict=True))
        assert float(averaged / world) == pytest.approx(float(values[want].mean()))
    kept = torch.cat([s.order for s in shards])
    assert len(kept) >= examples - 2 * world and len(set(kept.tolist())) == len(kept)


def test_a_global_batch_smaller_than_the_processes_is_one_clear_error():
    with pytest.raises(aezoo.AezooError, match="global batch; it must give each of the 4 processes"):
        Context(rank=0, world_size=4).shard(torch.arange(10), 3)


def test_two_ranks_learn_as_one_process_survive_a_killed_rank_and_resume_bit_for_bit(mnist_dir, tmp_path):
    single, reference, killed = tmp_path / "single", tmp_path / "reference", tmp_path / "killed"
    assert (done := _aezoo(*TRAIN, "--out", str(single))).returncode == 0, done.stderr
    done = _on_two(*TRAIN, "--out", str(reference))
    assert done.returncode == 0, done.stderr
    assert "on 2 processes (cpu)" in done.stderr and done.stdout.strip() == str(reference)
    assert done.stderr.count("epoch 3 step 48: val") == 1  # rank 0 alone talks

    # the loss curve of the same global batch on one process and on two
    ones, twos = _train_losses(single), _train_losses(reference)
    assert len(ones) == len(twos) == 3
    for one, two in zip(ones, twos, strict=True):
        assert two == pytest.approx(one, rel=0.02)
    # one run folder, written by rank 0 alone, whose checkpoint a single process loads
    assert sorted(p.name for p in reference.iterdir()) == sorted(p.name for p in single.iterdir())
    assert json.loads((reference / "config.json").read_text())["processes"] == 2
    assert read_recipe(reference / "config.json").architecture == "dense"  # a recipe like any run's
    model = aezoo.load(reference / "last.safetensors")
    assert _step(reference / "last.safetensors") == 48 and model.architecture == "dense"

    # rank 1 killed after step 22: rank 0 stops too, in one line; the checkpoint of step 20 stays
    started = time.monotonic()
    crash = _on_two(*TRAIN, "--out", str(killed), env=_env(AEZOO_CRASH_AT="step:22", AEZOO_CRASH_RANK="1"))
    assert time.monotonic() - started < 120
    lines = [line for line in crash.stderr.splitlines() if line.startswith("aezoo: error:")]
    assert crash.returncode == 2 and "Traceback" not in crash.stderr, crash.stderr
    assert len(lines) == 1 and "process 1 of 2 was killed (SIGKILL)" in lines[0], crash.stderr
    assert _step(killed / "last.safetensors") == 20
    on_one = tmp_path / "on-one"
    shutil.copytree(killed, on_one)

    # resumed on two processes: the weights, best weights and metrics of the run never killed
    done = _on_two("train", "--resume", str(killed), "--no-progress")
    assert done.returncode == 0, done.stderr
    for name in ("last.safetensors", "model.safetensors"):
        want, got = _tensors(reference / name), _tensors(killed / name)
        assert want.keys() == got.keys()
        assert all(torch.equal(want[k], got[k]) for k in want), f"{name} differs from the run never killed"
    assert _records(killed) == _records(reference)

    # resumed on one process: it goes on (not bit for bit, and it says so) and learns as much
    done = _aezoo("train", "--resume", str(on_one), "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "saved by 2 process(es) and continues on 1" in done.stderr
    assert _train_losses(on_one)[-1] == pytest.approx(twos[-1], rel=0.02)


def test_a_sigterm_to_the_group_stops_every_rank_at_one_step_and_saves_once(mnist_dir, tmp_path):
    run = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "aezoo", *train_args(max_steps=4000), *TWO, "--epochs", "300", "--out", str(run)],
        stderr=subprocess.PIPE, text=True, env=_env(), cwd=Path(__file__).parents[1],
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (run / "last.safetensors").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 143, stderr
    stopped = [line for line in stderr.splitlines() if line.startswith("stopped at step")]
    assert len(stopped) == 1 and "Traceback" not in stderr and "terminate called" not in stderr, stderr
    step = int(stopped[0].split()[3].rstrip(","))
    assert _step(run / "last.safetensors") == step


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["train", "dense", "--set", "hiden=3"], "hiden"),
        (["train", "densee"], "densee"),
        (["train", "dense", "--lr", "-1"], "lr"),
        (["train", "--resume", "no-such-run"], "no-such-run"),
        (["train", "--config", "no-such-recipe.toml"], "no-such-recipe.toml"),
    ],
)
def test_a_mistake_in_a_training_on_several_processes_is_said_before_any_starts(cli, monkeypatch, args, says):
    def no_launch(*_args, **_kwargs):
        raise AssertionError("the processes were started")

    monkeypatch.setattr("aezoo.launch.launch", no_launch)
    code, _, err = cli(*args, *TWO)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("aezoo: error:") and says in err
