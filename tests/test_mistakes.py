"""User mistakes, one table: each row is a command (or a Python API call) a user gets wrong, the exit
status it must end with and a fragment of the one line that must say why. Every row is checked for
exactly one line on stderr, no traceback, and nothing changed on disk (every file's bytes before and
after). Most rows run in this process through ``aezoo.cli.main``; a few run as the user runs them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open
from safetensors.torch import save_file

import aezoo
from aezoo.errors import AezooError
from tests.conftest import REPO, data_dir

TINY = {"hidden": (16,), "latent_dim": 4}


@dataclasses.dataclass(frozen=True)
class World:
    """What the mistakes are made with: a tiny trained run, its export, and crafted files."""

    root: Path
    run: Path
    export: Path

    def __truediv__(self, name: str) -> Path:
        return self.root / name


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    from aezoo.trainer import TrainConfig

    root = data_dir()
    if root is None:
        pytest.skip("full MNIST not found: set AEZOO_DATA to a folder holding MNIST/raw")
    os.environ.setdefault("AEZOO_DATA", str(root))
    base = tmp_path_factory.mktemp("mistakes")
    config = TrainConfig(
        max_steps=2, batch_size=16, limit_train=32, limit_eval=16, device="cpu", evaluate_test=False
    )
    run = aezoo.train("dense", hparams=TINY, config=config, out=base / "run", progress=False).path
    export = aezoo.export(run, base / "export").path
    _craft_files(base, run)
    return World(base, run, export)


def _craft_files(base: Path, run: Path) -> None:
    """Weights files, images and recipes as users (or attackers) make them."""
    model_file = run / "model.safetensors"
    with safe_open(str(model_file), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    hparams = json.loads(metadata["aezoo.hparams"])

    def weights(name: str, meta: dict[str, str], values: dict[str, Any] | None = None) -> None:
        save_file(values if values is not None else tensors, str(base / name), metadata=meta)

    weights("huge.safetensors", {**metadata, "aezoo.hparams": json.dumps({**hparams, "hidden": [10**7] * 3})})
    weights(
        "overflow.safetensors", {**metadata, "aezoo.hparams": json.dumps({**hparams, "hidden": [10**21]})}
    )
    weights("deep.safetensors", {**metadata, "aezoo.hparams": json.dumps({**hparams, "hidden": [1] * 10**5})})
    weights(
        "recipe-list-dataset.safetensors", {**metadata, "aezoo.recipe": json.dumps({"dataset": ["mnist"]})}
    )
    weights("recipe-text-trainer.safetensors", {**metadata, "aezoo.recipe": json.dumps({"trainer": "fast"})})
    weights("wider.safetensors", {**metadata, "aezoo.hparams": json.dumps({**hparams, "hidden": [20000]})})
    weights("badjson.safetensors", {**metadata, "aezoo.hparams": "{latent_dim: 4"})
    weights("range.safetensors", {**metadata, "aezoo.hparams": json.dumps({**hparams, "latent_dim": -1})})
    weights(
        "unknown-arch.safetensors", {**metadata, "aezoo.architecture": "nosuch", "aezoo.distribution": ""}
    )
    weights("newer.safetensors", {**metadata, "aezoo.format": "99"})
    weights("nometa.safetensors", {}, tensors)
    weights("extra.safetensors", metadata, {**tensors, "spare": tensors[next(iter(tensors))].clone()})
    data = model_file.read_bytes()
    (base / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (base / "garbage.safetensors").write_bytes(os.urandom(4096))
    (base / "empty.safetensors").write_bytes(b"")
    (base / "notes.txt").write_text("not weights\n")
    (base / "notimage.png").write_text("not an image\n")
    (base / "a-folder.png").mkdir()
    _png(base / "huge.png", 100_000, 100_000)  # 10^10 pixels claimed by a 70-byte file
    _png(base / "big.png", 9_000, 9_000)  # over aezoo's limit, under PIL's
    _png(base / "digit.png", 28, 28)
    recipes = {
        "bad.toml": "architecture = \n",
        "unknown-key.toml": 'architecture = "dense"\nepochs = 3\n',
        "bad-value.toml": 'architecture = "dense"\n[hparams]\nlatent_dim = "x"\n',
        "out-of-range.toml": 'architecture = "dense"\n[hparams]\nlatent_dim = 0\n',
        "no-arch.toml": 'dataset = "mnist"\n',
        "nosuch-arch.toml": 'architecture = "nosuch"\n',
        "bad-trainer.toml": 'architecture = "dense"\n[trainer]\nlr = -1\n',
        "huge-model.toml": 'architecture = "dense"\n[hparams]\nhidden = [100000, 100000, 100000]\n',
        "list.json": "[1, 2]\n",
        "binary.toml": "\udcff",
    }
    for name, text in recipes.items():
        (base / name).write_bytes(text.encode("utf-8", "surrogateescape"))
    (base / "large.toml").write_text("# padding\n" * 200_000)


def _png(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims ``width``×``height`` (its pixels are one grey pixel's)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    chunk = b"IHDR" + struct.pack(">II", width, height) + bytes(data[24:29])
    data[8:33] = struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    path.write_bytes(bytes(data))


def _edited_export(w: World, tmp: Path, change: Callable[[dict[str, Any], Path], Any]) -> Path:
    """A copy of the export with its manifest (or a file) changed by ``change(manifest, folder)``."""
    folder = tmp / "export"
    shutil.copytree(w.export, folder)
    path = folder / "aezoo-export.json"
    manifest = json.loads(path.read_text())
    text = change(manifest, folder)
    path.write_text(text if isinstance(text, str) else json.dumps(manifest))
    return folder


def _symlink_out(manifest: dict[str, Any], folder: Path) -> None:
    outside = folder.parent / "outside.onnx"
    shutil.copy(folder / "decoder.onnx", outside)
    (folder / "decoder.onnx").unlink()
    (folder / "decoder.onnx").symlink_to(outside)


def _folder_for_encoder(manifest: dict[str, Any], folder: Path) -> None:
    (folder / "encoder.onnx").unlink()
    (folder / "encoder.onnx").mkdir()


def _swap(manifest: dict[str, Any], folder: Path) -> None:
    (folder / "encoder.onnx").write_bytes((folder / "decoder.onnx").read_bytes())


def _restamp(manifest: dict[str, Any], folder: Path) -> None:
    """The encoder changed where its numbers do not show: its metadata."""
    import onnx

    proto = onnx.load(str(folder / "encoder.onnx"))
    proto.metadata_props.add(key="edited", value="by hand")
    onnx.save(proto, str(folder / "encoder.onnx"))


def _existing(kind: str) -> Callable[[World, Path], list[str]]:
    """``aezoo export RUN --out DIR`` where DIR already holds something."""

    def setup(w: World, tmp: Path) -> list[str]:
        out = tmp / "out"
        if kind == "file":
            out.write_text("mine\n")
        elif kind == "export":
            shutil.copytree(w.export, out)
        elif kind == "export+mine":
            shutil.copytree(w.export, out)
            (out / "notes.txt").write_text("mine\n")
        elif kind == "export+folder":
            shutil.copytree(w.export, out)
            (out / "encoder.onnx").unlink()
            (out / "encoder.onnx").mkdir()
            (out / "encoder.onnx" / "mine.txt").write_text("mine\n")
        else:
            out.mkdir()
            (out / "notes.txt").write_text("mine\n")
        return ["export", str(w.run), "--out", str(out), *(["--force"] if kind.startswith("export+") else [])]

    return setup


Args = list[str] | Callable[[World, Path], list[str]]


@dataclasses.dataclass(frozen=True)
class Mistake:
    name: str
    args: Args
    status: int
    message: str


def row(name: str, args: Args, message: str, status: int = 2) -> Any:
    return pytest.param(Mistake(name, args, status, message), id=name)


def run_(w: World, *rest: str) -> Callable[[World, Path], list[str]]:
    return lambda w, tmp: [*rest]


def on_run(command: str, *rest: str) -> Callable[[World, Path], list[str]]:
    return lambda w, tmp: [command, str(w.run), *rest]


def on_file(command: str, name: str, *rest: str) -> Callable[[World, Path], list[str]]:
    return lambda w, tmp: [command, str(w / name), *rest]


def on_export(command: str, *rest: str) -> Callable[[World, Path], list[str]]:
    return lambda w, tmp: [command, str(w.export), *rest]


def verify_edited(
    change: Callable[[dict[str, Any], Path], Any], *rest: str
) -> Callable[[World, Path], list[str]]:
    return lambda w, tmp: ["verify", str(_edited_export(w, tmp, change)), "--weights", str(w.run), *rest]


def train_recipe(name: str, *rest: str) -> Callable[[World, Path], list[str]]:
    return lambda w, tmp: ["train", "--config", str(w / name), "--out", str(tmp / "new-run"), *rest]


def train_new(*rest: str) -> Callable[[World, Path], list[str]]:
    return lambda w, tmp: ["train", *rest, "--out", str(tmp / "new-run"), "--no-progress"]


CLI_MISTAKES = [
    # -- names --------------------------------------------------------------------------------------
    row("misspelt-architecture", train_new("dnese"), "did you mean 'dense'?"),
    row("unknown-architecture", train_new("nosuch"), "no architecture 'nosuch'"),
    row("info-unknown-name", ["info", "nosuch"], "no architecture 'nosuch'"),
    row("info-misspelt-pretrained", ["info", "vae:mnsit"], "no pretrained model 'vae:mnsit'"),
    row("unknown-pretrained", ["evaluate", "vae:nosuch"], "no pretrained model 'vae:nosuch'"),
    row("pretrained-of-unknown-arch", ["sample", "nosuch:mnist"], "no architecture 'nosuch' is installed"),
    row("export-unknown-pretrained", ["export", "dense:nosuch"], "no pretrained model 'dense:nosuch'"),
    row("misspelt-dataset", train_new("dense", "--dataset", "minst"), "did you mean 'mnist'?"),
    row("misspelt-optimizer", train_new("dense", "--optimizer", "adm"), "'optimizer' must be one of"),
    row("unknown-callback", train_new("dense", "--callback", "nosuch"), "nosuch"),
    row("list-matches-nothing", ["list", "zzz*"], "no architecture matches 'zzz*'", 1),
    row("pretrained-matches-nothing", ["pretrained", "zzz*"], "no pretrained model matches 'zzz*'", 1),
    row("nothing-to-train", ["train"], "name an architecture to train"),
    # -- values -------------------------------------------------------------------------------------
    row("set-below-range", train_new("dense", "--set", "latent_dim=0"), "'latent_dim' must be"),
    row("set-without-value", train_new("dense", "--set", "latent_dim"), "needs a value"),
    row("set-unknown-key", train_new("dense", "--set", "latnet_dim=3"), "did you mean 'latent_dim'?"),
    row("set-wrong-type", train_new("dense", "--set", "hidden=a,b"), "'hidden' must be list of int"),
    row("set-not-a-number", train_new("dense", "--set", "latent_dim=nan"), "'latent_dim' must be int"),
    row(
        "set-model-too-big",
        train_new("dense", "--set", "hidden=100000,100000,100000"),
        "more than this machine's",
    ),
    row(
        "set-overflowing-int", train_new("dense", "--set", "hidden=" + "9" * 21), "cannot be built from these"
    ),
    row(
        "set-too-many-values",
        train_new("dense", "--set", "hidden=" + ",".join(["1"] * 2000)),
        "at most 1,024",
    ),
    row("negative-lr", train_new("dense", "--lr", "-1"), "'lr' must be"),
    row("nan-lr", train_new("dense", "--lr", "nan"), "'lr' must be a number, got nan"),
    row("infinite-lr", train_new("dense", "--lr", "inf"), "'lr' must be a finite number, got inf"),
    row("zero-epochs", train_new("dense", "--epochs", "0"), "'epochs' must be >= 1"),
    row("zero-batch", train_new("dense", "--batch-size", "0"), "'batch_size' must be >= 1"),
    row("bad-early-stop", train_new("dense", "--early-stop", "loss"), "early_stop"),
    row("bad-device", train_new("dense", "--device", "gpu7"), "'device' must be auto, cpu, cuda"),
    row("other-data-without-config", train_new("dense", "--allow-other-data"), "goes with --config"),
    row("sample-zero", on_run("sample", "-n", "0"), "-n must be between 1 and"),
    row(
        "sample-zero-temperature", on_run("sample", "--temperature", "0"), "--temperature must be a positive"
    ),
    row(
        "sample-nan-temperature", on_run("sample", "--temperature", "nan"), "--temperature must be a positive"
    ),
    row(
        "interpolate-one-step",
        lambda w, tmp: [
            "interpolate",
            str(w.run),
            str(w / "digit.png"),
            str(w / "digit.png"),
            "--steps",
            "1",
        ],
        "--steps must be between 2",
    ),
    row(
        "manifold-one-step",
        lambda w, tmp: ["plot", "manifold", str(w.run), "--steps", "1"],
        "--steps must be between 2",
    ),
    row(
        "manifold-bad-dims",
        lambda w, tmp: ["plot", "manifold", str(w.run), "--dims", "x"],
        "--dims takes two",
    ),
    row("samples-without-nll", on_run("evaluate", "--samples", "5"), "add --nll"),
    row("evaluate-zero-limit", on_run("evaluate", "--limit", "0"), "--limit must be at least 1"),
    row("evaluate-unknown-split", on_run("evaluate", "--split", "nosuch", "--limit", "4"), "nosuch"),
    row("reconstruct-zero", on_run("reconstruct", "-n", "0"), "-n must be between 1 and"),
    row("export-bad-opset", on_run("export", "--opset", "3"), "--opset must be between"),
    row("export-bad-dtype", on_run("export", "--dtype", "bf16"), "--dtype must be one of fp32, fp16"),
    row("export-bad-quantize", on_run("export", "--quantize", "int4"), "--quantize must be one of int8"),
    row("export-zero-atol", on_run("export", "--atol", "0"), "--atol must be positive"),
    row(
        "verify-negative-atol",
        lambda w, tmp: ["verify", str(w.export), "--weights", str(w.run), "--atol", "-1"],
        "--atol must be positive",
    ),
    row("verify-unknown-runtime", on_export("verify", "--runtime", "nosuch"), "--runtime must be one of"),
    row("serve-bad-port", on_export("serve", "--port", "70000"), "--port must be between 0 and 65535"),
    # -- resuming -----------------------------------------------------------------------------------
    row(
        "resume-with-set",
        lambda w, tmp: ["train", "--resume", str(w.run), "--set", "latent_dim=3"],
        "drop --set",
    ),
    row("resume-missing-run", ["train", "--resume", "no/such/run"], "is not a run folder"),
    row(
        "resume-weights-file",
        lambda w, tmp: ["train", "--resume", str(w.run / "model.safetensors")],
        "is a weights file, not a run folder",
    ),
    row("resume-pretrained", ["train", "--resume", "vae:mnist"], "is a pretrained model, not a run folder"),
    row(
        "resume-wrong-architecture",
        lambda w, tmp: ["train", "vae", "--resume", str(w.run)],
        "is a 'dense' run, not 'vae'",
    ),
    row(
        "curves-of-weights-file",
        lambda w, tmp: ["plot", "curves", str(w.run / "model.safetensors")],
        "is a weights file, not a run folder",
    ),
    row(
        "train-into-a-run",
        lambda w, tmp: ["train", "dense", "--out", str(w.run)],
        "already exists and is not empty",
    ),
    # -- weights files ------------------------------------------------------------------------------
    row("missing-weights", on_file("evaluate", "nosuch.safetensors"), "does not exist"),
    row("garbage-weights", on_file("evaluate", "garbage.safetensors"), "is not a readable safetensors file"),
    row(
        "truncated-weights", on_file("sample", "truncated.safetensors"), "is not a readable safetensors file"
    ),
    row("empty-weights", on_file("sample", "empty.safetensors"), "is not a readable safetensors file"),
    row("weights-without-metadata", on_file("sample", "nometa.safetensors"), "without aezoo metadata"),
    row("weights-claiming-huge-model", on_file("sample", "huge.safetensors"), "more than this machine's"),
    row(
        "weights-claiming-wider-model", on_file("sample", "wider.safetensors"), "weights do not fit a 'dense'"
    ),
    row("weights-with-extra-tensor", on_file("sample", "extra.safetensors"), "unexpected tensor 'spare'"),
    row("weights-claiming-overflow", on_file("sample", "overflow.safetensors"), "cannot be built from these"),
    row("weights-claiming-100k-layers", on_file("sample", "deep.safetensors"), "holds at most 1,024 values"),
    row(
        "weights-recipe-bad-dataset",
        on_file("evaluate", "recipe-list-dataset.safetensors"),
        "its dataset is ['mnist']",
    ),
    row("weights-recipe-bad-trainer", on_file("evaluate", "recipe-text-trainer.safetensors"), "not a table"),
    row("weights-bad-hparams-json", on_file("sample", "badjson.safetensors"), "is not valid JSON"),
    row("weights-hparam-out-of-range", on_file("sample", "range.safetensors"), "'latent_dim' must be"),
    row(
        "weights-unknown-architecture",
        on_file("sample", "unknown-arch.safetensors"),
        "holds a 'nosuch' model",
    ),
    row("weights-newer-format", on_file("sample", "newer.safetensors"), "upgrade aezoo"),
    row("info-garbage-weights", on_file("info", "garbage.safetensors"), "is not a readable safetensors file"),
    row("text-file-as-weights", on_file("sample", "notes.txt"), "is not a weights file"),
    row(
        "output-inside-a-file",
        lambda w, tmp: ["reconstruct", str(w.run), "-o", str(w / "notes.txt" / "x.png")],
        "notes.txt is a file, not a folder",
    ),
    row("info-folder-without-weights", on_file("info", "a-folder.png"), "model.safetensors does not exist"),
    row("config-as-weights", lambda w, tmp: ["sample", str(w.run / "config.json")], "is a run's config"),
    row("folder-without-run", lambda w, tmp: ["sample", str(w / "a-folder.png")], "is not a run folder"),
    row("export-garbage-weights", on_file("export", "garbage.safetensors"), "is not a readable safetensors"),
    # -- images -------------------------------------------------------------------------------------
    row("image-not-an-image", on_run("reconstruct", "IMG", "--out", "x.png"), "is not an image PIL can read"),
    row("image-missing", on_run("reconstruct", "nosuch.png", "--out", "x.png"), "nosuch.png does not exist"),
    row(
        "image-decompression-bomb",
        lambda w, tmp: ["reconstruct", str(w.run), str(w / "huge.png"), "--out", str(tmp / "x.png")],
        "is too large to decode",
    ),
    row(
        "image-too-many-pixels",
        lambda w, tmp: ["reconstruct", str(w.run), str(w / "big.png"), "--out", str(tmp / "x.png")],
        "more than aezoo decodes",
    ),
    row(
        "image-is-a-folder",
        lambda w, tmp: ["interpolate", str(w.run), str(w / "a-folder.png"), str(w / "digit.png")],
        "is a folder; give an image file",
    ),
    row(
        "upscale-decompression-bomb",
        lambda w, tmp: ["upscale", "superres:t91-x2", str(w / "huge.png"), "-o", str(tmp / "x.png")],
        "is too large to decode",
    ),
    row(
        "upscale-not-an-image",
        lambda w, tmp: ["upscale", "superres:t91-x2", str(w / "notimage.png"), "-o", str(tmp / "x.png")],
        "is not an image PIL can read",
    ),
    # -- recipes ------------------------------------------------------------------------------------
    row("recipe-missing", train_recipe("nosuch.toml"), "does not exist; give a recipe file"),
    row("recipe-is-a-folder", lambda w, tmp: ["train", "--config", str(w.run)], "is a folder"),
    row("recipe-bad-toml", train_recipe("bad.toml"), "is not valid TOML"),
    row("recipe-not-utf8", train_recipe("binary.toml"), "is not valid TOML"),
    row("recipe-unknown-key", train_recipe("unknown-key.toml"), "trainer settings go in its [trainer] table"),
    row(
        "recipe-bad-value",
        train_recipe("bad-value.toml"),
        "[hparams] hyperparameter 'latent_dim' must be int",
    ),
    row("recipe-out-of-range", train_recipe("out-of-range.toml"), "'latent_dim' must be"),
    row("recipe-no-architecture", train_recipe("no-arch.toml"), "no 'architecture'"),
    row("recipe-unknown-architecture", train_recipe("nosuch-arch.toml"), "no architecture 'nosuch'"),
    row("recipe-bad-trainer", train_recipe("bad-trainer.toml"), "[trainer]"),
    row("recipe-model-too-big", train_recipe("huge-model.toml"), "more than this machine's"),
    row("recipe-not-a-table", train_recipe("list.json"), "a recipe is a table of settings"),
    row("recipe-too-large", train_recipe("large.toml"), "too large to be a recipe"),
    row("recipe-other-architecture", train_recipe("out-of-range.toml", "vae"), "trains 'dense', not 'vae'"),
    # -- export folders -----------------------------------------------------------------------------
    row("verify-a-run-folder", lambda w, tmp: ["verify", str(w.run)], "is not an aezoo export"),
    row("verify-missing-folder", ["verify", "no/such/export"], "is not an aezoo export"),
    row(
        "manifest-names-parent",
        verify_edited(lambda m, f: m["models"]["decoder"].update(file="../x.onnx")),
        "schema at models/decoder/file",
    ),
    row(
        "manifest-names-absolute",
        verify_edited(lambda m, f: m["models"]["decoder"].update(file="/etc/x.onnx")),
        "schema at models/decoder/file",
    ),
    row(
        "manifest-without-sha256",
        verify_edited(lambda m, f: m["models"]["encoder"].pop("sha256") and None),
        "'sha256' is a required property",
    ),
    row(
        "serve-manifest-names-parent",
        lambda w, tmp: [
            "serve",
            str(_edited_export(w, tmp, lambda m, f: m["models"]["decoder"].update(file="../x.onnx"))),
            "--port",
            "0",
        ],
        "schema at models/decoder/file",
    ),
    row(
        "serve-a-folder",
        lambda w, tmp: ["serve", str(w / "a-folder.png"), "--port", "0"],
        "is neither an export",
    ),
    row("manifest-not-json", verify_edited(lambda m, f: "{not json"), "is not valid JSON"),
    row("manifest-newer", verify_edited(lambda m, f: m.update(format="aezoo-export/9")), "upgrade aezoo"),
    row("export-symlink-out", verify_edited(_symlink_out), "symbolic link leading out of the export folder"),
    row("export-modified-file", verify_edited(_restamp), "does not match the manifest's sha256", 1),
    row(
        "export-part-is-a-folder",
        verify_edited(_folder_for_encoder),
        "encoder.onnx is missing or not a file",
        1,
    ),
    row("export-into-a-file", _existing("file"), "exists and is not a folder"),
    row("export-into-a-foreign-folder", _existing("folder"), "exists and is not an aezoo export"),
    row("export-over-an-export", _existing("export"), "pass --force"),
    row("export-force-over-your-folder", _existing("export+folder"), "files it did not write (encoder.onnx)"),
    row("export-force-over-your-files", _existing("export+mine"), "files it did not write (notes.txt)"),
]


def _image_args(args: list[str], w: World) -> list[str]:
    return [str(w / "notimage.png") if a == "IMG" else a for a in args]


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under ``folders`` (symlinks as their target) and its bytes' hash."""
    found: dict[str, str] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            key = str(path)
            if path.is_symlink():
                found[key] = "-> " + os.readlink(path)
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                found[key] = "folder"
    return found


@pytest.mark.parametrize("mistake", CLI_MISTAKES)
def test_a_mistake_on_the_command_line_is_one_line(mistake: Mistake, world: World, cli, tmp_path, recwarn):
    args = mistake.args(world, tmp_path) if callable(mistake.args) else list(mistake.args)
    args = _image_args(args, world)
    before = snapshot(world.root, tmp_path, cli.cwd)
    status, _, err = cli(*args)
    assert status == mistake.status, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    if status == 2:
        assert lines[0].startswith("aezoo: error: "), lines[0]
    assert mistake.message in lines[0], lines[0]
    assert snapshot(world.root, tmp_path, cli.cwd) == before  # nothing written, nothing damaged
    assert not [w for w in recwarn if issubclass(w.category, (DeprecationWarning, FutureWarning))]


def test_a_second_writer_of_a_run_is_refused_naming_the_first(world, cli):
    from aezoo.runlock import RunLock

    with RunLock(world.run):  # as a training still writing it holds it
        before = snapshot(world.root)
        status, _, err = cli("train", "--resume", str(world.run), "--no-progress")
        assert snapshot(world.root) == before
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"is being written by another aezoo process (PID {os.getpid()})" in err


def test_info_never_sends_a_files_control_characters_to_the_terminal(world, cli, tmp_path):
    crafted = tmp_path / "escapes.safetensors"
    with safe_open(str(world.run / "model.safetensors"), framework="pt") as f:
        metadata = {k: v for k, v in f.metadata().items() if k != "aezoo.recipe"}
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    evil = "\x1b]0;owned\x07\x1b[2J\r"
    metadata.update({"aezoo.version": evil, "aezoo.distribution": evil, "aezoo.step": evil})
    save_file(tensors, str(crafted), metadata=metadata)
    status, out, err = cli("info", str(crafted))
    assert status == 0, err
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "architecture from: \\x1b]0;owned\\x07\\x1b[2J\\r" in out  # shown, escaped
    metadata.update({"aezoo.architecture": "nosuch"})
    save_file(tensors, str(crafted), metadata=metadata)
    status, _, err = cli("sample", str(crafted))
    assert status == 2 and "\x1b" not in err and "pip install" not in err, err


def test_an_export_written_meanwhile_by_another_process_is_not_replaced(world, tmp_path):
    """``aezoo export --out DIR`` checks DIR again just before moving its export in: one that another
    process finished there in the meantime stays, and nothing of this one is left behind."""
    from aezoo.onnx.staging import staged

    out = tmp_path / "out"
    with pytest.raises(AezooError, match="holds an earlier export; pass --force"), staged(out) as staging:
        (staging / "encoder.onnx").write_bytes(b"ours")
        shutil.copytree(world.export, out)  # the other writer finishes first
    assert snapshot(out) == {str(out / p.relative_to(world.export)): h for p, h in _hashes(world.export)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # no .partial folder left


def _hashes(folder: Path) -> list[tuple[Path, str]]:
    return [(Path(k), v) for k, v in snapshot(folder).items()]


# -- the Python API: only AezooError, one line --------------------------------------------------------

API_MISTAKES = [
    pytest.param(
        lambda w, tmp: aezoo.load("vae:nosuch"), "no pretrained model 'vae:nosuch'", id="load-unknown-name"
    ),
    pytest.param(
        lambda w, tmp: aezoo.load(w / "nosuch.safetensors"), "does not exist", id="load-missing-file"
    ),
    pytest.param(
        lambda w, tmp: aezoo.load(w / "a-folder.png"), "does not exist", id="load-folder-without-model"
    ),
    pytest.param(lambda w, tmp: aezoo.load(w / "garbage.safetensors"), "not a readable", id="load-garbage"),
    pytest.param(lambda w, tmp: aezoo.load(w / "truncated.safetensors"), "truncated", id="load-truncated"),
    pytest.param(lambda w, tmp: aezoo.load(w / "notes.txt"), "is not a weights file", id="load-text-file"),
    pytest.param(lambda w, tmp: aezoo.load(w / "huge.safetensors"), "more than this machine", id="load-huge"),
    pytest.param(lambda w, tmp: aezoo.load(w / "wider.safetensors"), "do not fit", id="load-mismatch"),
    pytest.param(lambda w, tmp: aezoo.load(w.run, device="gpu7"), "is not a device", id="load-bad-device"),
    pytest.param(
        lambda w, tmp: aezoo.load_export(w.run), "is not an aezoo export", id="load-export-of-a-run"
    ),
    pytest.param(
        lambda w, tmp: aezoo.load_export(w / "nosuch"), "is not an aezoo export", id="load-export-missing"
    ),
    pytest.param(
        lambda w, tmp: aezoo.load_export(_edited_export(w, tmp, _symlink_out)),
        "symbolic link leading out",
        id="load-export-symlink-out",
    ),
    pytest.param(
        lambda w, tmp: aezoo.load_export(
            _edited_export(w, tmp, lambda m, f: m["models"]["encoder"].update(file="../../x.onnx"))
        ),
        "schema at models/encoder/file",
        id="load-export-parent-name",
    ),
    pytest.param(
        lambda w, tmp: aezoo.load_export(_edited_export(w, tmp, _swap)).encoder(
            __import__("numpy").zeros((1, 1, 28, 28), "float32")
        ),
        "does not match the manifest's sha256",
        id="load-export-swapped-file",
    ),
    pytest.param(
        lambda w, tmp: aezoo.load_export(_edited_export(w, tmp, _folder_for_encoder)).encoder(
            __import__("numpy").zeros((1, 1, 28, 28), "float32")
        ),
        "encoder.onnx is missing or not a file",
        id="load-export-part-is-a-folder",
    ),
    pytest.param(lambda w, tmp: aezoo.export(w.run, w.export), "pass --force", id="export-over-an-export"),
    pytest.param(
        lambda w, tmp: aezoo.create("dense", latent_dim=0), "'latent_dim' must be", id="create-bad-value"
    ),
    pytest.param(lambda w, tmp: aezoo.create("dense", nosuch=1), "does not exist", id="create-unknown-key"),
    pytest.param(
        lambda w, tmp: aezoo.create("dense", hidden=(10**6,) * 3),
        "has 4,001,638,000,816 parameters (16.0 TB); more than this machine's",
        id="create-too-big",
    ),
]


@pytest.mark.parametrize(("call", "message"), API_MISTAKES)
def test_a_mistake_in_the_python_api_is_one_aezoo_error(call, message, world, tmp_path):
    before = snapshot(world.root)
    with pytest.raises(AezooError) as caught:
        call(world, tmp_path)
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1, caught.value
    assert snapshot(world.root) == before


# -- weights at a URL: only http(s), at most MAX_DOWNLOAD_BYTES, kept only with their sha256 -----------


class _Server(http.server.BaseHTTPRequestHandler):
    """``/redirect`` sends the client to an ftp:// URL; anything else is 64 kB of zeros."""

    def do_GET(self) -> None:
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1/model.safetensors")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = bytes(65536)
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def weights_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.mark.parametrize(
    ("path", "limit", "message"),
    [
        ("/redirect", None, "redirects to 'ftp://127.0.0.1/model.safetensors', which is not http(s)"),
        ("/model.safetensors", 1000, "is 65,536 bytes, more than aezoo downloads (1,000)"),
        (
            "/model.safetensors",
            None,
            "has sha256 de2f256064a0af79…, not the aaaaaaaaaaaaaaaa… its entry declares",
        ),
    ],
)
def test_a_weights_url_is_untrusted(path, limit, message, weights_server, tmp_path, monkeypatch):
    from aezoo import pretrained

    cache = tmp_path / "cache"
    monkeypatch.setenv("AEZOO_PRETRAINED_CACHE", str(cache))
    monkeypatch.delenv("AEZOO_OFFLINE", raising=False)
    if limit is not None:
        monkeypatch.setattr(pretrained, "MAX_DOWNLOAD_BYTES", limit)
    item = aezoo.Pretrained("dense:remote", weights_server + path, tmp_path / "card.toml", sha256="a" * 64)
    with pytest.raises(AezooError) as caught:
        pretrained.weights_path(item, progress=False)
    assert message in str(caught.value) and len(str(caught.value).splitlines()) == 1, caught.value
    assert not cache.exists() or list(cache.iterdir()) == []  # nothing kept, no temporary file


# -- as users run it ----------------------------------------------------------------------------------


def _aezoo(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("AEZOO_PLUGINS", None)
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "aezoo", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def test_a_crafted_weights_file_cannot_make_load_allocate(world):
    """Metadata claiming a 4 GB model (10^9 parameters, which this machine could hold) beside 3 MB
    of tensors: refused from the header, and the process never grows by anything like the claim."""
    crafted = world / "claims-4gb.safetensors"
    with safe_open(str(world.run / "model.safetensors"), framework="pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    import torch

    tensors["padding"] = torch.zeros(750_000)  # a 3 MB file
    claimed = {**json.loads(metadata["aezoo.hparams"]), "hidden": [31_600, 31_600]}
    save_file(tensors, str(crafted), metadata={**metadata, "aezoo.hparams": json.dumps(claimed)})
    code = (
        "import resource, sys, torch, aezoo\n"
        "from aezoo.plugins import registry\n"
        "registry().architecture('dense').build()\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n    aezoo.load(sys.argv[1])\nexcept aezoo.AezooError as exc:\n    print(exc)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(crafted)], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    message, grown_mb = result.stdout.strip().splitlines()
    assert "weights do not fit a 'dense' model" in message, result.stderr
    assert int(grown_mb) < 200, f"aezoo.load grew by {grown_mb} MB for a 3 MB file"


def test_mistakes_as_a_user_runs_them(world):
    for args, message in (
        (["sample", str(world / "huge.safetensors")], "more than this machine's"),
        (["reconstruct", str(world.run), str(world / "huge.png")], "is too large to decode"),
    ):
        result = _aezoo(*args)
        assert result.returncode == 2, result.stderr
        assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr


def test_the_table_is_large():
    assert len(CLI_MISTAKES) + len(API_MISTAKES) >= 60


def test_nothing_read_is_unpickled():
    """No module of aezoo, its plugins or its benchmarks can unpickle a file: no pickle-family
    import, torch.load only with weights_only=True, numpy's load never with allow_pickle."""
    import ast

    unsafe_modules = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}
    found = []
    for folder in ("aezoo", "plugins", "benchmarks", "exports"):
        for path in sorted((REPO / folder).rglob("*.py")):
            if "node_modules" in path.parts or ".venv" in path.parts:
                continue
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                where = f"{path.relative_to(REPO)}:{getattr(node, 'lineno', 0)}"
                if isinstance(node, ast.Import | ast.ImportFrom):
                    names = [a.name for a in node.names] + (
                        [node.module] if isinstance(node, ast.ImportFrom) else []
                    )
                    if any(str(n).split(".")[0] in unsafe_modules for n in names if n):
                        found.append(f"{where} imports {names}")
                if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                    continue
                keywords = {k.arg: k.value for k in node.keywords}
                owner = ast.unparse(node.func.value)
                if node.func.attr == "load" and owner == "torch":
                    safe = keywords.get("weights_only")
                    if not (isinstance(safe, ast.Constant) and safe.value is True):
                        found.append(f"{where} torch.load without weights_only=True")
                if node.func.attr == "load" and owner in ("np", "numpy"):
                    allowed = keywords.get("allow_pickle")
                    if allowed is not None and not (
                        isinstance(allowed, ast.Constant) and allowed.value is False
                    ):
                        found.append(f"{where} numpy load with allow_pickle")
                if node.func.attr == "read_pickle":
                    found.append(f"{where} read_pickle")
    assert not found, found
