"""Denormal floats and the CPU: a 16-bar musicvae training step with and without flushing them.

    python benchmarks/denormal.py [--threads 1] [--runs 5]

Times the forward and backward pass of the 16-bar benchmark model (flat and hierarchical decoders,
the sizes of `benchmarks/musicvae.py`) on a batch of 64 random windows, with
`torch.set_flush_denormal` off (torch's default) and on (what the trainer sets while it trains,
`TrainConfig.flush_denormal`). Gradients through 256 LSTM steps shrink into the denormal range,
where the CPU computes many times slower. Medians of --runs steps, after one warm-up step.
Writes benchmarks/results/denormal.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

import aezoo

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import write_result
from musicvae import SIXTEEN


def step_times(model: aezoo.AutoEncoder, tokens: torch.Tensor, runs: int) -> tuple[float, float]:
    forward, backward = [], []
    for i in range(runs + 1):
        model.zero_grad()
        started = time.perf_counter()
        loss = model.loss(tokens, tokens, step=1).loss
        middle = time.perf_counter()
        loss.backward()
        if i:  # the first is a warm-up
            forward.append(middle - started)
            backward.append(time.perf_counter() - middle)
    return statistics.median(forward), statistics.median(backward)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for decoder in ("flat", "hierarchical"):
        torch.manual_seed(0)
        model = aezoo.create("musicvae", **{**SIXTEEN, "decoder": decoder}).train()
        tokens = torch.randint(0, 90, (64, 256))
        row: dict = {"model": f"{decoder}-16bar", "batch_size": 64}
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            forward, backward = step_times(model, tokens, args.runs)
            key = "flushed" if flush else "denormal"
            row[f"{key}_forward_s"], row[f"{key}_backward_s"] = forward, backward
        torch.set_flush_denormal(False)
        row["speedup"] = (row["denormal_forward_s"] + row["denormal_backward_s"]) / (
            row["flushed_forward_s"] + row["flushed_backward_s"]
        )
        print(
            f"{decoder}: forward + backward {row['denormal_forward_s']:.3f} + {row['denormal_backward_s']:.3f} s "
            f"→ flushed {row['flushed_forward_s']:.3f} + {row['flushed_backward_s']:.3f} s ({row['speedup']:.1f}x)",
            flush=True,
        )
        rows.append(row)
    command = "python benchmarks/denormal.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_result('denormal', command.strip(), rows, threads=args.threads)}")


if __name__ == "__main__":
    main()
