"""--precision and --compile on the CPU: bf16 autocast trains (its matrix products really in
bfloat16) and resumes bit for bit after a kill; --compile trains through the compiled loss with
the weights' names unchanged; what cannot work is one line. The GPU cases (fp16 with its gradient
scaler, bf16 and inductor on CUDA) are in tests/test_devices.py."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import aezoo
from aezoo import training
from aezoo.cli import main
from aezoo.data import DataSplits, TensorSplit
from aezoo.errors import AezooError
from aezoo.model import Update
from aezoo.precision import StepPrecision
from aezoo.runs import Run
from aezoo.trainconfig import TrainConfig
from aezoo.trainer import Trainer
from tests.test_crash import _aezoo, _env, _records, _tensors, train_args

SMALL = {"hidden": (32,), "latent_dim": 4}


def _config(**settings) -> TrainConfig:
    base = {"limit_train": 512, "limit_eval": 64, "batch_size": 32, "max_steps": 16, "log_every": 4,
            "evaluate_test": False, "device": "cpu", "threads": 1}  # fmt: skip
    return TrainConfig(**{**base, **settings})


def test_bf16_autocast_trains_in_bfloat16_and_the_loss_falls(mnist_dir, tmp_path, monkeypatch):
    dtypes: set[torch.dtype] = set()
    original = torch.nn.Linear.forward

    def recording(self, x):
        out = original(self, x)
        if torch.is_grad_enabled():  # the training steps (validation runs under no_grad)
            dtypes.add(out.dtype)
        return out

    monkeypatch.setattr(torch.nn.Linear, "forward", recording)
    run = training.train(
        "dense", "mnist", hparams=SMALL, config=_config(precision="bf16"), out=tmp_path / "r"
    )
    losses = [record["loss"] for record in run.metrics("train")]
    assert len(losses) == 4 and losses == sorted(losses, reverse=True) and losses[-1] < losses[0] - 0.03
    assert dtypes == {torch.bfloat16}
    fp32 = training.train("dense", "mnist", hparams=SMALL, config=_config(), out=tmp_path / "fp32")
    fp32_losses = [record["loss"] for record in fp32.metrics("train")]
    # other arithmetic, the same training
    assert losses != fp32_losses and losses == pytest.approx(fp32_losses, abs=0.01)
    assert json.loads((run.path / "config.json").read_text())["trainer"]["precision"] == "bf16"
    with safe_open(str(run.path / "model.safetensors"), framework="pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.float32}  # noqa: SIM118 - not a dict


def test_a_bf16_run_killed_after_a_checkpoint_resumes_bit_for_bit(mnist_dir, tmp_path):
    args = [*train_args(max_steps=12), "--precision", "bf16"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert _aezoo(*args, "--out", str(reference)).returncode == 0
    result = _aezoo(*args, "--out", str(killed), env=_env(AEZOO_CRASH_AT="committed:2"))
    assert result.returncode == -9, result.stderr  # killed just after its step-8 checkpoint
    resumed = _aezoo("train", "--resume", str(killed), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr and "at step 8" in resumed.stderr
    for name in ("last.safetensors", "model.safetensors"):
        want, got = _tensors(reference / name), _tensors(killed / name)
        assert want.keys() == got.keys()
        assert [k for k in want if not torch.equal(want[k], got[k])] == [], name
    assert _records(killed) == _records(reference)


def test_compile_trains_through_the_compiled_loss_with_the_eager_numbers(mnist_dir, tmp_path):
    """aot_eager: torch.compile's tracing and autograd without inductor's C++ build, which takes
    over a minute on a small CPU (inductor is exercised by tests/test_devices.py on a GPU)."""
    eager = training.train("dense", "mnist", hparams=SMALL, config=_config(max_steps=4), out=tmp_path / "e")
    config = _config(max_steps=4, compile=True, compile_backend="aot_eager")
    calls: list[int] = []
    original = StepPrecision.step

    def counting(self, optimizer):
        calls.append(self.compiled_calls)
        original(self, optimizer)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(StepPrecision, "step", counting)
        compiled = training.train("dense", "mnist", hparams=SMALL, config=config, out=tmp_path / "c")
    assert calls == [1, 2, 3, 4]  # every training forward went through the compiled loss
    for want, got in zip(eager.metrics(), compiled.metrics(), strict=True):
        assert want.keys() == got.keys()
        for key in ("loss", "bce", "mse"):
            if key in want:
                assert got[key] == pytest.approx(want[key], rel=1e-5, abs=1e-6), key
    with safe_open(str(compiled.path / "model.safetensors"), framework="pt") as f:
        names = list(f.keys())
    assert names and not [n for n in names if "_orig_mod" in n]
    assert aezoo.load(compiled.path).state_dict().keys() == aezoo.load(eager.path).state_dict().keys()


def test_a_compile_failure_is_one_line(mnist_dir, tmp_path):
    from torch._dynamo import register_backend

    @register_backend(name="aezoo_test_broken")
    def broken(graph, example_inputs):
        raise RuntimeError("this backend cannot compile anything")

    config = _config(max_steps=2, compile=True, compile_backend="aezoo_test_broken")
    with pytest.raises(AezooError) as error:
        training.train("dense", "mnist", hparams=SMALL, config=config, out=tmp_path / "r")
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("--compile: torch.compile (backend aezoo_test_broken) could not compile dense")
    assert "this backend cannot compile anything" in message and message.endswith("train without --compile")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--precision", "fp16", "--device", "cpu"],
            "--precision fp16 needs a CUDA device (this run is on cpu)",
        ),
        (["--precision", "half"], "setting 'precision' must be one of fp32, bf16, fp16, got 'half'"),
        (
            ["--compile", "--compile-backend", "nope"],
            "--compile-backend 'nope' is not a torch.compile backend",
        ),
    ],
)
def test_precision_and_compile_mistakes_are_one_line(mnist_dir, tmp_path, capsys, args, message):
    out = tmp_path / "run"
    status = main(["train", "dense", "--max-steps", "1", "--out", str(out), "--no-progress", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1 and err[0].startswith("aezoo: error: "), err
    assert message in err[0]
    assert not out.exists()  # refused before the run folder was made


def test_the_gradient_scaler_state_round_trips_through_the_checkpoint_info():
    """fp16 needs CUDA, so this checks the scaler's checkpointed state on the CPU's own scaler."""
    precision = StepPrecision("bf16", torch.device("cpu"))
    assert precision.state_dict() == {}  # nothing to save unless fp16
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10, growth_interval=3)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(4):
        scaler.scale(model(torch.ones(2, 3)).sum()).backward()
        scaler.step(opt)
        scaler.update()
    precision.scaler = scaler
    state = json.loads(json.dumps(precision.state_dict()))  # as the checkpoint's metadata holds it
    restored = StepPrecision("bf16", torch.device("cpu"))
    restored.scaler = torch.amp.GradScaler("cpu")
    restored.load_state_dict(state)
    assert restored.scaler.get_scale() == scaler.get_scale() == 2.0**11
    assert restored.scaler.state_dict() == scaler.state_dict()


def test_compile_says_once_that_a_training_step_never_calling_loss_runs_uncompiled(tmp_path):
    arch = aezoo.architecture("dense")
    model = arch.build(**arch.smoke_hparams)

    def own_step(inputs, targets, step):  # as a model with its own objective might
        out = type(model).loss(model, inputs, targets, step)
        yield Update(out.loss, "model", out.logs)

    model.training_step = own_step
    splits = [TensorSplit(model.example_batch(n, torch.Generator().manual_seed(0))) for n in (24, 8, 8)]
    config = _config(max_steps=3, batch_size=8, compile=True, compile_backend="eager")
    lines: list[str] = []
    Trainer(
        model, DataSplits("examples", *splits), config, Run(tmp_path), progress=False, echo=lines.append
    ).fit()
    said = [line for line in lines if line.startswith("--compile:")]
    assert said == [
        "--compile: dense's training_step does not call its loss(), so its training steps run uncompiled"
    ]
