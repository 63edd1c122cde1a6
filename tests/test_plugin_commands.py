"""Plugins add subcommands (aezoo_register_commands): listed by `aezoo --help` without importing
torch, run with their own options, unable to replace aezoo's own; superres's `upscale` is one."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

from aezoo.plugins import host
from tests.conftest import REPO, make_distribution

PLUGIN = """
import aezoo


def arguments(parser):
    parser.add_argument("who")
    parser.add_argument("--times", type=int, default=1)


def greet(args):
    if args.times < 1:
        raise aezoo.AezooError(f"--times must be at least 1, got {args.times}")
    print(" ".join([f"hello {args.who}"] * args.times))
    return 0


@aezoo.hookimpl
def aezoo_register_commands(register):
    register(aezoo.Command("greet", "say hello", arguments=arguments, handler=greet))
    register(aezoo.Command("train", "a command aezoo already has", arguments=arguments, handler=greet))
"""


def _run(site, *args: str) -> subprocess.CompletedProcess[str]:
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(site)!r})
        from aezoo.cli import main
        try:
            status = main({list(args)!r})
        finally:  # --help exits from inside main
            print("torch imported:", "torch" in sys.modules, file=sys.stderr)
        sys.exit(status)
        """
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_a_plugins_command_is_listed_runs_and_cannot_replace_a_core_one(site):
    make_distribution(site, "aezoo-greeter", {"greeter": "greeter"}, {"greeter": PLUGIN})
    listed = _run(site, "--help")
    assert listed.returncode == 0 and re.search(r"^\s+greet\s+say hello$", listed.stdout, re.M)
    assert "torch imported: False" in listed.stderr  # --help stays fast
    assert "registers a command 'train', which aezoo already has; it is ignored" in listed.stderr
    ran = _run(site, "greet", "world", "--times", "2")
    assert ran.returncode == 0 and ran.stdout.strip() == "hello world hello world"
    assert "torch imported: False" in ran.stderr
    mistake = _run(site, "greet", "world", "--times", "0")
    assert mistake.returncode == 2 and "aezoo: error: --times must be at least 1, got 0" in mistake.stderr
    assert "Traceback" not in mistake.stderr


def test_upscale_is_superres_own_command():
    record = host().records["superres"]
    assert record.commands == ["upscale"]
    assert host().registry.commands["upscale"].plugin.endswith("(plugin 'superres')")
