"""Training throughput on a GPU: aezoo's trainer against a bare PyTorch loop, per precision.

    python benchmarks/gpu_train.py                 # on the GPU (cuda), about 3 minutes
    python benchmarks/gpu_train.py --smoke         # tiny models on the CPU, seconds (the tests run it)
    python benchmarks/gpu_train.py --device cpu --models conv --modes fp32,bf16   # CPU figures

For each model (``conv`` on MNIST, ``musicvae``: 2-bar melodies) and mode (``fp32`` eager, ``bf16``
autocast, ``compiled``: torch.compile in fp32; ``compiled-bf16`` on request), the same model (same
initial weights), the same batches in the same order and the same optimiser run twice: through
``aezoo.trainer.Trainer`` (``--precision``/``--compile``: its bookkeeping, the finite-loss check,
pinned-memory copies) and through a hand-written loop (pinned copy, ``prepare_batch``, the model's
loss under autocast, backward, step). Examples/s are timed over ``--steps`` steps after ``--warmup``
untimed ones (which hold torch.compile's compilation, reported apart), with the GPU synchronised at
both ends; ``graphs_compiled`` counts the graphs torch.compile made (the second loop of a mode may
reuse the first's). Data: MNIST's training images for conv when found (``AEZOO_DATA``, or the
digits aezoo ships), repeated to fill the steps; random token sequences of the 2-bar shape for
musicvae (``model.example_batch``); random data for both with ``--smoke``. A step's speed does not
depend on the values. Writes a JSON file (``--out``, default benchmarks/results/gpu_train.json)
and prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import aezoo
from aezoo.callbacks import Callback, Callbacks
from aezoo.data import DataSplits, TensorSplit, to_device
from aezoo.model import AutoEncoder, OptimizerConfig
from aezoo.plugins import load_data
from aezoo.runs import Run
from aezoo.trainer import TrainConfig, Trainer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, git_revision, machine

#: Mode → (precision, compiled).
MODES: dict[str, tuple[str, bool]] = {
    "fp32": ("fp32", False),
    "bf16": ("bf16", False),
    "compiled": ("fp32", True),
    "compiled-bf16": ("bf16", True),
}
#: Model → (hyperparameters, batch size) on a GPU; --smoke uses each architecture's smoke model.
MODELS: dict[str, tuple[dict[str, Any], int]] = {
    "conv": ({}, 256),
    "musicvae": ({"bars": 2}, 512),
}


def training_split(model: AutoEncoder, name: str, examples: int, *, real: bool) -> tuple[TensorSplit, str]:
    """``examples`` training examples for ``model`` (MNIST's for conv when ``real`` and found) and
    where they come from."""
    if name == "conv" and real:
        with contextlib.suppress(Exception):
            data = load_data("mnist", seed=0)
            images = data.train.batch(torch.arange(min(len(data.train), examples)))["image"]
            repeats = -(-examples // len(images))
            source = f"MNIST ({data.info.get('source', data.name)}, {len(images)} images)"
            return TensorSplit({"image": images.repeat(repeats, *[1] * (images.ndim - 1))[:examples]}), source
    batch = model.example_batch(examples, torch.Generator().manual_seed(0))
    kind = "random bytes of MNIST's shape" if name == "conv" else "random 2-bar token sequences"
    return TensorSplit({k: v.cpu() for k, v in batch.items()}), kind


class StepTimer(Callback):
    """Wall time from the end of step ``first`` to the end of step ``last`` (GPU synchronised)."""

    def __init__(self, first: int, last: int, device: torch.device) -> None:
        self.first, self.last, self.device = first, last, device
        self.started = self.ended = 0.0
        self.setup = time.perf_counter()
        self.warmup_s = 0.0

    def on_step_end(self, trainer: Trainer) -> None:
        if trainer.pos.step in (self.first, self.last):
            synchronize(self.device)
            now = time.perf_counter()
            if trainer.pos.step == self.first:
                self.started, self.warmup_s = now, now - self.setup
            else:
                self.ended = now


def compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process so far."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fresh_model(name: str, hparams: dict[str, Any], device: torch.device) -> AutoEncoder:
    torch.manual_seed(0)
    return aezoo.create(name, **hparams).to(device)


def through_trainer(
    name: str, hparams: dict[str, Any], split: TensorSplit, batch: int, mode: str, args: argparse.Namespace
) -> dict[str, float]:
    precision, compiled = MODES[mode]
    model = fresh_model(name, hparams, args.device)
    data = DataSplits("bench", split, split.head(batch), split.head(batch))
    config = TrainConfig(
        epochs=1, max_steps=args.warmup + args.steps, batch_size=batch, device=str(args.device),
        precision=precision, compile=compiled, compile_backend=args.backend, evaluate_test=False,
        log_every=10**6, save_minutes=10**6, seed=0,
    )  # fmt: skip
    timer = StepTimer(args.warmup, args.warmup + args.steps, args.device)
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(model, data, config, Run(folder), progress=False, echo=lambda _: None)
        trainer.callbacks = Callbacks([*trainer.callbacks.named, ("timer", "benchmark", timer)])
        trainer.fit()
    return {"examples_per_s": batch * args.steps / (timer.ended - timer.started), "warmup_s": timer.warmup_s}


def bare_loop(
    name: str, hparams: dict[str, Any], split: TensorSplit, batch: int, mode: str, args: argparse.Namespace
) -> dict[str, float]:
    """What one writes by hand: the same steps with nothing around them."""
    precision, compiled = MODES[mode]
    device = args.device
    model = fresh_model(name, hparams, device)
    optimizer = model.configure_optimizers(OptimizerConfig("adam", 1e-3, 0.0))["model"]
    optimizer = optimizer[0] if isinstance(optimizer, tuple) else optimizer
    loss = torch.compile(model.loss, backend=args.backend) if compiled else model.loss
    dtype = {"fp32": None, "bf16": torch.bfloat16}[precision]
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(1))  # the trainer's order
    model.train()
    setup = time.perf_counter()
    started = 0.0
    for step in range(args.warmup + args.steps):
        if step == args.warmup:
            synchronize(device)
            started = time.perf_counter()
        examples = to_device(split.batch(order[step * batch : (step + 1) * batch]), device)
        inputs, targets = model.prepare_batch(examples, train=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = loss(inputs, targets, step)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
    synchronize(device)
    ended = time.perf_counter()
    return {"examples_per_s": batch * args.steps / (ended - started), "warmup_s": started - setup}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | mode | batch | bare loop (examples/s) | aezoo trainer (examples/s) | trainer/bare | warm-up s (bare, trainer) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        bare, ours = r["bare"]["examples_per_s"], r["trainer"]["examples_per_s"]
        lines.append(
            f"| {r['model']} | {r['mode']} | {r['batch']} | {bare:,.0f} | {ours:,.0f} | {ours / bare:.2f} | "
            f"{r['bare']['warmup_s']:.1f}, {r['trainer']['warmup_s']:.1f} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="default: cuda (cpu with --smoke)")
    parser.add_argument("--models", default="conv,musicvae")
    parser.add_argument("--modes", default=None, help="default: fp32,bf16,compiled (compiled-bf16 too)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default 100; 2 with --smoke)")
    parser.add_argument(
        "--warmup", type=int, default=None, help="untimed steps first (default 10; 1 with --smoke)"
    )
    parser.add_argument("--batch-size", type=int, default=None, help="default: per model (8 with --smoke)")
    parser.add_argument(
        "--backend", default=None, help="torch.compile backend (inductor; aot_eager with --smoke)"
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--smoke", action="store_true", help="tiny models, few steps, on the CPU: seconds")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON results (default benchmarks/results/gpu_train.json)"
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.device = torch.device(args.device or ("cpu" if smoke else "cuda"))
    args.modes = (args.modes or "fp32,bf16,compiled").split(",")
    args.models = args.models.split(",")
    args.steps = args.steps or (2 if smoke else 100)
    args.warmup = args.warmup or (1 if smoke else 10)
    args.backend = args.backend or ("eager" if smoke else "inductor")
    args.out = args.out or RESULTS / ("gpu_train_smoke.json" if smoke else "gpu_train.json")
    unknown = [m for m in args.modes if m not in MODES] + [m for m in args.models if m not in MODELS]
    if unknown:
        parser.error(f"unknown mode or model: {', '.join(unknown)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_train: no CUDA device here; run with --smoke or --device cpu")
    rows = []
    for name in args.models:
        hparams, batch = MODELS[name]
        if args.smoke:
            hparams = {**hparams, **aezoo.architecture(name).smoke_hparams}
        batch = args.batch_size or (8 if args.smoke else batch)
        examples = batch * (args.warmup + args.steps)
        split, source = training_split(aezoo.create(name, **hparams), name, examples, real=not args.smoke)
        for mode in args.modes:
            # alternate which loop goes first, so neither always inherits a warm GPU
            first, second = (
                (bare_loop, through_trainer) if len(rows) % 2 == 0 else (through_trainer, bare_loop)
            )
            results = {}
            for fn in (first, second):
                graphs = compiled_graphs()
                results[fn.__name__] = fn(name, hparams, split, batch, mode, args)
                results[fn.__name__]["graphs_compiled"] = compiled_graphs() - graphs  # recompiles show here
            rows.append(
                {"model": name, "mode": mode, "batch": batch, "data": source,
                 "bare": results["bare_loop"], "trainer": results["through_trainer"]}
            )  # fmt: skip
            print(f"{name} {mode}: {json.dumps(rows[-1])}", file=sys.stderr, flush=True)
    result = {
        "command": "python benchmarks/gpu_train.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "device": torch.cuda.get_device_name(args.device) if args.device.type == "cuda" else "cpu",
        "revision": git_revision(),
        "steps": args.steps,
        "warmup": args.warmup,
        "backend": args.backend,
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(rows))
    return result


if __name__ == "__main__":
    main()
