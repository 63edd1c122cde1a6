"""Training on several processes: images/s of `aezoo train` on 1 process and on 2 (`--nproc 2`).

    python benchmarks/ddp.py [--repeats 3] [--steps 200] [--models dense,conv]

Each configuration trains the same model with the same global batch (128) for --steps steps, and
its speed is taken from the trainer's own records in metrics.jsonl: the examples of the steps
between the first record (step 50) and the last, over the time between them, so start-up (torch,
the data, torchrun's rendezvous) and validation are left out. Threads are fixed per process:
1 process × 1 thread, 1 process × 2 threads, 2 processes × 1 thread; on a 2-core machine the last
two use the same cores. The configurations alternate within each repeat; every figure is a median.
The machine's load is recorded beside the result: on a shared machine the figures are noisy.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import write_result

REPO = Path(__file__).resolve().parents[1]
#: (label, processes, threads per process)
CONFIGURATIONS = [
    ("1 process × 1 thread", 1, 1),
    ("1 process × 2 threads", 1, 2),
    ("2 processes × 1 thread", 2, 1),
]
BATCH = 128


def images_per_second(model: str, processes: int, threads: int, steps: int) -> float:
    """Train ``model`` for ``steps`` steps and measure images/s between its first and last record."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        command = [sys.executable, "-m", "aezoo", "train", model, "--batch-size", str(BATCH),
                   "--max-steps", str(steps), "--threads", str(threads), "--limit-eval", "256",
                   "--no-test", "--no-progress", "--out", str(run)]  # fmt: skip
        if processes > 1:
            command += ["--nproc", str(processes)]
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        subprocess.run(command, check=True, capture_output=True, text=True, env=env, cwd=REPO)
        records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in records if r["split"] == "train"]
        first, last = train[0], train[-1]
        return (last["step"] - first["step"]) * BATCH / (last["time_s"] - first["time_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=200, help="steps per training (records every 50)")
    parser.add_argument("--models", default="dense,conv")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    rows = []
    for model in args.models.split(","):
        speeds: dict[str, list[float]] = {label: [] for label, _, _ in CONFIGURATIONS}
        for _ in range(args.repeats):
            for label, processes, threads in CONFIGURATIONS:
                speeds[label].append(images_per_second(model, processes, threads, args.steps))
        medians = {label: statistics.median(values) for label, values in speeds.items()}
        two = medians["2 processes × 1 thread"]
        row = {
            "model": model,
            "images_per_s": {label: round(value) for label, value in medians.items()},
            "all": {label: [round(v) for v in values] for label, values in speeds.items()},
            "ratio_2proc_vs_1thread": round(two / medians["1 process × 1 thread"], 3),
            "ratio_2proc_vs_2threads": round(two / medians["1 process × 2 threads"], 3),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    load = {"load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2)}
    print(json.dumps(load))
    command = f"python benchmarks/ddp.py --repeats {args.repeats} --steps {args.steps} --models {args.models}"
    path = write_result("ddp", command, rows, key="model", cpu_cores=os.cpu_count(), **load)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
