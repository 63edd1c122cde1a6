"""The ``aezoo`` command. ``aezoo --help`` answers without importing torch."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from aezoo._version import __version__
from aezoo.errors import AezooError

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


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

    p = sub.add_parser("info", help="describe an architecture and its hyperparameters")
    p.add_argument("name")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("datasets", help="list datasets")
    p.set_defaults(func=cmd_datasets)

    p = sub.add_parser("plugins", help="list plugins, including broken ones and why")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser(
        "train",
        help="train an architecture into a run folder",
        description="Train NAME into runs/NAME-TIMESTAMP (or --out), or continue a run with --resume.",
    )
    p.add_argument("name", nargs="?", help="architecture (see `aezoo list`)")
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
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--limit-train", type=int, metavar="N", help="use only N training examples")
    p.add_argument("--limit-eval", type=int, metavar="N", help="use only N val/test examples")
    p.add_argument("--no-test", action="store_true", help="skip the final test-set evaluation")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "export",
        help="export a run's encoder and decoder to ONNX, validated against onnxruntime",
        description="Write encoder.onnx, decoder.onnx and aezoo-export.json, each model validated "
        "against PyTorch in onnxruntime before anything is put in place.",
    )
    p.add_argument("run", help="run folder or .safetensors file")
    p.add_argument("--out", help="export folder (default: exports/RUN_NAME)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18, the lowest supported)")
    p.add_argument("--atol", type=float, default=1e-5, help="max abs difference allowed (default 1e-5)")
    p.add_argument("--dtype", default="fp32", help="fp32, or fp16 to add decoder.fp16.onnx")
    p.add_argument("--quantize", help="int8 to add decoder.int8.onnx (dynamic quantisation)")
    p.add_argument("--data-dir", help="dataset root for the real-data validation batch")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="re-check an export: checksums, and parity with the run's weights")
    p.add_argument("export_dir")
    p.add_argument("--runtime", default="onnxruntime", help="onnxruntime (default) or reference")
    p.add_argument("--weights", help="run folder or .safetensors file (default: the one in the manifest)")
    p.add_argument("--atol", type=float, help="tolerance (default: the export's)")
    p.set_defaults(func=cmd_verify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args) or 0
    except AezooError as exc:
        print(f"aezoo: error: {exc}", file=sys.stderr)
        return exc.exit_code
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
    from aezoo.hparams import describe
    from aezoo.plugins import registry

    arch = registry().architecture(args.name)
    print(f"{arch.name}: {arch.description}")
    print(f"plugin: {arch.plugin}")
    print(f"default dataset: {arch.default_dataset}")
    print("hyperparameters (set with --set NAME=VALUE):")
    rows = [
        (r["name"], r["type"], _show(r["default"]), r["allowed"], r["doc"]) for r in describe(arch.hparams)
    ]
    _table(("name", "type", "default", "allowed", "doc"), rows, indent="  ")
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
        provides = ", ".join(r.architectures + [f"dataset {d}" for d in r.datasets])
        rows.append((r.name, r.distribution, r.status, r.error if r.status != "ok" else provides))
    _table(("plugin", "distribution", "status", "provides / reason"), rows)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from aezoo import trainer

    progress = False if args.no_progress else None
    if args.resume:
        ignored = [
            flag
            for flag, value in (
                ("--dataset", args.dataset),
                ("--set", args.assignments),
                ("--out", args.out),
                ("--batch-size", args.batch_size),
                ("--lr", args.lr),
                ("--seed", args.seed),
            )
            if value not in (None, [])
        ]
        if ignored:
            raise AezooError(
                f"--resume continues a run with its own settings; drop {', '.join(ignored)} "
                "(only --epochs and --max-steps may extend it)"
            )
        if args.name:
            from aezoo.runs import Run

            saved = Run.open(args.resume).config.get("architecture")
            if saved != args.name:
                raise AezooError(f"{args.resume} is a {saved!r} run, not {args.name!r}")
        trainer.resume(
            args.resume,
            epochs=args.epochs,
            max_steps=args.max_steps,
            data_dir=args.data_dir,
            progress=progress,
        )
        print(args.resume)
        return 0
    if not args.name:
        raise AezooError("name an architecture to train (see `aezoo list`), or --resume RUN")
    from aezoo.hparams import parse_assignments
    from aezoo.plugins import registry

    arch = registry().architecture(args.name)
    values = parse_assignments(arch.hparams, args.assignments)
    hparams = arch.make_hparams(**values)
    settings: dict[str, Any] = {
        key: value
        for key, value in {
            "epochs": args.epochs,
            "max_steps": args.max_steps,
            "batch_size": args.batch_size,
            "lr": args.lr,
            "optimizer": args.optimizer,
            "weight_decay": args.weight_decay,
            "grad_clip": args.grad_clip,
            "seed": args.seed,
            "device": args.device,
            "threads": args.threads,
            "limit_train": args.limit_train,
            "limit_eval": args.limit_eval,
        }.items()
        if value is not None
    }
    if args.no_test:
        settings["evaluate_test"] = False
    config = trainer.TrainConfig.from_dict(settings)
    run = trainer.train(
        arch.name,
        args.dataset,
        hparams=hparams,
        config=config,
        out=args.out,
        data_dir=args.data_dir,
        progress=progress,
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


def cmd_verify(args: argparse.Namespace) -> int:
    from aezoo.onnx import verify

    report = verify(args.export_dir, runtime=args.runtime, weights=args.weights, atol=args.atol)
    for line in report.lines:
        print(line)
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print("verified" if report.passed else f"{len(report.problems)} problem(s)")
    return 0 if report.passed else 1


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
