"""The pretrained zoo: pack a trained run into a shipped entry, and measure every card again.

    python benchmarks/zoo.py pack vae:mnist-2d RUN        # → plugins/aezoo_vae/pretrained/mnist-2d/
    python benchmarks/zoo.py check [NAME ...]             # each card's figures, measured again

``pack`` stores the run's best weights (fp16 where the entry says so) with the whole recipe in
their metadata, writes ``recipe.toml`` (``aezoo train --config`` replays it) and writes
``card.toml`` with figures measured on the stored weights: the fixed subsets the test suite
checks, and the full test sets (results also in ``benchmarks/results/zoo.json``). The prose of each
card (dataset, source, licence) is in ``ENTRIES`` below.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
from common import machine, write_result

import aezoo
from aezoo import checkpoint, pretrained, recipes
from aezoo.data import DATA_ROOT_MARK, data_root, describe_data
from aezoo.plugins import load_data
from aezoo.recipes import toml_value
from aezoo.runs import Run

ROOT = Path(__file__).resolve().parents[1]

MNIST = {
    "name": "mnist",
    "label": "MNIST (full)",
    "description": "MNIST handwritten digits, 28×28 grey: 55,000 training (5,000 more for validation), 10,000 test",
    "source": "http://yann.lecun.com/exdb/mnist/ — Y. LeCun, C. Cortes, C. J. C. Burges",
    "licence": "CC BY-SA 3.0 (https://creativecommons.org/licenses/by-sa/3.0/)",
    "attribution": 'Y. LeCun, L. Bottou, Y. Bengio, P. Haffner, "Gradient-based learning applied to document '
    'recognition", Proc. IEEE 86(11), 1998',
}
FIRST_1000 = "the first 1,000 MNIST test digits (also in the subset aezoo ships, so the check runs offline)"

#: Names of metrics, unless an entry says otherwise.
LABELS = {"bce": "BCE/pixel", "mse": "MSE/pixel", "code_std": "code std (prior: 1)"}

#: Per entry: where it lives, what its card says, what it is measured by.
ENTRIES: dict[str, dict[str, Any]] = {
    "dense:mnist": {
        "package": "aezoo_dense",
        "summary": "Fully connected autoencoder of MNIST digits with a 32-number code",
        "dataset": MNIST,
        "headline": "bce",
        "labels": {"bce": "BCE/pixel", "mse": "MSE/pixel"},
        "checks": [{"split": "test", "limit": 1000, "metrics": ["bce", "mse"], "examples_text": FIRST_1000}],
        "full": [{"split": "test", "metrics": ["bce", "mse"]}],
    },
    "conv:mnist": {
        "package": "aezoo_conv",
        "summary": "Convolutional autoencoder of MNIST digits with a 128-number code",
        "dataset": MNIST,
        "headline": "bce",
        "labels": {"bce": "BCE/pixel", "mse": "MSE/pixel"},
        "checks": [{"split": "test", "limit": 1000, "metrics": ["bce", "mse"], "examples_text": FIRST_1000}],
        "full": [{"split": "test", "metrics": ["bce", "mse"]}],
    },
    "denoising:mnist": {
        "package": "aezoo_denoising",
        "summary": "Denoising conv autoencoder of MNIST digits: N(0.5, 0.3) noise added and clamped, clean digits out",
        "dataset": MNIST,
        "headline": "bce",
        "labels": {
            "bce": "BCE/pixel (denoised vs clean)",
            "psnr_denoised": "PSNR denoised",
            "psnr_noisy": "PSNR noisy",
        },
        "units": {"psnr_denoised": "dB", "psnr_noisy": "dB"},
        "checks": [
            {"split": "test", "limit": 1000, "metrics": ["bce", "psnr_denoised"], "examples_text": FIRST_1000}
        ],
        "full": [{"split": "test", "metrics": ["bce", "psnr_noisy", "psnr_denoised"]}],
    },
    "vqvae:mnist": {  # the example third-party distribution, plugins/aezoo-vqvae
        "package": "aezoo-vqvae/aezoo_vqvae",
        "summary": "VQ-VAE of MNIST digits: a 7×7 grid of integer codes, each one of 512 learned code vectors",
        "dataset": MNIST,
        "headline": "bce",
        "labels": {
            "bce": "BCE/pixel",
            "mse": "MSE/pixel",
            "perplexity": "code perplexity (per batch of 256 test digits)",
        },
        "checks": [{"split": "test", "limit": 1000, "metrics": ["bce", "mse"], "examples_text": FIRST_1000}],
        "full": [{"split": "test", "metrics": ["bce", "mse", "perplexity"]}],
    },
    "vae:mnist": {
        "package": "aezoo_vae",
        "summary": "Convolutional VAE of dynamically binarised MNIST, 32-d latent, N(0, I) prior: sample, "
        "interpolate, estimate log-likelihoods",
        "dataset": MNIST,
        "headline": "nll",
        "labels": {"neg_elbo": "−ELBO", "nll": "NLL (IWAE bound, 100 samples)", "bce": "BCE/pixel"},
        "units": {"neg_elbo": "nats", "nll": "nats"},
        "checks": [
            {"split": "test", "limit": 1000, "metrics": ["neg_elbo", "bce"], "examples_text": FIRST_1000}
        ],
        "full": [{"split": "test", "metrics": ["nll", "neg_elbo", "bce"], "nll_samples": 100}],
    },
    "vae:mnist-2d": {
        "package": "aezoo_vae",
        "summary": "Dense VAE of MNIST with a 2-d latent: the whole code space is a plane you can draw and walk",
        "dataset": MNIST,
        "headline": "mse_x784_plus_kl",
        "labels": {"mse_x784_plus_kl": "MSE·784 + KL", "bce": "BCE/pixel"},
        "checks": [
            {
                "split": "test",
                "limit": 1000,
                "metrics": ["mse_x784_plus_kl", "bce"],
                "examples_text": FIRST_1000,
            }
        ],
        "full": [{"split": "test", "metrics": ["mse_x784_plus_kl", "bce", "mse"]}],
    },
    "aae:mnist-2d": {
        "package": "aezoo_aae",
        "summary": "Adversarial autoencoder of MNIST with a 2-d code pushed towards N(0, I)",
        "dataset": MNIST,
        "headline": "bce",
        "labels": {
            "bce": "BCE/pixel",
            "d_accuracy": "discriminator accuracy (0.5: codes look like the prior)",
        },
        "checks": [
            {"split": "test", "limit": 1000, "metrics": ["bce", "d_accuracy"], "examples_text": FIRST_1000}
        ],
        "full": [{"split": "test", "metrics": ["bce", "d_accuracy", "code_std"]}],
    },
    "superres:t91-x2": {
        "package": "aezoo_superres",
        "summary": "×2 super-resolution of photos (luminance, a residual over bicubic), any image size",
        "dataset": {
            "name": "images:T91",
            "label": "T91 (train), Set5 (test)",
            "description": "T91: the 91 training images of Yang et al. (random 64-pixel patches, flips, turns); "
            "evaluated on Set5 (5 images, whole)",
            "source": 'T91: J. Yang, J. Wright, T. S. Huang, Y. Ma, "Image Super-Resolution via Sparse '
            'Representation", IEEE TIP 19(11), 2010, as distributed with SRCNN (Dong et al., 2014). Set5: '
            "M. Bevilacqua, A. Roumy, C. Guillemot, M.-L. Alberi Morel, BMVC 2012",
            "licence": "unstated: no licence accompanies the T91 or Set5 images in any of their sources; they "
            "are distributed for research use with the papers above",
        },
        "headline": "psnr_y",
        "labels": {
            "psnr_y": "PSNR-Y on Set5",
            "ssim_y": "SSIM-Y on Set5",
            "bicubic_psnr_y": "bicubic PSNR-Y on Set5",
        },
        "units": {"psnr_y": "dB", "bicubic_psnr_y": "dB"},
        "checks": [
            {
                "dataset": "images:{data}/sr/Set5",
                "split": "all",
                "limit": 2,
                "metrics": ["psnr_y", "ssim_y"],
                "examples_text": "the first two Set5 images (baby, bird), whole",
            }
        ],
        "full": [
            {
                "dataset": "images:{data}/sr/Set5",
                "split": "all",
                "metrics": ["psnr_y", "ssim_y", "bicubic_psnr_y"],
            }
        ],
    },
    "musicvae:melody-2bar": {
        "package": "aezoo_musicvae",
        "summary": "MusicVAE for 2-bar melodies (flat decoder, z 64, 128 free bits), trained on the Bach chorales and three folk "
        "tune books: sample, reconstruct and interpolate melodies as MIDI",
        "dataset": {
            "name": "melodies",
            "label": "chorales + folk tunes",
            "description": "2-bar windows of the soprano lines of the Bach chorales and of the tunes of Ryan's "
            "Mammoth Collection, O'Neill's Music of Ireland and the Nottingham dataset (4/4 and 2/2, repeats "
            "written out, accidentals read the ABC 2.1 way), transposed by ±5 semitones; split by piece",
            "source": "music21's corpus (music21 10.5, https://github.com/cuthbertLab/music21): the Bach chorales "
            "(J. S. Bach, BWV 253–438); W. B. Ryan, Ryan's Mammoth Collection (1883); F. O'Neill, O'Neill's "
            "Music of Ireland (1903); the Nottingham Music Database (E. Foxley), in ABC",
            "licence": "the music is in the public domain; the encodings ship in music21's corpus, distributed "
            "under music21's BSD-3-Clause licence (see each source's file headers in music21/corpus)",
        },
        "headline": "folk_sampled_note_accuracy",
        "labels": {
            "chorales_sampled_note_accuracy": "notes reproduced, held-out chorales (sampled)",
            "folk_sampled_note_accuracy": "notes reproduced, held-out folk tunes (sampled)",
            "chorales_sampled_accuracy": "steps reproduced, held-out chorales (sampled)",
            "folk_sampled_accuracy": "steps reproduced, held-out folk tunes (sampled)",
        },
        "checks": [
            {
                "split": "test-bach-chorales",
                "limit": 64,
                "metrics": ["sampled_accuracy", "sampled_note_accuracy"],
                "examples_text": "the first 64 held-out chorale windows",
            },
            {
                "split": "test-folk-tunes",
                "limit": 64,
                "metrics": ["sampled_accuracy", "sampled_note_accuracy"],
                "examples_text": "the first 64 held-out folk-tune windows",
            },
        ],
        "full": [
            {
                "split": "test-bach-chorales",
                "prefix": "chorales_",
                "metrics": ["accuracy", "sampled_accuracy", "note_accuracy", "sampled_note_accuracy"],
            },
            {
                "split": "test-folk-tunes",
                "prefix": "folk_",
                "metrics": ["accuracy", "sampled_accuracy", "note_accuracy", "sampled_note_accuracy"],
            },
        ],
    },
}


def pack(
    name: str, run_path: str, dtype: str, data_dir: str | None, trained_on: str | None = None
) -> dict[str, Any]:
    """Write the entry ``name`` from the run at ``run_path``: weights, recipe and card;
    ``trained_on`` describes the machine that trained it when that is not this one."""
    spec = ENTRIES[name]
    run = Run.open(run_path)
    config = run.config
    folder = ROOT / "plugins" / spec["package"] / "pretrained" / name.partition(":")[2]
    folder.mkdir(parents=True, exist_ok=True)
    recipe = recipes.recipe_from_dict(config, str(run.path / "config.json"))
    data = load_data(recipe.dataset or "", data_dir=data_dir)
    # a folder under the data root is named from it, so the recipe works on every machine
    dataset = (recipe.dataset or "").replace(str(data_root(data_dir)), DATA_ROOT_MARK)
    # "auto": a run trained on a GPU replays on the GPU of whoever replays it, or on their CPU
    trainer = {**recipe.trainer, "device": "auto"}
    recipe = recipes.Recipe(
        recipe.architecture, recipe.hparams, dataset, trainer, {"dataset_info": describe_data(data)}
    )
    model = checkpoint.load(run.path)
    checkpoint.save(model, folder / "model.safetensors", recipe=recipe.settings(), dtype=dtype)
    replay = f"aezoo train --config {(folder / 'recipe.toml').relative_to(ROOT)}"
    (folder / "recipe.toml").write_text(
        recipes.to_toml(recipe, f"The recipe of aezoo's {name}; replay it with\n  {replay}"), encoding="utf-8"
    )
    item = aezoo.Pretrained.from_folder(name, folder)
    records = run.metrics()
    train = [r for r in records if r.get("split") == "train"]
    best = checkpoint.read_metadata(run.model_path).get("aezoo.step")
    card: dict[str, Any] = {
        "name": name,
        "summary": spec["summary"],
        "architecture": model.architecture,
        "parameters": sum(p.numel() for p in model.parameters()),
        "storage": dtype,
        "dataset": spec["dataset"],
        "training": {
            "command": replay,
            "epochs": recipe.trainer.get("epochs"),
            "steps": train[-1]["step"] if train else None,
            "best_step": int(best) if best else None,
            "wall_time": f"{train[-1]['time_s'] / 60:.1f} min" if train else None,
            "machine": re.sub(r" \(\d+ threads?\)", "", trained_on or machine()),
            "threads": recipe.trainer.get("threads"),
            "date": str(config.get("created", ""))[:10],
        },
    }
    checks, full = [], {}
    for check in spec["checks"]:
        measured = pretrained.measure(item, check, data_dir=data_dir)
        checks.append({**check, "metrics": measured, "rtol": 1e-3, "command": _command(name, check)})
    for case in spec["full"]:
        measured = pretrained.measure(
            item, {k: v for k, v in case.items() if k not in ("limit", "prefix")}, data_dir=data_dir
        )
        for metric, value in measured.items():
            key = case.get("prefix", "") + metric
            full[key] = {
                "value": value,
                "label": {**LABELS, **spec.get("labels", {})}.get(key, key),
                "unit": spec.get("units", {}).get(key, ""),
                "split": case["split"],
                "command": _command(name, case),
            }
    card["metrics"] = {"headline": spec["headline"], "full": full}
    card["check"] = checks
    (folder / "card.toml").write_text(_card_toml(card), encoding="utf-8")
    size = (folder / "model.safetensors").stat().st_size
    print(f"{name}: {folder.relative_to(ROOT)} ({size / 1e6:.2f} MB); " + pretrained.headline(card))
    return {"name": name, "run": str(run.path), "bytes": size, "card": card}


def _command(name: str, case: dict[str, Any]) -> str:
    parts = [f"aezoo evaluate {name}"]
    if case.get("dataset"):
        parts.append(f"--dataset {case['dataset'].replace('{data}', '$AEZOO_DATA')}")
    if case.get("split", "test") != "test":
        parts.append(f"--split {case['split']}")
    if case.get("limit"):
        parts.append(f"--limit {case['limit']}")
    if case.get("nll_samples"):
        parts.append(f"--nll --samples {case['nll_samples']}")
    return " ".join(parts)


def _card_toml(card: dict[str, Any]) -> str:
    lines = [
        "# Model card; `aezoo info NAME` prints it. Written by benchmarks/zoo.py pack: every figure was",
        "# measured on the stored weights by the command beside it.",
        "",
    ]
    for key, value in card.items():
        if not isinstance(value, (dict, list)):
            lines.append(f"{key} = {toml_value(value)}")
    for table in ("dataset", "training"):
        lines += ["", f"[{table}]"] + [
            f"{k} = {toml_value(v)}" for k, v in card[table].items() if v is not None
        ]
    lines += ["", "[metrics]", f"headline = {toml_value(card['metrics']['headline'])}"]
    for key, value in card["metrics"]["full"].items():
        lines += ["", f"[metrics.full.{key}]"] + [f"{k} = {toml_value(v)}" for k, v in value.items()]
    for check in card["check"]:
        lines += ["", "[[check]]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in check.items() if k != "metrics"]
        lines.append(f"metrics = {toml_value(check['metrics'])}")
    return "\n".join(lines) + "\n"


def table() -> str:
    """The shipped entries as a Markdown table (README and BENCHMARKS), from their cards."""
    rows = ["| name | what | trained on | size | full test set | training |", "|---|---|---|---|---|---|"]
    for name, item in pretrained.entries().items():
        card = pretrained.card(item)
        size = Path(item.weights).stat().st_size / 1e6
        figures = "; ".join(
            f"{v['label']} **{v['value']:.4g}**{(' ' + v['unit']) if v.get('unit') else ''}"
            for v in card["metrics"]["full"].values()
        )
        training = card["training"]
        rows.append(
            f"| `{name}` | {card['summary']} | {card['dataset'].get('label', card['dataset']['name'])} | "
            f"{size:.1f} MB ({card['storage']}) | {figures} | {training['steps']:,} steps, {training['wall_time']} |"
        )
    return "\n".join(rows)


def check(names: list[str], data_dir: str | None) -> int:
    failed = 0
    for name, item in pretrained.entries().items():
        if names and name not in names:
            continue
        for case in pretrained.checks(pretrained.card(item)):
            measured = pretrained.measure(item, case, data_dir=data_dir)
            for key, want in case["metrics"].items():
                ok = abs(measured[key] - want) <= case.get("rtol", 1e-3) * abs(want)
                failed += not ok
                print(
                    f"{name} {case.get('split')} {key}: card {want:.6g}, measured {measured[key]:.6g} {'ok' if ok else 'DIFFERS'}"
                )
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack")
    p.add_argument("name", choices=sorted(ENTRIES))
    p.add_argument("run")
    p.add_argument("--dtype", default="float16", choices=sorted(checkpoint.STORAGE_DTYPES))
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--machine", help="the machine that trained the run (default: this one)")
    sub.add_parser("table")
    p = sub.add_parser("check")
    p.add_argument("names", nargs="*")
    p.add_argument("--data-dir")
    p.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(getattr(args, "threads", 2))
    if args.command == "check":
        return check(args.names, args.data_dir)
    if args.command == "table":
        print(table())
        return 0
    started = time.perf_counter()
    row = pack(args.name, args.run, args.dtype, args.data_dir, args.machine)
    row["pack_seconds"] = round(time.perf_counter() - started, 1)
    write_result("zoo", shlex.join(["python", *sys.argv]), [row], key="name")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
