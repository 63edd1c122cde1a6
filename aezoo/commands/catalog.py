"""What is installed and what it is: architectures, pretrained models, datasets, plugins, and a model's card or a file's recipe."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from aezoo.commands.output import show, table
from aezoo.errors import AezooError


def add_parsers(sub: Any) -> None:
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


def cmd_list(args: argparse.Namespace) -> int:
    from aezoo.plugins import registry

    reg = registry()
    names = reg.list_architectures(args.pattern)
    if not names:
        print(f"no architecture matches {args.pattern!r}", file=sys.stderr)
        return 1
    rows = [(n, reg.architectures[n].default_dataset, reg.architectures[n].description) for n in names]
    table(("name", "dataset", "description"), rows)
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aezoo.hparams import describe
    from aezoo.plugins import registry
    from aezoo.registry import is_pretrained_name

    if Path(args.name).expanduser().is_file():
        return info_file(Path(args.name).expanduser())
    if args.name and Path(args.name).expanduser().is_dir():  # a run folder: what its weights say
        from aezoo.checkpoint import resolve_model_path

        return info_file(resolve_model_path(args.name))
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
        (r["name"], r["type"], show(r["default"]), r["allowed"], r["doc"]) for r in describe(arch.hparams)
    ]
    table(("name", "type", "default", "allowed", "doc"), rows, indent="  ")
    return 0


def info_file(path: Any) -> int:
    """What a weights file says of itself: architecture, distribution, recipe."""
    import json

    from aezoo import checkpoint

    # a file's metadata is untrusted: shown with its control characters escaped, never sent to the terminal
    metadata = {key: printable(value) for key, value in checkpoint.read_metadata(path).items()}
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


def printable(text: str) -> str:
    """``text`` with every character a terminal would act on (escape sequences, carriage returns)
    written as a Python escape instead."""
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in str(text))


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
    table(("name", "architecture", "dataset", "size", "headline (full test set)"), rows)
    return 0


def cmd_datasets(args: argparse.Namespace) -> int:
    from aezoo.plugins import registry

    reg = registry()
    rows = [
        (d.name + (f":{d.argument}" if d.argument else ""), d.description, d.plugin)
        for d in sorted(reg.datasets.values(), key=lambda d: d.name)
    ]
    table(("name", "description", "plugin"), rows)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from aezoo.plugins import host

    records = sorted(host().records.values(), key=lambda r: r.name)
    rows = []
    for r in records:
        provides = ", ".join(
            r.architectures
            + [f"dataset {d}" for d in r.datasets]
            + [f"callback {c}" for c in r.callbacks]
            + [f"command {c}" for c in r.commands]
        )
        rows.append((r.name, r.distribution, r.status, r.error if r.status != "ok" else provides))
    table(("plugin", "distribution", "status", "provides / reason"), rows)
    return 0
