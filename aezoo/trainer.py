"""The one trainer every architecture uses."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import platform
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from aezoo import checkpoint
from aezoo._version import __version__
from aezoo.data import DataSplits, Split, describe_data, first_examples, iterate, load_data, to_device
from aezoo.errors import AezooError
from aezoo.evaluation import evaluate_split
from aezoo.hparams import HParams, hparam
from aezoo.model import OPTIMIZERS, AutoEncoder, OptimizerConfig
from aezoo.runs import CONFIG_FILE, METRICS_FILE, Run, new_run_dir


@dataclasses.dataclass(frozen=True)
class TrainConfig(HParams):
    """Trainer settings (validated like hyperparameters)."""

    architecture = "trainer"
    noun = "setting"

    epochs: int = hparam(10, "Passes over the training set.", min=1)
    max_steps: int | None = hparam(None, "Stop after this many optimisation steps.", min=1)
    batch_size: int = hparam(128, "Examples per step.", min=1)
    optimizer: str = hparam("adam", "Optimiser.", choices=OPTIMIZERS)
    lr: float = hparam(1e-3, "Learning rate.", min=1e-12, max=10.0)
    weight_decay: float = hparam(0.0, "Weight decay.", min=0.0)
    lr_schedule: str = hparam(
        "constant",
        "constant, or cosine: decay to 0 over the run (where the model sets no schedule).",
        choices=("constant", "cosine"),
    )
    grad_clip: float | None = hparam(None, "Clip the gradient norm to this value.", min=1e-12)
    seed: int = hparam(0, "Seed of initialisation, data order and noise.", min=0)
    device: str = hparam("auto", "cuda, mps, cpu, cuda:N, or auto (cuda, then mps, then cpu).")
    threads: int | None = hparam(None, "Torch CPU threads (default: torch's choice).", min=1)
    limit_train: int | None = hparam(None, "Use only the first N training examples.", min=1)
    limit_eval: int | None = hparam(None, "Use only the first N validation/test examples.", min=1)
    log_every: int = hparam(50, "Write a train record to metrics.jsonl every N steps.", min=1)
    evaluate_test: bool = hparam(True, "Evaluate the best model on the test split at the end.")
    flush_denormal: bool = hparam(
        True,
        "On the CPU, treat denormal floats as zero while training (as TensorFlow does): gradients "
        "through hundreds of recurrent steps fall into that range and slow the backward pass up to 9x.",
    )

    def validate(self) -> None:
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                from aezoo.errors import HParamError

                raise HParamError(
                    self._owner(), "device", f"must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}"
                ) from None


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise AezooError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise AezooError(f"--device {name!r}: aezoo runs on cpu, cuda or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AezooError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise AezooError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AezooError(f"--device {name}: MPS is not available here; use --device cpu or auto")
    return device


@dataclasses.dataclass
class _Position:
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val: float = math.inf
    best_step: int = -1
    elapsed_s: float = 0.0


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
        self.device = select_device(config.device)
        self.model = model.to(self.device)
        self.data = data.limited(config.limit_train, config.limit_eval)
        self.progress = progress
        self.echo = echo or (lambda line: print(line, file=sys.stderr))
        self.optimizers: dict[str, tuple[torch.optim.Optimizer, Any]] = {}
        for name, value in model.configure_optimizers(
            OptimizerConfig(config.optimizer, config.lr, config.weight_decay)
        ).items():
            opt, sched = value if isinstance(value, tuple) else (value, None)
            self.optimizers[name] = (opt, sched)
        self.data_generator = torch.Generator().manual_seed(config.seed + 1)
        self.epoch_generator_state = self.data_generator.get_state()
        self.pos = _Position()
        self._started = time.perf_counter()
        self._stop = _StopFlag()
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

    def fit(self) -> Run:
        cfg = self.config
        if len(self.data.train) == 0:
            reason = self.data.info.get("train_note", "check the dataset")
            raise AezooError(f"the training split of {self.data.name} is empty: {reason}")
        total = cfg.epochs * self._steps_per_epoch()
        if cfg.max_steps is not None:
            total = min(total, cfg.max_steps)
        if self.pos.step >= total:
            if self.config.evaluate_test and not self.run.metrics("test"):
                self._finish()  # the run stopped between its last step and its final report
            else:
                self.echo(f"{self.run.path}: already trained for {self.pos.step} steps; nothing to do")
            return self.run
        bar = _progress_bar(total, self.pos.step, self.progress)
        started = self._started = time.perf_counter() - self.pos.elapsed_s
        window: dict[str, list[torch.Tensor]] = {}
        with _stop_on_sigint() as stop, _flush_denormal(cfg.flush_denormal):
            self._stop = stop
            while self.pos.step < total:
                finished_epoch = self._train_epoch(total, bar, window)
                self.pos.elapsed_s = time.perf_counter() - started
                if stop.requested:
                    self._save_last()
                    bar.close()
                    self.echo(
                        f"interrupted at step {self.pos.step}; continue with: aezoo train --resume {self.run.path}"
                    )
                    raise KeyboardInterrupt
                if finished_epoch:
                    self.pos.epoch += 1
                    self.pos.batch_in_epoch = 0
                    self.epoch_generator_state = self.data_generator.get_state()
                self._log_train(window)
                self._validate_and_checkpoint()
        bar.close()
        self._finish()
        return self.run

    def evaluate(self, split: Split) -> dict[str, float]:
        """Mean metrics over ``split`` with the model in eval mode and a fixed noise seed."""
        return evaluate_split(
            self.model, split, seed=self.config.seed + 2, batch_size=max(self.config.batch_size, 256)
        )

    # -- the loop ------------------------------------------------------------------------------

    def _train_epoch(self, total: int, bar: Any, window: dict[str, list[torch.Tensor]]) -> bool:
        cfg = self.config
        self.data_generator.set_state(self.epoch_generator_state)
        order = torch.randperm(len(self.data.train), generator=self.data_generator)
        if len(order) > 1 and len(order) % cfg.batch_size == 1:
            order = order[:-1]  # a lone last example upsets batch norm
        self.model.train()
        for batch in iterate(self.data.train, cfg.batch_size, order, start=self.pos.batch_in_epoch):
            batch = to_device(batch, self.device)
            self._set_lr(total)
            inputs, targets = self.model.prepare_batch(batch, train=True)
            for update in self.model.training_step(inputs, targets, self.pos.step):
                opt, _ = self.optimizers[update.optimizer]
                opt.zero_grad(set_to_none=True)
                update.loss.backward()
                if cfg.grad_clip is not None:
                    params = [p for g in opt.param_groups for p in g["params"]]
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                key = "loss" if update.optimizer == "model" else f"loss_{update.optimizer}"
                window.setdefault(key, []).append(update.loss.detach())
                for name, value in update.logs.items():
                    window.setdefault(name, []).append(value.detach())
            for _, sched in self.optimizers.values():
                if sched is not None:
                    sched.step()
            self.pos.step += 1
            self.pos.batch_in_epoch += 1
            bar.update(1)
            if self.pos.step % 10 == 0 or self.pos.step == total:
                loss_key = "loss" if "loss" in window else next(iter(window))
                bar.set_postfix({loss_key: f"{float(window[loss_key][-1]):.4f}"}, refresh=False)
            if self.pos.step % cfg.log_every == 0:
                self._log_train(window)
            if self.pos.step >= total:
                return self.pos.batch_in_epoch >= self._steps_per_epoch()
            if self._stop.requested:  # at a step boundary: the saved state resumes exactly
                return False
        return True

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
        n, size = len(self.data.train), self.config.batch_size
        if n > 1 and n % size == 1:
            n -= 1
        return math.ceil(n / size)

    def _log_train(self, window: dict[str, list[torch.Tensor]]) -> None:
        if not window:
            return
        record: dict[str, Any] = {"split": "train", "epoch": self.pos.epoch, "step": self.pos.step}
        for key, values in window.items():
            value = float(torch.stack([v.float().mean() for v in values]).mean())
            if not math.isfinite(value):
                last = self.run.path / checkpoint.LAST_FILE
                kept = f"{last} is the last good checkpoint" if last.exists() else "no checkpoint kept"
                raise AezooError(
                    f"training diverged: {key} is {value} at step {self.pos.step}; lower --lr or "
                    f"set --grad-clip ({kept})"
                )
            record[key] = value
        opt, _ = next(iter(self.optimizers.values()))
        record["lr"] = opt.param_groups[0]["lr"]
        record["time_s"] = round(time.perf_counter() - self._started, 3)
        self.run.log(record)
        window.clear()

    def _validate_and_checkpoint(self) -> None:
        metrics = self.evaluate(self.data.val)
        self.run.log({"split": "val", "epoch": self.pos.epoch, "step": self.pos.step, **metrics})
        loss = metrics.get("loss", math.nan)
        if math.isfinite(loss) and loss < self.pos.best_val:
            self.pos.best_val, self.pos.best_step = loss, self.pos.step
            checkpoint.save(self.model, self.run.model_path, recipe=self.recipe, step=self.pos.step)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
        self.echo(f"epoch {self.pos.epoch} step {self.pos.step}: val {shown}")
        self._save_last()

    def _save_last(self) -> None:
        checkpoint.save(
            self.model, self.run.path / checkpoint.LAST_FILE, recipe=self.recipe, step=self.pos.step
        )
        tensors: dict[str, torch.Tensor] = {
            "rng/torch": torch.get_rng_state(),
            "rng/data_epoch_start": self.epoch_generator_state,
        }
        if torch.cuda.is_available():
            for i, state in enumerate(torch.cuda.get_rng_state_all()):
                tensors[f"rng/cuda/{i}"] = state
        optimizers: dict[str, Any] = {}
        for name, (opt, sched) in self.optimizers.items():
            opt_tensors, opt_info = checkpoint.optimizer_to_state(f"optimizer/{name}", opt)
            tensors.update(opt_tensors)
            optimizers[name] = {
                "optimizer": opt_info,
                "scheduler": sched.state_dict() if sched is not None else None,
            }
        info = {"position": dataclasses.asdict(self.pos), "optimizers": optimizers}
        info["position"]["best_val"] = _json_float(self.pos.best_val)
        checkpoint.save_state(self.run.path / checkpoint.STATE_FILE, tensors, info)

    def restore(self) -> None:
        """Continue from the run folder's last checkpoint (weights, optimisers, RNG, position)."""
        path = self.run.path / checkpoint.LAST_FILE
        _require_checkpoint(self.run)
        last = checkpoint.load(path, device=self.device)
        if last.hparams != self.model.hparams:
            raise AezooError(
                f"the hyperparameters in {self.run.path / CONFIG_FILE} differ from those "
                f"{path.name} was trained with; restore the config to resume"
            )
        self.model.load_state_dict(last.state_dict())
        tensors, info = checkpoint.load_state(self.run.path / checkpoint.STATE_FILE)
        weights_step = checkpoint.read_metadata(path).get("aezoo.step")
        if weights_step is not None and int(weights_step) != info["position"]["step"]:
            raise AezooError(
                f"{path} (step {weights_step}) and {checkpoint.STATE_FILE} (step "
                f"{info['position']['step']}) disagree, so the run cannot be resumed exactly; the last "
                "save was cut short: start a new run from model.safetensors"
            )
        for name, (opt, sched) in self.optimizers.items():
            saved = info["optimizers"].get(name)
            if saved is None:
                raise AezooError(f"{self.run.path}: no saved state for optimizer {name!r}")
            checkpoint.optimizer_from_state(f"optimizer/{name}", opt, tensors, saved["optimizer"])
            if sched is not None and saved["scheduler"] is not None:
                sched.load_state_dict(saved["scheduler"])
        torch.set_rng_state(tensors["rng/torch"])
        cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
        if cuda_states and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
        self.epoch_generator_state = tensors["rng/data_epoch_start"]
        pos = dict(info["position"])
        pos["best_val"] = math.inf if pos["best_val"] is None else pos["best_val"]
        self.pos = _Position(**pos)

    def _finish(self) -> None:
        if not self.run.model_path.exists():
            raise AezooError(
                f"the validation loss was never finite, so {self.run.path} has no best model; "
                f"{checkpoint.LAST_FILE} holds the latest weights: lower --lr or set --grad-clip"
            )
        best = checkpoint.load(self.run.model_path, device=self.device)
        self.model.load_state_dict(best.state_dict())
        if self.config.evaluate_test and len(self.data.test):
            metrics = self.evaluate(self.data.test)
            self.run.log({"split": "test", "step": self.pos.best_step, **metrics})
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            self.echo(f"test (best model, step {self.pos.best_step}): {shown}")
        self._write_pictures()

    def _write_pictures(self) -> None:
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
    recipe_source: str = "the recipe",
) -> Run:
    """Train ``architecture`` on ``dataset`` (default: the architecture's) into a new run folder.

    ``expect_data`` is what a recipe recorded of its dataset (a run's ``dataset_info``): when the
    data found here differs (a subset, a re-parsed corpus), nothing is trained and the error says so.
    """
    from aezoo.plugins import registry
    from aezoo.recipes import check_same_data

    config = config or TrainConfig()
    arch = registry().architecture(architecture)
    hp = hparams if isinstance(hparams, HParams) else arch.make_hparams(**(hparams or {}))
    dataset = dataset or arch.default_dataset
    data = load_data(dataset, data_dir=data_dir, seed=0)
    data_info = describe_data(data)
    check_same_data(expect_data, data_info, recipe_source)
    # The thread count is part of what makes a run repeatable: record the one used.
    config = dataclasses.replace(config, threads=config.threads or torch.get_num_threads())
    torch.set_num_threads(config.threads)
    device = select_device(config.device)
    torch.manual_seed(config.seed)
    model = arch.build(hp)
    existed = out is not None and Path(out).expanduser().exists()
    run = Run(new_run_dir(arch.name, out))
    run.write_config(
        {
            "architecture": arch.name,
            "hparams": hp.to_dict(),
            "dataset": dataset,
            "dataset_info": data_info,
            "trainer": config.to_dict(),
            "seed": config.seed,
            "device": str(device),
            "versions": _versions(),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
    )
    limited = data.limited(config.limit_train, config.limit_eval)  # what the trainer will use
    (echo or (lambda line: print(line, file=sys.stderr)))(
        f"training {arch.name} on {dataset} ({len(limited.train)} train / {len(limited.val)} val) "
        f"on {device} → {run.path}"
    )
    try:
        return Trainer(model, data, config, run, progress=progress, echo=echo).fit()
    except BaseException:
        _discard_unsaved(run, keep_folder=existed)
        raise


def _discard_unsaved(run: Run, *, keep_folder: bool) -> None:
    """Take back the config of a run that failed before its first step was logged (a model that
    cannot read the dataset, say), and the folder if this call made it, so the same ``--out``
    works again. A run with metrics or a checkpoint stays as it is, and so does anything else."""
    written = [run.path / name for name in (METRICS_FILE, checkpoint.LAST_FILE, checkpoint.MODEL_FILE)]
    if any(path.exists() for path in written):
        return
    try:
        (run.path / CONFIG_FILE).unlink(missing_ok=True)
        if not keep_folder and not any(run.path.iterdir()):
            run.path.rmdir()
    except OSError:
        pass  # the training's own error is the one to report


def resume(
    run_path: str | os.PathLike[str],
    *,
    epochs: int | None = None,
    max_steps: int | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    echo: Callable[[str], None] | None = None,
) -> Run:
    """Continue a run from its last checkpoint; ``epochs``/``max_steps`` may extend it."""
    from aezoo.plugins import registry

    run = Run.open(run_path)
    saved = run.config
    _require_checkpoint(run)
    values = dict(saved["trainer"])
    if epochs is not None:
        values["epochs"] = epochs
    if max_steps is not None:
        values["max_steps"] = max_steps
    config = TrainConfig.from_dict(values)
    if config.threads:
        torch.set_num_threads(config.threads)
    arch = registry().architecture(saved["architecture"])
    model = arch.build(arch.make_hparams(**saved["hparams"]))
    data = load_data(saved["dataset"], data_dir=data_dir, seed=0)
    saved["trainer"] = config.to_dict()
    run.write_config(saved)
    trainer = Trainer(model, data, config, run, progress=progress, echo=echo)
    trainer.restore()
    trainer.echo(f"resuming {run.path} at step {trainer.pos.step} (epoch {trainer.pos.epoch})")
    return trainer.fit()


def _require_checkpoint(run: Run) -> None:
    if not (run.path / checkpoint.LAST_FILE).exists():
        raise AezooError(
            f"{run.path} has no {checkpoint.LAST_FILE} to resume from; start a new run (its "
            f"{checkpoint.MODEL_FILE}, if there, still loads)"
        )


class _StopFlag:
    requested = False


@contextlib.contextmanager
def _flush_denormal(enabled: bool) -> Iterator[None]:
    """Denormal floats count as zero on the CPU inside the block; torch's default (off) after it."""
    torch.set_flush_denormal(enabled)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@contextlib.contextmanager
def _stop_on_sigint() -> Iterator[_StopFlag]:
    """The first Ctrl-C asks the loop to stop after the current step; a second one stops now."""
    flag = _StopFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum: int, frame: Any) -> None:
        if flag.requested:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        flag.requested = True

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def _versions() -> dict[str, str]:
    return {
        "aezoo": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def _json_float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _progress_bar(total: int, initial: int, enabled: bool | None) -> Any:
    from tqdm.auto import tqdm

    disable = None if enabled is None else not enabled
    return tqdm(total=total, initial=initial, unit="step", disable=disable, dynamic_ncols=True, leave=False)


__all__ = ["TrainConfig", "Trainer", "load_data", "resume", "select_device", "train"]
