"""The shared trainer on real MNIST: the loss falls, runs save and load exactly, resume continues."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open

import aezoo
from aezoo.errors import AezooError
from aezoo.runs import Run
from aezoo.trainer import TrainConfig, Trainer, load_data

SMALL_CONV = {"widths": (8, 16), "latent_dim": 16}


def small_config(**overrides) -> TrainConfig:
    values = {"batch_size": 32, "limit_train": 256, "limit_eval": 128, "device": "cpu", "log_every": 4}
    values.update(overrides)
    return TrainConfig(**values)


def test_a_few_steps_lower_the_loss_on_mnist(mnist_dir, tmp_path):
    torch.manual_seed(0)
    model = aezoo.create("dense", hidden=(128,))
    data = load_data("mnist")
    run = Run(tmp_path / "run")
    run.path.mkdir()
    trainer = Trainer(model, data, small_config(max_steps=40, lr=3e-3), run, progress=False)
    before = trainer.evaluate(trainer.data.val)["loss"]
    trainer.fit()
    after = run.metrics("val")[-1]["loss"]
    assert before > 0.5  # an untrained decoder is close to uniform noise
    assert after < 0.3 and after < 0.6 * before
    train = run.metrics("train")
    assert train[-1]["loss"] < train[0]["loss"]
    assert [r["step"] for r in train] == list(range(4, 41, 4))


def test_denormals_flush_while_training_and_come_back_after(mnist_dir, tmp_path, monkeypatch):
    seen = []
    real_step = Trainer._train_epoch

    def spy(self, *args, **kwargs):
        seen.append(float(torch.tensor([1e-40]) * 1.0))  # 0 when denormals flush to zero
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "_train_epoch", spy)
    for flush in (True, False):
        aezoo.train(
            "dense",
            hparams={"hidden": (16,)},
            config=small_config(max_steps=2, flush_denormal=flush),
            out=tmp_path / f"run-{flush}",
            progress=False,
        )
        assert float(torch.tensor([1e-40]) * 1.0) > 0  # torch's default is back
    assert seen[0] == 0.0 and seen[-1] > 0


def test_run_folder_holds_config_weights_metrics_and_picture(mnist_dir, tmp_path):
    run = aezoo.train(
        "conv", hparams=SMALL_CONV, config=small_config(max_steps=6), out=tmp_path / "run", progress=False
    )
    files = {p.name for p in run.path.iterdir()}
    assert {"config.json", "model.safetensors", "last.safetensors", "metrics.jsonl",
            "reconstructions.png", ".aezoo-lock"} == files  # fmt: skip
    assert (run.path / ".aezoo-lock").read_text() == ""  # released: no PID holds it
    config = json.loads((run.path / "config.json").read_text())
    assert config["architecture"] == "conv" and config["dataset"] == "mnist"
    assert config["hparams"]["widths"] == [8, 16] and config["trainer"]["max_steps"] == 6
    assert config["versions"]["torch"] == torch.__version__
    with safe_open(str(run.model_path), framework="pt") as f:
        meta = f.metadata()
    assert meta["aezoo.architecture"] == "conv"
    assert json.loads(meta["aezoo.hparams"])["latent_dim"] == 16
    assert meta["aezoo.version"] == aezoo.__version__
    splits = [r["split"] for r in run.metrics()]
    assert splits.count("val") == 1 and splits[-1] == "test"
    from PIL import Image

    with Image.open(run.path / "reconstructions.png") as picture:  # 2 rows of 16 digits
        assert picture.size == (16 * 30 + 2, 2 * 30 + 2)
    assert not [p for p in run.path.iterdir() if p.name.endswith(".tmp")]


def test_save_load_round_trip_is_bit_exact(tmp_path):
    torch.manual_seed(1)
    model = aezoo.create("conv", **SMALL_CONV).eval()
    with torch.no_grad():  # give batch norm running statistics that differ from the defaults
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
    path = tmp_path / "m.safetensors"
    aezoo.save(model, path)
    loaded = aezoo.load(path)
    assert type(loaded) is type(model) and loaded.hparams == model.hparams
    for (k1, v1), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items(), strict=True):
        assert k1 == k2 and torch.equal(v1, v2)
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(model(x), loaded(x))


def test_load_rejects_missing_corrupt_and_foreign_files(tmp_path):
    with pytest.raises(AezooError, match="does not exist"):
        aezoo.load(tmp_path / "nope.safetensors")
    path = tmp_path / "m.safetensors"
    aezoo.save(aezoo.create("dense", hidden=(8,)), path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AezooError, match="corrupt"):
        aezoo.load(path)
    from safetensors.torch import load_file, save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(AezooError, match="without aezoo metadata"):
        aezoo.load(tmp_path / "plain.safetensors")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(AezooError, match=r"config\.json is not a weights file; give a run folder or a"):
        aezoo.load(tmp_path / "config.json")
    model = aezoo.create("dense", hidden=(8,), latent_dim=4)
    mismatched = tmp_path / "mismatched.safetensors"
    aezoo.save(model, mismatched)
    tensors = load_file(str(mismatched))
    metadata = aezoo.checkpoint.read_metadata(mismatched)
    metadata["aezoo.hparams"] = metadata["aezoo.hparams"].replace('"latent_dim": 4', '"latent_dim": 8')
    save_file(tensors, str(mismatched), metadata=metadata)
    with pytest.raises(
        AezooError,
        match=r"do not fit a 'dense' model .*\(decoder.net.0.weight is \[8, 4\] in the file, \[8, 8\] in the model\)",
    ):
        aezoo.load(mismatched)


@pytest.mark.parametrize("split_at", [4, 8, 11])  # mid-epoch, at an epoch's end, mid-epoch later
def test_resume_continues_exactly_where_it_stopped(mnist_dir, tmp_path, split_at):
    config = small_config(max_steps=20, limit_train=256, batch_size=32)  # 8 steps per epoch
    straight = aezoo.train("conv", hparams=SMALL_CONV, config=config, out=tmp_path / "a", progress=False)
    first = aezoo.train(
        "conv",
        hparams=SMALL_CONV,
        config=small_config(max_steps=split_at),
        out=tmp_path / "b",
        progress=False,
    )
    from aezoo.training import resume

    resumed = resume(first.path, max_steps=20, progress=False)
    a = aezoo.load(straight.path / "last.safetensors").state_dict()
    b = aezoo.load(resumed.path / "last.safetensors").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    steps = [r["step"] for r in resumed.metrics("train")]
    assert steps == sorted(steps) and steps[-1] == 20
    assert split_at in [r["step"] for r in resumed.metrics("val")]


def test_diverging_training_stops_with_a_clear_error(mnist_dir, tmp_path):
    model = aezoo.create("dense", hidden=(32,))
    honest_loss = model.loss

    def exploding_loss(inputs, targets, step=None):
        out = honest_loss(inputs, targets, step)
        if step is not None and step >= 10:
            out.loss = out.loss * float("nan")
        return out

    model.loss = exploding_loss
    run = Run(tmp_path / "run")
    run.path.mkdir()
    trainer = Trainer(model, load_data("mnist"), small_config(max_steps=20), run, progress=False)
    with pytest.raises(
        AezooError,
        match=r"diverged: the loss was not finite at step 11; resume with a lower --lr .*last good",
    ):
        trainer.fit()
    kept = aezoo.load(run.path / "last.safetensors")  # written at the end of epoch 1 (step 8)
    assert all(torch.isfinite(t).all() for t in kept.state_dict().values())


def test_wrong_image_shape_is_a_user_error(tmp_path):
    model = aezoo.create("conv", **SMALL_CONV, image_size=32)
    with pytest.raises(AezooError, match=r"expects images of shape 1×32×32 .*got 1×28×28"):
        model.prepare_batch({"image": torch.zeros(2, 28, 28, dtype=torch.uint8)}, train=True)


def test_a_run_that_logged_steps_keeps_its_folder_when_training_fails(mnist_dir, tmp_path, monkeypatch):
    from aezoo.runs import Run
    from aezoo_dense.model import DenseAutoEncoder

    original = DenseAutoEncoder.loss
    calls = []

    def fails_at_the_third_step(self, inputs, targets, step=None):
        if step is None:  # an evaluation (the trainer's look at what validation reports), not a step
            return original(self, inputs, targets, step)
        calls.append(step)
        if len(calls) == 3:
            raise AezooError("diverged")
        return original(self, inputs, targets, step)

    monkeypatch.setattr(DenseAutoEncoder, "loss", fails_at_the_third_step)
    with pytest.raises(AezooError, match="diverged"):
        aezoo.train("dense", config=small_config(log_every=1), out=tmp_path / "run", progress=False)
    run = Run.open(tmp_path / "run")  # the curve that shows what went wrong is still there
    assert [r["step"] for r in run.metrics("train")] == [1, 2]
