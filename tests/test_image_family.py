"""Denoising, super-resolution, VAE and adversarial AE: the behaviour each one promises."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import aezoo
from aezoo.data import DataOptions
from aezoo.errors import AezooError
from aezoo.trainer import TrainConfig

TINY = TrainConfig(max_steps=6, batch_size=32, limit_train=192, limit_eval=64, device="cpu", log_every=2)


def uint8_images(n: int, c: int = 1, h: int = 28, w: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randint(
        0, 256, (n, c, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8
    )


# -- denoising -----------------------------------------------------------------------------------


def test_denoising_corrupts_inputs_with_the_lessons_noise_and_keeps_clean_targets():
    model = aezoo.create("denoising")
    clean = torch.zeros(64, 1, 28, 28, dtype=torch.uint8)
    torch.manual_seed(0)
    noisy, target = model.prepare_batch({"image": clean}, train=True)
    assert torch.equal(target, torch.zeros(64, 1, 28, 28))
    assert float(noisy.min()) >= 0.0 and float(noisy.max()) <= 1.0
    assert abs(float(noisy.mean()) - 0.5) < 0.02  # N(0.5, 0.3) added to black, clamped


def test_salt_and_pepper_flips_the_requested_fraction():
    model = aezoo.create("denoising", noise="salt-pepper", noise_level=0.2)
    clean = torch.full((64, 1, 28, 28), 128, dtype=torch.uint8)
    torch.manual_seed(0)
    noisy, target = model.prepare_batch({"image": clean}, train=True)
    flipped = (noisy != target).float().mean()
    assert abs(float(flipped) - 0.2) < 0.01
    assert set(noisy[noisy != target].unique().tolist()) == {0.0, 1.0}


def test_denoising_reports_psnr_and_draws_three_rows():
    model = aezoo.create("denoising", widths=(8, 16), latent_dim=16).eval()
    torch.manual_seed(0)
    inputs, targets = model.prepare_batch({"image": uint8_images(4)}, train=False)
    metrics = model.evaluate(inputs, targets)
    assert {"psnr_noisy", "psnr_denoised", "bce"} <= set(metrics)
    picture = model.pictures(inputs, targets)["reconstructions"]
    assert picture.shape[1] == 3 * 28 + 4 * 2  # noisy, denoised, clean


# -- super-resolution ---------------------------------------------------------------------------


def test_superres_input_is_the_downscaled_target_cropped_to_the_scale():
    model = aezoo.create("superres", scale=3, loss="l1")
    low, high = model.prepare_batch({"image": uint8_images(2, 3, 64, 65)}, train=True)
    assert high.shape == (2, 1, 63, 63)  # luminance, cropped to a multiple of 3
    assert low.shape == (2, 1, 21, 21)
    assert torch.allclose(low * 255, (low * 255).round())  # 8-bit, like a saved image
    assert model(low).shape == (2, 1, 63, 63)


def test_superres_onnx_takes_any_image_size(tmp_path):
    torch.manual_seed(0)
    model = aezoo.create("superres", features=8, depth=2, loss="l1").eval()
    exported = aezoo.export(model, tmp_path / "sr")
    shapes = exported.manifest["models"]["encoder"]["inputs"][0]["shape"]
    assert shapes[0] == "batch" and isinstance(shapes[2], str) and isinstance(shapes[3], str)
    for h, w in ((10, 12), (17, 9)):
        low = torch.rand(1, 1, h, w)
        code = exported.encoder(low.numpy())["code"]
        high = exported.decoder(code)["high_res"]
        assert high.shape == (1, 1, 2 * h, 2 * w)
        with torch.no_grad():
            assert np.max(np.abs(high - model(low).numpy())) < 1e-4


def test_sr_metrics_are_the_conventional_ones():
    from aezoo_superres import color

    image = torch.rand(1, 1, 40, 40)
    assert float(color.ssim(image, image, 2)) == pytest.approx(1.0)
    assert float(color.psnr(image, image, 2)) > 90
    noisy = (image + 0.01).clamp(0, 1)
    assert 30 < float(color.psnr(noisy, image, 2)) < 45
    rgb = torch.rand(2, 3, 8, 8)
    back = color.ycbcr_to_rgb(color.rgb_to_ycbcr(rgb))
    assert torch.allclose(back, rgb, atol=2e-3)
    white = torch.ones(1, 3, 2, 2)
    assert torch.allclose(color.rgb_to_y(white), torch.full((1, 1, 2, 2), 235 / 255))


def test_images_folder_dataset(tmp_path):
    from PIL import Image

    from aezoo_images.folder import load_folder

    for i in range(12):
        size = (80 + i, 70) if i != 5 else (30, 30)
        Image.fromarray(
            np.random.default_rng(i).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        ).save(tmp_path / f"im{i:02d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    data = load_folder(DataOptions(root=tmp_path), str(tmp_path))
    assert len(data.val) == 2 and data.info["validation_files"] == ["im00.png", "im10.png"]
    assert len(data.train) == 9 * 64  # the 30-pixel image is too small for 64-pixel patches
    batch = data.train.batch(torch.arange(5))
    assert batch["image"].shape == (5, 3, 64, 64) and batch["image"].dtype == torch.uint8
    assert data.val.batch(torch.tensor([1]))["image"].shape == (1, 3, 70, 90)
    assert len(data.split("all")) == 12 and data.split("all").max_batch_size == 1
    with pytest.raises(AezooError, match="no such folder"):
        load_folder(DataOptions(root=tmp_path), str(tmp_path / "missing"))
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(AezooError, match=r"broken\.png is not an image"):
        load_folder(DataOptions(root=tmp_path), str(tmp_path))


def test_upscale_file_doubles_any_image(tmp_path):
    from PIL import Image

    torch.manual_seed(0)
    model = aezoo.create("superres", features=8, depth=2, loss="l1")
    source = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (21, 34, 3), dtype=np.uint8)).save(source)
    out = model.upscale_file(source, tmp_path / "out.png")
    with Image.open(out) as result:
        assert result.size == (68, 42) and result.mode == "RGB"
    with pytest.raises(AezooError, match="does not exist"):
        model.upscale_file(tmp_path / "missing.png", tmp_path / "x.png")


# -- VAE -----------------------------------------------------------------------------------------


def test_vae_kl_matches_torch_distributions():
    from aezoo_vae.model import kl_divergence

    mean, log_var = torch.randn(5, 3), torch.randn(5, 3)
    q = torch.distributions.Normal(mean, torch.exp(0.5 * log_var))
    p = torch.distributions.Normal(torch.zeros(3), torch.ones(3))
    want = torch.distributions.kl_divergence(q, p).sum(1)
    assert torch.allclose(kl_divergence(mean, log_var), want, atol=1e-5)


def test_vae_encoder_exports_mean_and_log_variance(tmp_path):
    model = aezoo.create("vae", widths=(8, 16), latent_dim=4)
    manifest = aezoo.export(model, tmp_path / "vae").manifest
    names = [o["name"] for o in manifest["models"]["encoder"]["outputs"]]
    assert names == ["z_mean", "z_log_var"]
    assert "exp(0.5 · z_log_var)" in manifest["models"]["encoder"]["outputs"][1]["description"]
    assert manifest["models"]["decoder"]["inputs"][0]["name"] == "z" and manifest["latent_size"] == 4


def test_vae_kl_warmup_and_beta():
    model = aezoo.create("vae", beta=2.0, kl_warmup_steps=100)
    assert model.kl_weight(0) == 0.0 and model.kl_weight(50) == 1.0 and model.kl_weight(500) == 2.0
    assert model.kl_weight(None) == 2.0


def test_vae_importance_sampled_likelihood_bounds_the_elbo():
    torch.manual_seed(0)
    model = aezoo.create("vae", network="dense", hidden=(64,), latent_dim=4, binarize=True).eval()
    inputs, targets = model.prepare_batch({"image": uint8_images(8)}, train=False)
    assert set(inputs.unique().tolist()) <= {0.0, 1.0}
    with torch.no_grad():
        elbo = -model.loss(inputs, targets).logs["neg_elbo"]
        one = model.log_likelihood(inputs, targets, 1).mean()
        many = model.log_likelihood(inputs, targets, 500).mean()
    assert abs(float(one - elbo)) < 15  # a single importance sample is an ELBO sample
    assert float(many) > float(elbo)  # the IWAE bound is tighter
    plain = aezoo.create("vae", network="dense", hidden=(64,), latent_dim=4)
    with pytest.raises(AezooError, match="binarize=true"):
        plain.log_likelihood(inputs, targets, 10)


def test_vae_samples_from_the_prior():
    model = aezoo.create("vae", widths=(8, 16), latent_dim=4)
    images = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert images.shape == (6, 1, 28, 28) and float(images.min()) >= 0 and float(images.max()) <= 1
    again = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(images, again)


# -- adversarial AE ------------------------------------------------------------------------------


def test_aae_alternates_three_updates_and_the_discriminator_learns(mnist_dir, tmp_path):
    model = aezoo.create("aae", hidden=(64,), disc_hidden=(32,))
    inputs = torch.rand(8, 1, 28, 28)
    updates = [u.optimizer for u in model.training_step(inputs, inputs, 0)]
    assert updates == ["autoencoder", "discriminator", "generator"]
    run = aezoo.train(
        "aae", hparams={"hidden": (64,), "disc_hidden": (32,)}, config=TrainConfig(
            max_steps=40, batch_size=64, limit_train=2560, limit_eval=256, device="cpu", log_every=10
        ), out=tmp_path / "aae", progress=False,
    )  # fmt: skip
    torch.manual_seed(0)  # the trainer builds the model right after seeding with the same seed
    before = aezoo.create("aae", hidden=(64,), disc_hidden=(32,))
    after = run.load_model()
    moved = [
        float((a - b).detach().abs().max())
        for a, b in zip(before.discriminator.parameters(), after.discriminator.parameters(), strict=True)
    ]
    assert min(moved) > 0  # the lesson's discriminator never moved
    d_losses = [r["d_loss"] for r in run.metrics("train")]
    assert all(abs(d - 2 * math.log(2)) > 1e-4 for d in d_losses)  # not stuck at chance


# -- every image model ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["conv", "denoising", "superres", "vae", "aae"])
def test_trains_on_fashion_mnist(name, mnist_dir, tmp_path):
    run = aezoo.train(name, "fashion-mnist", hparams=aezoo.architecture(name).smoke_hparams, config=TINY,
                      out=tmp_path / name, progress=False)  # fmt: skip
    assert run.metrics("test")[-1]["loss"] > 0
    assert (run.path / "reconstructions.png").exists()
