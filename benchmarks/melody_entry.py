"""Candidates for the melody entry side by side: what each reproduces of held-out melodies of each
source, and what it samples.

    python benchmarks/melody_entry.py MODEL [MODEL ...] [--samples 1024] [--pairs 64]

MODEL: a pretrained name (``musicvae:melody-2bar``) or a run folder of a musicvae trained on
``melodies``. For each, on the held-out windows of each source (the ``melodies`` splits
``test-bach-chorales`` and ``test-folk-tunes``): sampled per-step and per-note accuracy (the figures
``aezoo evaluate`` prints, from ``aezoo.evaluation.evaluate_split``), the KL per window (bits),
how much the decoder uses z (``analysis.z_usage``: each melody from its own z against another's),
interpolations in kind (``analysis.interpolation_in_kind``, --pairs pairs, 5 inner points); and,
against all held-out windows, --samples melodies from the prior at temperature 1 (what ``aezoo
sample`` gives) in kind (``analysis.prior_in_kind``: density and pitch range within the held-out
melodies' 5-95 % ranges). A model that puts more into z reconstructs better and may sample worse:
the table shows both sides. One thread. Writes benchmarks/results/melody_entry.json (rows keyed by
model; rows of models not measured again are kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

import aezoo
from aezoo.errors import AezooError
from aezoo.evaluation import evaluate_split
from aezoo.plugins import load_data

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result

SOURCES = {"chorales": "test-bach-chorales", "folk": "test-folk-tunes"}


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Every figure of one model (a pretrained name or a run folder)."""
    from aezoo_musicvae.analysis import interpolation_in_kind, prior_in_kind, z_usage

    try:
        model = aezoo.load(name)
    except AezooError as exc:
        raise SystemExit(f"melody_entry: {exc}") from None
    if model.architecture != "musicvae":
        raise SystemExit(f"melody_entry: {name} is a {model.architecture!r} model, not a musicvae")
    data = load_data("melodies")
    row: dict[str, Any] = {"model": name, "params": sum(p.numel() for p in model.parameters())}
    held_out = []
    for source, split_name in SOURCES.items():
        split = data.split(split_name)
        tokens = split.tensors["tokens"]
        held_out.append(tokens)
        metrics = evaluate_split(model, split)
        usage = z_usage(model, tokens)
        interpolation, _ = interpolation_in_kind(model, tokens, pairs=args.pairs)
        row[source] = {
            "windows": len(tokens),
            "sampled_accuracy": metrics["sampled_accuracy"],
            "sampled_note_accuracy": metrics["sampled_note_accuracy"],
            "kl_bits": metrics["kl_bits"],
            "z_gap": usage["z_gap"],
            "interpolation_in_kind_both": interpolation["in_kind_both"],
        }
    row["prior"] = prior_in_kind(model, torch.cat(held_out), samples=args.samples)
    return row


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| model | source | sampled per step / per note | KL (bits) | z gap | interpolations in kind "
        "| prior samples in kind (density, range, both; silent) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        prior = row["prior"]
        drawn = (
            f"{prior['prior_in_kind_density']:.2f}, {prior['prior_in_kind_pitch_range']:.2f}, "
            f"**{prior['prior_in_kind_both']:.2f}**; {prior['prior_silent']:.2f}"
        )
        for i, source in enumerate(SOURCES):
            s = row[source]
            lines.append(
                f"| {row['model'] if i == 0 else ''} | {source} ({s['windows']:,}) | "
                f"{s['sampled_accuracy']:.3f} / **{s['sampled_note_accuracy']:.3f}** | {s['kl_bits']:.0f} | "
                f"{s['z_gap']:.2f} | {s['interpolation_in_kind_both']:.2f} | {drawn if i == 0 else ''} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="pretrained names or run folders")
    parser.add_argument("--samples", type=int, default=1024, help="melodies drawn from the prior")
    parser.add_argument("--pairs", type=int, default=64, help="interpolated pairs per source")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = [measure(name, args) for name in args.models]
    print(table(rows))
    command = "python benchmarks/melody_entry.py " + " ".join(sys.argv[1:])
    path = write_result("melody_entry", command, rows, key="model", samples=args.samples, pairs=args.pairs)
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
