"""Pretrained entries: lookup, loading (shipped file or URL downloaded once), cards and the commands."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import json
import threading
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import aezoo
import aezoo.plugins
from aezoo.errors import AezooError

TINY = {"hidden": (16,), "latent_dim": 2}
VAE_TINY = {"widths": (8, 16), "hidden": (32,), "latent_dim": 4}

CARD = """\
summary = "A tiny {arch} autoencoder, for the tests."
storage = "float16"
parameters = 1234

[dataset]
name = "mnist"
label = "MNIST digits"
description = "handwritten digits"
licence = "CC BY-SA 3.0"

[training]
command = "aezoo train {arch} --max-steps 3"
steps = 3

[metrics]
headline = "bce"

[metrics.full.bce]
label = "BCE"
value = 0.123456
unit = "nats"
command = "aezoo evaluate {arch}:tiny"

[check]
examples_text = "the first 64 test digits"
rtol = 0.01

[check.metrics]
bce = 0.1235
"""


class Entries:
    """A plugin registering pretrained entries, as a package would."""

    def __init__(self, items):
        self.items = items

    @aezoo.hookimpl
    def aezoo_register_pretrained(self, register):
        for item in self.items:
            register(item)


@pytest.fixture
def register():
    """``register(*entries)``: a plugin in code providing them; the registry is clean afterwards."""
    count = 0

    def add(*items: aezoo.Pretrained) -> None:
        nonlocal count
        count += 1
        aezoo.register_plugin(Entries(items), name=f"test-pretrained-{count}")

    yield add
    aezoo.plugins.reset()


def make_folder(folder: Path, arch: str = "dense", hparams: dict | None = None, seed: int = 0):
    """``folder/{model.safetensors, card.toml, recipe.toml}``: what a plugin ships for one entry."""
    torch.manual_seed(seed)
    model = aezoo.create(arch, **(hparams or TINY))
    recipe = {
        "architecture": arch,
        "hparams": model.hparams.to_dict(),
        "dataset": "mnist",
        "trainer": {"max_steps": 3, "seed": seed},
    }
    folder.mkdir(parents=True, exist_ok=True)
    aezoo.save(model, folder / "model.safetensors", recipe=recipe, dtype="float16")
    (folder / "card.toml").write_text(CARD.replace("{arch}", arch))
    (folder / "recipe.toml").write_text(f'architecture = "{arch}"\ndataset = "mnist"\n')
    return model


def one_error_line(code: int, err: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aezoo: error: "), err
    return lines[0]


# -- local entries -------------------------------------------------------------------------------


def test_a_local_entry_loads_by_name_with_fp16_storage(tmp_path, register):
    original = make_folder(tmp_path / "tiny")
    register(aezoo.Pretrained.from_folder("dense:tiny", tmp_path / "tiny"))
    assert "dense:tiny" in aezoo.list_pretrained() and aezoo.list_pretrained("dense:t*") == ["dense:tiny"]
    assert aezoo.list_pretrained("nothing:*") == []
    for model in (aezoo.load("dense:tiny"), aezoo.create("dense", pretrained="tiny")):
        assert model.architecture == "dense" and model.hparams == original.hparams
        assert not model.training
        for (name, got), want in zip(model.state_dict().items(), original.state_dict().values(), strict=True):
            assert got.dtype == torch.float32, name
            assert got.equal(want.half().float()), name
    with safe_open(str(tmp_path / "tiny" / "model.safetensors"), framework="pt") as f:
        metadata = f.metadata()
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())  # noqa: SIM118
    assert metadata["aezoo.storage_dtype"] == "float16" and metadata["aezoo.distribution"] == "aezoo"
    assert json.loads(metadata["aezoo.recipe"])["trainer"] == {"max_steps": 3, "seed": 0}
    with pytest.raises(AezooError, match="comes with its own hyperparameters; drop latent_dim"):
        aezoo.create("dense", pretrained="tiny", latent_dim=3)


def test_pretrained_lists_entries_and_info_prints_card_and_recipe(tmp_path, register, cli):
    make_folder(tmp_path / "tiny")
    register(aezoo.Pretrained.from_folder("dense:tiny", tmp_path / "tiny"))
    code, out, err = cli("pretrained")
    assert code == 0, err
    row = next(line for line in out.splitlines() if line.startswith("dense:tiny "))
    assert row.split()[:4] == ["dense:tiny", "dense", "MNIST", "digits"]
    assert " MB " in row and row.endswith("BCE 0.1235 nats")
    assert "headline" in out.splitlines()[0]
    code, _, err = cli("pretrained", "nothing:*")
    assert code == 1 and "no pretrained model matches 'nothing:*'" in err

    code, out, err = cli("info", "dense:tiny")
    assert code == 0, err
    assert out.startswith("dense:tiny: A tiny dense autoencoder, for the tests.\n")
    assert f"weights: {tmp_path / 'tiny' / 'model.safetensors'} (" in out and "float16)" in out
    assert "dataset: mnist — handwritten digits" in out and "licence: CC BY-SA 3.0" in out
    assert "command: aezoo train dense --max-steps 3" in out
    assert f"recipe: {tmp_path / 'tiny' / 'recipe.toml'}" in out
    assert "BCE: 0.123456 nats" in out
    assert "checked by the test suite on the first 64 test digits:" in out
    assert "bce: 0.1235 (within 0.01 relative)" in out
    code, out, _ = cli("info", "dense")
    assert code == 0 and "pretrained: dense:mnist, dense:tiny" in out

    code, out, err = cli("info", tmp_path / "tiny" / "model.safetensors")
    assert code == 0, err
    assert "a 'dense' model saved by aezoo" in out and "stored as: float16" in out
    assert "architecture from: aezoo" in out
    recipe = json.loads(out.split("recipe:\n", 1)[1])
    assert recipe["architecture"] == "dense" and recipe["hparams"]["hidden"] == [16]


def test_sample_and_reconstruct_write_into_the_current_folder(tmp_path, register, cli):
    make_folder(tmp_path / "vae", "vae", VAE_TINY)
    make_folder(tmp_path / "dense")
    register(
        aezoo.Pretrained.from_folder("vae:tiny", tmp_path / "vae"),
        aezoo.Pretrained.from_folder("dense:tiny", tmp_path / "dense"),
    )
    shipped = {
        path: sorted(p.name for p in path.iterdir()) for path in (tmp_path / "vae", tmp_path / "dense")
    }
    code, out, err = cli("sample", "vae:tiny", "-n", "4")
    assert code == 0, err
    assert out.strip() == "vae-tiny-samples.png" and (cli.cwd / "vae-tiny-samples.png").is_file()
    code, out, err = cli("reconstruct", "dense:tiny", "-n", "4")
    assert code == 0, err
    assert out.strip() == "dense-tiny-reconstructions-test.png"
    assert (cli.cwd / "dense-tiny-reconstructions-test.png").is_file()
    assert {path: sorted(p.name for p in path.iterdir()) for path in shipped} == shipped
    code, out, err = cli("sample", "dense:tiny")
    assert code == 2 and "Traceback" not in err  # a plain autoencoder has no prior


def test_a_weights_file_writes_into_the_current_folder_too(tmp_path, cli):
    folder = tmp_path / "weights"
    folder.mkdir()
    aezoo.save(aezoo.create("vae", **VAE_TINY), folder / "vae.v2.safetensors")
    code, out, err = cli("sample", folder / "vae.v2.safetensors", "-n", "4")
    assert code == 0, err
    assert out.strip() == "vae-v2-samples.png"  # not vae.png: the dot is no suffix
    assert sorted(p.name for p in cli.cwd.iterdir()) == ["vae-v2-samples.png"]
    assert sorted(p.name for p in folder.iterdir()) == ["vae.v2.safetensors"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["info", "dense:tinny"], "no pretrained model 'dense:tinny'; did you mean 'dense:tiny'"),
        (["sample", "dense:tinny"], "did you mean 'dense:tiny'"),
        (["reconstruct", "dense:tiny2"], "did you mean 'dense:tiny'"),
        (["info", "conv:qqqqqqqqqq"], "no pretrained model 'conv:qqqqqqqqqq'; `aezoo pretrained` lists them all"),
        (["sample", "pixelcnn:mnist"], "no architecture 'pixelcnn' is installed"),
        (["info", "qwerty:mnist"], "no architecture 'qwerty' is installed; install the plugin that provides it"),
        (["train", "--resume", "dense:tiny"], "dense:tiny is a pretrained model, not a run folder: it has no training history"),
        (["plot", "curves", "dense:tiny"], "dense:tiny is a pretrained model, not a run folder"),
    ],
)  # fmt: skip
def test_name_mistakes_are_one_line(tmp_path, register, cli, args, message):
    make_folder(tmp_path / "tiny")
    register(aezoo.Pretrained.from_folder("dense:tiny", tmp_path / "tiny"))
    code, out, err = cli(*args)
    line = one_error_line(code, err)
    assert message in line
    assert out == "" and not any(cli.cwd.iterdir())


def test_an_entry_whose_architecture_is_missing_says_so(tmp_path, register):
    make_folder(tmp_path / "tiny")
    register(aezoo.Pretrained.from_folder("pixelcnn:tiny", tmp_path / "tiny"))
    with pytest.raises(
        AezooError, match="pixelcnn:tiny needs the 'pixelcnn' architecture, which is not installed"
    ):
        aezoo.load("pixelcnn:tiny")


def test_a_shipped_file_is_checked_against_its_sha256(tmp_path, register):
    make_folder(tmp_path / "tiny")
    weights = tmp_path / "tiny" / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    register(
        aezoo.Pretrained.from_folder("dense:good", tmp_path / "tiny", sha256=digest),
        aezoo.Pretrained.from_folder("dense:bad", tmp_path / "tiny", sha256="0" * 64),
        aezoo.Pretrained("dense:gone", tmp_path / "nothing.safetensors", tmp_path / "tiny" / "card.toml"),
    )
    assert aezoo.load("dense:good").architecture == "dense"
    with pytest.raises(AezooError, match="does not match its sha256"):
        aezoo.load("dense:bad")
    with pytest.raises(AezooError, match=r"its weights .* are missing"):
        aezoo.load("dense:gone")


# -- entries at a URL ----------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serving(folder: Path):
    """An HTTP server on 127.0.0.1 for ``folder``; yields its base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    path = tmp_path / "cache"
    monkeypatch.setenv("AEZOO_PRETRAINED_CACHE", str(path))
    monkeypatch.delenv("AEZOO_OFFLINE", raising=False)
    return path


def test_a_url_entry_is_downloaded_once_then_loads_offline(tmp_path, register, cache, monkeypatch, cli):
    original = make_folder(tmp_path / "served")
    weights = tmp_path / "served" / "model.safetensors"
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    with serving(tmp_path / "served") as base:
        register(
            aezoo.Pretrained(
                "dense:remote", f"{base}/model.safetensors", tmp_path / "served" / "card.toml", sha256=digest
            )
        )
        code, out, _ = cli("pretrained")
        assert code == 0 and "download" in next(
            ln for ln in out.splitlines() if ln.startswith("dense:remote")
        )
        first = aezoo.load("dense:remote")
    assert sorted(p.name for p in cache.iterdir()) == [f"{digest}.safetensors"]
    assert (cache / f"{digest}.safetensors").read_bytes() == weights.read_bytes()
    monkeypatch.setenv("AEZOO_OFFLINE", "1")  # and the server is gone
    second = aezoo.load("dense:remote")
    for got, again, want in zip(
        first.state_dict().values(), second.state_dict().values(), original.state_dict().values(), strict=True
    ):
        assert got.equal(want.half().float()) and again.equal(got)
    code, out, err = cli("reconstruct", "dense:remote", "-n", "2")  # into the current folder, not the cache
    assert code == 0, err
    assert out.strip() == "dense-remote-reconstructions-test.png"
    assert (cli.cwd / "dense-remote-reconstructions-test.png").is_file()
    assert sorted(p.name for p in cache.iterdir()) == [f"{digest}.safetensors"]


def test_a_download_with_the_wrong_sha256_is_not_kept(tmp_path, register, cache):
    make_folder(tmp_path / "served")
    with serving(tmp_path / "served") as base:
        register(
            aezoo.Pretrained("dense:bad", f"{base}/model.safetensors", tmp_path / "served" / "card.toml", sha256="a" * 64),
            aezoo.Pretrained("dense:gone", f"{base}/nothing.safetensors", tmp_path / "served" / "card.toml", sha256="b" * 64),
        )  # fmt: skip
        with pytest.raises(
            AezooError, match=r"dense:bad: the file downloaded from .* has sha256 .*it was not kept"
        ):
            aezoo.load("dense:bad")
        with pytest.raises(AezooError, match=r"dense:gone: could not download .*nothing.safetensors"):
            aezoo.load("dense:gone")
    assert not cache.exists() or list(cache.iterdir()) == []  # nor any temporary file


def test_a_server_that_does_not_speak_http_is_one_line(tmp_path, register, cache, cli):
    import socket

    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with contextlib.suppress(OSError):
            connection, _ = listener.accept()
            with connection:
                connection.recv(4096)
                connection.sendall(b"garbage\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    make_folder(tmp_path / "served")
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/model.safetensors"
    register(aezoo.Pretrained("dense:odd", url, tmp_path / "served" / "card.toml", sha256="d" * 64))
    try:
        line = one_error_line(*cli("reconstruct", "dense:odd")[::2])
    finally:
        listener.close()
        thread.join(timeout=10)
    assert f"dense:odd: could not download {url} (garbage)" in line
    assert not cache.exists() or list(cache.iterdir()) == []


def test_offline_with_nothing_cached_is_a_clear_error(tmp_path, register, cache, monkeypatch, cli):
    make_folder(tmp_path / "served")
    register(
        aezoo.Pretrained(
            "dense:remote",
            "http://127.0.0.1:9/model.safetensors",
            tmp_path / "served" / "card.toml",
            sha256="c" * 64,
        )
    )
    monkeypatch.setenv("AEZOO_OFFLINE", "1")
    with pytest.raises(AezooError, match="dense:remote is not downloaded yet and AEZOO_OFFLINE is set"):
        aezoo.load("dense:remote")
    line = one_error_line(*cli("sample", "dense:remote")[::2])
    assert "AEZOO_OFFLINE is set" in line
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.parametrize("sha256", [None, "", "A" * 64, "0" * 63, "g" * 64])
def test_a_url_entry_needs_its_sha256(sha256):
    with pytest.raises(ValueError, match="weights from a URL need their sha256"):
        aezoo.Pretrained("dense:remote", "https://example.org/model.safetensors", "card.toml", sha256=sha256)


@pytest.mark.parametrize("name", ["dense", "Dense:tiny", "dense:", ":tiny", "dense:ti ny", "dense:-x"])
def test_a_pretrained_name_is_arch_colon_tag(name):
    with pytest.raises(ValueError, match="must be ARCH:TAG"):
        aezoo.Pretrained(name, "model.safetensors", "card.toml")


# -- a file whose architecture's plugin is missing -----------------------------------------------


def test_a_file_from_a_missing_plugin_names_the_distribution_to_install(tmp_path, cli):
    path = tmp_path / "pixelcnn.safetensors"
    aezoo.save(aezoo.create("dense", **TINY), path)
    with safe_open(str(path), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    metadata.update({"aezoo.architecture": "pixelcnn", "aezoo.distribution": "aezoo-pixelcnn"})
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(
        AezooError, match=r"from the 'aezoo-pixelcnn' distribution.*: pip install aezoo-pixelcnn$"
    ):
        aezoo.load(path)
    line = one_error_line(*cli("sample", path)[::2])
    assert line.endswith("pip install aezoo-pixelcnn")
    code, out, _ = cli("info", path)
    assert code == 0 and "a 'pixelcnn' model" in out and "architecture from: aezoo-pixelcnn" in out
