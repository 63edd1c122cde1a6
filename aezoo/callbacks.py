"""Trainer callbacks: what happens around the loop, as Lightning does it.

A :class:`Callback` sees a run start, each step end, each train record (the training metrics every
``log_every`` steps and at each epoch's end), each validation, each checkpoint, the run's end and
a failure. Its :meth:`~Callback.state_dict` is saved inside every checkpoint and given back on
resume, so a resumed run behaves as if never stopped. A callback stops the training by setting
``stop_reason``; a callback that raises ends the run with one line naming it and its plugin, and
the run keeps its last checkpoint.

Plugins provide callbacks through the ``aezoo_register_callbacks`` hook (:class:`aezoo.TrainerCallback`),
and so does aezoo itself: the metrics log, the pictures, the progress bar, early stopping and the
TensorBoard logger are registered the same way (:mod:`aezoo.builtin_callbacks`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aezoo.errors import AezooError, did_you_mean

if TYPE_CHECKING:
    from aezoo.registry import TrainerCallback
    from aezoo.trainer import Trainer

#: The events, in the order a run meets them.
EVENTS = (
    "on_run_start",
    "on_step_end",
    "on_train_record",
    "on_validation",
    "on_checkpoint",
    "on_run_end",
    "on_failure",
)


class Callback:
    """Override the events you need; each gets the :class:`~aezoo.trainer.Trainer` (its ``run``,
    ``model``, ``config``, ``pos``). Everything here is optional."""

    #: Set (to a sentence) to stop the training after the current epoch, e.g. early stopping.
    stop_reason: str | None = None

    def on_run_start(self, trainer: Trainer) -> None:
        """Before the first step of this process (a resume calls it too, after restoring)."""

    def on_step_end(self, trainer: Trainer) -> None:
        """After every optimisation step; ``trainer.pos.step`` counts it. Keep it cheap."""

    def on_train_record(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """The training metrics averaged since the last record (``split`` is ``"train"``)."""

    def on_validation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """At each epoch's end, the validation metrics (``split`` is ``"val"``)."""

    def on_checkpoint(self, trainer: Trainer, path: Path) -> None:
        """After a checkpoint was committed to ``path``."""

    def on_run_end(self, trainer: Trainer, record: dict[str, Any] | None) -> None:
        """After the last step and the test evaluation (its record, or None without one)."""

    def on_failure(self, trainer: Trainer, error: BaseException) -> None:
        """The run ended with ``error`` (a stop signal included); the last checkpoint stays."""

    def state_dict(self) -> dict[str, Any]:
        """What must survive a resume (JSON values only); saved inside every checkpoint."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what :meth:`state_dict` returned."""


class CallbackFailed(AezooError):
    """A callback raised: the message names it and the plugin that provides it."""


class Callbacks:
    """The run's callbacks by name, called in order; errors are reported with their plugin."""

    def __init__(self, named: list[tuple[str, str, Callback]]) -> None:
        self.named = named  # (name, plugin, callback)

    def __iter__(self):
        return iter(callback for _, _, callback in self.named)

    def call(self, event: str, trainer: Trainer, *args: Any) -> None:
        for name, plugin, callback in self.named:
            try:
                getattr(callback, event)(trainer, *args)
            except AezooError:
                raise
            except Exception as exc:
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise CallbackFailed(
                    f"callback {name!r} ({plugin}) failed in {event} at step {trainer.pos.step}: "
                    f"{type(exc).__name__}{': ' + detail if detail else ''}; the run keeps its last checkpoint"
                ) from exc

    def fail(self, trainer: Trainer, error: BaseException) -> None:
        """Tell every callback the run failed; their own errors here are not worth a second one."""
        for _, _, callback in self.named:
            try:
                callback.on_failure(trainer, error)
            except Exception:
                continue

    def stop_reason(self) -> str | None:
        return next((c.stop_reason for c in self if c.stop_reason), None)

    def state_dict(self) -> dict[str, dict[str, Any]]:
        return {name: callback.state_dict() for name, _, callback in self.named}

    def load_state_dict(self, states: dict[str, dict[str, Any]]) -> None:
        for name, _, callback in self.named:
            if name in states:
                callback.load_state_dict(states[name])


def check_callback_names(names: Iterable[str], registered: Mapping[str, TrainerCallback]) -> None:
    """One line for the first of ``names`` (``--callback``) that no plugin registers."""
    unknown = [name for name in names if name not in registered]
    if unknown:
        hint = did_you_mean(unknown[0], registered) or "known: " + ", ".join(sorted(registered))
        raise AezooError(f"no trainer callback {unknown[0]!r}; {hint}")


def build_callbacks(config: Any, registered: Mapping[str, TrainerCallback]) -> Callbacks:
    """The callbacks this run uses: every ``registered`` one (the registry's, by name) whose builder
    returns one for ``config``."""
    check_callback_names(getattr(config, "callbacks", None) or (), registered)
    named = []
    for spec in sorted(registered.values(), key=lambda s: (s.order, s.name)):
        callback = spec.build(config)
        if callback is not None:
            named.append((spec.name, spec.plugin or "registered in code", callback))
    return Callbacks(named)


__all__ = ["EVENTS", "Callback", "CallbackFailed", "Callbacks", "build_callbacks", "check_callback_names"]
