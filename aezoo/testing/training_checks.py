"""Checks of training and saving: finite losses reaching every parameter, a loss that goes down,
and weights that survive ``aezoo.save`` and ``aezoo.load``."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

import aezoo
from aezoo.testing import _support


def check_loss_finite_and_gradients_flow(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Every update's loss is finite and every trainable parameter receives a finite gradient."""
    model = _support.build(architecture, hparams).train()
    inputs, targets = _support.inputs(model, 4, train=True)
    optimizers = _support.optimizers(model)
    reached: set[int] = set()
    for update in model.training_step(inputs, targets, 0):
        assert update.optimizer in optimizers, (
            f"training_step() yielded an update for optimizer {update.optimizer!r}; "
            f"configure_optimizers() declares {sorted(optimizers)}"
        )
        assert update.loss.ndim == 0 and torch.isfinite(update.loss), f"loss is {update.loss}"
        opt = optimizers[update.optimizer]
        opt.zero_grad(set_to_none=True)
        update.loss.backward()
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    assert torch.isfinite(p.grad).all(), "a gradient is not finite"
                    if torch.any(p.grad != 0):
                        reached.add(id(p))
        opt.step()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in reached]
    assert not missing, f"parameters receive no gradient from any update: {missing[:6]}"


def check_few_steps_lower_the_loss(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Thirty steps on one fixed batch lower its loss."""
    model = _support.build(architecture, hparams)
    inputs, targets = _support.inputs(model, 16, train=False, seed=1)

    def loss() -> float:
        with torch.no_grad():
            return float(model.loss(inputs, targets, None).loss)

    model.train()
    before = loss()
    _support.train_steps(model, inputs, targets, steps=30, lr=3e-3)
    after = loss()
    assert math.isfinite(after) and after < before, f"loss went from {before:.5f} to {after:.5f}"


def check_save_load_round_trip(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """``aezoo.save`` then ``aezoo.load`` gives bit-identical weights and outputs."""
    model = _support.build(architecture, hparams, seed=3).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        aezoo.save(model, path)
        loaded = aezoo.load(path)
    assert type(loaded) is type(model) and loaded.hparams == model.hparams
    want, got = model.state_dict(), loaded.state_dict()
    assert list(want) == list(got), "state dict keys differ after loading"
    for key in want:
        assert torch.equal(want[key], got[key]), f"{key} differs after loading"
    inputs, _ = _support.inputs(model, 2)
    with torch.no_grad():
        for a, b in zip(_support.tensors(model(inputs)), _support.tensors(loaded(inputs)), strict=True):
            assert torch.equal(a, b), "outputs differ after loading"
