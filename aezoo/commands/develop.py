"""For plugin authors: ``aezoo check NAME`` runs the conformance kit on an architecture, ``aezoo
new-plugin NAME`` writes a plugin distribution to start from."""

from __future__ import annotations

import argparse
from typing import Any

from aezoo.errors import AezooError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "check",
        help="run the conformance kit on an architecture: one line per check",
        description="Run every conformance check that applies to NAME (aezoo.testing: the model contract, "
        "and the checks its capabilities call for) on its smoke hyperparameters. Exit status 1 when a "
        "check fails, or when one declared to fail passes.",
    )
    p.add_argument("name", help="architecture (see `aezoo list`)")
    p.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a hyperparameter over the smoke ones (repeatable); `aezoo info NAME` lists them",
    )
    p.add_argument(
        "-k", dest="patterns", action="append", metavar="TEXT", help="only checks whose name contains TEXT"
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser(
        "new-plugin",
        help="write a new plugin distribution to start from: a model that trains, its tests, a README",
        description="Write a plugin distribution for a new architecture NAME: a pyproject with the aezoo "
        "entry point, hyperparameters, a small dense image autoencoder that trains, the conformance kit as "
        "its tests, and a README. Install it with pip install -e DIR.",
    )
    p.add_argument("name", help="the new architecture's name: lower-case words joined by '-' (e.g. my-ae)")
    p.add_argument(
        "--dir", help="the folder to create (default: ./aezoo-NAME); it must not exist or be empty"
    )
    p.set_defaults(func=cmd_new_plugin)


def cmd_check(args: argparse.Namespace) -> int:
    import warnings

    from aezoo.hparams import parse_assignments
    from aezoo.plugins import registry
    from aezoo.testing import kit

    arch = registry().architecture(args.name)
    hparams = {**arch.smoke_hparams, **parse_assignments(arch.hparams, args.assignments)}
    arch.make_hparams(**hparams)  # a bad value is one line before any check runs
    found = kit.profile(arch.name, hparams)
    if not kit.select(found, args.patterns):
        raise AezooError(f"no check of {arch.name} has {' or '.join(map(repr, args.patterns))} in its name")
    capabilities = ", ".join(sorted(found.capabilities)) or "none beyond the model contract"
    print(f"{arch.name}: capabilities: {capabilities}", flush=True)
    counts = dict.fromkeys(("PASS", "FAIL", "XFAIL", "XPASS"), 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # export's tracer warnings; a check's verdict is its line
        for result in kit.run_checks(arch.name, hparams, only=args.patterns):
            counts[result.status] += 1
            line = f"{result.status:<6} {result.check}"
            print(f"{line}: {result.message}" if result.message else line, flush=True)
    words = {
        "PASS": "passed",
        "FAIL": "failed",
        "XFAIL": "failed as expected",
        "XPASS": "passed unexpectedly",
    }
    print(", ".join(f"{n} {words[s]}" for s, n in counts.items() if n))
    return 1 if counts["FAIL"] or counts["XPASS"] else 0


def cmd_new_plugin(args: argparse.Namespace) -> int:
    from aezoo.scaffold import files, names, new_plugin

    folder = new_plugin(args.name, args.dir)
    for relative in files(names(args.name)["package"]):
        print(folder / relative)
    print(
        f"next: pip install -e {folder} && aezoo train {args.name} --max-steps 200 && aezoo check {args.name}"
    )
    return 0
