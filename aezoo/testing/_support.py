"""What the checks share: building a model, fresh inputs, its optimisers, one export per model."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import aezoo
from aezoo.model import AutoEncoder, OptimizerConfig


def architecture(name: str) -> aezoo.Architecture:
    return aezoo.architecture(name)


def hparams_of(name: str, hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    """``hparams``, or the architecture's smoke hyperparameters when None."""
    return dict(architecture(name).smoke_hparams if hparams is None else hparams)


def build(name: str, hparams: Mapping[str, Any] | None, seed: int = 0) -> AutoEncoder:
    torch.manual_seed(seed)
    return architecture(name).build(**hparams_of(name, hparams))


def first(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, (tuple, list)) else value


def tensors(value: Any) -> tuple[torch.Tensor, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def rows(value: Any, start: int, stop: int) -> Any:
    """Rows ``start:stop`` of a tensor or of each tensor in a tuple or list."""
    if isinstance(value, (tuple, list)):
        return type(value)(rows(v, start, stop) for v in value)
    return value[start:stop]


def inputs(model: AutoEncoder, n: int, *, train: bool = False, seed: int = 0) -> tuple[Any, Any]:
    """``prepare_batch`` of the model's own random example batch of ``n``."""
    generator = torch.Generator(device=model.device).manual_seed(seed)
    return model.prepare_batch(model.example_batch(n, generator), train=train)


def optimizers(model: AutoEncoder, lr: float = 1e-3) -> dict[str, torch.optim.Optimizer]:
    out = {}
    for name, value in model.configure_optimizers(OptimizerConfig(lr=lr)).items():
        out[name] = value[0] if isinstance(value, tuple) else value
    return out


def train_steps(model: AutoEncoder, inputs: Any, targets: Any, steps: int, lr: float = 1e-3) -> list[float]:
    """Run ``steps`` training steps as the trainer does; the loss of every update."""
    opts = optimizers(model, lr)
    losses = []
    model.train()
    for step in range(steps):
        for update in model.training_step(inputs, targets, step):
            opt = opts[update.optimizer]
            opt.zero_grad(set_to_none=True)
            update.loss.backward()
            opt.step()
            losses.append(float(update.loss.detach()))
    return losses


def key(architecture_name: str, hparams: Mapping[str, Any] | None) -> str:
    return json.dumps(hparams_of(architecture_name, hparams), sort_keys=True, default=list)


_export_root: Path | None = None


@functools.cache
def exported(architecture_name: str, hparams_key: str) -> Path:
    """Export once per (architecture, hyperparameters) and share it between checks."""
    global _export_root
    from aezoo.onnx import export

    if _export_root is None:
        _export_root = Path(tempfile.mkdtemp(prefix="aezoo-conformance-"))
        atexit.register(shutil.rmtree, _export_root, True)
    model = build(architecture_name, json.loads(hparams_key)).eval()
    with torch.no_grad():
        real, _ = inputs(model, 4, seed=7)
    out = _export_root / f"{architecture_name}-{abs(hash(hparams_key))}"
    export(model, out, real_inputs=real)
    return out


def export_of(architecture_name: str, hparams: Mapping[str, Any] | None) -> Path:
    """The export folder of the model the checks build."""
    return exported(architecture_name, key(architecture_name, hparams))
