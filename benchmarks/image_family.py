"""Quality of the image family on MNIST, each against the lesson's anchor.

    python benchmarks/image_family.py [--only denoising,superres,vae-2d,aae,vae-nll] [--threads 2]

Every case trains with `aezoo.train` (the same as the `aezoo train` command printed with it) and
reads the test-set numbers of the best checkpoint; `vae-nll` then estimates the negative
log-likelihood with `aezoo.evaluation.log_likelihood` (importance sampling, --nll-samples per
test image). Writes benchmarks/results/image_family.json.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch

import aezoo
from aezoo.evaluation import log_likelihood
from aezoo.trainer import TrainConfig, load_data

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import write_result

#: name → (architecture, hyperparameters, trainer settings, metric, anchor, target, note)
CASES = {
    "denoising": (
        "denoising", {}, {"epochs": 3}, "bce", 0.133, 0.120,
        "test BCE of the denoised image against the clean one; noise N(0.5, 0.3) added, clamped (lesson: 100 epochs)",
    ),
    "superres": (
        "superres", {"features": 32, "depth": 4}, {"epochs": 2}, "bce", 0.103, 0.095,
        "MNIST 14→28, test BCE (lesson's anchor)",
    ),
    "vae-2d": (
        "vae", {"network": "dense", "latent_dim": 2, "hidden": (512, 256), "reconstruction": "mse"},
        {"epochs": 100, "lr_schedule": "cosine"},
        "mse_x784_plus_kl", 35.6, 33.0, "the lesson's 2-d dense VAE metric: test MSE·784 + KL",
    ),
    "aae": (
        "aae", {}, {"epochs": 5}, "bce", None, None,
        "2-d codes; d_accuracy near 0.5 and code mean 0 / std 1 mean the codes match the N(0, I) prior",
    ),
    "vae-nll": (
        "vae", {"latent_dim": 32, "binarize": True, "kl_warmup_steps": 1000}, {"epochs": 100, "lr_schedule": "cosine"},
        "nll", 89.78, 88.0, "binarised MNIST NLL in nats, importance-sampled (pythae's VAE 89.78, IWAE 86.82)",
    ),
}  # fmt: skip


def command_for(arch: str, hparams: dict, settings: dict) -> str:
    parts = [f"aezoo train {arch}"]
    for key, value in settings.items():
        parts.append(f"--{key.replace('_', '-')} {value}")
    for key, value in hparams.items():
        text = ",".join(map(str, value)) if isinstance(value, tuple) else str(value).lower()
        parts.append(f"--set {key}={text}")
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(CASES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--nll-samples", type=int, default=100)
    parser.add_argument("--nll-examples", type=int, default=10000, help="test images for the NLL estimate")
    parser.add_argument("--out", default="runs/bench")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for key in args.only.split(","):
        arch, hparams, settings, metric, anchor, target, note = CASES[key]
        config = TrainConfig(threads=args.threads, **settings)
        started = time.perf_counter()
        run = aezoo.train(
            arch, "mnist", hparams=hparams, config=config, out=f"{args.out}/{key}", progress=False
        )
        minutes = (time.perf_counter() - started) / 60
        test = run.metrics("test")[-1]
        row = {
            "case": key, "architecture": arch, "train_command": command_for(arch, hparams, settings), "metric": metric,
            "anchor": anchor, "target": target, "note": note, "train_minutes": minutes, "test": test,
            "run": str(run.path),
        }  # fmt: skip
        if metric == "nll":
            model = run.load_model(device=run.config["device"])
            split = load_data("mnist").test
            if args.nll_examples < len(split):
                split = split.head(args.nll_examples)
            started = time.perf_counter()
            row["nll"] = log_likelihood(model, split, args.nll_samples)
            row["nll_minutes"] = (time.perf_counter() - started) / 60
            row["value"] = row["nll"]["nll"]
        else:
            row["value"] = test[metric]
        rows.append(row)
        print(
            f"{key}: {metric} {row['value']:.4f} (anchor {anchor}, target {target}) in {minutes:.1f} min",
            flush=True,
        )
        print(f"  test: { {k: round(v, 4) for k, v in test.items() if isinstance(v, float)} }", flush=True)
    command = "python benchmarks/image_family.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_result('image_family', command.strip(), rows, key='case', threads=args.threads)}")


if __name__ == "__main__":
    main()
