"""benchmarks/gpu_train.py --smoke: the GPU benchmark's every path (both models, eager fp32, bf16
autocast and compiled, the trainer and the bare loop) runs on the CPU in seconds and writes its
JSON and table."""

from __future__ import annotations

import importlib.util
import json

from tests.conftest import REPO


def _benchmark():
    spec = importlib.util.spec_from_file_location("gpu_train", REPO / "benchmarks" / "gpu_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_gpu_benchmark_smoke_run_measures_every_model_and_mode(tmp_path, capsys):
    out = tmp_path / "gpu_train.json"
    result = _benchmark().main(["--smoke", "--threads", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == result
    assert result["device"] == "cpu" and result["steps"] == 2 and result["backend"] == "eager"
    rows = {(row["model"], row["mode"]): row for row in result["rows"]}
    assert set(rows) == {(m, mode) for m in ("conv", "musicvae") for mode in ("fp32", "bf16", "compiled")}
    for row in rows.values():
        assert row["batch"] == 8 and row["data"].startswith("random")
        for loop in ("bare", "trainer"):
            assert row[loop]["examples_per_s"] > 0 and row[loop]["warmup_s"] >= 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| model | mode | batch | bare loop (examples/s) | aezoo trainer")
    assert len(table) == 2 + len(rows) and "| musicvae | compiled | 8 |" in table[-1]


def test_the_zoo_gpu_script_replays_a_recipe_from_a_bare_checkout_and_bundles_the_run(mnist_dir, tmp_path):
    """benchmarks/zoo_gpu.py with the built-ins not installed (AEZOO_PLUGINS names none of them):
    the entry's recipe with the given options, the run brought back in tar parts, whole."""
    import os
    import subprocess
    import sys
    import tarfile

    import aezoo

    out = tmp_path / "out"
    env = {**os.environ, "AEZOO_PLUGINS": "nothing"}
    command = [sys.executable, str(REPO / "benchmarks" / "zoo_gpu.py"), "--bundle", "--device", "cpu",
               "--out", str(out), "--train", "dense:mnist", "--max-steps 2 --limit-train 64 --limit-eval 32"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert (
        summary["runs"]["dense:mnist"]["exit"] == 0 and not summary["runs"]["dense:mnist"]["stopped_at_limit"]
    )
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "zoo-gpu.tar.00"]
    with tarfile.open(out / "zoo-gpu.tar.00") as tar:
        tar.extractall(tmp_path / "back", filter="data")
    run = tmp_path / "back" / "dense-mnist"
    config = json.loads((run / "config.json").read_text())
    assert config["trainer"]["max_steps"] == 2 and config["hparams"]["hidden"] == [512]  # the recipe's
    assert not (run / ".aezoo-lock").exists()
    assert aezoo.load(run).architecture == "dense"


def test_the_zoo_gpu_script_continues_a_run_a_previous_loan_brought_back(mnist_dir, tmp_path):
    """Loans add up: the parts a first run wrote, left in --out, are unpacked and their run is
    resumed to the longer settings, then bundled again."""
    import os
    import subprocess
    import sys
    import tarfile

    from aezoo.runs import Run

    out = tmp_path / "out"
    env = {**os.environ, "AEZOO_PLUGINS": "nothing"}
    base = [
        sys.executable,
        str(REPO / "benchmarks" / "zoo_gpu.py"),
        "--bundle",
        "--device",
        "cpu",
        "--out",
        str(out),
    ]

    def loan(options: str) -> dict:
        result = subprocess.run([*base, "--train", "dense:mnist", options], capture_output=True, text=True,
                                env=env, cwd=tmp_path, timeout=300)  # fmt: skip
        assert result.returncode == 0, result.stderr
        return json.loads((out / "summary.json").read_text())["runs"]["dense:mnist"]

    first = loan("--max-steps 2 --limit-train 64 --limit-eval 32")
    assert not first["resumed"]
    second = loan("--max-steps 4")
    assert second["resumed"] and second["exit"] == 0
    assert sorted(p.name for p in out.iterdir()) == ["summary.json", "zoo-gpu.tar.00"]
    with tarfile.open(out / "zoo-gpu.tar.00") as tar:
        tar.extractall(tmp_path / "back", filter="data")
    run = Run.open(tmp_path / "back" / "dense-mnist")
    assert run.config["trainer"]["max_steps"] == 4 and run.config["trainer"]["limit_train"] == 64
    steps = [json.loads(line)["step"] for line in (run.path / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 4
    log = (tmp_path / "back" / "dense-mnist.log").read_text()
    assert "resuming" in log and log.count("training dense") == 1  # the first loan's log goes on

    (out / "zoo-gpu.tar.01").write_bytes(b"")  # .00 is missing now: said before anything starts
    (out / "zoo-gpu.tar.00").unlink()
    result = subprocess.run([*base, "--train", "dense:mnist", "--max-steps 6"], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=300)  # fmt: skip
    assert result.returncode == 1 and "not zoo-gpu.tar.00 to .00 in sequence" in result.stderr
