"""The training checkpoint: one file, one consistent unit.

``RUN/last.safetensors`` holds, in one safetensors file committed by one atomic and durable rename
(:func:`aezoo.fileio.atomic_path`): the latest weights (a weights file like any other, so
``aezoo.load`` reads it), and beside them, in tensors named ``@...``, the best weights when they
differ from the latest, every optimiser's state, the random generators, the training metrics not
logged yet, and in its metadata the position in the data, the schedulers, and how many bytes of
``metrics.jsonl`` it accounts for. A kill at any instant leaves the previous checkpoint or the new
one, whole. ``model.safetensors`` (the best weights) is published from it after each commit, and
again on resume when a kill came in between.

Runs written by aezoo 0.1 (``last.safetensors`` plus ``trainer_state.safetensors``) still resume.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from aezoo import checkpoint
from aezoo.checkpoint import LAST_FILE, MODEL_FILE, STATE_FILE, STATE_PREFIX
from aezoo.errors import AezooError
from aezoo.fileio import atomic_path
from aezoo.model import AutoEncoder
from aezoo.runs import CONFIG_FILE, METRICS_FILE

if TYPE_CHECKING:
    from aezoo.trainer import Trainer

#: The metadata key of a checkpoint's trainer state (JSON).
STATE_KEY = "aezoo.trainer_state"
#: 2: one file (this module); 1: two files (aezoo 0.1).
CHECKPOINT_FORMAT = 2
#: Set to ``POINT`` or ``POINT:N`` to kill the process at the Nth pass through a named point of a
#: save, or the end of a step (``step``) (the crash tests' fault injection; see :func:`crashpoint`).
CRASH_ENV = "AEZOO_CRASH_AT"
#: With several processes, the rank (torchrun's ``RANK``) that :data:`CRASH_ENV` kills; default: all.
CRASH_RANK_ENV = "AEZOO_CRASH_RANK"


@dataclasses.dataclass
class Position:
    """Where a training is: steps and epochs done, the batch within the epoch, the best so far."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    best_val: float = math.inf
    best_step: int = -1
    elapsed_s: float = 0.0


@dataclasses.dataclass
class SavedState:
    """A checkpoint read back: trainer ``tensors`` (names without the ``@``) and JSON ``info``."""

    tensors: dict[str, torch.Tensor]
    info: dict[str, Any]
    legacy: bool = False


def save(trainer: Trainer, ranks: dict[str, torch.Tensor] | None = None) -> Path:
    """Commit ``trainer``'s checkpoint: its model, optimisers and schedulers, random generators,
    position, unlogged metrics, best weights (when not the latest), every callback's state, the
    float16 gradient scaler's and the metrics file's length; ``ranks``: the other processes' random generators, in a run of several
    (:meth:`aezoo.distributed.Context.prepare_save`)."""
    pos = trainer.pos
    tensors: dict[str, torch.Tensor] = {
        "rng/torch": torch.get_rng_state(),
        "rng/data_epoch_start": trainer.epoch_generator_state,
        **(ranks or {}),
    }
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = state
    for key, values in trainer.window.items():
        tensors[f"window/{key}"] = torch.stack([v.float() for v in values])
    best = "none" if pos.best_step < 0 else "latest" if pos.best_step == pos.step else "saved"
    if best == "saved" and trainer.best_state is not None:
        tensors.update({f"best/{k}": v for k, v in trainer.best_state.items()})
    optimizers: dict[str, Any] = {}
    for name, (opt, sched) in trainer.optimizers.items():
        opt_tensors, opt_info = optimizer_to_state(f"optimizer/{name}", opt)
        tensors.update(opt_tensors)
        optimizers[name] = {
            "optimizer": opt_info,
            "scheduler": sched.state_dict() if sched is not None else None,
        }
    position = dataclasses.asdict(pos)
    position["best_val"] = pos.best_val if math.isfinite(pos.best_val) else None
    metrics = trainer.run.path / METRICS_FILE
    info = {
        "position": position,
        "optimizers": optimizers,
        "window": list(trainer.window),
        "best": best,
        "metrics_bytes": metrics.stat().st_size if metrics.exists() else 0,
        "callbacks": trainer.callbacks.state_dict(),
        "grad_scaler": trainer.precision.state_dict(),
        "world_size": trainer.dist.world_size,
    }
    return write(
        trainer.run.path, trainer.model, recipe=trainer.recipe, step=pos.step, tensors=tensors, info=info
    )


def restore(trainer: Trainer) -> None:
    """Put ``trainer`` back where its run's checkpoint left it: weights, optimisers, random
    generators, position and the metrics not logged yet; ``metrics.jsonl`` goes back to what the
    checkpoint accounts for (the records after it are written again, the same), and
    ``model.safetensors`` is published again if a kill came between the two."""
    run_dir = trainer.run.path
    path = run_dir / LAST_FILE
    last = checkpoint.load(path, device=trainer.device)
    if last.hparams != trainer.model.hparams:
        raise AezooError(
            f"the hyperparameters in {run_dir / CONFIG_FILE} differ from those {path.name} was trained with; "
            "restore the config to resume"
        )
    saved = read(run_dir)
    tensors, info = saved.tensors, saved.info
    trainer.model.load_state_dict(last.state_dict())
    for name, (opt, sched) in trainer.optimizers.items():
        state = info["optimizers"].get(name)
        if state is None:
            raise AezooError(f"{run_dir}: no saved state for optimizer {name!r}")
        optimizer_from_state(f"optimizer/{name}", opt, tensors, state["optimizer"])
        if sched is not None and state["scheduler"] is not None:
            sched.load_state_dict(state["scheduler"])
    torch.set_rng_state(tensors["rng/torch"])
    cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng/cuda/")]
    if cuda_states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda_states[: torch.cuda.device_count()])
    trainer.epoch_generator_state = tensors["rng/data_epoch_start"]
    position = dict(info["position"])
    position["best_val"] = math.inf if position["best_val"] is None else position["best_val"]
    trainer.pos = Position(**position)
    trainer.dist.restore_rng(tensors, trainer.config.seed, trainer.pos.step)
    saved_by = int(info.get("world_size", 1))
    if saved_by != trainer.dist.world_size:
        trainer.echo(
            f"{path.name} was saved by {saved_by} process(es) and continues on {trainer.dist.world_size}: "
            "the run goes on, but not bit for bit as it would have on the same number"
        )
    if saved.legacy:
        return
    trainer.callbacks.load_state_dict(info.get("callbacks", {}))
    trainer.precision.load_state_dict(info.get("grad_scaler", {}))
    device = trainer.device
    trainer.window = {key: list(tensors[f"window/{key}"].to(device)) for key in info.get("window", [])}
    if info.get("best") == "saved":
        trainer.best_state = {k[len("best/") :]: v for k, v in tensors.items() if k.startswith("best/")}
    elif info.get("best") == "latest":
        trainer.best_state = cpu_copy(trainer.model)
    if not trainer.dist.is_writer:
        return
    truncate(run_dir / METRICS_FILE, int(info.get("metrics_bytes", 0)))
    publish_if_behind(trainer)


def publish_if_behind(trainer: Trainer) -> None:
    """Publish ``trainer``'s best weights as ``model.safetensors`` unless they already are there
    (a kill, or a stop, came between a checkpoint and its publication)."""
    run_dir = trainer.run.path
    if trainer.best_state is not None and published_step(run_dir) != trainer.pos.best_step:
        model = copy.deepcopy(trainer.model)
        model.load_state_dict(trainer.best_state)
        publish_best(run_dir, model, recipe=trainer.recipe, step=trainer.pos.best_step)


def cpu_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of ``model``'s weights on the CPU (the best weights, kept while training moves on)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def truncate(path: Path, size: int) -> None:
    """Cut ``metrics.jsonl`` back to the ``size`` bytes a checkpoint accounts for, durably."""
    if path.exists() and path.stat().st_size > size:
        with open(path, "r+b") as f:
            f.truncate(size)
            f.flush()
            os.fsync(f.fileno())


def write(
    run_dir: Path,
    model: AutoEncoder,
    *,
    recipe: dict[str, Any],
    step: int,
    tensors: dict[str, torch.Tensor],
    info: dict[str, Any],
) -> Path:
    """Commit one checkpoint: the latest weights and the trainer's ``tensors`` and ``info``."""
    metadata = checkpoint.model_metadata(model, recipe=recipe, step=str(step))
    metadata[STATE_KEY] = json.dumps({"format": CHECKPOINT_FORMAT, **info})
    out = checkpoint.model_tensors(model.state_dict())
    for key, value in tensors.items():
        out[STATE_PREFIX + key] = value.detach().to("cpu", copy=True).contiguous()
    path = run_dir / LAST_FILE
    crashpoint("save")
    with atomic_path(path) as tmp:
        save_file(out, str(tmp), metadata=metadata)
        crashpoint("written")
    crashpoint("committed")
    return path


def read(run_dir: Path) -> SavedState:
    """The trainer state of the run's checkpoint (its weights load with :func:`aezoo.checkpoint.load`)."""
    path = run_dir / LAST_FILE
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            if STATE_KEY not in metadata:
                return _read_legacy(run_dir, metadata)
            tensors = {
                k[len(STATE_PREFIX) :]: f.get_tensor(k)
                for k in f.keys()  # noqa: SIM118 - not a dict
                if k.startswith(STATE_PREFIX)
            }
        info = json.loads(metadata[STATE_KEY])
    except (SafetensorError, OSError, json.JSONDecodeError) as exc:
        raise AezooError(f"{path} is corrupt ({exc}); the run cannot be resumed") from exc
    if not isinstance(info, dict) or int(info.get("format", 0)) > CHECKPOINT_FORMAT:
        raise AezooError(f"{path} was written by a newer aezoo; upgrade aezoo to resume it")
    return SavedState(tensors, info)


def _read_legacy(run_dir: Path, weights_metadata: dict[str, str]) -> SavedState:
    """aezoo 0.1's two files, which agree only when the save between them was not cut short."""
    state = run_dir / STATE_FILE
    if not state.exists():
        raise AezooError(f"{run_dir / LAST_FILE} has no trainer state and {STATE_FILE} is missing; "
                         f"start a new run from {MODEL_FILE}")  # fmt: skip
    try:
        with safe_open(str(state), framework="pt") as f:
            info = json.loads((f.metadata() or {})["aezoo.trainer_state"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError, KeyError, json.JSONDecodeError) as exc:
        raise AezooError(f"{state} is corrupt ({exc}); the run cannot be resumed") from exc
    weights_step = weights_metadata.get("aezoo.step")
    if weights_step is not None and int(weights_step) != info["position"]["step"]:
        raise AezooError(
            f"{run_dir / LAST_FILE} (step {weights_step}) and {STATE_FILE} (step {info['position']['step']}) "
            "disagree, so the run cannot be resumed exactly; the last save was cut short: start a new run "
            f"from {MODEL_FILE}"
        )
    return SavedState(tensors, info, legacy=True)


def publish_best(run_dir: Path, model: AutoEncoder, *, recipe: dict[str, Any], step: int) -> None:
    """``model.safetensors``: the best weights, as a plain weights file for every other command."""
    checkpoint.save(model, run_dir / MODEL_FILE, recipe=recipe, step=step)
    crashpoint("published")


def published_step(run_dir: Path) -> int | None:
    """The step of the published best weights, None when there are none (or they are unreadable)."""
    try:
        step = checkpoint.read_metadata(run_dir / MODEL_FILE).get("aezoo.step")
    except AezooError:
        return None
    return int(step) if step is not None else None


# -- optimisers as tensors and JSON (never pickle) -------------------------------------------------


def optimizer_to_state(
    prefix: str, optimizer: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser's state dict into tensors and JSON."""
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, entry in sd["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{prefix}/{idx}/{key}"] = value
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def optimizer_from_state(
    prefix: str, optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    head = prefix + "/"
    for key, value in tensors.items():
        if key.startswith(head):
            idx, name = key[len(head) :].split("/", 1)
            state.setdefault(int(idx), {})[name] = value
    for idx, entry in info["scalars"].items():
        state.setdefault(int(idx), {}).update(entry)
    groups = info["param_groups"]
    for group, current in zip(groups, optimizer.state_dict()["param_groups"], strict=True):
        for key, value in current.items():
            if isinstance(value, tuple) and isinstance(group.get(key), list):
                group[key] = tuple(group[key])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


# -- fault injection for the crash tests ------------------------------------------------------------

_passes: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """Kill this process (SIGKILL: nothing is flushed or cleaned up) at the point ``name`` when
    ``$AEZOO_CRASH_AT`` names it (``POINT`` or ``POINT:N`` for its Nth pass); else nothing."""
    wanted = os.environ.get(CRASH_ENV)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    rank = os.environ.get(CRASH_RANK_ENV)
    if rank is not None and rank != os.environ.get("RANK", "0"):
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["Position", "SavedState", "publish_best", "read", "restore", "save", "write"]
