"""The ``aezoo`` command. ``aezoo --help`` answers without importing torch.

Core commands live in :mod:`aezoo.commands` (a module per concern); a plugin adds its own through
the ``aezoo_register_commands`` hook (:class:`aezoo.Command`), as superres adds ``aezoo upscale``.
"""

from __future__ import annotations

import argparse
import errno
import sys
import warnings
from collections.abc import Sequence
from typing import TextIO

from aezoo._version import __version__
from aezoo.errors import AezooDeprecationWarning, AezooError
from aezoo.stopping import Stopped

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from aezoo.commands import catalog, deploy, develop, train, use

    parser = argparse.ArgumentParser(
        prog="aezoo",
        description="A plugin-based autoencoder model zoo: train, inspect and load models.",
        epilog="Run `aezoo COMMAND --help` for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"aezoo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in (catalog, train, deploy, use, develop):
        module.add_parsers(sub)
    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub: argparse._SubParsersAction) -> None:
    """Each plugin's commands (``aezoo_register_commands``), after the core's, which they cannot replace."""
    from aezoo.plugins import registry

    taken = set(sub.choices)
    for command in sorted(registry().commands.values(), key=lambda c: c.name):
        if command.name in taken:
            print(
                f"aezoo: warning: {command.plugin} registers a command {command.name!r}, which aezoo "
                "already has; it is ignored",
                file=sys.stderr,
            )
            continue
        p = sub.add_parser(command.name, help=command.help, description=command.description or command.help)
        command.configure_parser(p)
        p.set_defaults(func=command.run)


#: Errors of a path itself (the rest, such as a full disk, are reported as they are).
PATH_ERRORS = {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.EACCES, errno.EROFS}


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """aezoo's deprecations as one line (``aezoo: warning: ...``); other warnings as Python shows them."""
    if issubclass(category, AezooDeprecationWarning):
        print(f"aezoo: warning: {message}", file=file or sys.stderr)
    else:
        _python_show_warning(message, category, filename, lineno, file, line)


_python_show_warning = warnings.showwarning


def main(argv: Sequence[str] | None = None) -> int:
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as typed: aezoo train --nproc relaunches it
    try:
        return args.func(args) or 0
    except AezooError as exc:
        if _reports_errors(exc):
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


def _reports_errors(exc: AezooError) -> bool:
    """In a run of several processes, rank 0 reports errors, once (:func:`aezoo.distributed.reports`)."""
    distributed = sys.modules.get("aezoo.distributed")  # not imported: one process
    return distributed is None or distributed.reports(exc)
