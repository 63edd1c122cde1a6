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
