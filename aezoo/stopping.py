"""Stopping a training cleanly: Ctrl-C, ``kill`` (SIGTERM: ``docker stop``, a cluster's preemption)
and a closed terminal (SIGHUP) all finish the current step, save a checkpoint and exit with
128 + the signal's number; a second Ctrl-C stops at once, except during a save, which it waits for."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

#: The signals that stop a training, and the exit status each ends it with (128 + its number).
SIGNALS = {
    signal.SIGINT: 130,
    signal.SIGTERM: 143,
    **({signal.SIGHUP: 129} if hasattr(signal, "SIGHUP") else {}),
}


class Stopped(KeyboardInterrupt):
    """A training stopped by a signal, after saving; ``exit_code`` is what the command exits with."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_code = SIGNALS.get(signum, 128 + signum)


class StopRequests:
    """What the signal handlers saw: ``signum`` of the first stop request (None: none yet)."""

    def __init__(self, echo: Callable[[str], None] | None = None) -> None:
        self.signum: int | None = None
        #: False in a run of several processes: a stop must be agreed on by all of them at a step
        #: boundary, so a signal during a save, or a second one, only asks (once) for that stop.
        self.solo = True
        self._saving = False
        self._stop_after_save: int | None = None
        self._echo = echo or (lambda line: None)

    @property
    def requested(self) -> bool:
        return self.signum is not None

    @contextlib.contextmanager
    def saving(self) -> Iterator[None]:
        """A save that a signal must not cut short: a stop asked for meanwhile comes after it."""
        self._saving = True
        try:
            yield
        finally:
            self._saving = False
        if self._stop_after_save is not None:
            raise Stopped(self._stop_after_save)

    def handle(self, signum: int, frame: Any = None) -> None:
        if not self.solo:
            if self.signum is None:
                self.signum = signum
                self._say(f"{signal.Signals(signum).name}: every process stops after this step and saves")
            return
        if self._saving:
            self._stop_after_save = signum
            self._say("saving a checkpoint: stopping as soon as it is written")
            return
        if self.signum is not None and signum == signal.SIGINT:
            raise Stopped(signum)  # a second Ctrl-C: stop now (the last checkpoint is whole)
        if self.signum is None:
            self.signum = signum
            name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
            self._say(f"{name}: stopping after this step and saving (Ctrl-C again to stop at once)")

    def _say(self, line: str) -> None:
        with contextlib.suppress(OSError, ValueError):  # a closed terminal (SIGHUP) has no stderr
            self._echo(line)


@contextlib.contextmanager
def stop_on_signals(echo: Callable[[str], None] | None = None) -> Iterator[StopRequests]:
    """Install the handlers for the block (main thread only; elsewhere nothing is installed)."""
    requests = StopRequests(echo)
    if threading.current_thread() is not threading.main_thread():
        yield requests
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    for signum in SIGNALS:
        signal.signal(signum, requests.handle)
    try:
        yield requests
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
