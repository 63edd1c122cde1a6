"""Dead-code restarts in the VQ-VAE plugin (plugins/aezoo-vqvae): the same training with and without.

    python benchmarks/vqvae_restarts.py [--epochs 1] [--threads 1]

Trains `vqvae` on the full MNIST (the pretrained recipe's settings: batch 128, Adam 2e-3, cosine
schedule, seed 0) once with `restart_below=0` (never restart) and once with the default 1.0, and
reports each run's test BCE and MSE per pixel, its code perplexity per batch of 256 test digits, and
how many of the 512 codes the test digits use; then the same count for the shipped `vqvae:mnist`.
Writes benchmarks/results/vqvae_restarts.json and prints a markdown table. Needs the plugin
installed (`pip install ./plugins/aezoo-vqvae`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch

import aezoo
from aezoo.data import iterate, to_device
from aezoo.plugins import load_data
from aezoo.trainer import TrainConfig

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import write_result


def codes_used(model: aezoo.model.AutoEncoder) -> int:
    """How many distinct codes the model's encoder gives the 10,000 MNIST test digits."""
    test = load_data("mnist").test
    seen = torch.zeros(model.hparams.codes, dtype=torch.bool)
    model.eval()
    with torch.no_grad():
        for batch in iterate(test, 1000):
            inputs, _ = model.prepare_batch(to_device(batch, model.device), train=False)
            seen[model.encode(inputs).flatten().unique()] = True
    return int(seen.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for restart_below in (0.0, 1.0):
        config = TrainConfig(
            epochs=args.epochs, batch_size=128, lr=2e-3, lr_schedule="cosine", seed=0, threads=args.threads
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            run = aezoo.train(
                "vqvae", "mnist", hparams={"restart_below": restart_below}, config=config, out=f"{tmp}/run",
                progress=False,
            )  # fmt: skip
            test = run.metrics("test")[-1]
            used = codes_used(run.load_model())
        row = {
            "model": f"vqvae restart_below={restart_below:g}, {args.epochs} epoch(s)",
            "restart_below": restart_below,
            "epochs": args.epochs,
            "test_bce": test["bce"],
            "test_mse": test["mse"],
            "perplexity": test["perplexity"],
            "codes_used": used,
            "train_minutes": (time.perf_counter() - started) / 60,
        }
        rows.append(row)
        print(row, flush=True)
    rows.append({"model": "vqvae:mnist (pretrained)", "codes_used": codes_used(aezoo.load("vqvae:mnist"))})
    print("| model | test BCE/pixel | test MSE/pixel | perplexity (per 256 digits) | codes used (of 512) |")
    print("|---|---|---|---|---|")
    for r in rows:
        figures = [f"{r[k]:.4f}" if k in r else "" for k in ("test_bce", "test_mse")]
        perplexity = f"{r['perplexity']:.1f}" if "perplexity" in r else ""
        print(f"| {r['model']} | {' | '.join(figures)} | {perplexity} | {r['codes_used']} |")
    command = "python benchmarks/vqvae_restarts.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_result('vqvae_restarts', command.strip(), rows)}")


if __name__ == "__main__":
    main()
