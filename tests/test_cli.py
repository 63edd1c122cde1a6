"""The ``aezoo`` command end to end, through a subprocess as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from aezoo.runs import Run
from tests.conftest import REPO, make_distribution


def aezoo(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("AEZOO_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "aezoo", *args],
        capture_output=True, text=True, env=full_env, cwd=cwd or REPO, timeout=600,
    )  # fmt: skip


def test_help_does_not_import_torch():
    code = (
        "import sys\nfrom aezoo.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and out.stdout.strip().endswith("False")


def test_list_info_datasets_plugins():
    listed = aezoo("list")
    assert listed.returncode == 0 and "conv" in listed.stdout and "dense" in listed.stdout
    info = aezoo("info", "conv")
    assert info.returncode == 0
    assert "latent_dim" in info.stdout and "one of stride, maxpool" in info.stdout
    datasets = aezoo("datasets")
    assert "fashion-mnist" in datasets.stdout
    plugins = aezoo("plugins")
    assert plugins.returncode == 0 and "images" in plugins.stdout


def test_plugins_shows_a_broken_plugin_with_its_reason(tmp_path):
    site = make_distribution(tmp_path, "aezoo-bad", {"bad": "aezoo_bad"}, {"aezoo_bad": "1/0\n"})
    result = aezoo("plugins", env={"PYTHONPATH": str(site)})
    assert result.returncode == 0
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("bad "))
    assert "broken" in line and "ZeroDivisionError: division by zero" in line
    assert "conv" in aezoo("list", env={"PYTHONPATH": str(site)}).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train", "vea"], "no architecture 'vea'"),
        (["train", "cnov"], "did you mean 'conv'?"),
        (["info", "nope"], "no architecture 'nope'"),
        (["train", "conv", "--set", "latent_dim=0"], "'latent_dim' must be >= 1, got 0"),
        (["train", "conv", "--set", "widths=a,b"], "'widths' must be list of int, got 'a,b'"),
        (["train", "conv", "--set", "widths=32,,64"], "'widths' must be list of int, got '32,,64'"),
        (["train", "conv", "--lr", "-1"], "trainer: setting 'lr' must be"),
        (["train", "conv", "--optimizer", "adm"], "'optimizer' must be one of adam"),
        (["train", "conv", "--dataset", "minst"], "did you mean 'mnist'?"),
        (["train", "--resume", "no/such/run"], "is not a run folder"),
        (["train"], "name an architecture to train"),
    ],
)
def test_user_mistakes_end_in_one_line_and_status_2(args, message):
    result = aezoo(*args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aezoo: error: ")
    assert message in lines[0]
    assert "Traceback" not in result.stderr


def test_train_then_resume_end_to_end(mnist_dir, tmp_path):
    run = tmp_path / "run"
    common = ["--limit-train", "256", "--limit-eval", "128", "--batch-size", "32", "--no-progress"]
    result = aezoo("train", "dense", "--set", "hidden=64", "--max-steps", "5", "--out", str(run), *common)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(run)
    assert "training dense on mnist (256 train / 128 val) on cpu" in result.stderr
    assert (run / "model.safetensors").exists() and (run / "reconstructions.png").exists()
    again = aezoo("train", "--resume", str(run), "--max-steps", "9", "--no-progress")
    assert again.returncode == 0, again.stderr
    assert "resuming" in again.stderr and "at step 5" in again.stderr
    records = [json.loads(ln) for ln in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["split"] == "val"] == [5, 8, 9]  # 8 steps per epoch
    busy = aezoo("train", "dense", "--out", str(run))
    assert busy.returncode == 2 and "already exists and is not empty" in busy.stderr
    config = json.loads((run / "config.json").read_text())
    config["hparams"]["hidden"] = [32]  # edited by hand: the weights no longer fit
    (run / "config.json").write_text(json.dumps(config))
    edited = aezoo("train", "--resume", str(run), "--max-steps", "10", "--no-progress")
    assert edited.returncode == 2 and "differ from those last.safetensors was trained with" in edited.stderr


def test_a_run_that_fails_before_its_first_save_leaves_nothing_behind(mnist_dir, tmp_path):
    run = tmp_path / "run"
    args = ["train", "dense", "--set", "channels=3", "--max-steps", "2", "--limit-train", "64",
            "--limit-eval", "32", "--no-progress", "--out", str(run)]  # fmt: skip
    result = aezoo(*args)
    assert result.returncode == 2 and "expects images of shape 3×28×28" in result.stderr
    assert "Traceback" not in result.stderr and not run.exists()
    run.mkdir()  # a folder you made for the run stays, empty
    assert aezoo(*args).returncode == 2
    assert run.is_dir() and not any(run.iterdir())
    (tmp_path / "file").write_text("")
    fits = [a for a in args[:-1] if a not in ("--set", "channels=3")]  # a model that fits the data
    inside_a_file = aezoo(*fits, str(tmp_path / "file" / "run"))
    assert inside_a_file.returncode == 2 and "Traceback" not in inside_a_file.stderr
    assert (
        inside_a_file.stderr.strip() == f"aezoo: error: {tmp_path}/file/run: Not a directory; check the path"
    )
    # a run killed before its first checkpoint: resume trains it from step 0, in the same folder
    stale = tmp_path / "stale"
    stale.mkdir()
    trainer = {"max_steps": 2, "limit_train": 64, "limit_eval": 32}
    config = {"architecture": "dense", "hparams": {}, "dataset": "mnist", "trainer": trainer}
    (stale / "config.json").write_text(json.dumps(config))
    (stale / "metrics.jsonl").write_text('{"split": "train", "step": 1, "loss": 0.7}\n')
    resumed = aezoo("train", "--resume", str(stale), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "was stopped before its first checkpoint: training it from step 0" in resumed.stderr
    records = Run.open(stale).metrics("train")  # one step per epoch; the planted record is gone
    assert [r["step"] for r in records] == [1, 2] and 0.7 not in [r["loss"] for r in records]
    # a finished run of aezoo 0.1 whose checkpoint was deleted still says what is missing
    (stale / "last.safetensors").unlink()
    again = aezoo("train", "--resume", str(stale))
    assert again.returncode == 2 and "has no last.safetensors to resume from" in again.stderr


@pytest.mark.parametrize(
    ("config", "problem"),
    [("[1, 2]", "a JSON list, not an object"), ("{}", "no 'architecture'"), ("{", "is unreadable")],
)
@pytest.mark.parametrize("command", [["evaluate"], ["export"], ["train", "--resume"]])
def test_a_damaged_run_config_is_one_line(tmp_path, config, problem, command):
    import aezoo as api

    run = tmp_path / "run"
    api.save(api.create("dense", hidden=(16,), latent_dim=2), run / "model.safetensors")
    (run / "config.json").write_text(config)
    result = aezoo(*command, str(run))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert problem in result.stderr and "restore it, or train a new run" in result.stderr


def test_offline_fresh_machine_trains_on_the_bundled_digits(tmp_path):
    empty = tmp_path / "empty"
    result = aezoo(
        "train", "dense", "--set", "hidden=32", "--max-steps", "3", "--batch-size", "64", "--no-progress",
        env={"AEZOO_DATA": str(empty), "AEZOO_OFFLINE": "1"}, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "using the subset aezoo ships" in result.stderr
    run = Path(result.stdout.strip())
    assert run.parts[-2] == "runs" and run.name.startswith("dense-")
    assert (tmp_path / run / "model.safetensors").exists()


@pytest.mark.parametrize(("signame", "status"), [("SIGINT", 130), ("SIGTERM", 143), ("SIGHUP", 129)])
def test_a_stop_signal_saves_the_run_and_resume_continues(mnist_dir, tmp_path, signame, status):
    """Ctrl-C, `kill` (docker stop, a cluster's preemption) and a closed terminal all finish the
    step, save, say how to continue, and exit with 128 + the signal's number."""
    import signal
    import time

    run = tmp_path / "run"
    args = ["train", "dense", "--set", "hidden=32", "--epochs", "200", "--limit-train", "1024", "--batch-size", "64",
            "--limit-eval", "64", "--no-test", "--no-progress", "--out", str(run)]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("AEZOO_PLUGINS", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "aezoo", *args], stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (run / "last.safetensors").exists():
        time.sleep(0.2)
    time.sleep(0.5)
    process.send_signal(getattr(signal, signame))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stderr
    assert "saved; continue with: aezoo train --resume" in stderr and "Traceback" not in stderr
    from safetensors import safe_open

    with safe_open(str(run / "last.safetensors"), framework="pt") as f:
        stopped = json.loads(f.metadata()["aezoo.trainer_state"])["position"]["step"]
    assert stopped > 0
    again = aezoo("train", "--resume", str(run), "--max-steps", str(stopped + 7), "--no-progress")
    assert again.returncode == 0, again.stderr
    assert f"at step {stopped}" in again.stderr
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(steps) and steps[-1] == stopped + 7  # continued, not restarted
