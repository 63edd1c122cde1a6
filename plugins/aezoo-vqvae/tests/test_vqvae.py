"""aezoo-vqvae against aezoo's conformance kit, and what a VQ-VAE promises beyond it: integer codes
from a codebook, a decoder that takes them (in PyTorch and in ONNX), and a codebook that learns."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import aezoo
from aezoo.testing import parametrize_with_checks

SMOKE = {"widths": (8, 16), "codes": 32, "code_dim": 8}


@parametrize_with_checks(["vqvae"])
def test_vqvae_conforms(architecture, check):
    check(architecture)


def digits(n: int, seed: int = 0) -> torch.Tensor:
    """Blurry strokes in [0, 1], [n, 1, 28, 28]: something with structure for the codebook to learn."""
    g = torch.Generator().manual_seed(seed)
    y, x = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    centres = torch.rand(n, 2, 2, generator=g) * 16 + 6
    d = torch.stack(
        [(y - c[:, 0, None, None]) ** 2 + (x - c[:, 1, None, None]) ** 2 for c in centres.unbind(1)]
    )
    return torch.exp(-d.min(0).values / 8)[:, None]


def test_codes_are_integer_indices_into_the_codebook_and_decode_to_images():
    model = aezoo.create("vqvae", **SMOKE).eval()
    with torch.no_grad():
        codes = model.encode(digits(5))
        images = model.decode(codes)
    assert codes.dtype == torch.int64 and codes.shape == (5, 7, 7)
    assert int(codes.min()) >= 0 and int(codes.max()) < 32
    assert images.shape == (5, 1, 28, 28) and float(images.min()) >= 0 and float(images.max()) <= 1
    # each index is its code vector's: decoding a grid of one index repeated is one vector repeated
    vectors = model.codebook.lookup(torch.full((1, 7, 7), 3))
    assert torch.equal(vectors[0, :, 2, 5], model.codebook.embedding[3])


def test_the_encoder_picks_the_nearest_code():
    model = aezoo.create("vqvae", **SMOKE).eval()
    with torch.no_grad():
        z = model.encoder.vectors(digits(3))
        codes = model.encode(digits(3))
    flat = z.permute(0, 2, 3, 1).reshape(-1, 8)
    brute = torch.cdist(flat, model.codebook.embedding).argmin(-1)
    assert torch.equal(codes.flatten(), brute)


def test_the_codebook_moves_to_the_mean_of_its_vectors_and_dead_codes_restart():
    torch.manual_seed(0)
    model = aezoo.create("vqvae", **SMOKE, decay=0.5, restart_below=0.4)
    book = model.codebook
    z = torch.randn(2, 8, 7, 7)
    indices = torch.zeros(2, 7, 7, dtype=torch.int64)  # all 98 vectors chose code 0
    before = book.embedding.clone()
    book.update(z, indices, 0.5, 0.4)
    mean = z.permute(0, 2, 3, 1).reshape(-1, 8).mean(0)
    # code 0: usage 0.5·1 + 0.5·98, sum 0.5·e₀ + 0.5·Σz
    torch.testing.assert_close(book.embedding[0], (0.5 * before[0] + 0.5 * 98 * mean) / 49.5)
    # the others: usage 1 → 0.5, above 0.4: kept; a second idle step takes them to 0.25 < 0.4: restarted
    torch.testing.assert_close(book.embedding[1:], before[1:])
    book.update(z, indices, 0.5, 0.4)
    vectors = z.permute(0, 2, 3, 1).reshape(-1, 8)
    restarted = book.embedding[1:]
    assert all(torch.isclose(vectors, row).all(-1).any() for row in restarted), (
        "restarts land on batch vectors"
    )
    assert torch.allclose(book.usage[1:], torch.tensor(0.4))


def test_the_codebook_is_stored_once_and_shared_after_loading(tmp_path):
    model = aezoo.create("vqvae", **SMOKE)
    aezoo.save(model, tmp_path / "m.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m.safetensors"), "pt") as f:
        books = [k for k in f.keys() if k.endswith("codebook.embedding")]  # noqa: SIM118
    assert len(books) == 1
    loaded = aezoo.load(tmp_path / "m.safetensors")
    assert loaded.encoder.codebook is loaded.decoder.codebook
    assert torch.equal(loaded.codebook.embedding, model.codebook.embedding)


def test_training_learns_codes_that_reconstruct():
    """A hundred steps on blurry strokes: the reconstruction improves and most codes are used."""
    torch.manual_seed(0)
    model = aezoo.create("vqvae", **SMOKE).train()
    images = digits(64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for step in range(100):
        for update in model.training_step(images, images, step):
            optimizer.zero_grad()
            update.loss.backward()
            optimizer.step()
            first = first if first is not None else float(update.logs["bce"])
    model.eval()
    with torch.no_grad():
        metrics = model.evaluate(images, images)
        used = len(model.encode(images).unique())
    assert float(metrics["bce"]) < 0.5 * first
    assert used >= 16, f"only {used} of 32 codes in use"


def test_the_exported_decoder_takes_integer_codes(tmp_path):
    model = aezoo.create("vqvae", **SMOKE).eval()
    exported = aezoo.export(model, tmp_path / "onnx", real_inputs=digits(8), dtype="fp16", quantize="int8")
    code_in = exported.manifest["models"]["decoder"]["inputs"][0]
    assert code_in["dtype"] == "int64" and code_in["shape"] == ["batch", 7, 7] and code_in["classes"] == 32
    sampling = code_in["sampling"]
    assert sampling["kind"] == "indices" and sampling["classes"] == 32
    assert sampling["distribution"] == "empirical" and sampling["examples"] == 8
    assert sum(sampling["probabilities"]) == pytest.approx(1, abs=1e-6)
    assert exported.manifest["models"]["encoder"]["outputs"][0]["dtype"] == "int64"
    codes = exported.encoder(digits(4).numpy())["codes"]
    with torch.no_grad():
        assert np.array_equal(codes, model.encode(digits(4)).numpy())
        want = model.decode(torch.from_numpy(codes)).numpy()
    np.testing.assert_allclose(exported.decoder(codes)["image"], want, atol=1e-5)
    for variant in ("decoder.fp16", "decoder.int8"):
        np.testing.assert_allclose(exported.parts[variant](codes)["image"], want, atol=0.05)
    with pytest.raises(aezoo.AezooError, match="indices from 0 to 31, got values from 0 to 32"):
        exported.decoder(np.full((1, 7, 7), 32, dtype=np.int64) * (np.arange(49).reshape(1, 7, 7) > 0))


def test_without_training_data_a_code_grid_is_drawn_uniformly():
    from aezoo.onnx.codes import describe_code

    model = aezoo.create("vqvae", **SMOKE).eval()
    part = describe_code(model, model.export_parts()["decoder"], None, "")
    sampling = part.inputs[0].sampling
    assert sampling["kind"] == "indices" and sampling["classes"] == 32
    assert sampling["distribution"] == "uniform" and "probabilities" not in sampling


def test_the_pretrained_entry_holds_to_its_card():
    """vqvae:mnist comes from this distribution, and its card's figures are its weights' (on the first
    1,000 MNIST test digits, which the subset aezoo ships holds, so this runs offline)."""
    from aezoo import pretrained

    item = pretrained.entry("vqvae:mnist")
    assert item.distribution == "aezoo-vqvae"
    card = pretrained.card(item)
    assert card["metrics"]["full"]["bce"]["value"] <= 0.075
    assert (
        card["training"]["command"]
        == "aezoo train --config plugins/aezoo-vqvae/aezoo_vqvae/pretrained/mnist/recipe.toml"
    )
    [check] = pretrained.checks(card)
    measured = pretrained.measure(item, check)
    for key, recorded in check["metrics"].items():
        assert measured[key] == pytest.approx(recorded, rel=check["rtol"]), key
    model = aezoo.load("vqvae:mnist")
    assert model.hparams.codes == 512 and model.encoder.codebook is model.decoder.codebook


def test_the_recipe_replays(tmp_path):
    """The shipped recipe trains through aezoo's own trainer (two steps of it here; on the subset aezoo
    ships where the full MNIST is not in $AEZOO_DATA, hence --allow-other-data)."""
    from aezoo import pretrained

    recipe = pretrained.entry("vqvae:mnist").recipe
    out = tmp_path / "run"
    command = [sys.executable, "-m", "aezoo", "train", "--config", str(recipe), "--allow-other-data"]
    command += ["--max-steps", "2", "--limit-train", "32", "--limit-eval", "8", "--no-test", "--no-progress"]
    result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert aezoo.load(out).hparams == aezoo.load("vqvae:mnist").hparams


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (["interpolate", "vqvae:mnist", "{png}", "{png}"], "integer indices (chosen from a codebook)"),
        (["plot", "latent", "vqvae:mnist"], "7×7 integer indices (a codebook's)"),
        (["sample", "vqvae:mnist"], "no prior to sample from"),
    ],
)
def test_what_integer_codes_cannot_do_is_one_line(command, says, tmp_path, capsys, monkeypatch):
    """Commands that need float codes or a prior refuse a VQ-VAE in one line, exit status 2."""
    from PIL import Image

    from aezoo.cli import main

    Image.new("L", (28, 28)).save(tmp_path / "digit.png")
    monkeypatch.chdir(tmp_path)
    assert main([part.format(png=tmp_path / "digit.png") for part in command]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aezoo: error: ") and says in err and "\n" not in err
