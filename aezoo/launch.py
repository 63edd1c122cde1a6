"""``aezoo train --nproc N``: start N training processes on this machine with torchrun's launcher
(``torch.distributed.run``, in this process) and report how they ended in one line."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

from aezoo.errors import AezooError


def without_nproc(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--nproc N`` (or ``--nproc=N``): what each process is started with."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m aezoo ARGV`` in ``nproc`` processes (``torchrun --standalone``) and return the
    exit status: 0, or that of the first process that failed, which reported its error itself (a
    process killed by a signal is reported here)."""
    from aezoo import distributed

    if nproc < 1:
        raise AezooError(f"--nproc must be at least 1, got {nproc}")
    if distributed.launched():
        raise AezooError("--nproc starts the processes itself: under torchrun, leave it out")
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    # torchrun's own logs (a warning per setting, a report per failure) would bury the one line.
    for name in [*logging.root.manager.loggerDict, "torch.distributed"]:
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # torchrun's default, without its warning
    args = torchrun.parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "aezoo", *argv])
    os.environ[distributed.LAUNCHER_ENV] = "1"
    try:
        torchrun.run(args)
    except ChildFailedError as exc:
        rank, failure = min(exc.failures.items(), key=lambda item: _consequence(item[1]))
        if failure.exitcode >= 0:
            return failure.exitcode
        name = signal.Signals(-failure.exitcode).name
        raise AezooError(
            f"training process {rank} of {nproc} was killed ({name}); the others stopped, and the run "
            f"keeps its last checkpoint: continue with aezoo train --resume RUN --nproc {nproc}"
        ) from None
    except SignalException as exc:
        return 128 + int(exc.sigval)
    return 0


def _consequence(failure: Any) -> tuple[bool, bool, float]:
    """Sorts a process that failed on its own before those that only lost it (exit status 3) and
    those torchrun stopped afterwards (SIGTERM), then by time."""
    return (failure.exitcode == 3, failure.exitcode == -signal.SIGTERM, failure.timestamp)


__all__ = ["launch", "without_nproc"]
