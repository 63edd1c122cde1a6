"""Streaming a folder of photos from disk (``aezoo train --stream``) against holding it in memory:
peak memory, speed and CPU cost at 1×, 4× and 16× the size of T91.

    python benchmarks/streaming.py [--repeats 5] [--batches 60] [--steps 30]

Each folder holds copies of T91's 91 photos ($AEZOO_DATA/sr/train), written to a temporary folder.
Every measurement is a fresh child process that loads ``images:FOLDER`` (streamed, with the default
workers, or in memory), then takes the trainer's seeded order through
:func:`aezoo.streaming.stream_batches` as the trainer does: ``--batches`` batches of 64 patches with
no model (the data pipeline alone), then ``--steps`` training steps of superres:t91-x2's recipe
(its model, batch 16, one torch thread).

Memory: the child's peak resident set (VmHWM) plus the most its workers held of their own at once
(private pages of /proc/PID/smaps_rollup, sampled every 20 ms; what a forked worker shares with
its parent is counted once, in the parent). Speed: patches per second after loading; cost: CPU
milliseconds per patch of the child and its workers (RUSAGE_SELF + RUSAGE_CHILDREN), which a busy
machine disturbs far less than wall time. The 16× folder is run again under an address-space limit
(RLIMIT_AS, set in the child and inherited by its workers; no cgroup is writable here): the 1×
streamed run's peak virtual size plus half the 16× folder's decoded pixels, too little to hold
them. Medians of ``--repeats`` runs, sizes and modes interleaved (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result

SCALES = (1, 4, 16)
BATCH = 64
#: The model and batch of superres:t91-x2's recipe (plugins/aezoo_superres/pretrained/t91-x2).
RECIPE_HPARAMS = {"scale": 2, "channels": 1, "features": 64, "depth": 6, "loss": "l1"}
TRAIN_BATCH = 16


def _status_kb(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+)", Path("/proc/self/status").read_text()).group(1))


def _workers_private_kb() -> int:
    """Memory the worker processes hold of their own (private pages: not shared with this one)."""
    total = 0
    for task in Path("/proc/self/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue  # it has just ended
            total += sum(int(kb) for kb in re.findall(r"Private_(?:Clean|Dirty):\s+(\d+)", text))
    return total


class WorkerPeak(threading.Thread):
    """Samples :func:`_workers_private_kb` every 20 ms; ``peak_kb`` is the most seen."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_kb, self.done = 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak_kb = max(self.peak_kb, _workers_private_kb())


def _cpu_s() -> float:
    """CPU seconds of this process and of its ended children (the workers, once joined)."""
    own, ended = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + ended.ru_utime + ended.ru_stime


def child(folder: str, stream: bool, batches: int, steps: int, limit: int | None) -> dict:
    """One measurement, in this (fresh) process."""
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import torch

    import aezoo
    from aezoo.errors import AezooError
    from aezoo.plugins import load_data
    from aezoo.streaming import default_workers, stream_batches

    torch.set_num_threads(1)  # as the superres recipe: the other core reads ahead
    row: dict = {"workers": default_workers() if stream else 0}
    sampler = WorkerPeak()
    sampler.start()
    try:
        started = time.perf_counter()
        data = load_data(f"images:{folder}", stream=stream)
        row["load_s"] = round(time.perf_counter() - started, 3)
        order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(1))
        torch.manual_seed(0)
        started, cpu, count = time.perf_counter(), _cpu_s(), 0
        for batch in stream_batches(data.train, BATCH, order[: batches * BATCH], seed=0):
            count += len(batch["image"])
        row["pipeline_patches_per_s"] = round(count / (time.perf_counter() - started), 1)
        row["pipeline_cpu_ms_per_patch"] = round((_cpu_s() - cpu) * 1000 / count, 3)
        model = aezoo.create("superres", **RECIPE_HPARAMS)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        started, cpu = time.perf_counter(), _cpu_s()
        for batch in stream_batches(data.train, TRAIN_BATCH, order[: steps * TRAIN_BATCH], seed=0):
            inputs, targets = model.prepare_batch(batch, train=True)
            for update in model.training_step(inputs, targets, 0):
                optimizer.zero_grad(set_to_none=True)
                update.loss.backward()
                optimizer.step()
        row["training_patches_per_s"] = round(steps * TRAIN_BATCH / (time.perf_counter() - started), 1)
        row["training_cpu_ms_per_patch"] = round((_cpu_s() - cpu) * 1000 / (steps * TRAIN_BATCH), 3)
        row["status"] = "ok"
    except (MemoryError, RuntimeError, AezooError) as exc:
        lines = str(exc).strip().splitlines()
        row["status"] = f"{type(exc).__name__}: {lines[0][:120]}" if lines else type(exc).__name__
    sampler.done.set()
    sampler.join()
    row["peak_rss_mb"] = round(_status_kb("VmHWM") / 1024, 1)
    row["peak_vm_mb"] = round(_status_kb("VmPeak") / 1024, 1)
    row["workers_peak_private_mb"] = round(sampler.peak_kb / 1024, 1)
    row["peak_total_mb"] = round(row["peak_rss_mb"] + row["workers_peak_private_mb"], 1)
    return row


def measure(folder: Path, stream: bool, batches: int, steps: int, limit: int | None = None) -> dict:
    args = [sys.executable, __file__, "--child", json.dumps([str(folder), stream, batches, steps, limit])]
    result = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    if result.returncode != 0:
        return {"status": f"exit {result.returncode}: {result.stderr.strip().splitlines()[-1:]}"}
    return json.loads(result.stdout.strip().splitlines()[-1])


def make_folders(source: Path, root: Path) -> dict[int, tuple[Path, int]]:
    """``{scale: (folder, decoded bytes)}``: each folder holds ``scale`` copies of every photo."""
    from PIL import Image

    photos = sorted(p for p in source.iterdir() if p.suffix.lower() == ".bmp")
    pixels = 0
    for photo in photos:
        with Image.open(photo) as img:
            pixels += img.size[0] * img.size[1] * 3
    folders = {}
    for scale in SCALES:
        folder = root / f"x{scale}"
        folder.mkdir()
        for copy in range(scale):
            for photo in photos:
                shutil.copyfile(photo, folder / f"c{copy:02d}-{photo.name}")
        folders[scale] = (folder, pixels * scale)
    return folders


def median_row(rows: list[dict]) -> dict:
    ok = [r for r in rows if r.get("status") == "ok"]
    if not ok:
        return {"status": rows[0].get("status"), "runs": len(rows)}
    keys = ("load_s", "pipeline_patches_per_s", "pipeline_cpu_ms_per_patch", "training_patches_per_s",
            "training_cpu_ms_per_patch", "peak_rss_mb", "peak_vm_mb", "workers_peak_private_mb",
            "peak_total_mb")  # fmt: skip
    return {
        **{k: statistics.median(r[k] for r in ok) for k in keys},
        "workers": ok[0]["workers"],
        "status": "ok" if len(ok) == len(rows) else f"{len(rows) - len(ok)} of {len(rows)} runs failed",
        "runs": len(rows),
        "repeats": {k: [r.get(k) for r in rows] for k in (*keys, "status")},
    }


def run_all(folders: dict[int, tuple[Path, int]], repeats: int, batches: int, steps: int) -> tuple[dict, int]:
    """Median rows by ``(scale, mode)``, and the address-space limit of the limited 16× runs."""
    runs: dict[tuple[int, str], list[dict]] = {}
    for _ in range(repeats):
        for scale, (folder, _) in folders.items():
            for mode in ("streamed", "in memory"):
                row = measure(folder, mode == "streamed", batches, steps)
                runs.setdefault((scale, mode), []).append(row)
    results = {key: median_row(rows) for key, rows in runs.items()}
    folder16, decoded16 = folders[16]
    limit = int(results[(1, "streamed")]["peak_vm_mb"] * 2**20 + decoded16 // 2)
    for mode in ("streamed", "in memory"):
        rows = [measure(folder16, mode == "streamed", batches, steps, limit) for _ in range(repeats)]
        results[(16, f"{mode}, RLIMIT_AS {limit / 2**20:.0f} MiB")] = median_row(rows)
    return results, limit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=60, help="batches of 64 patches, data pipeline alone")
    parser.add_argument("--steps", type=int, default=40, help="training steps of 16 patches")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*json.loads(args.child))))
        return
    source = Path(os.environ.get("AEZOO_DATA", "")) / "sr" / "train"
    if not source.is_dir():
        sys.exit(f"T91 is not in {source}: set AEZOO_DATA to a folder holding sr/train")
    with tempfile.TemporaryDirectory(prefix="aezoo-streaming-") as tmp:
        folders = make_folders(source, Path(tmp))
        results, limit = run_all(folders, args.repeats, args.batches, args.steps)
    table = []
    base = results[(1, "streamed")]
    for (scale, mode), row in results.items():
        entry = {"scale": scale, "files": 91 * scale, "decoded_mb": round(folders[scale][1] / 2**20, 1)}
        entry.update(mode=mode, **row)
        if mode.startswith("streamed") and row.get("status") == "ok":
            entry["peak_total_vs_1x"] = round(row["peak_total_mb"] / base["peak_total_mb"], 3)
            for speed in ("pipeline_patches_per_s", "training_patches_per_s"):
                entry[speed.replace("patches_per_s", "speed_vs_1x")] = round(row[speed] / base[speed], 3)
            for cost in ("pipeline_cpu_ms_per_patch", "training_cpu_ms_per_patch"):
                entry[cost.replace("ms_per_patch", "vs_1x")] = round(row[cost] / base[cost], 3)
        table.append(entry)
    command = ("python benchmarks/streaming.py " + " ".join(sys.argv[1:])).strip()
    path = write_result(
        "streaming", command, table, limit_bytes=limit, batches=args.batches, steps=args.steps
    )
    columns = {"load_s": "load s", "pipeline_patches_per_s": "pipe/s", "pipeline_cpu_ms_per_patch": "pipe cpu",
               "training_patches_per_s": "train/s", "training_cpu_ms_per_patch": "train cpu",
               "peak_rss_mb": "main MB", "workers_peak_private_mb": "workers", "peak_total_mb": "total",
               "peak_total_vs_1x": "vs 1x"}  # fmt: skip
    print(f"{'files':>6} {'mode':<32} " + " ".join(f"{name:>9}" for name in columns.values()) + " status")
    for row in table:
        cells = " ".join(f"{row.get(key, '-')!s:>9}" for key in columns)
        print(f"{row['files']:>6} {row['mode']:<32} {cells} {row.get('status')}")
    print(f"results: {path}")


if __name__ == "__main__":
    main()
