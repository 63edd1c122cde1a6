"""musicvae at length: flat against hierarchical decoders at 2, 4, 8 and 16 bars on held-out pieces,
with equal parameter counts and equal step budgets, and the plot of sampled per-note accuracy
against bars (issue #14).

    python benchmarks/musicvae_length.py [--source folk-tunes] [--bars 2,4,8,16]
        [--decoders flat,hierarchical] [--steps 3000] [--batch-size 64] [--lr 3e-3] [--width 128]
        [--threads 1] [--work runs/musicvae-length] [--device auto] [--precision fp32] [--compile]
        [--set NAME=VALUE ...] [--tag TEXT] [--force] [--plot-only] [--smoke]

For each bars: the dataset (``SOURCE`` at 2 bars, ``SOURCE-Nbar`` longer) is parsed once into a
window file, ``WORK/data/SOURCE-Nbar.npz`` (aezoo_musicvae.windowfile), and both decoders train on
``melody-windows:`` that file, so a second run, or another machine, reads it without parsing.
Training: MusicVAE's 16-bar recipe at every length (teacher forcing only, 32 free bits for z 64,
β 0.2 from the start), encoder ``width``, z 64; the hierarchical decoder (conductor and bottom
LSTM) ``width`` units, the flat decoder as wide as makes the two models' parameter counts equal
(closest width; both counts are in the rows). Each (bars, decoder) then gets a row:

- test accuracy per step, teacher-forced and sampled (argmax fed back), and per note (the share of
  each window's note onsets reproduced), from z_mean; the test set's share of holds (what a decoder
  writing only holds scores per step; it scores 0 per note);
- z usage: sampled per-note accuracy of each test melody decoded from its own z and from another
  test melody's z, and the gap (0: the decoder ignores z);
- interpolation: for pairs of test melodies, the share of the melodies decoded along the slerp path
  between their codes (5 inner points) whose note density and pitch range lie between the two
  ends' (aezoo_musicvae.analysis), and one path drawn as a piano roll
  (``RESULTS/musicvae_length-SOURCE-Nbar-DECODER-interpolation.png``: the original melody, then the
  path, then the other original);
- the training cost: steps, seconds, threads, device, precision.

``--set NAME=VALUE`` changes the recipe of both decoders alike (``--set
sampling_schedule=inverse_sigmoid --set sampling_rate=500``, say): it needs a ``--tag``, so that
what is tried is keyed, and plotted, apart from the plain recipe's rows. ``--init-from RUN`` (with
``{decoder}`` in it, say ``WORK/runs/folk-tunes-2bar-{decoder}-TAG-w128``) starts each decoder from
a trained run's weights: a curriculum from short windows to long ones (the sizes do not depend on
the bars); the row records the source and its steps (``init_steps``), part of the budget.

It resumes: a (bars, decoder) whose row is in the results file with the same settings is skipped,
and an unfinished run continues from its checkpoint in ``WORK/runs/KEY-wWIDTH`` (``aezoo train --resume``,
bit for bit; Ctrl-C saves one); ``--steps`` larger continues it further. A row kept with other
settings is replaced only with ``--force`` (else one line says which settings differ). Rows are written to benchmarks/results/musicvae_length.json as each
finishes, and the plot (benchmarks/results/musicvae_length.png, one line per source and decoder) is
drawn from that file, so later runs add points. ``--smoke``: tiny models, a few steps, the 2- and
4-bar chorales, results in musicvae_length-quick.json (seconds; the tests run it on window files
they place in WORK/data).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

import aezoo
from aezoo.errors import AezooError
from aezoo.hparams import parse_assignments
from aezoo.plugins import load_data
from aezoo.runs import Run
from aezoo.trainer import TrainConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, write_result

#: MusicVAE's 16-bar training at every length: teacher forcing only, free bits, β from the start.
RECIPE: dict[str, Any] = {
    "sampling_schedule": "constant",
    "sampling_rate": 0.0,
    "free_bits": 32.0,
    "beta_rate": 0.0,
    "z_size": 64,
}
DECODERS = ("flat", "hierarchical")
#: The row fields that must match for a kept row to count as this run's.
SETTINGS = (
    "dataset_source", "bars", "decoder", "hparams", "steps", "batch_size", "lr", "seed", "precision", "init_from"
)  # fmt: skip


def dataset_name(source: str, bars: int) -> str:
    return source if bars == 2 else f"{source}-{bars}bar"


def count_parameters(hparams: dict[str, Any]) -> int:
    """Parameters of a musicvae with ``hparams``, built on the meta device (no memory, no time)."""
    arch = aezoo.architecture("musicvae")
    with torch.device("meta"):
        model = arch.build(arch.make_hparams(**hparams))
    return sum(p.numel() for p in model.parameters())


def matched_hparams(width: int, bars: int, z_size: int = 64, extra: dict[str, Any] | None = None) -> dict:
    """Hyperparameters of both decoders at ``bars``: encoder and hierarchical decoder ``width``
    units, the flat decoder the width whose model's parameter count is closest to the
    hierarchical one's. ``{decoder: hparams}``."""
    base = {**RECIPE, "z_size": z_size, **(extra or {}), "bars": bars, "enc_rnn_size": (width,)}
    hierarchical = {**base, "decoder": "hierarchical", "dec_rnn_size": (width,)}
    target = count_parameters(hierarchical)
    low, high = 1, 8 * width
    while low < high:  # the smallest flat width with at least the target's parameters
        mid = (low + high) // 2
        if count_parameters({**base, "decoder": "flat", "dec_rnn_size": (mid,)}) < target:
            low = mid + 1
        else:
            high = mid
    candidates = [w for w in (low - 1, low) if w >= 1]
    flat_width = min(
        candidates,
        key=lambda w: abs(count_parameters({**base, "decoder": "flat", "dec_rnn_size": (w,)}) - target),
    )
    return {"flat": {**base, "decoder": "flat", "dec_rnn_size": (flat_width,)}, "hierarchical": hierarchical}


def window_file(work: Path, source: str, bars: int) -> Path:
    """``WORK/data/DATASET.npz``, parsed once from ``source`` at ``bars`` (minutes for the folk tunes)."""
    from aezoo_musicvae.windowfile import save_window_file

    path = work / "data" / f"{dataset_name(source, bars)}.npz"
    if not path.exists():
        print(f"parsing {dataset_name(source, bars)} once into {path}", flush=True)
        save_window_file(load_data(dataset_name(source, bars)), path)
    return path


def init_source(template: str | None, decoder: str) -> str | None:
    """The run a decoder starts from (``--init-from``, ``{decoder}`` filled in), checked to exist."""
    if template is None:
        return None
    path = Path(template.replace("{decoder}", decoder))
    if not (path / "model.safetensors").exists():
        raise SystemExit(f"musicvae_length: --init-from {path} is not a trained run (no model.safetensors)")
    return str(path)


def train_config(args: argparse.Namespace) -> TrainConfig:
    """The trainer's settings; ``precision`` and ``compile`` where this aezoo's trainer has them."""
    values: dict[str, Any] = {
        "epochs": 100_000,  # the step budget ends the run
        "max_steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "threads": args.threads,
        "seed": args.seed,
        "device": args.device,
        "save_minutes": args.save_minutes,
        "limit_eval": args.limit_eval,
        "init_from": args.init_from,
    }
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    if "precision" in fields:
        values["precision"] = args.precision
    if "compile" in fields:
        values["compile"] = args.compile
    elif args.compile:
        raise SystemExit("this aezoo's trainer has no compile setting; run without --compile")
    return TrainConfig(**values)


def train_or_resume(path: Path, dataset: str, hparams: dict[str, Any], args: argparse.Namespace) -> Run:
    """Train into ``path``, or continue the run there (to ``args.steps``) if it is one of these settings."""
    if (path / "config.json").exists():
        saved = Run.open(path).config
        arch = aezoo.architecture("musicvae")
        trainer = saved["trainer"]
        same = (
            saved["dataset"] == dataset
            and arch.make_hparams(**saved["hparams"]) == arch.make_hparams(**hparams)
            and (trainer["batch_size"], trainer["lr"], trainer["seed"], trainer.get("init_from"))
            == (args.batch_size, args.lr, args.seed, args.init_from)
        )
        if not same:
            raise SystemExit(f"{path} holds a run of other settings; remove it or choose another --work")
        from aezoo.training import resume

        return resume(path, max_steps=args.steps, progress=False)
    return aezoo.train(
        "musicvae", dataset, hparams=hparams, config=train_config(args), out=path, progress=False
    )


def evaluate_row(run: Run, args: argparse.Namespace, pictures: Path, key: str) -> dict[str, Any]:
    """The test metrics of the run's best model, its z usage and interpolations (one drawn)."""
    from aezoo_musicvae.analysis import interpolation_in_kind, z_usage
    from aezoo_musicvae.pianoroll import piano_rolls, save_png

    test = run.metrics("test")[-1]
    train_records = [r for r in run.metrics("train") if "time_s" in r]
    device = "cuda" if args.device in ("auto", "cuda") and torch.cuda.is_available() else "cpu"
    model = run.load_model(device)
    tokens = load_data(run.config["dataset"]).test.tensors["tokens"][: args.limit_eval]
    usage = z_usage(model, tokens)
    interpolation, paths = interpolation_in_kind(model, tokens, pairs=args.pairs)
    picture = pictures / f"musicvae_length-{key}-interpolation.png"
    save_png(piano_rolls([list(paths[0].numpy())]), picture)
    trainer = run.config["trainer"]
    return {
        "test_windows": len(tokens),
        "params": sum(p.numel() for p in model.parameters()),
        "best_step": test["step"],
        "test_accuracy": test["accuracy"],
        "test_sampled_accuracy": test["sampled_accuracy"],
        "test_note_accuracy": test["note_accuracy"],
        "test_sampled_note_accuracy": test["sampled_note_accuracy"],
        "test_hold_share": float((tokens == 0).float().mean()),
        "test_kl_bits": test["kl_bits"],
        "z_own_note_accuracy": usage["own_note_accuracy"],
        "z_other_note_accuracy": usage["other_note_accuracy"],
        "z_gap": usage["z_gap"],
        **{f"interpolation_{k}": v for k, v in interpolation.items()},
        "interpolation_picture": picture.name,
        "trained_steps": train_records[-1]["step"] if train_records else 0,
        "train_seconds": train_records[-1]["time_s"] if train_records else 0.0,
        "threads": trainer.get("threads"),
        "device": str(next(model.parameters()).device) if device == "cpu" else torch.cuda.get_device_name(),
        "compile": trainer.get("compile", False),
    }


def measure(
    args: argparse.Namespace, source: str, bars: int, decoder: str, hparams: dict[str, Any], kept: dict
) -> dict[str, Any] | None:
    """The row of one (bars, decoder): kept if measured with these settings, else trained (or
    resumed) and evaluated."""
    key = f"{source}-{bars}bar-{decoder}" + (f"-{args.tag}" if args.tag else "")
    settings = {
        "dataset_source": dataset_name(source, bars),
        "bars": bars,
        "decoder": decoder,
        "hparams": json.loads(json.dumps(hparams)),
        "steps": args.steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "seed": args.seed,
        "precision": args.precision,
        "init_from": args.init_from,
    }
    old = kept.get(key)
    if old is not None and not args.force:
        differ = [k for k in SETTINGS if old.get(k) != settings[k]]
        if not differ:
            print(f"{key}: measured already ({old['date']}); kept", flush=True)
            return None
        if differ != ["steps"] or old.get("steps", 0) > settings["steps"]:
            raise SystemExit(
                f"musicvae_length: the row {key} in the results file was measured with other "
                f"{', '.join(differ)}; give --tag NAME to keep both, or --force to replace it"
            )
    data = f"melody-windows:{window_file(args.work, source, bars)}"
    if args.init_from:  # the steps its weights had before this run's: part of the budget
        metrics = Run(Path(args.init_from)).metrics("train")
        settings["init_steps"] = max((r["step"] for r in metrics), default=0)
    started = time.perf_counter()
    run = train_or_resume(args.work / "runs" / f"{key}-w{hparams['enc_rnn_size'][0]}", data, hparams, args)
    row = {
        "model": key,
        "series": source + (f", {args.tag}" if args.tag else ""),
        **settings,
        "dataset": data,
        **evaluate_row(run, args, args.results, key),
    }
    row["session_seconds"] = time.perf_counter() - started
    print(
        f"{key}: {row['params']:,} parameters, {row['trained_steps']} steps in {row['train_seconds']:.0f} s | "
        f"sampled {row['test_sampled_accuracy']:.3f} per step (holds only {row['test_hold_share']:.3f}), "
        f"{row['test_sampled_note_accuracy']:.3f} per note; from another melody's z "
        f"{row['z_other_note_accuracy']:.3f} (gap {row['z_gap']:+.3f}); interpolations in kind "
        f"{row['interpolation_in_kind_both']:.2f}",
        flush=True,
    )
    return row


def plot(results: Path, out: Path) -> Path:
    """Sampled per-note accuracy against bars, one line per series (a source; a GPU run's source,
    device and width) and decoder (dotted: decoded from another melody's z), from the rows of
    ``results``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in json.loads(results.read_text())["rows"] if "test_sampled_note_accuracy" in r]
    lines: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        lines.setdefault((row["series"], row["decoder"]), []).append(row)
    fig, ax = plt.subplots(figsize=(10, 5), dpi=120)
    series_names = sorted({series for series, _ in lines})
    palette = plt.get_cmap("tab20").colors
    for (series, decoder), points in sorted(lines.items()):
        points.sort(key=lambda r: r["bars"])
        bars = [r["bars"] for r in points]
        color = palette[series_names.index(series) % len(palette)]  # one colour per series
        style = "o-" if decoder == "flat" else "s--"  # one style per decoder
        ax.plot(bars, [r["test_sampled_note_accuracy"] for r in points], style, color=color,
                label=f"{decoder} ({series})")  # fmt: skip
        ax.plot(bars, [r["z_other_note_accuracy"] for r in points], ":", color=color, alpha=0.5, lw=1)
    ax.set_xscale("log", base=2)
    ax.set_xticks([2, 4, 8, 16], ["2", "4", "8", "16"])
    ax.set_xlabel("bars")
    ax.set_ylabel("sampled per-note accuracy (held-out pieces)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(title="decoder (series); dotted: another melody's z", fontsize=7, title_fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0))  # fmt: skip
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=None, help="folk-tunes (default) or bach-chorales")
    parser.add_argument("--bars", default=None, help="comma-separated (default 2,4,8,16)")
    parser.add_argument("--decoders", default=",".join(DECODERS))
    parser.add_argument("--steps", type=int, default=None, help="step budget of every run (default 3000)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 64")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument(
        "--width", type=int, default=None, help="encoder and hierarchical decoder units (128)"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"))
    parser.add_argument("--compile", action="store_true", help="torch.compile the training steps")
    parser.add_argument("--limit-eval", type=int, default=None, help="test/validation windows (default all)")
    parser.add_argument("--pairs", type=int, default=64, help="interpolation pairs")
    parser.add_argument("--save-minutes", type=float, default=2.0, help="checkpoint at least this often")
    parser.add_argument(
        "--work", type=Path, default=None, help="window files and runs (runs/musicvae-length)"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="folder of the results file and pictures"
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a musicvae hyperparameter for both decoders (needs --tag)",
    )
    parser.add_argument(
        "--init-from",
        metavar="RUN",
        help="each decoder starts from this run's weights ({decoder} filled in; a curriculum); needs --tag",
    )
    parser.add_argument("--tag", default="", help="rows keyed and plotted apart (a short budget, say)")
    parser.add_argument("--force", action="store_true", help="measure again rows kept from earlier runs")
    parser.add_argument("--plot-only", action="store_true", help="draw the plot from the results file")
    parser.add_argument(
        "--smoke", action="store_true", help="tiny models, a few steps, 2 and 4 bars of chorales"
    )
    args = parser.parse_args(argv)
    if (args.assignments or args.init_from) and not args.tag:
        parser.error(
            "--set and --init-from change the recipe: give --tag NAME too, so its rows are kept apart"
        )
    smoke = args.smoke
    args.source = args.source or ("bach-chorales" if smoke else "folk-tunes")
    args.bars = [int(b) for b in (args.bars or ("2,4" if smoke else "2,4,8,16")).split(",")]
    args.decoders = args.decoders.split(",")
    args.steps = args.steps or (4 if smoke else 3000)
    args.batch_size = args.batch_size or (8 if smoke else 64)
    args.width = args.width or (16 if smoke else 128)
    args.limit_eval = args.limit_eval or (16 if smoke else None)
    args.pairs = 4 if smoke else args.pairs
    args.work = args.work or Path("runs/musicvae-length-quick" if smoke else "runs/musicvae-length")
    args.name = "musicvae_length-quick" if smoke else "musicvae_length"
    return args


def kept_rows(args: argparse.Namespace) -> dict[str, dict]:
    path = args.results / f"{args.name}.json"
    return {r["model"]: r for r in json.loads(path.read_text())["rows"]} if path.exists() else {}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "python benchmarks/musicvae_length.py " + " ".join(sys.argv[1:] if argv is None else argv)
    results = args.results / f"{args.name}.json"
    if not args.plot_only:
        z_size = 8 if args.smoke else 64
        try:
            changes = parse_assignments(aezoo.architecture("musicvae").hparams, args.assignments)
        except AezooError as exc:
            raise SystemExit(f"musicvae_length: {exc}") from None
        if {"bars", "decoder", "enc_rnn_size", "dec_rnn_size"} & changes.keys():
            raise SystemExit("musicvae_length: bars, decoders and widths have their own options; not --set")
        template = args.init_from
        for bars in args.bars:
            extra = {**({"free_bits": 4.0} if args.smoke else {}), **changes}
            sizes = matched_hparams(args.width, bars, z_size, extra)
            for decoder in args.decoders:
                args.init_from = init_source(template, decoder)
                try:
                    row = measure(args, args.source, bars, decoder, sizes[decoder], kept_rows(args))
                except AezooError as exc:
                    raise SystemExit(f"musicvae_length: {exc}") from None
                if row is not None:
                    write_result(args.name, command.strip(), [row], key="model", folder=args.results)
    if not results.exists():
        raise SystemExit(f"musicvae_length: no results yet in {results}")
    print(f"wrote {results} and {plot(results, results.with_suffix('.png'))}")
    return json.loads(results.read_text())


if __name__ == "__main__":
    main()
