"""Every registered architecture trains, checkpoints and loads back on each device this machine
has. CI has only the CPU; on a machine with a GPU the cuda cases run as well
(``pytest tests/test_devices.py``), which is where bugs like cuDNN's packed LSTM weights breaking
the first save show up."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import aezoo
from aezoo import checkpoint
from aezoo.data import DataSplits, TensorSplit
from aezoo.runs import Run, new_run_dir
from aezoo.trainer import TrainConfig, Trainer

DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")),
]


def _examples(model: aezoo.AutoEncoder) -> DataSplits:
    """Train, val and test splits made of the architecture's own example batches."""
    generator = torch.Generator().manual_seed(0)
    splits = [TensorSplit(model.example_batch(n, generator)) for n in (24, 8, 8)]
    return DataSplits("examples", *splits)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("architecture", aezoo.list_architectures())
def test_trains_checkpoints_and_loads_back_on(architecture, device, tmp_path, monkeypatch):
    arch = aezoo.architecture(architecture)
    torch.manual_seed(0)
    model = arch.build(**arch.smoke_hparams)
    data = _examples(model)
    saved: dict[str, dict[str, torch.Tensor]] = {}  # what the model held when each file was written
    original_save = checkpoint.save

    def recording_save(model, path, **extra):
        saved[Path(path).name] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return original_save(model, path, **extra)

    monkeypatch.setattr(checkpoint, "save", recording_save)
    config = TrainConfig(max_steps=3, batch_size=8, device=device, log_every=1, threads=1)
    run = Run(new_run_dir(architecture, tmp_path / "run"))
    run.write_config(
        {"architecture": architecture, "hparams": model.hparams.to_dict(), "dataset": "examples",
         "trainer": config.to_dict()}
    )  # fmt: skip
    run = Trainer(model, data, config, run, progress=False).fit()

    assert next(model.parameters()).device.type == device
    assert [m["step"] for m in run.metrics("train")] == [1, 2, 3]
    assert {checkpoint.MODEL_FILE, checkpoint.LAST_FILE} <= set(saved)
    assert next(run.load_model(device).parameters()).device.type == device
    for name, tensors in saved.items():
        loaded = checkpoint.load(run.path / name).state_dict()  # on the CPU
        assert list(loaded) == list(tensors)
        for key, value in loaded.items():
            torch.testing.assert_close(value, tensors[key], rtol=0, atol=0, msg=f"{name}: {key} changed")
