"""Training speed: the shared trainer against a bare torch loop and against the notebook loop.

    python benchmarks/trainer_speed.py [--repeats 3] [--threads 2]

1. Overhead: `Trainer.fit` for one epoch of MNIST against a hand-written loop doing the same work
   (same model, initial weights, batch order, batch size, optimiser), alternating, median of the
   repeats. The trainer also writes checkpoints and validates on 256 images at the epoch's end.
2. Throughput: images/s of the trainer against the classic notebook loop (torchvision MNIST with
   `ToTensor` per sample, a DataLoader, batch 256), for the dense model and the lesson's conv AE.
Threads are fixed; every number is a median of --repeats runs measured in this one process.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time

import torch
import torch.nn.functional as F

import aezoo
from aezoo.data import iterate
from aezoo.image import to_float
from aezoo.runs import Run
from aezoo.trainer import TrainConfig, Trainer, load_data

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import write_result

CLASSIC_CONV = {
    "widths": (16, 8, 8),
    "latent_dim": None,
    "downsample": "maxpool",
    "upsample": "nearest",
    "batch_norm": False,
}


def trainer_epoch(arch: str, hparams: dict, data, batch_size: int, steps: int | None) -> float:
    torch.manual_seed(0)
    model = aezoo.create(arch, **hparams)
    config = TrainConfig(
        epochs=1,
        max_steps=steps,
        batch_size=batch_size,
        limit_eval=256,
        evaluate_test=False,
        device="cpu",
        seed=0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        run = Run(tmp)
        trainer = Trainer(model, data, config, run, progress=False, echo=lambda _: None)
        started = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - started


def bare_epoch(arch: str, hparams: dict, data, batch_size: int, steps: int | None) -> float:
    torch.manual_seed(0)
    model = aezoo.create(arch, **hparams)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(1))
    model.train()
    started = time.perf_counter()
    for i, batch in enumerate(iterate(data.train, batch_size, order)):
        if steps is not None and i >= steps:
            break
        x = to_float(batch["image"])
        logits = model.decoder.logits(model.encoder(x))
        loss = F.binary_cross_entropy_with_logits(logits, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def notebook_epoch(arch: str, hparams: dict, root: str, batch_size: int, steps: int) -> float:
    """The classic loop: torchvision MNIST, ToTensor per sample, DataLoader."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    torch.manual_seed(0)
    model = aezoo.create(arch, **hparams)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    dataset = datasets.MNIST(root, train=True, download=False, transform=transforms.ToTensor())
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=True)
    model.train()
    started = time.perf_counter()
    for i, (x, _) in enumerate(loader):
        if i >= steps:
            break
        recon = model(x)
        loss = F.binary_cross_entropy(recon, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from aezoo.data import data_root

    data = load_data("mnist")
    rows = []
    overhead_cases = [("dense", {}, 128, None), ("conv", {}, 128, 150)]
    for arch, hp, bs, steps in overhead_cases:
        ours, bare = [], []
        for _ in range(args.repeats):
            bare.append(bare_epoch(arch, hp, data, bs, steps))
            ours.append(trainer_epoch(arch, hp, data, bs, steps))
        n_steps = steps or -(-len(data.train) // bs)
        row = {
            "benchmark": "overhead", "model": arch, "batch_size": bs, "steps": n_steps,
            "trainer_s": statistics.median(ours), "bare_s": statistics.median(bare),
            "ratio": statistics.median(ours) / statistics.median(bare), "runs_trainer": ours, "runs_bare": bare,
        }  # fmt: skip
        rows.append(row)
        print(
            f"overhead {arch}: trainer {row['trainer_s']:.2f}s bare {row['bare_s']:.2f}s ratio {row['ratio']:.3f}",
            flush=True,
        )
    root = str(data_root())
    for name, arch, hp, steps in (("dense", "dense", {}, 200), ("lesson conv", "conv", CLASSIC_CONV, 60)):
        ours, notebook = [], []
        for _ in range(args.repeats):
            notebook.append(notebook_epoch(arch, hp, root, 256, steps))
            ours.append(trainer_epoch(arch, hp, data, 256, steps))
        ours_ips = steps * 256 / statistics.median(ours)
        nb_ips = steps * 256 / statistics.median(notebook)
        row = {
            "benchmark": "throughput", "model": name, "batch_size": 256, "steps": steps,
            "trainer_images_per_s": ours_ips, "notebook_images_per_s": nb_ips, "speedup": ours_ips / nb_ips,
            "runs_trainer": ours, "runs_notebook": notebook,
        }  # fmt: skip
        rows.append(row)
        print(
            f"throughput {name}: trainer {ours_ips:.0f} img/s, notebook {nb_ips:.0f} img/s, {row['speedup']:.2f}x",
            flush=True,
        )
    command = "python benchmarks/trainer_speed.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_result('trainer_speed', command.strip(), rows, threads=args.threads)}")


if __name__ == "__main__":
    main()
