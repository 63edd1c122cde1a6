"""musicvae at 16 bars on a GPU in a few minutes: flat and hierarchical decoders of equal parameter
counts at the largest width that fits a training budget, trained for the same steps, evaluated as
benchmarks/musicvae_length.py does (rows in benchmarks/results/musicvae_length.json).

    python benchmarks/musicvae_gpu.py --prepare        # once, where music21 is: parse the folk tunes
    python benchmarks/musicvae_gpu.py --minutes 5      # on the GPU; run again to continue
    python benchmarks/musicvae_gpu.py --smoke          # tiny, 2-bar chorales, CPU (the tests run it)

Everything lives in one folder, ``--work`` (runs/musicvae-gpu, ignored by git): the parsed windows
(``data/folk-tunes-16bar.npz``, about 1 MB, written by --prepare: the GPU machine needs neither
music21 nor its corpus), the plan (``plan.json``) and both runs' checkpoints. The first run measures
a few training steps of each decoder at every width of ``--widths`` and plans the widest whose
``--steps`` steps of both decoders fit ``--minutes`` and whose two run folders (weights and Adam's
state, 16 bytes per parameter) fit ``--max-state-mb``, so the folder can travel between machines.
Every later run follows that plan. Each run trains until ``--session-minutes`` (or
``--session-steps`` per decoder) are spent, then stops with a checkpoint: short GPU loans add up
(``aezoo train --resume`` is bit for bit). When both decoders have their steps, the rows are
written. ``--pack DIR`` then writes the work folder as ``DIR/musicvae-gpu.tar.NN`` parts of at most
15 MiB (for transfers that limit file sizes; ``cat DIR/musicvae-gpu.tar.* | tar -x -C runs``
restores it). ``--precision bf16`` and ``--compile`` go to the trainer.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import math
import os
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO), str(REPO / "plugins")]  # runnable uninstalled

import torch  # noqa: E402

import aezoo  # noqa: E402
from aezoo.plugins import load_data, registry  # noqa: E402
from aezoo.runs import Run  # noqa: E402

if "musicvae" not in registry().architectures:  # a bare checkout: aezoo is not installed
    import aezoo_musicvae

    aezoo.register_plugin(aezoo_musicvae, "musicvae")

import musicvae_length as length  # noqa: E402
from common import RESULTS, write_result  # noqa: E402

PART_BYTES = 15 * 2**20
#: Bytes a run folder holds per parameter: the weights, Adam's two moments, the best weights.
STATE_BYTES_PER_PARAMETER = 16


def time_steps(
    hparams: dict[str, Any], tokens: torch.Tensor, val: torch.Tensor, args: argparse.Namespace
) -> tuple[float, float]:
    """Seconds per training step of a fresh model (median of a few, after warm-up steps), and
    seconds of one validation (the trainer's, at every epoch's end)."""
    torch.manual_seed(0)
    model = aezoo.create("musicvae", **hparams).to(args.device_obj).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    dtype = torch.bfloat16 if args.precision == "bf16" else torch.float16
    times = []
    for i in range(args.probe_steps + 2):
        batch = tokens[torch.randint(len(tokens), (args.batch_size,))].to(args.device_obj)
        started = time.perf_counter()
        with torch.autocast(args.device_obj.type, dtype=dtype, enabled=args.precision != "fp32"):
            loss = model.loss(batch, batch, step=i).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        synchronize(args.device_obj)
        times.append(time.perf_counter() - started)
    model.eval()
    started = time.perf_counter()
    size = max(args.batch_size, 256)
    for i in range(0, len(val), size):
        part = val[i : i + size].to(args.device_obj)
        model.evaluate(part, part)
    synchronize(args.device_obj)
    return sorted(times[2:])[len(times[2:]) // 2], time.perf_counter() - started


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def make_plan(args: argparse.Namespace, tokens: torch.Tensor, val: torch.Tensor) -> dict[str, Any]:
    """The widest width of ``--widths`` whose steps (and the validations at each epoch's end) fit
    the minutes and whose state fits."""
    budget = args.minutes * 60 * (1 - args.margin)
    validations = math.ceil(args.steps / max(1, len(tokens) // args.batch_size))
    chosen, probes = None, []
    for width in args.widths:
        sizes = length.matched_hparams(width, args.bars, args.z_size, args.recipe)
        params = {d: length.count_parameters(h) for d, h in sizes.items()}
        timed = {d: time_steps(h, tokens, val, args) for d, h in sizes.items()}
        # a step's share of the validations, so a session can tell how many steps it can afford
        step_s = {d: step + validations * val_s / args.steps for d, (step, val_s) in timed.items()}
        state_mb = sum(params.values()) * STATE_BYTES_PER_PARAMETER / 2**20
        seconds = args.steps * sum(step_s.values())
        fits = seconds <= budget and (args.max_state_mb <= 0 or state_mb <= args.max_state_mb)
        probes.append(
            {"width": width, "params": params, "step_s": step_s, "train_s": seconds, "state_mb": state_mb}
        )
        print(
            f"width {width}: {params['flat']:,} / {params['hierarchical']:,} parameters (flat / hierarchical), "
            f"{step_s['flat'] * 1000:.1f} / {step_s['hierarchical'] * 1000:.1f} ms per step: {args.steps} steps "
            f"{seconds / 60:.1f} min, state {state_mb:.0f} MB{'' if fits else ' - too much'}",
            flush=True,
        )
        if not fits:
            break
        chosen = probes[-1] | {"hparams": sizes}
    if chosen is None:
        raise SystemExit(
            f"musicvae_gpu: not even width {args.widths[0]} fits {args.minutes} minutes; give more"
        )
    return {
        "width": chosen["width"],
        "hparams": chosen["hparams"],
        "params": chosen["params"],
        "step_s": chosen["step_s"],
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "minutes": args.minutes,
        "precision": args.precision,
        "compile": args.compile,
        "device": device_name(args.device_obj),
        "probes": probes,
    }


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def trained_steps(path: Path) -> int:
    """Steps a run folder has trained (0: none yet)."""
    if not (path / "config.json").exists():
        return 0
    records = [r for r in Run.open(path).metrics("train")]
    return records[-1]["step"] if records else 0


def train_session(args: argparse.Namespace, plan: dict[str, Any], dataset: str, deadline: float) -> bool:
    """Train each decoder towards the plan's steps until the deadline; True when both have them."""
    done = True
    for decoder in length.DECODERS:
        path = args.work / "runs" / f"{args.source}-{decoder}"
        now = trained_steps(path)
        left = deadline - time.monotonic()
        affordable = (
            plan["steps"] if math.isinf(left) else int(max(0.0, left) / (plan["step_s"][decoder] * 1.25))
        )
        target = min(plan["steps"], now + affordable, now + (args.session_steps or plan["steps"]))
        if target > now:
            print(f"{decoder}: steps {now} → {target} of {plan['steps']}", flush=True)
            step_args = argparse.Namespace(**{**vars(args), "steps": target})
            length.train_or_resume(path, dataset, plan["hparams"][decoder], step_args)
        done = done and trained_steps(path) >= plan["steps"]
    return done


def pack(work: Path, out: Path) -> list[Path]:
    """``work`` as a tar in parts of at most 15 MiB: ``out/NAME.tar.00``, ``.01``..."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(work, arcname=work.name)
    data = buffer.getvalue()
    out.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(math.ceil(len(data) / PART_BYTES)):
        part = out / f"{work.name}.tar.{i:02d}"
        part.write_bytes(data[i * PART_BYTES : (i + 1) * PART_BYTES])
        parts.append(part)
    return parts


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget of both decoders")
    parser.add_argument(
        "--session-minutes", type=float, default=None, help="stop this run after (default: all)"
    )
    parser.add_argument(
        "--session-steps", type=int, default=None, help="at most this many steps per decoder now"
    )
    parser.add_argument("--steps", type=int, default=None, help="steps of each decoder (default 2000)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 256")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--widths", default=None, help="widths to try (default 128,192,256,384,512,768,1024)")
    parser.add_argument("--max-state-mb", type=float, default=40.0, help="both run folders at most (0: any)")
    parser.add_argument("--margin", type=float, default=0.15, help="share of the minutes kept for evaluation")
    parser.add_argument("--probe-steps", type=int, default=5)
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default=None, help="default cuda (cpu with --smoke)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default 2; 1 with --smoke)"
    )
    parser.add_argument("--work", type=Path, default=None, help="default runs/musicvae-gpu")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--pairs", type=int, default=64, help="interpolation pairs")
    parser.add_argument(
        "--prepare", action="store_true", help="only parse the folk tunes into the work folder"
    )
    parser.add_argument("--pack", type=Path, default=None, help="write the work folder as 15 MiB parts here")
    parser.add_argument("--smoke", action="store_true", help="tiny widths, a few steps, on the CPU")
    args = parser.parse_args(argv)
    smoke = args.smoke
    args.device = args.device or ("cpu" if smoke else "cuda")
    args.threads = args.threads or (1 if smoke else 2)
    args.steps = args.steps or (4 if smoke else 2000)
    args.batch_size = args.batch_size or (8 if smoke else 256)
    args.widths = [
        int(w) for w in (args.widths or ("8,16" if smoke else "128,192,256,384,512,768,1024")).split(",")
    ]
    args.z_size = 8 if smoke else 64
    args.recipe = {"free_bits": 4.0} if smoke else None
    args.bars = 2 if smoke else 16
    args.base = "bach-chorales" if smoke else "folk-tunes"
    args.source = length.dataset_name(args.base, args.bars)
    args.work = args.work or Path("runs/musicvae-gpu-quick" if smoke else "runs/musicvae-gpu")
    args.name = "musicvae_length-quick" if smoke else "musicvae_length"
    # what musicvae_length's training and evaluation read
    args.seed, args.save_minutes, args.limit_eval = 0, 0.5, 16 if smoke else None
    args.init_from = None  # a GPU run starts fresh
    args.pairs = 4 if smoke else args.pairs
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.monotonic()
    if importlib.util.find_spec("platformdirs") is None:  # a bare GPU machine: aezoo's folders here
        os.environ.setdefault("AEZOO_DATA", str(args.work / "data"))
        os.environ.setdefault("AEZOO_CACHE", str(args.work / "cache"))
    torch.set_num_threads(args.threads)
    torch.set_float32_matmul_precision("high")
    data_file = args.work / "data" / f"{args.source}.npz"
    if not data_file.exists():
        from aezoo_musicvae.windowfile import save_window_file

        print(f"parsing {args.source} once into {data_file}", flush=True)
        save_window_file(load_data(args.source), data_file)
    if args.prepare:
        return {"data": str(data_file)}
    args.device_obj = torch.device(args.device)
    if args.device_obj.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("musicvae_gpu: no CUDA device here; run with --smoke or --device cpu")
    plan_file = args.work / "plan.json"
    if plan_file.exists():
        plan = json.loads(plan_file.read_text())
    else:
        data = load_data(f"melody-windows:{data_file}")
        plan = make_plan(args, data.train.tensors["tokens"], data.val.tensors["tokens"])
        plan_file.write_text(json.dumps(plan, indent=2) + "\n")
    print(
        f"plan: width {plan['width']}, {plan['steps']} steps of {plan['batch_size']} per decoder", flush=True
    )
    args.batch_size, args.lr, args.precision, args.compile = (
        plan["batch_size"],
        plan["lr"],
        plan["precision"],
        plan["compile"],
    )
    session = math.inf if args.session_minutes is None else args.session_minutes * 60
    dataset = f"melody-windows:{data_file}"
    done = train_session(args, plan, dataset, started + session)
    payload: dict[str, Any] = {"plan": plan, "done": done}
    if done:
        command = "python benchmarks/musicvae_gpu.py " + " ".join(sys.argv[1:] if argv is None else argv)
        for decoder in length.DECODERS:
            key = f"{args.source}-{decoder}"
            run = Run.open(args.work / "runs" / key)
            row = {
                "model": f"{args.source}-{decoder}-gpu-w{plan['width']}",
                "series": f"{args.base}, {plan['device']}, width {plan['width']}",
                "dataset_source": args.source,
                "bars": args.bars,
                "decoder": decoder,
                "hparams": json.loads(json.dumps(plan["hparams"][decoder])),
                "steps": plan["steps"],
                "batch_size": plan["batch_size"],
                "lr": plan["lr"],
                "precision": plan["precision"],
                "budget_minutes": plan["minutes"],
                "dataset": dataset,
                **length.evaluate_row(run, args, args.results, key),
            }
            write_result(args.name, command.strip(), [row], key="model", folder=args.results)
            print(f"{row['model']}: sampled per note {row['test_sampled_note_accuracy']:.3f}", flush=True)
        results = args.results / f"{args.name}.json"
        length.plot(results, results.with_suffix(".png"))
        payload["rows"] = json.loads(results.read_text())["rows"]
    else:
        print("not finished: run the same command again to continue", flush=True)
    if args.pack is not None:
        print("packed", ", ".join(str(p) for p in pack(args.work, args.pack)), flush=True)
    return payload


if __name__ == "__main__":
    main()
