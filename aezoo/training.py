"""Starting and continuing a training: ``aezoo train`` and ``aezoo train --resume``.

Each holds its run folder's lock (:class:`aezoo.runlock.RunLock`) while it writes there, so a run
still training, or a second start racing for the same ``--out``, is refused in one line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from aezoo import checkpoint, distributed
from aezoo._version import __version__
from aezoo.callbacks import check_callback_names
from aezoo.data import describe_data
from aezoo.errors import AezooError
from aezoo.evaluation import reported_metrics
from aezoo.fileio import stale_temp_files
from aezoo.hparams import HParams
from aezoo.modelsize import check_fits
from aezoo.plugins import load_data
from aezoo.precision import check_compile_backend, check_precision
from aezoo.runlock import RunLock
from aezoo.runs import CONFIG_FILE, METRICS_FILE, Run, new_run_dir
from aezoo.stopping import Stopped
from aezoo.trainconfig import TrainConfig
from aezoo.trainer import Trainer, _require_checkpoint
from aezoo.warmstart import check_same_start, initial_weights


def train(
    architecture: str,
    dataset: str | None = None,
    *,
    hparams: dict[str, Any] | HParams | None = None,
    config: TrainConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] | None = None,
    expect_data: dict[str, Any] | None = None,
    expect_init: dict[str, Any] | None = None,
    recipe_source: str = "the recipe",
) -> Run:
    """Train ``architecture`` on ``dataset`` (default: the architecture's) into a new run folder.

    ``expect_data`` is what a recipe recorded of its dataset (a run's ``dataset_info``): when the
    data found here differs (a subset, a re-parsed corpus), nothing is trained and the error says so;
    ``expect_init`` (a run's ``init_weights``) does the same for the weights ``config.init_from``
    names. The folder is locked for this process while it trains (:class:`aezoo.runlock.RunLock`).
    """
    from aezoo.plugins import registry
    from aezoo.recipes import check_same_data

    config = config or TrainConfig()
    arch = registry().architecture(architecture)
    hp = hparams if isinstance(hparams, HParams) else arch.make_hparams(**(hparams or {}))
    check_fits(arch, hp, training=True)  # a model too big for this machine is refused before any work
    check_callback_names(config.callbacks or (), registry().callbacks)
    dataset = dataset or arch.default_dataset
    data = load_data(dataset, data_dir=data_dir, seed=0, stream=config.stream)
    data_info = describe_data(data)
    check_same_data(expect_data, data_info, recipe_source)
    # The thread count is part of what makes a run repeatable: record the one used.
    config = dataclasses.replace(config, threads=config.threads or torch.get_num_threads())
    dist = distributed.start(config.device)  # the processes torchrun started join each other here
    device = dist.device(config.device)
    check_precision(config.precision, device)  # fp16 on a CPU: one line before any folder
    if config.compile:
        check_compile_backend(config.compile_backend)
    init_state, init_record = None, None
    if config.init_from:
        init_state = initial_weights(config.init_from, arch, hp)
        init_record = check_same_start(expect_init, config.init_from, init_state, recipe_source)
    existed = out is not None and Path(out).expanduser().exists()
    locks: list[RunLock] = []  # rank 0's: the one process that writes the run folder

    def claim() -> str:
        run = Run(new_run_dir(arch.name, out))
        lock = RunLock(run.path)
        try:
            lock.acquire()
            new_run_dir(arch.name, run.path)  # still empty now that it is ours (a start racing for it lost)
        except AezooError:
            if not existed and lock.held:
                _discard_unsaved(run, keep_folder=False)
            lock.release()
            raise
        locks.append(lock)
        run.write_config(
            {
                "architecture": arch.name,
                "hparams": hp.to_dict(),
                "dataset": dataset,
                "dataset_info": data_info,
                "trainer": config.to_dict(),
                **({"init_weights": init_record} if init_record else {}),
                "seed": config.seed,
                "device": str(device),
                **({"processes": dist.world_size} if dist.active else {}),
                "versions": _versions(),
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            }
        )
        limited = data.limited(config.limit_train, config.limit_eval)  # what the trainer will use
        where = f"on {dist.world_size} processes ({device.type})" if dist.active else f"on {device}"
        (echo or (lambda line: print(line, file=sys.stderr)))(
            f"training {arch.name} on {dataset} ({len(limited.train)} train / {len(limited.val)} val) "
            f"{where} → {run.path}"
        )
        return str(run.path)

    torch.manual_seed(config.seed)
    model = arch.build(hp)
    if init_state is not None:
        model.load_state_dict(init_state)
    check_watched_metrics(config, reported_metrics(model, data.val))  # before any folder
    try:
        run = Run(dist.from_writer(claim))
        dist.seed_noise(config.seed)
        with torch_threads(config.threads):
            return Trainer(model, data, config, run, progress=progress, echo=echo).fit()
    except BaseException as exc:
        if locks and not isinstance(exc, Stopped):
            _discard_unsaved(Run(locks[0].folder), keep_folder=existed)
        raise
    finally:
        for lock in locks:
            lock.release()


def check_watched_metrics(config: TrainConfig, reported: list[str]) -> None:
    """A metric ``--select`` or ``--early-stop`` names that validation does not report is one line
    listing the ones it does (``reported`` empty: nothing is known yet, nothing is refused)."""
    for option, metric in config.watched_metrics().items():
        if reported and metric not in reported:
            raise AezooError(
                f"{option} {metric}: validation reports no {metric!r}; it reports {', '.join(reported)}"
            )


def _discard_unsaved(run: Run, *, keep_folder: bool) -> None:
    """Take back the config of a run that failed before its first step was logged (a model that
    cannot read the dataset, say), and the folder if this call made it, so the same ``--out``
    works again. A run with metrics or a checkpoint stays as it is, and so does anything else."""
    from aezoo.runlock import LOCK_FILE

    written = [run.path / name for name in (METRICS_FILE, checkpoint.LAST_FILE, checkpoint.MODEL_FILE)]
    if any(path.exists() for path in written):
        return
    try:
        (run.path / CONFIG_FILE).unlink(missing_ok=True)
        (run.path / LOCK_FILE).unlink(missing_ok=True)
        if not keep_folder and not any(run.path.iterdir()):
            run.path.rmdir()
    except OSError:
        pass  # the training's own error is the one to report


def resume(
    run_path: str | os.PathLike[str],
    *,
    epochs: int | None = None,
    max_steps: int | None = None,
    lr: float | None = None,
    stream: bool | None = None,
    data_workers: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] | None = None,
) -> Run:
    """Continue a run from its checkpoint; ``epochs``/``max_steps`` may extend it and ``lr`` lower
    (or raise) the learning rate from here on, recorded in its config under ``changes``;
    ``stream``/``data_workers`` change how its data is read (its batches stay the same). A run
    stopped before its first checkpoint starts again from step 0 with its own settings. The
    config is rewritten only when the run actually continues."""
    from aezoo.plugins import registry

    run = Run.open(run_path)
    dist = distributed.start(run.config["trainer"].get("device", "auto"))
    with _writer_lock(run, dist):
        saved = run.config
        fresh = not (run.path / checkpoint.LAST_FILE).exists()
        if fresh and (run.path / checkpoint.MODEL_FILE).exists():
            _require_checkpoint(run)  # a finished aezoo 0.1 run without its checkpoint
        values = dict(saved["trainer"])
        if epochs is not None:
            values["epochs"] = epochs
        if max_steps is not None:
            values["max_steps"] = max_steps
        if lr is not None:
            values["lr"] = lr
        if stream:
            values["stream"] = True
        if data_workers is not None:
            values["data_workers"] = data_workers
        config = TrainConfig.from_dict(values)
        arch = registry().architecture(saved["architecture"])
        saved_hparams = arch.make_hparams(**saved["hparams"])
        check_fits(arch, saved_hparams, training=True, where=str(run.path / CONFIG_FILE))
        torch.manual_seed(config.seed)  # as train() does: a fresh start builds the same model
        model = arch.build(saved_hparams)
        data = load_data(saved["dataset"], data_dir=data_dir, seed=0, stream=config.stream)
        trainer = Trainer(model, data, config, run, progress=progress, echo=echo)
        if fresh:
            if dist.is_writer:
                (run.path / METRICS_FILE).unlink(missing_ok=True)
            trainer.echo(f"{run.path} was stopped before its first checkpoint: training it from step 0")
        else:
            trainer.restore()
            if lr is not None:
                _change_lr(trainer, lr)
        if trainer.pos.step < trainer.total_steps() or fresh:
            if lr is not None and lr != saved["trainer"].get("lr"):
                saved.setdefault("changes", []).append({"step": trainer.pos.step, "lr": lr})
            saved["trainer"] = config.to_dict()
            if dist.is_writer:
                run.write_config(saved)
            if not fresh:
                trainer.echo(f"resuming {run.path} at step {trainer.pos.step} (epoch {trainer.pos.epoch})")
        with torch_threads(config.threads):
            return trainer.fit()


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's CPU thread count set to ``threads`` (None: left as it is) and put back after, so a
    training in a notebook or a test leaves the next one torch's own default."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _writer_lock(run: Run, dist: distributed.Context) -> Iterator[None]:
    """Rank 0 (the only process, usually) holds the run's lock and removes the temporary files a
    kill left, while every rank trains; when the run is held elsewhere, every rank ends."""
    lock = RunLock(run.path)

    def hold() -> str:
        lock.acquire()
        for stale in stale_temp_files(run.path):  # writes a kill cut short; the lock says they are ours
            stale.unlink(missing_ok=True)
        return ""

    try:
        dist.from_writer(hold)
        yield
    finally:
        lock.release()


def _change_lr(trainer: Trainer, lr: float) -> None:
    """Scale every optimiser's learning rate (and its schedule's base) to start from ``lr``."""
    for opt, sched in trainer.optimizers.values():
        for group in opt.param_groups:
            base = group.get("initial_lr", group["lr"]) or lr
            factor = lr / base
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor
        if sched is not None and hasattr(sched, "base_lrs"):
            sched.base_lrs = [base * lr / (sched.base_lrs[0] or lr) for base in sched.base_lrs]


def _versions() -> dict[str, str]:
    return {
        "aezoo": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


__all__ = ["resume", "train"]
