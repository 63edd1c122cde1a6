"""The ``aezoo`` command. ``aezoo --help`` answers without importing torch."""

from __future__ import annotations

import argparse
import errno
import math
import sys
from collections.abc import Sequence
from typing import Any

from aezoo._version import __version__
from aezoo.errors import AezooError
from aezoo.stopping import Stopped

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130
MODEL_HELP = "run folder, .safetensors file, or pretrained name such as vae:mnist (`aezoo pretrained`)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aezoo",
        description="A plugin-based autoencoder model zoo: train, inspect and load models.",
        epilog="Run `aezoo COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"aezoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("list", help="list architectures")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'con*'")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "info", help="describe an architecture, a pretrained model (its card) or a weights file"
    )
    p.add_argument("name", help="architecture, pretrained name (ARCH:TAG) or .safetensors file")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("pretrained", help="list the pretrained models: name, dataset, size, headline metric")
    p.add_argument("pattern", nargs="?", default="*", help="fnmatch pattern, e.g. 'vae:*'")
    p.set_defaults(func=cmd_pretrained)

    p = sub.add_parser("datasets", help="list datasets")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("plugins", help="list plugins, including broken ones and why")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser(
        "train",
        help="train an architecture into a run folder",
        description="Train NAME into runs/NAME-TIMESTAMP (or --out), train a recipe with --config (options "
        "given here override it), or continue a run with --resume.",
    )
    p.add_argument("name", nargs="?", help="architecture (see `aezoo list`); optional with --config")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a recipe (.toml, or .json: a run's config.json repeats that run) to train",
    )
    p.add_argument(
        "--allow-other-data",
        action="store_true",
        help="with --config: train even if the dataset differs from the one the recipe recorded",
    )
    p.add_argument("--dataset", help="dataset name, or NAME:ARGUMENT (default: the architecture's)")
    p.add_argument("--data-dir", help="dataset root (default: $AEZOO_DATA, else a per-user cache)")
    p.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a hyperparameter (repeatable); `aezoo info NAME` lists them",
    )
    p.add_argument("--out", help="run folder to create (default: runs/NAME-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN", help="continue this run from its last checkpoint")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--optimizer")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--grad-clip", type=float, help="clip gradient norm to this value")
    p.add_argument("--lr-schedule", help="constant (default) or cosine (decays to 0 over the run)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--limit-train", type=int, metavar="N", help="use only N training examples")
    p.add_argument("--limit-eval", type=int, metavar="N", help="use only N val/test examples")
    p.add_argument("--no-test", action="store_true", help="skip the final test-set evaluation")
    p.add_argument(
        "--save-every", type=int, metavar="N", help="also save a checkpoint every N steps (and every epoch)"
    )
    p.add_argument(
        "--save-minutes",
        type=float,
        metavar="M",
        help="also save a checkpoint when M minutes have passed since the last (default 10)",
    )
    p.add_argument(
        "--early-stop",
        metavar="METRIC:PATIENCE",
        help="stop when val METRIC has not improved for PATIENCE epochs (loss:3; psnr_y:5:max)",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="write TensorBoard event files into RUN/tensorboard (pip install 'aezoo[tensorboard]')",
    )
    p.add_argument(
        "--callback",
        dest="callbacks",
        action="append",
        metavar="NAME",
        help="turn on a plugin's trainer callback (repeatable; `aezoo plugins` lists them)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "export",
        help="export a run's encoder and decoder to ONNX, validated against onnxruntime",
        description="Write encoder.onnx, decoder.onnx and aezoo-export.json, each model validated "
        "against PyTorch in onnxruntime before anything is put in place.",
    )
    p.add_argument("run", help="run folder, .safetensors file or pretrained name")
    p.add_argument(
        "--out", help="export folder (default: RUN/onnx; ./NAME-onnx for a pretrained name or a file)"
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18, the lowest supported)")
    p.add_argument(
        "--atol",
        type=float,
        help="max abs difference from PyTorch allowed (default: each model's own; 1e-5 unless the "
        "architecture declares more, as a recurrent decoder's logits may need)",
    )
    p.add_argument("--dtype", default="fp32", help="fp32, or fp16 to add decoder.fp16.onnx")
    p.add_argument("--quantize", help="int8 to add decoder.int8.onnx (dynamic quantisation)")
    p.add_argument("--data-dir", help="dataset root for the real-data validation batch")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "reconstruct", help="a picture of a run's model at work on test examples or your images"
    )
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument("images", nargs="*", help="image files (default: examples of the dataset's --split)")
    p.add_argument(
        "-o",
        "--out",
        help="output PNG (default: RUN/reconstructions-SPLIT.png; ./NAME-… for a pretrained model)",
    )
    p.add_argument(
        "-n", type=int, help="examples from the dataset (default and most: what one picture shows)"
    )
    p.add_argument("--split", default="test")
    p.add_argument("--dataset", help="examples from another dataset (default: the run's), e.g. images:PATH")
    p.add_argument("--invert", action="store_true", help="invert your images (dark ink on white paper)")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("evaluate", help="metrics of a run's model on a split; PCA baseline; likelihood")
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument(
        "--split", default="test", help="train, val, test, or a dataset's extra split (default test)"
    )
    p.add_argument("--dataset", help="evaluate on another dataset (default: the run's)")
    p.add_argument(
        "--baseline", choices=["pca"], help="compare with PCA using as many components as the code"
    )
    p.add_argument("--nll", action="store_true", help="importance-sampled negative log-likelihood (nats)")
    p.add_argument("--samples", type=int, help="importance samples per example for --nll (default 1000)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N examples")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("interpolate", help="decode the path between the codes of two of your files")
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument("start", help="a file the model reads (an image for image models)")
    p.add_argument("end")
    p.add_argument("--steps", type=int, default=8, help="points on the path, ends included (default 8)")
    p.add_argument("--linear", action="store_true", help="a straight line instead of spherical (slerp)")
    p.add_argument("--invert", action="store_true", help="invert images (dark ink on white paper)")
    p.add_argument("-o", "--out", help="output file stem (default: RUN/interpolation)")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("sample", help="decode samples from a generative model's prior")
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument("-n", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the prior's noise (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", help="output file stem (default: RUN/samples)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("plot", help="pictures: training curves, latent scatter, decoded manifold")
    p.add_argument("what", choices=["curves", "latent", "manifold"])
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument("-o", "--out", help="output PNG (default: RUN/WHAT.png)")
    p.add_argument("--split", default="test", help="split whose codes are plotted (latent)")
    p.add_argument("--dims", help="manifold: two code dimensions, e.g. 0,1 (default: the principal plane)")
    p.add_argument("--steps", type=int, default=20, help="manifold: images per side (default 20)")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_plot)

    p = sub.add_parser("upscale", help="upscale your image with a super-resolution model")
    p.add_argument("run", help="run folder, .safetensors file or pretrained name")
    p.add_argument("image")
    p.add_argument("-o", "--out", help="output image file (default: IMAGE-upscaled.png beside it)")
    p.set_defaults(func=cmd_upscale)

    p = sub.add_parser("verify", help="re-check an export: checksums, and parity with the run's weights")
    p.add_argument("export_dir")
    p.add_argument(
        "--runtime",
        default="onnxruntime",
        help="onnxruntime (default), reference (onnx's ReferenceEvaluator), openvino "
        "(pip install 'aezoo[openvino]') or tract (pip install 'aezoo[tract]')",
    )
    p.add_argument("--weights", help="run folder or .safetensors file (default: the one in the manifest)")
    p.add_argument("--atol", type=float, help="tolerance (default: the export's)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "serve",
        help="open an export in the browser: decode codes live from a latent pad and sliders",
        description="Serve aezoo's page and an export on this machine (an export folder as it is; a run, "
        "file or pretrained name is exported into a temporary folder first). Needs `npm ci` in exports/web.",
    )
    p.add_argument("export", help="export folder, or a run folder, .safetensors file or pretrained name")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_serve)
    return parser


#: Errors of a path itself (the rest, such as a full disk, are reported as they are).
PATH_ERRORS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EROFS}

#: ``aezoo sample -n``: at most this many, drawn this many at a time.
SAMPLE_LIMIT = 10_000
SAMPLE_BATCH = 256


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except AezooError as exc:
        print(f"aezoo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a path you gave that cannot be used (a folder inside a file, say)
        if exc.filename is None:
            raise
        path = exc.filename2 or exc.filename  # os.replace(tmp, yours) names yours second
        hint = "; check the path" if exc.errno in PATH_ERRORS else ""
        print(f"aezoo: error: {path}: {exc.strerror or exc}{hint}", file=sys.stderr)
        return 2
    except Stopped as stopped:  # a training saved, then stopped by Ctrl-C, SIGTERM or SIGHUP
        return stopped.exit_code
    except KeyboardInterrupt:
        print("aezoo: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# -- commands ------------------------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from aezoo.plugins import registry

    reg = registry()
    names = reg.list_architectures(args.pattern)
    if not names:
        print(f"no architecture matches {args.pattern!r}", file=sys.stderr)
        return 1
    rows = [(n, reg.architectures[n].default_dataset, reg.architectures[n].description) for n in names]
    _table(("name", "dataset", "description"), rows)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aezoo.hparams import describe
    from aezoo.plugins import registry
    from aezoo.registry import is_pretrained_name

    if Path(args.name).expanduser().is_file():
        return _info_file(Path(args.name).expanduser())
    if ":" in args.name and is_pretrained_name(args.name):
        from aezoo import pretrained

        print(pretrained.describe(pretrained.entry(args.name)))
        return 0
    arch = registry().architecture(args.name)
    print(f"{arch.name}: {arch.description}")
    print(f"plugin: {arch.plugin}")
    print(f"default dataset: {arch.default_dataset}")
    tags = [n for n in registry().pretrained if n.startswith(f"{arch.name}:")]
    if tags:
        print(f"pretrained: {', '.join(sorted(tags))}")
    print("hyperparameters (set with --set NAME=VALUE):")
    rows = [
        (r["name"], r["type"], _show(r["default"]), r["allowed"], r["doc"]) for r in describe(arch.hparams)
    ]
    _table(("name", "type", "default", "allowed", "doc"), rows, indent="  ")
    return 0


def _info_file(path: Any) -> int:
    """What a weights file says of itself: architecture, distribution, recipe."""
    import json

    from aezoo import checkpoint

    metadata = checkpoint.read_metadata(path)
    print(
        f"{path}: a {metadata['aezoo.architecture']!r} model saved by aezoo {metadata.get('aezoo.version', '?')}"
    )
    if metadata.get("aezoo.distribution"):
        print(f"architecture from: {metadata['aezoo.distribution']}")
    if metadata.get("aezoo.storage_dtype"):
        print(f"stored as: {metadata['aezoo.storage_dtype']}")
    if metadata.get("aezoo.step"):
        print(f"step: {metadata['aezoo.step']}")
    recipe = checkpoint.recipe_of(metadata)
    if recipe is None:
        print(f"hyperparameters: {metadata['aezoo.hparams']}")
        print("no recipe recorded (saved with aezoo.save outside the trainer)")
        return 0
    print("recipe:")
    print("  " + json.dumps(recipe, indent=2).replace("\n", "\n  "))
    return 0


def cmd_pretrained(args: argparse.Namespace) -> int:
    import fnmatch
    from pathlib import Path

    from aezoo import pretrained

    rows = []
    for name, item in pretrained.entries().items():
        if not fnmatch.fnmatchcase(name, args.pattern):
            continue
        try:
            card = pretrained.card(item)
        except AezooError as exc:  # one broken entry does not hide the others
            rows.append((name, item.architecture, "?", "?", f"unreadable card: {exc}"))
            continue
        if item.is_remote:
            size = "download"
        else:
            size = (
                f"{Path(item.weights).stat().st_size / 1e6:.1f} MB"
                if Path(item.weights).exists()
                else "missing"
            )
        dataset = card["dataset"].get("label") or card["dataset"].get("name", "")
        rows.append((name, item.architecture, dataset, size, pretrained.headline(card)))
    if not rows:
        print(f"no pretrained model matches {args.pattern!r}", file=sys.stderr)
        return 1
    _table(("name", "architecture", "dataset", "size", "headline (full test set)"), rows)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from aezoo.plugins import registry

    reg = registry()
    rows = [
        (d.name + (f":{d.argument}" if d.argument else ""), d.description, d.plugin)
        for d in sorted(reg.datasets.values(), key=lambda d: d.name)
    ]
    _table(("name", "description", "plugin"), rows)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from aezoo.plugins import host

    records = sorted(host().records.values(), key=lambda r: r.name)
    rows = []
    for r in records:
        provides = ", ".join(
            r.architectures + [f"dataset {d}" for d in r.datasets] + [f"callback {c}" for c in r.callbacks]
        )
        rows.append((r.name, r.distribution, r.status, r.error if r.status != "ok" else provides))
    _table(("plugin", "distribution", "status", "provides / reason"), rows)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from aezoo import trainer, training

    progress = False if args.no_progress else None
    settings: dict[str, Any] = {
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "grad_clip": args.grad_clip,
        "lr_schedule": args.lr_schedule,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        "limit_train": args.limit_train,
        "limit_eval": args.limit_eval,
        "save_every": args.save_every,
        "early_stop": args.early_stop,
        "tensorboard": args.tensorboard,
        "callbacks": tuple(args.callbacks) if args.callbacks else None,
        "save_minutes": args.save_minutes,
    }
    if args.resume:
        given = {f"--{k.replace('_', '-')}" for k, v in settings.items() if v is not None}
        given -= {"--epochs", "--max-steps", "--lr"}
        given |= {flag for flag, value in (("--dataset", args.dataset), ("--set", args.assignments),
                                             ("--out", args.out), ("--no-test", args.no_test),
                                             ("--config", args.config)) if value}  # fmt: skip
        if given:
            raise AezooError(
                f"--resume continues a run with its own settings; drop {', '.join(sorted(given))} "
                "(only --epochs and --max-steps may extend it, and --lr change its learning rate)"
            )
        from aezoo.sources import refuse_pretrained

        refuse_pretrained(args.resume, "it has no training history to resume (train its recipe instead)")
        if args.name:
            from aezoo.runs import Run

            saved = Run.open(args.resume).config.get("architecture")
            if saved != args.name:
                raise AezooError(f"{args.resume} is a {saved!r} run, not {args.name!r}")
        training.resume(
            args.resume,
            epochs=args.epochs,
            max_steps=args.max_steps,
            lr=args.lr,
            data_dir=args.data_dir,
            progress=progress,
        )
        print(args.resume)
        return 0
    if args.allow_other_data and not args.config:
        raise AezooError("--allow-other-data goes with --config (a recipe that recorded its data)")
    from aezoo.hparams import parse_assignments
    from aezoo.recipes import read_recipe, recipe_from_dict

    recipe = read_recipe(args.config) if args.config else None
    if recipe is None:
        if not args.name:
            raise AezooError(
                "name an architecture to train (see `aezoo list`), --config FILE, or --resume RUN"
            )
        recipe = recipe_from_dict({"architecture": args.name}, "the command line")
    elif args.name and args.name != recipe.architecture:
        raise AezooError(
            f"{args.config} trains {recipe.architecture!r}, not {args.name!r}; drop the name or the --config"
        )
    arch, recorded_hparams, recorded_trainer = recipe.resolve()
    values = {**recorded_hparams.to_dict(), **parse_assignments(arch.hparams, args.assignments)}
    hparams = arch.make_hparams(**values) if args.assignments else recorded_hparams
    settings = {key: value for key, value in settings.items() if value is not None}
    if args.no_test:
        settings["evaluate_test"] = False
    config = trainer.TrainConfig.from_dict({**recorded_trainer.to_dict(), **settings})
    dataset = args.dataset or recipe.dataset
    expect = None
    if args.config and not args.allow_other_data and (not args.dataset or args.dataset == recipe.dataset):
        expect = recipe.provenance.get("dataset_info")
    run = training.train(
        arch.name,
        dataset,
        hparams=hparams,
        config=config,
        out=args.out,
        data_dir=args.data_dir,
        progress=progress,
        expect_data=expect,
        recipe_source=str(args.config),
    )
    print(run.path)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from aezoo.onnx import export

    exported = export(
        args.run,
        args.out,
        opset=args.opset,
        atol=args.atol,
        dtype=args.dtype,
        quantize=args.quantize,
        data_dir=args.data_dir,
        echo=lambda line: print(line, file=sys.stderr),
    )
    for entry in exported.manifest["models"].values():
        shapes = ", ".join(
            f"{t['name']} {t['dtype']}{t['shape']}" for t in entry["inputs"] + entry["outputs"]
        )
        print(f"{exported.path / entry['file']}  ({entry['bytes'] / 1e6:.2f} MB; {shapes})")
    return 0


def _source(spec: str, device: str = "cpu") -> Any:
    from aezoo.sources import open_source

    return open_source(spec, device)


def _source_data(source: Any, data_dir: str | None, dataset: str | None = None) -> Any:
    from aezoo.data import load_data

    return load_data(dataset or source.dataset, data_dir=data_dir, seed=0)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    import torch

    from aezoo.data import batch_limit, iterate, to_device
    from aezoo.image import save_picture, side_by_side

    source = _source(args.run)
    model = source.model
    if args.images:
        batches = [model.read_examples(args.images, invert=args.invert)]
        label = "yours"
    else:
        limit = model.pictured_examples
        n = limit if args.n is None else args.n
        if not 1 <= n <= limit:
            raise AezooError(
                f"-n must be between 1 and {limit} (the examples a {model.architecture} picture shows), "
                f"got {n}"
            )
        split = _source_data(source, args.data_dir, args.dataset).split(args.split)
        count = min(n, len(split))
        batches = list(iterate(split, batch_limit(split, count), torch.arange(count)))
        label = args.split
    drawn: dict[str, list[torch.Tensor]] = {}
    outputs = None
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        model.eval()
        for batch in batches:
            inputs, targets = model.prepare_batch(to_device(batch, model.device), train=False)
            for stem, image in model.pictures(inputs, targets).items():
                drawn.setdefault(stem, []).append(image)
            if args.images and model.writes_reconstructions:
                outputs = model(inputs)
    if not drawn:
        raise AezooError(f"{model.architecture} draws no pictures")
    for stem, images in drawn.items():
        image = images[0] if len(images) == 1 else side_by_side(images)
        if args.out and len(drawn) == 1:
            path = args.out
        elif args.out:
            path = f"{args.out.removesuffix('.png')}-{stem}.png"
        else:
            path = source.output(f"{stem}-{label}.png")
        print(save_picture(image, path))
    if outputs is not None:  # your files' reconstructions as files too (MIDI for melodies)
        files_stem = args.out.removesuffix(".png") if args.out else source.output(f"reconstructions-{label}")
        for path in model.save_outputs(outputs, files_stem):
            print(path)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from aezoo import evaluation

    if args.samples is not None and not args.nll:
        raise AezooError("--samples sets the importance samples of --nll: add --nll, or drop --samples")
    samples = 1000 if args.samples is None else args.samples
    if samples < 1:
        raise AezooError(f"--samples must be at least 1, got {samples}")
    source = _source(args.run, args.device)
    model = source.model
    data = _source_data(source, args.data_dir, args.dataset)
    if args.limit is not None:
        if args.limit < 1:
            raise AezooError(f"--limit must be at least 1, got {args.limit}")
        data = data.limited(args.limit, args.limit)
    split = data.split(args.split)
    seed = source.seed + 2
    report: dict[str, Any] = {
        "model": args.run,
        "dataset": data.name,
        "split": args.split,
        "examples": len(split),
        "device": str(model.device),
    }
    report["metrics"] = evaluation.evaluate_split(model, split, seed=seed)
    if args.baseline == "pca":
        report["pca"] = evaluation.pca_baseline(model, data, args.split, seed=seed)
    if args.nll:
        report["nll"] = evaluation.log_likelihood(model, split, samples)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{model.architecture} on {data.name} {args.split} ({len(split)} examples)")
    for key, value in report["metrics"].items():
        print(f"  {key:<24} {value:.6g}")
    if "pca" in report:
        pca = report["pca"]
        print(
            f"  vs PCA with {pca['components']} components (fitted on {pca['pca_fit_examples']} training examples):"
        )
        print(f"    {'':<12} {'model':>10} {'PCA':>10}")
        print(f"    {'MSE':<12} {pca['model_mse']:>10.5f} {pca['pca_mse']:>10.5f}")
        print(f"    {'BCE':<12} {pca['model_bce']:>10.5f} {pca['pca_bce']:>10.5f}")
    if "nll" in report:
        print(f"  NLL {report['nll']['nll']:.2f} nats ({samples} importance samples per example)")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from aezoo.evaluation import interpolate

    source = _source(args.run)
    model = source.model
    if not 2 <= args.steps <= 256:
        raise AezooError(f"--steps must be between 2 and 256, got {args.steps}")
    batch = model.read_examples([args.start, args.end], invert=args.invert)
    outputs = interpolate(model, batch, args.steps, spherical=not args.linear)
    for path in model.save_outputs(outputs, source.output("interpolation", args.out)):
        print(path)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    source = _source(args.run)
    model = source.model
    if not 1 <= args.n <= SAMPLE_LIMIT:
        raise AezooError(f"-n must be between 1 and {SAMPLE_LIMIT:,}, got {args.n}")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        raise AezooError(f"--temperature must be a positive number, got {args.temperature}")
    generator = torch.Generator(device=model.device).manual_seed(args.seed)
    outputs = torch.cat(  # decoded in batches: the decoder's activations stay small
        [
            model.sample(min(SAMPLE_BATCH, args.n - start), temperature=args.temperature, generator=generator)
            for start in range(0, args.n, SAMPLE_BATCH)
        ]
    )
    for path in model.save_outputs(outputs, source.output("samples", args.out)):
        print(path)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from aezoo import plots

    if args.what == "curves":
        from aezoo.runs import Run
        from aezoo.sources import refuse_pretrained

        refuse_pretrained(args.run, "training curves come from a run's metrics.jsonl")
        run = Run.open(args.run)
        print(plots.curves(run, args.out))
        return 0
    source = _source(args.run)
    model = source.model
    out = source.output(f"{args.what}.png", args.out)
    if args.what == "latent":
        print(plots.latent(model, _source_data(source, args.data_dir), out, split=args.split))
        return 0
    dims = None
    if args.dims:
        try:
            a, b = (int(d) for d in args.dims.split(","))
        except ValueError:
            raise AezooError(f"--dims takes two dimensions like 0,1, got {args.dims!r}") from None
        dims = (a, b)
    if not 2 <= args.steps <= 64:
        raise AezooError(f"--steps must be between 2 and 64, got {args.steps}")
    from aezoo.model import GaussianPrior

    prior_plane = isinstance(model, GaussianPrior) and (dims is not None or model.latent_size == 2)
    needs_data = not prior_plane
    data = _source_data(source, args.data_dir) if needs_data else None
    print(plots.manifold(model, data, out, steps=args.steps, dims=dims))
    return 0


def cmd_upscale(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aezoo.model import Upscaler

    model = _source(args.run).model
    if not isinstance(model, Upscaler):
        raise AezooError(f"{args.run} holds a {model.architecture!r} model, which does not upscale images")
    image = Path(args.image)
    out = Path(args.out) if args.out else image.with_name(f"{image.stem}-upscaled.png")
    print(model.upscale_file(image, out))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from aezoo.onnx import verify

    report = verify(args.export_dir, runtime=args.runtime, weights=args.weights, atol=args.atol)
    for line in report.lines:
        print(line)
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print("verified" if report.passed else f"{len(report.problems)} problem(s)")
    return 0 if report.passed else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from aezoo.serve import serve

    serve(args.export, host=args.host, port=args.port, echo=lambda line: print(line, file=sys.stderr))
    return 0


# -- output --------------------------------------------------------------------------------------


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "none" if value is None else str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]], indent: str = "") -> None:
    cells = [list(map(str, header))] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for i, row in enumerate(cells):
        line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        print(indent + line)
        if i == 0:
            print(indent + "  ".join("-" * w for w in widths))
