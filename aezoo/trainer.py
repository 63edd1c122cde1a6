"""The one trainer every architecture uses: the loop and its checkpoint step. Everything around
them (the metrics log, the progress bar, pictures, early stopping, TensorBoard, a plugin's own) is
a callback (:mod:`aezoo.callbacks`), and the checkpoint is one file (:mod:`aezoo.trainstate`)."""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from aezoo import checkpoint, distributed, trainstate
from aezoo.callbacks import Callbacks, build_callbacks
from aezoo.data import DataSplits, Split, first_examples, to_device
from aezoo.errors import AezooError
from aezoo.evaluation import evaluate_split
from aezoo.model import AutoEncoder, OptimizerConfig
from aezoo.plugins import load_data, registry
from aezoo.precision import StepPrecision
from aezoo.runs import CONFIG_FILE, Run
from aezoo.stopping import Stopped, StopRequests, stop_on_signals
from aezoo.streaming import stream_batches
from aezoo.trainconfig import TrainConfig, parse_select, select_device


class Trainer:
    """Fits an :class:`AutoEncoder` on :class:`DataSplits`, writing a run folder as it goes."""

    def __init__(
        self,
        model: AutoEncoder,
        data: DataSplits,
        config: TrainConfig,
        run: Run,
        *,
        progress: bool | None = None,
        echo: Callable[[str], None] | None = None,
    ) -> None:
        self.config = config
        self.run = run
        #: This process among the run's (:mod:`aezoo.distributed`): the only one, or one rank of several.
        self.dist = distributed.current()
        self.device = self.dist.device(config.device)
        self.model = model.to(self.device)
        self.dist.sync_module(self.model)
        #: Autocast, the float16 gradient scaler and --compile of the training steps (:mod:`aezoo.precision`).
        self.precision = StepPrecision(
            config.precision,
            self.device,
            compile_backend=config.compile_backend if config.compile else None,
            echo=lambda line: self.echo(line),
        )
        self.data = data.limited(config.limit_train, config.limit_eval)
        self.progress = progress
        self.echo = echo or (lambda line: print(line, file=sys.stderr))
        if not self.dist.is_writer:
            self.echo = _silent  # rank 0 talks to the user
        self.optimizers: dict[str, tuple[torch.optim.Optimizer, Any]] = {}
        for name, value in model.configure_optimizers(
            OptimizerConfig(config.optimizer, config.lr, config.weight_decay)
        ).items():
            opt, sched = value if isinstance(value, tuple) else (value, None)
            self.optimizers[name] = (opt, sched)
        self.data_generator = torch.Generator().manual_seed(config.seed + 1)
        self.epoch_generator_state = self.data_generator.get_state()
        self.pos = trainstate.Position()
        self._started = time.perf_counter()
        self._stop = StopRequests()
        #: The training metrics since the last train record (saved in every checkpoint).
        self.window: dict[str, list[torch.Tensor]] = {}
        #: A CPU copy of the best weights (None: no finite validation loss yet).
        self.best_state: dict[str, torch.Tensor] | None = None
        #: The first step whose loss was not finite (-1: none), kept on the device: no sync per step.
        self._bad_step = torch.full((), -1, dtype=torch.long, device=self.device)
        self._saved_at = time.monotonic()
        #: The run's callbacks (:func:`aezoo.callbacks.build_callbacks`); their state is checkpointed.
        self.callbacks = build_callbacks(config, registry().callbacks)
        if not self.dist.is_writer:  # they write and show: rank 0's; its stop_reason is shared
            self.callbacks = Callbacks([])
        #: Stored in every weights file the run writes, so the file alone says how it was trained.
        self.recipe = {
            "architecture": model.architecture,
            "hparams": model.hparams.to_dict(),
            "dataset": data.name,
            "trainer": config.to_dict(),
        }
        if (run.path / CONFIG_FILE).exists():
            self.recipe["dataset"] = run.config["dataset"]

    # -- public --------------------------------------------------------------------------------

    def total_steps(self) -> int:
        total = self.config.epochs * self._steps_per_epoch()
        return total if self.config.max_steps is None else min(total, self.config.max_steps)

    def fit(self) -> Run:
        cfg = self.config
        if len(self.data.train) == 0:
            reason = self.data.info.get("train_note", "check the dataset")
            raise AezooError(f"the training split of {self.data.name} is empty: {reason}")
        total = self.total_steps()
        if self.pos.step >= total or self._stop_reason():
            unreported = self.config.evaluate_test and not self.run.metrics("test")
            if self.dist.from_writer(lambda: "1" if unreported else ""):
                self._finish()  # the run stopped between its last step and its final report
            else:
                self.echo(f"{self.run.path}: already trained for {self.pos.step} steps; nothing to do")
            return self.run
        self._started = time.perf_counter() - self.pos.elapsed_s
        try:
            with stop_on_signals(self.echo) as stop, _flush_denormal(cfg.flush_denormal):
                self._stop = stop
                stop.solo = not self.dist.active
                self.callbacks.call("on_run_start", self)
                self._loop(total)
            self._finish()
        except BaseException as error:
            self.callbacks.fail(self, error)
            raise
        return self.run

    def _loop(self, total: int) -> None:
        stop = self._stop
        while self.pos.step < total:
            finished_epoch = self._train_epoch(total)
            self.pos.elapsed_s = time.perf_counter() - self._started
            if stop.requested:
                self._save_checkpoint()
                self._say_stopped()
                raise Stopped(stop.signum or 2)
            if finished_epoch:
                self.pos.epoch += 1
                self.pos.batch_in_epoch = 0
                self.epoch_generator_state = self.data_generator.get_state()
            self._log_train()
            self._validate_and_checkpoint()
            reason = self._stop_reason()
            if reason:
                self.echo(f"{reason} (step {self.pos.step})")
                return

    def evaluate(self, split: Split) -> dict[str, float]:
        """Mean metrics over ``split`` with the model in eval mode and a fixed noise seed (each
        rank evaluates its share, and every rank gets the means over the whole split)."""
        self.dist.sync_module(self.model, buffers_only=True)
        batch_size = max(self.config.batch_size, 256)
        seed = self.config.seed + 2
        return self.dist.evaluate(
            lambda part, indices: evaluate_split(
                self.model, part, seed=seed, batch_size=batch_size, indices=indices
            ),
            split,
        )

    def _stop_reason(self) -> str | None:
        """A callback's reason to stop the training (rank 0's, which every rank follows)."""
        return self.dist.broadcast_text(self.callbacks.stop_reason())

    # -- the loop ------------------------------------------------------------------------------

    def _train_epoch(self, total: int) -> bool:
        cfg = self.config
        window = self.window
        self.data_generator.set_state(self.epoch_generator_state)
        order = torch.randperm(len(self.data.train), generator=self.data_generator)
        shard = self.dist.shard(order, cfg.batch_size)  # this process's slice of each global batch
        self.model.train()
        start, workers = self.pos.batch_in_epoch, cfg.data_workers  # workers read a streamed split ahead
        batches = stream_batches(
            self.data.train, shard.batch_size, shard.order, start, workers=workers, seed=cfg.seed
        )
        for index, batch in enumerate(batches, start=start):
            weight = shard.weight(index)  # 1, except where ranks hold slices of different sizes
            batch = to_device(batch, self.device)
            self._set_lr(total)
            inputs, targets = self.model.prepare_batch(batch, train=True)
            for update in self.precision.updates(self.model, inputs, targets, self.pos.step):
                opt, _ = self.optimizers[update.optimizer]
                opt.zero_grad(set_to_none=True)
                loss = update.loss if weight == 1.0 else update.loss * weight
                self.precision.backward(loss)
                params = [p for g in opt.param_groups for p in g["params"]]
                self.dist.average_gradients(params)
                if cfg.grad_clip is not None:
                    self.precision.unscale(opt)
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                self.precision.step(opt)
                loss = loss.detach()
                self._bad_step = torch.where(  # counted as logged: this is step pos.step + 1
                    (self._bad_step < 0) & ~torch.isfinite(loss), self.pos.step + 1, self._bad_step
                )
                key = "loss" if update.optimizer == "model" else f"loss_{update.optimizer}"
                window.setdefault(key, []).append(loss)
                for name, value in update.logs.items():
                    window.setdefault(name, []).append(
                        value.detach() * weight if weight != 1.0 else value.detach()
                    )
            for _, sched in self.optimizers.values():
                if sched is not None:
                    sched.step()
            self.pos.step += 1
            self.pos.batch_in_epoch += 1
            trainstate.crashpoint("step")  # the crash tests' kill after a step (nothing unless asked)
            self.callbacks.call("on_step_end", self)
            if self.pos.step % cfg.log_every == 0:
                self._log_train()
            if self.pos.step >= total:
                return self.pos.batch_in_epoch >= self._steps_per_epoch()
            stop, save_due = self.dist.agree(self._stop, self._periodic_save_due())
            if stop:  # at a step boundary: the saved state resumes exactly
                return False
            if save_due:
                self.pos.elapsed_s = time.perf_counter() - self._started
                self._save_checkpoint()
        return True

    def _periodic_save_due(self) -> bool:
        cfg = self.config
        if cfg.save_every is not None and self.pos.step % cfg.save_every == 0:
            return True
        return time.monotonic() - self._saved_at >= cfg.save_minutes * 60

    def _set_lr(self, total: int) -> None:
        """The trainer's cosine schedule, in closed form from the step (so a resumed run is exact),
        for optimisers whose model set no scheduler of its own."""
        if self.config.lr_schedule != "cosine":
            return
        factor = 0.5 * (1 + math.cos(math.pi * min(self.pos.step, total) / total))
        for opt, sched in self.optimizers.values():
            if sched is None:
                for group in opt.param_groups:
                    group.setdefault("initial_lr", group["lr"])
                    group["lr"] = group["initial_lr"] * factor

    def _steps_per_epoch(self) -> int:
        return self.dist.steps_per_epoch(len(self.data.train), self.config.batch_size)

    def _check_finite(self) -> None:
        """Diverged: one line naming the first step whose loss was not finite."""
        bad = int(self.dist.first_bad_step(self._bad_step))
        if bad < 0:
            return
        last = self.run.path / checkpoint.LAST_FILE
        kept = f"{last} holds the last good checkpoint" if last.exists() else "no checkpoint was saved"
        raise AezooError(
            f"training diverged: the loss was not finite at step {bad}; resume with a lower --lr "
            f"(aezoo train --resume {self.run.path} --lr ...) or train again with --grad-clip ({kept})"
        )

    def _log_train(self) -> None:
        window = self.window
        self._check_finite()
        if not window:
            return
        record: dict[str, Any] = {"split": "train", "epoch": self.pos.epoch, "step": self.pos.step}
        for key, value in self.dist.window_means(window).items():
            if not math.isfinite(value):
                raise AezooError(
                    f"training diverged: {key} is {value} at step {self.pos.step}; lower --lr or set --grad-clip"
                )
            record[key] = value
        opt, _ = next(iter(self.optimizers.values()))
        record["lr"] = opt.param_groups[0]["lr"]
        record["time_s"] = round(time.perf_counter() - self._started, 3)
        window.clear()
        self.callbacks.call("on_train_record", self, record)

    def _validate_and_checkpoint(self) -> None:
        metrics = self.evaluate(self.data.val)
        self.callbacks.call(
            "on_validation", self, {"split": "val", "epoch": self.pos.epoch, "step": self.pos.step, **metrics}
        )
        score = self._selected(metrics)
        improved = score < self.pos.best_val
        if improved:
            self.pos.best_val, self.pos.best_step = score, self.pos.step
            self.best_state = trainstate.cpu_copy(self.model)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self.echo(f"epoch {self.pos.epoch} step {self.pos.step}: val {shown}")
        self._save_checkpoint()
        if improved and self.dist.is_writer:
            trainstate.publish_best(self.run.path, self.model, recipe=self.recipe, step=self.pos.step)

    def _selected(self, metrics: dict[str, float]) -> float:
        """The score that chooses the best model (``select``; lower is better, inf if not finite)."""
        metric, mode = parse_select(self.config.select)
        if metric not in metrics:
            raise AezooError(
                f"--select {metric}: validation reports no {metric!r}; it reports {', '.join(metrics)}"
            )
        value = metrics[metric] if mode == "min" else -metrics[metric]
        return value if math.isfinite(value) else math.inf

    # -- the checkpoint --------------------------------------------------------------------------

    def _save_checkpoint(self) -> None:
        """Commit one checkpoint (:func:`aezoo.trainstate.save`); a stop asked for meanwhile waits."""
        self._check_finite()
        try:
            with self._stop.saving():
                ranks = self.dist.prepare_save(self.model, self.window)  # what rank 0 saves of the others
                path = trainstate.save(self, ranks) if self.dist.is_writer else None
        except Stopped:  # a signal came during the save, which is whole: the run stops here
            if self.dist.is_writer:
                trainstate.publish_if_behind(self)
            self._say_stopped()
            raise
        self._saved_at = time.monotonic()
        if path is not None:
            self.callbacks.call("on_checkpoint", self, path)

    def _say_stopped(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # SIGHUP: the terminal may be gone
            self.echo(
                f"stopped at step {self.pos.step}, saved; continue with: aezoo train --resume {self.run.path}"
                + self.dist.resume_hint()
            )

    def restore(self) -> None:
        """Continue from the run folder's checkpoint (:func:`aezoo.trainstate.restore`)."""
        _require_checkpoint(self.run)
        trainstate.restore(self)

    def _finish(self) -> None:
        if self.dist.is_writer or self.best_state is None:
            if not self.run.model_path.exists():
                raise AezooError(
                    f"the validation {parse_select(self.config.select)[0]} was never finite, so {self.run.path} "
                    "has no best model; "
                    f"{checkpoint.LAST_FILE} holds the latest weights: lower --lr or set --grad-clip"
                )
            best = checkpoint.load(self.run.model_path, device=self.device).state_dict()
        else:
            best = self.best_state  # the weights rank 0 reads back from its file
        self.model.load_state_dict(best)
        record = None
        if self.config.evaluate_test and len(self.data.test):
            metrics = self.evaluate(self.data.test)
            record = {"split": "test", "step": self.pos.best_step, **metrics}
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            self.echo(f"test (best model, step {self.pos.best_step}): {shown}")
        self.callbacks.call("on_run_end", self, record)

    def write_pictures(self) -> None:
        """The model's pictures (``reconstructions.png``...) of the first test (or val) examples."""
        split = self.data.test if len(self.data.test) else self.data.val
        if not len(split):
            return
        from aezoo.image import save_picture

        self.model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices), torch.no_grad():
            torch.manual_seed(self.config.seed + 2)
            batch = first_examples(split, 64)
            inputs, targets = self.model.prepare_batch(to_device(batch, self.device), train=False)
            pictures = self.model.pictures(inputs, targets)
        for stem, image in pictures.items():
            save_picture(image, self.run.path / f"{stem}.png")


def _silent(line: str) -> None:
    """Where a rank other than 0 says things: nowhere (rank 0 says them once)."""


def _require_checkpoint(run: Run) -> None:
    if not (run.path / checkpoint.LAST_FILE).exists():
        raise AezooError(
            f"{run.path} has no {checkpoint.LAST_FILE} to resume from; start a new run (its "
            f"{checkpoint.MODEL_FILE}, if there, still loads)"
        )


@contextlib.contextmanager
def _flush_denormal(enabled: bool) -> Iterator[None]:
    """Denormal floats count as zero on the CPU inside the block; torch's default (off) after it."""
    torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


__all__ = ["TrainConfig", "Trainer", "load_data", "select_device"]
