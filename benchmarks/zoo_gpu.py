"""Retrain pretrained entries on a GPU in one short loan: each entry's recipe replayed with longer
settings, all at once (one process each), every run folder written under ``--out``.

    python benchmarks/zoo_gpu.py --out runs/zoo-gpu --limit-s 220 --bundle \\
        --train conv:mnist "--epochs 40" --train vae:mnist-2d "--epochs 300"

Each ``--train NAME "OPTIONS"`` runs ``aezoo train --config RECIPE OPTIONS --device cuda`` (RECIPE:
the entry's ``recipe.toml``) into ``OUT/ARCH-TAG``. A run still training after ``--limit-s``
seconds is stopped as Ctrl-C stops it (a checkpoint at the step boundary; its ``config.json`` says
how far it was meant to go, so it is not packed as finished). ``OUT/summary.json`` records the
machine, each run's exit status and time. With ``--bundle``, the run folders and logs then become
``OUT/zoo-gpu.tar.NN``, parts of at most 15 MiB (a GPU loan brings back few files, and none
larger): ``cat OUT/zoo-gpu.tar.* | tar -x -C runs/zoo-gpu`` restores them.

Loans add up: a run folder already in ``OUT`` (or in parts ``OUT/zoo-gpu.tar.NN`` a previous loan
brought back, unpacked first) is continued with ``aezoo train --resume OUT/ARCH-TAG OPTIONS``
(OPTIONS then only extend it: ``--epochs``, ``--max-steps``, ``--lr``), on the device it recorded.
Back where the repository lives, ``python benchmarks/zoo.py pack NAME OUT/ARCH-TAG --machine "..."`` packs a
finished run as the entry (its card names the machine).

It runs from a bare checkout (aezoo not installed: the built-in plugins are registered from
``plugins/``); ``$AEZOO_DATA`` must hold the entries' datasets (``--device cpu`` tries it here).
"""

from __future__ import annotations

import argparse
import io
import json
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO), str(REPO / "plugins")]  # runnable uninstalled

#: The built-in plugins, registered by module when aezoo's entry points are not installed.
BUILT_INS = ("images", "dense", "conv", "denoising", "superres", "vae", "aae", "musicvae")
PART_BYTES = 15 * 2**20


def recipe_path(name: str) -> Path:
    """The recipe of the built-in entry ``ARCH:TAG``."""
    arch, _, tag = name.partition(":")
    path = REPO / "plugins" / f"aezoo_{arch}" / "pretrained" / tag / "recipe.toml"
    if not path.is_file():
        raise SystemExit(f"zoo_gpu: no recipe for {name} at {path}")
    return path


def train_one(name: str, options: str, out: Path, device: str) -> int:
    """``aezoo train`` of one entry, in this process (the child's side of :func:`main`)."""
    import importlib

    import aezoo
    from aezoo.cli import main as cli
    from aezoo.plugins import registry

    if "conv" not in registry().architectures:  # a bare checkout
        for plugin in BUILT_INS:
            aezoo.register_plugin(importlib.import_module(f"aezoo_{plugin}"), plugin)
    run = out / folder_name(name)
    if (run / "config.json").is_file():  # a previous loan's run: continue it
        return cli(["train", "--resume", str(run), *shlex.split(options), "--no-progress"])
    argv = ["train", "--config", str(recipe_path(name)), *shlex.split(options)]
    return cli([*argv, "--device", device, "--no-progress", "--out", str(run)])


def folder_name(name: str) -> str:
    """``conv-mnist`` for ``conv:mnist`` (file transfers refuse colons)."""
    return name.replace(":", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder of the run folders")
    parser.add_argument("--train", nargs=2, action="append", metavar=("NAME", "OPTIONS"), default=[])
    parser.add_argument("--limit-s", type=float, default=220.0, help="stop every run after this")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--bundle", action="store_true", help="run folders and logs as tar parts")
    parser.add_argument("--child", nargs=2, metavar=("NAME", "OPTIONS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        raise SystemExit(train_one(*args.child, args.out, args.device))
    from common import machine

    args.out.mkdir(parents=True, exist_ok=True)
    for name, _ in args.train:
        recipe_path(name)  # every name checked before anything starts
    restored = unbundle(args.out)
    resumed = {name for name, _ in args.train if (args.out / folder_name(name) / "config.json").is_file()}
    started = time.monotonic()
    children = {
        name: subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--out",
                str(args.out),
                "--device",
                args.device,
                "--child",
                name,
                options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=(args.out / f"{folder_name(name)}.log").open("a"),  # a resumed run's log goes on
        )
        for name, options in args.train
    }
    stopped: set[str] = set()
    ended: dict[str, float] = {}
    while len(ended) < len(children):
        for name, child in children.items():
            if name not in ended and child.poll() is not None:
                ended[name] = round(time.monotonic() - started, 1)
        if time.monotonic() - started > args.limit_s:
            for name, child in children.items():
                if child.poll() is None and name not in stopped:
                    child.send_signal(signal.SIGINT)  # the trainer saves at the step boundary
                    stopped.add(name)
        time.sleep(1)
    summary = {
        "machine": machine(),
        "runs": {
            name: {
                "options": options,
                "resumed": name in resumed,
                "exit": children[name].returncode,
                "stopped_at_limit": name in stopped,
                "seconds": ended[name],
            }
            for name, options in args.train
        },
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    if args.bundle:
        bundle(args.out, sorted({*restored, *(folder_name(name) for name, _ in args.train)}))


def unbundle(out: Path) -> list[str]:
    """Unpack the parts ``out/zoo-gpu.tar.NN`` a previous loan wrote (then removed), so that its
    runs continue, and return the run folders they held; a part missing from the sequence is one
    line, before anything is unpacked."""
    parts = sorted(out.glob("zoo-gpu.tar.[0-9][0-9]"))
    if not parts:
        return []
    expected = [out / f"zoo-gpu.tar.{index:02d}" for index in range(len(parts))]
    if parts != expected:
        raise SystemExit(
            f"zoo_gpu: the parts in {out} are not zoo-gpu.tar.00 to .{len(parts) - 1:02d} in sequence"
        )
    data = b"".join(part.read_bytes() for part in parts)
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            folders = sorted({m.name.split("/")[0] for m in tar.getmembers() if "/" in m.name or m.isdir()})
            tar.extractall(out, filter="data")
    except tarfile.TarError as error:
        raise SystemExit(f"zoo_gpu: cannot unpack {parts[0].name}…: {error} (is a part missing?)") from None
    for part in parts:
        part.unlink()
    return folders


def bundle(out: Path, names: list[str]) -> None:
    """The run folders ``names`` under ``out`` and their logs as ``out/zoo-gpu.tar.NN`` parts,
    the originals removed (run locks left out: they mean nothing elsewhere)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in names:
            for path in [out / name, out / f"{name}.log"]:
                if path.exists():
                    tar.add(
                        path,
                        arcname=path.name,
                        filter=lambda info: None if info.name.endswith(".aezoo-lock") else info,
                    )
    data = buffer.getvalue()
    for index, start in enumerate(range(0, len(data), PART_BYTES)):
        (out / f"zoo-gpu.tar.{index:02d}").write_bytes(data[start : start + PART_BYTES])
    for name in names:
        shutil.rmtree(out / name, ignore_errors=True)
        (out / f"{name}.log").unlink(missing_ok=True)


if __name__ == "__main__":
    main()
