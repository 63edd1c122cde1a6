"""Model files: weights that share memory (tied, or packed like cuDNN's LSTM buffers) round-trip."""

from __future__ import annotations

import torch
from safetensors import safe_open

import aezoo
from aezoo import checkpoint
from aezoo.plugins import registry


def _smoke(name: str) -> aezoo.AutoEncoder:
    torch.manual_seed(0)
    return aezoo.create(name, **registry().architecture(name).smoke_hparams)


def _same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        torch.testing.assert_close(sa[key], sb[key], rtol=0, atol=0, msg=key)


def test_weights_packed_into_one_buffer_save_and_load(tmp_path):
    """On a GPU cuDNN packs every LSTM weight into one flat buffer; safetensors' save_model
    refuses such views ("None is covering the entire storage")."""
    model = _smoke("musicvae")
    params = [p for p in model.parameters() if p.ndim == 2][:3]
    flat = torch.cat([p.detach().flatten() for p in params])
    offset = 0
    for p in params:
        p.data = flat[offset : offset + p.numel()].view_as(p)
        offset += p.numel()
    path = checkpoint.save(model, tmp_path / "model.safetensors")
    _same_state(model, checkpoint.load(path))


def test_tied_weights_are_stored_once_and_restored(tmp_path):
    model = _smoke("dense")
    holder = torch.nn.Module()
    holder.a = torch.nn.Linear(4, 4)
    holder.b = holder.a
    model.add_module("tied_probe", holder)
    path = checkpoint.save(model, tmp_path / "model.safetensors")
    with safe_open(str(path), framework="pt") as f:
        keys = set(f.keys())
    assert "tied_probe.a.weight" in keys and "tied_probe.b.weight" not in keys
    state = checkpoint._untie(model, {k: v for k, v in model.state_dict().items() if k in keys})
    assert torch.equal(state["tied_probe.b.weight"], model.tied_probe.a.weight)
