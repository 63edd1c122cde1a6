"""Reconstruction quality on the MNIST test set: the built-in models against their anchors and PCA.

    python benchmarks/quality.py [--only conv,dense,conv-classic] [--epochs 10] [--threads 2]

Trains each model with `aezoo.train` (exactly what `aezoo train NAME --epochs 10` does), reads the
test-set BCE and MSE per pixel of the best checkpoint from metrics.jsonl, and fits PCA with the
same number of components on the same training split for comparison. Writes
benchmarks/results/quality.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import numpy as np
import torch

import aezoo
from aezoo.trainer import TrainConfig, load_data

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import write_result

CLASSIC = {
    "widths": (16, 8, 8),
    "latent_dim": None,
    "downsample": "maxpool",
    "upsample": "nearest",
    "batch_norm": False,
}
MODELS = {
    # key: (architecture, hyperparameters, code size, anchor text, target)
    "conv": (
        "conv",
        {},
        128,
        "0.104 (lesson, PyTorch, 30 ep.), 0.0953 (lesson, TF, 25 ep.), 0.094 (Keras blog, 50 ep.)",
        0.088,
    ),
    "conv-classic": ("conv", CLASSIC, 128, "same geometry as the anchors", None),
    "dense": ("dense", {}, 32, "≈0.09 (Keras blog, 50 ep.)", 0.088),
}


def pca_baseline(components: int, eps: float = 1e-4) -> dict[str, float]:
    from sklearn.decomposition import PCA

    data = load_data("mnist")
    train = data.train.batch(torch.arange(len(data.train)))["image"].reshape(-1, 784).numpy() / 255.0
    test = data.test.batch(torch.arange(len(data.test)))["image"].reshape(-1, 784).numpy() / 255.0
    pca = PCA(components, random_state=0).fit(train)
    recon = np.clip(pca.inverse_transform(pca.transform(test)), 0.0, 1.0)
    p = np.clip(recon, eps, 1 - eps)
    bce = float(-(test * np.log(p) + (1 - test) * np.log(1 - p)).mean())
    return {"bce": bce, "mse": float(((recon - test) ** 2).mean())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(MODELS))
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for key in args.only.split(","):
        arch, hparams, code, anchor, target = MODELS[key]
        config = TrainConfig(epochs=args.epochs, threads=args.threads, seed=args.seed)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            run = aezoo.train(arch, "mnist", hparams=hparams, config=config, out=f"{tmp}/run", progress=False)
            test = run.metrics("test")[-1]
            params = sum(p.numel() for p in run.load_model().parameters())
        minutes = (time.perf_counter() - started) / 60
        pca = pca_baseline(code)
        row = {
            "model": key,
            "architecture": arch,
            "hparams": hparams,
            "epochs": args.epochs,
            "code": code,
            "params": params,
            "test_bce": test["bce"],
            "test_mse": test["mse"],
            "pca_bce": pca["bce"],
            "pca_mse": pca["mse"],
            "anchor": anchor,
            "target_bce": target,
            "train_minutes": minutes,
        }
        rows.append(row)
        print(
            f"{key}: test BCE {row['test_bce']:.4f} MSE {row['test_mse']:.4f} | PCA-{code} BCE "
            f"{pca['bce']:.4f} MSE {pca['mse']:.4f} | {minutes:.1f} min",
            flush=True,
        )
    command = "python benchmarks/quality.py " + " ".join(sys.argv[1:])
    path = write_result("quality", command.strip(), rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
