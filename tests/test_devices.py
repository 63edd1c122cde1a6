"""Every registered architecture trains, checkpoints and loads back on each device this machine
has. CI has only the CPU; on a machine with a GPU the cuda cases run as well
(``pytest tests/test_devices.py``), which is where bugs like cuDNN's packed LSTM weights breaking
the first save show up."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import aezoo
from aezoo import checkpoint, trainstate
from aezoo.data import DataSplits, TensorSplit
from aezoo.runs import Run, new_run_dir
from aezoo.trainer import TrainConfig, Trainer

NO_CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU")
DEVICES = ["cpu", pytest.param("cuda", marks=NO_CUDA)]
#: (device, --precision): every precision each device trains in (fp16 needs CUDA).
PRECISIONS = [
    ("cpu", "fp32"),
    ("cpu", "bf16"),
    pytest.param("cuda", "fp32", marks=NO_CUDA),
    pytest.param("cuda", "bf16", marks=NO_CUDA),
    pytest.param("cuda", "fp16", marks=NO_CUDA),
]


def _examples(model: aezoo.AutoEncoder) -> DataSplits:
    """Train, val and test splits made of the architecture's own example batches."""
    generator = torch.Generator().manual_seed(0)
    splits = [TensorSplit(model.example_batch(n, generator)) for n in (24, 8, 8)]
    return DataSplits("examples", *splits)


@pytest.mark.parametrize(("device", "precision"), PRECISIONS)
@pytest.mark.parametrize("architecture", aezoo.list_architectures())
def test_trains_checkpoints_and_loads_back_on(architecture, device, precision, tmp_path, monkeypatch):
    arch = aezoo.architecture(architecture)
    torch.manual_seed(0)
    model = arch.build(**arch.smoke_hparams)
    data = _examples(model)
    saved: dict[str, dict[str, torch.Tensor]] = {}  # what the model held when each file was written
    original_save = checkpoint.save

    def recording_save(model, path, **extra):
        saved[Path(path).name] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return original_save(model, path, **extra)

    original_write = trainstate.write

    def recording_write(run_dir, model, **extra):  # the checkpoint: last.safetensors
        saved[checkpoint.LAST_FILE] = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        return original_write(run_dir, model, **extra)

    monkeypatch.setattr(checkpoint, "save", recording_save)
    monkeypatch.setattr(trainstate, "write", recording_write)
    config = TrainConfig(
        max_steps=3, batch_size=8, device=device, log_every=1, threads=1, precision=precision
    )
    run = Run(new_run_dir(architecture, tmp_path / "run"))
    run.write_config(
        {"architecture": architecture, "hparams": model.hparams.to_dict(), "dataset": "examples",
         "trainer": config.to_dict()}
    )  # fmt: skip
    run = Trainer(model, data, config, run, progress=False).fit()

    assert next(model.parameters()).device.type == device
    assert [m["step"] for m in run.metrics("train")] == [1, 2, 3]
    losses = [v for m in run.metrics() for k, v in m.items() if k.startswith("loss")]
    assert losses and all(math.isfinite(v) for v in losses)
    assert {checkpoint.MODEL_FILE, checkpoint.LAST_FILE} <= set(saved)
    assert next(run.load_model(device).parameters()).device.type == device
    for name, tensors in saved.items():
        loaded = checkpoint.load(run.path / name).state_dict()  # on the CPU
        assert list(loaded) == list(tensors)
        for key, value in loaded.items():
            torch.testing.assert_close(value, tensors[key], rtol=0, atol=0, msg=f"{name}: {key} changed")


def _trainer(data: DataSplits, folder: Path, **settings) -> Trainer:
    arch = aezoo.architecture("dense")
    torch.manual_seed(0)
    model = arch.build(**arch.smoke_hparams)
    config = TrainConfig(batch_size=8, device="cuda", log_every=1, evaluate_test=False, **settings)
    run = Run(folder)
    if not (folder / "config.json").exists():
        run.write_config(
            {"architecture": "dense", "hparams": model.hparams.to_dict(), "dataset": "examples",
             "trainer": config.to_dict()}
        )  # fmt: skip
    return Trainer(model, data, config, run, progress=False)


@NO_CUDA
@pytest.mark.parametrize(
    ("precision", "compiled"), [("bf16", False), ("fp16", False), ("fp32", True), ("bf16", True)]
)
def test_a_cuda_run_stopped_and_resumed_ends_bit_for_bit_as_one_never_stopped(precision, compiled, tmp_path):
    """bf16, fp16 (its gradient scaler's state in the checkpoint) and torch.compile (inductor):
    6 steps straight, against 3 steps then a resume to 6, from the checkpoint file."""
    settings = {"precision": precision, "compile": compiled}
    data = _examples(aezoo.architecture("dense").build(**aezoo.architecture("dense").smoke_hparams))
    straight = _trainer(data, tmp_path / "straight", max_steps=6, **settings)
    straight.fit()
    _trainer(data, tmp_path / "resumed", max_steps=3, **settings).fit()
    resumed = _trainer(data, tmp_path / "resumed", max_steps=6, **settings)
    resumed.restore()
    assert resumed.pos.step == 3
    resumed.fit()
    want = checkpoint.load(tmp_path / "straight" / checkpoint.LAST_FILE).state_dict()
    got = checkpoint.load(tmp_path / "resumed" / checkpoint.LAST_FILE).state_dict()
    assert list(got) == list(want) and not [k for k in got if "_orig_mod" in k]
    assert [k for k in want if not torch.equal(want[k], got[k])] == []
    untimed = [
        [{k: v for k, v in m.items() if k != "time_s"} for m in t.run.metrics()] for t in (straight, resumed)
    ]
    assert untimed[0] == untimed[1] and len(untimed[0]) == 8  # 6 train records, 2 validations
    scaler = straight.precision.scaler
    assert scaler.is_enabled() == (precision == "fp16")
    if scaler.is_enabled():
        assert resumed.precision.scaler.state_dict() == scaler.state_dict()
    if compiled:
        assert straight.precision.compiled_calls == 6 and resumed.precision.compiled_calls == 3
