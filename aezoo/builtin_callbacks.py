"""aezoo's own trainer callbacks, registered through ``aezoo_register_callbacks`` like anyone's:
the metrics log (``metrics.jsonl``), the progress bar, the pictures, early stopping
(``--early-stop METRIC:PATIENCE``) and the TensorBoard logger (``--tensorboard``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aezoo.callbacks import Callback
from aezoo.errors import AezooError
from aezoo.hookspecs import hookimpl
from aezoo.registry import TrainerCallback

if TYPE_CHECKING:
    from aezoo.trainer import Trainer

#: Where ``--tensorboard`` writes its event files, inside the run folder.
TENSORBOARD_DIR = "tensorboard"


class MetricsLog(Callback):
    """``metrics.jsonl``: one JSON line per train record, validation and test."""

    def on_train_record(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.run.log(record)

    def on_validation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        trainer.run.log(record)

    def on_run_end(self, trainer: Trainer, record: dict[str, Any] | None) -> None:
        if record is not None:
            trainer.run.log(record)


class Progress(Callback):
    """A tqdm bar of the steps (``--no-progress`` hides it), showing the latest loss."""

    def __init__(self) -> None:
        self.bar: Any = None

    def on_run_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        disable = None if trainer.progress is None else not trainer.progress
        self.bar = tqdm(
            total=trainer.total_steps(),
            initial=trainer.pos.step,
            unit="step",
            disable=disable,
            dynamic_ncols=True,
            leave=False,
        )

    def on_step_end(self, trainer: Trainer) -> None:
        if self.bar is None:
            return
        self.bar.update(1)
        window = trainer.window
        if window and (trainer.pos.step % 10 == 0 or trainer.pos.step == trainer.total_steps()):
            key = "loss" if "loss" in window else next(iter(window))
            if window[key]:
                self.bar.set_postfix({key: f"{float(window[key][-1]):.4f}"}, refresh=False)

    def on_run_end(self, trainer: Trainer, record: dict[str, Any] | None) -> None:
        self._close()

    def on_failure(self, trainer: Trainer, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Pictures(Callback):
    """``reconstructions.png`` (and whatever else the model draws) from the best model, at the end."""

    def on_run_end(self, trainer: Trainer, record: dict[str, Any] | None) -> None:
        trainer.write_pictures()


class EarlyStopping(Callback):
    """Stop when a validation metric has not improved for ``patience`` epochs."""

    def __init__(self, metric: str, patience: int, mode: str) -> None:
        self.metric, self.patience, self.mode = metric, patience, mode
        self.best: float | None = None
        self.bad_epochs = 0

    def on_validation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        if self.metric not in record:
            known = ", ".join(k for k in record if k not in ("split", "epoch", "step"))
            raise AezooError(
                f"--early-stop {self.metric}: validation reports no {self.metric!r}; it reports {known}"
            )
        value = float(record[self.metric])
        better = self.best is None or (value < self.best if self.mode == "min" else value > self.best)
        if math.isfinite(value) and better:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs >= self.patience:
            self.stop_reason = (
                f"stopped early: val {self.metric} has not improved on {self.best:.6g} for {self.patience} "
                f"epoch{'s' if self.patience != 1 else ''}"
            )

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs, "stop_reason": self.stop_reason}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = state.get("best"), int(state.get("bad_epochs", 0))
        self.stop_reason = state.get("stop_reason")


def parse_early_stop(spec: str) -> tuple[str, int, str]:
    """``METRIC:PATIENCE[:min|max]`` → (metric, patience, mode); ``ValueError`` says what is wrong."""
    parts = spec.split(":")
    if len(parts) not in (2, 3) or not parts[0]:
        raise ValueError("write METRIC:PATIENCE or METRIC:PATIENCE:max, e.g. loss:3 or psnr_y:5:max")
    try:
        patience = int(parts[1])
    except ValueError:
        raise ValueError(f"patience must be a whole number of epochs, got {parts[1]!r}") from None
    if patience < 1:
        raise ValueError(f"patience must be at least 1 epoch, got {patience}")
    mode = parts[2] if len(parts) == 3 else "min"
    if mode not in ("min", "max"):
        raise ValueError(f"the direction must be min or max, got {mode!r}")
    return parts[0], patience, mode


class TensorBoard(Callback):
    """Event files in ``RUN/tensorboard`` (``tensorboard --logdir RUN``): train, val and test
    metrics by step. On resume, events after the checkpoint are purged, so nothing is doubled."""

    def __init__(self) -> None:
        self.writer: Any = None
        self.resumed_at: int | None = None

    def _write(self, trainer: Trainer, record: dict[str, Any], step: int) -> None:
        if self.writer is None:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                raise AezooError(
                    "--tensorboard needs TensorBoard: pip install 'aezoo[tensorboard]'"
                ) from None
            purge = None if self.resumed_at is None else self.resumed_at + 1
            self.writer = SummaryWriter(str(trainer.run.path / TENSORBOARD_DIR), purge_step=purge)
        split = record["split"]
        for key, value in record.items():
            if key not in ("split", "epoch", "step", "time_s") and isinstance(value, (int, float)):
                self.writer.add_scalar(f"{split}/{key}", value, step)
        self.writer.flush()

    def on_train_record(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._write(trainer, record, record["step"])

    def on_validation(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._write(trainer, record, record["step"])

    def on_run_end(self, trainer: Trainer, record: dict[str, Any] | None) -> None:
        if record is not None:
            self._write(trainer, record, trainer.pos.step)
        self._close()

    def on_failure(self, trainer: Trainer, error: BaseException) -> None:
        self._close()

    def _close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def state_dict(self) -> dict[str, Any]:
        return {"written": True}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.resumed_at = -1  # set to the checkpoint's step by on_run_start

    def on_run_start(self, trainer: Trainer) -> None:
        if self.resumed_at is not None:
            self.resumed_at = trainer.pos.step


def _always(factory: Callable[[], Callback]) -> Callable[[Any], Callback]:
    return lambda config: factory()


def _early_stopping(config: Any) -> Callback | None:
    if not config.early_stop:
        return None
    return EarlyStopping(*parse_early_stop(config.early_stop))


def _tensorboard(config: Any) -> Callback | None:
    return TensorBoard() if config.tensorboard or "tensorboard" in (config.callbacks or ()) else None


@hookimpl
def aezoo_register_callbacks(register: Callable[[TrainerCallback], None]) -> None:
    register(TrainerCallback("metrics-log", _always(MetricsLog), "metrics.jsonl in the run folder", order=0))
    register(TrainerCallback("progress", _always(Progress), "a progress bar of the steps", order=10))
    register(
        TrainerCallback("pictures", _always(Pictures), "reconstructions.png from the best model", order=20)
    )
    register(
        TrainerCallback(
            "early-stop",
            _early_stopping,
            "--early-stop METRIC:PATIENCE: stop when val METRIC stalls",
            order=50,
        )
    )
    register(
        TrainerCallback(
            "tensorboard", _tensorboard, "--tensorboard: event files in RUN/tensorboard", order=60
        )
    )
