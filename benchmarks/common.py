"""Shared helpers of the benchmark scripts: machine description and result files."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    accelerator = f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else ""
    return (
        f"{cpu}, {os.cpu_count()} cores{accelerator}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), python {platform.python_version()}"
    )


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def paired_median_ms(first, second, runs: int, warmup: int = 5, blocks: int = 10) -> tuple[float, float]:
    """Median wall times in milliseconds of ``first()`` and ``second()`` over ``runs`` calls each,
    taken in ``blocks`` alternating blocks so that drift in the machine's speed (another process,
    clocks) falls on both alike. Each block starts with ``warmup`` untimed calls: alternating call
    by call would instead time each runtime against the other's still-spinning thread pool."""
    times: tuple[list[float], list[float]] = ([], [])
    per_block = max(1, runs // blocks)
    for _ in range(blocks):
        for fn, out in ((first, times[0]), (second, times[1])):
            for _ in range(warmup):
                fn()
            for _ in range(per_block):
                started = time.perf_counter()
                fn()
                out.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[0]), statistics.median(times[1])


def write_result(
    name: str,
    command: str,
    rows: list[dict],
    key: str | None = None,
    finalize: Callable[[list[dict]], None] | None = None,
    folder: Path | None = None,
    **extra,
) -> Path:
    """Write ``results/NAME.json`` (``folder/NAME.json`` with ``folder``). With ``key``, rows of
    earlier runs whose ``row[key]`` was not measured again are kept (each keeps its own command,
    date and machine). ``finalize`` may edit the merged rows (say, compare a new row with a kept
    one). Processes writing the same file at once take turns (a lock file beside it), so runs side
    by side lose no rows."""
    folder = RESULTS if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    with open(folder / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _write_rows(path, command, rows, key, finalize, extra)
    return path


def _write_rows(
    path: Path,
    command: str,
    rows: list[dict],
    key: str | None,
    finalize: Callable[[list[dict]], None] | None,
    extra: dict,
) -> None:
    stamp = {
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "revision": git_revision(),
    }
    if key is not None:
        rows = [{**row, **stamp} for row in rows]
        if path.exists():
            fresh = {row[key] for row in rows}
            rows = [r for r in json.loads(path.read_text())["rows"] if r[key] not in fresh] + rows
    if finalize is not None:
        finalize(rows)
    payload = {
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "revision": git_revision(),
        **extra,
        "rows": rows,
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)
