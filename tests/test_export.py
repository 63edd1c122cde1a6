"""ONNX export: validated files and manifest, nothing half-written, verify, the numpy runtime."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

import aezoo
from aezoo.errors import AezooError
from aezoo.trainer import TrainConfig
from tests.test_cli import aezoo as run_cli

TINY = {"widths": (8, 16), "latent_dim": 16}


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    import os

    from tests.conftest import data_dir

    root = data_dir()
    if root is None:
        pytest.skip("full MNIST not found")
    os.environ.setdefault("AEZOO_DATA", str(root))
    config = TrainConfig(max_steps=4, batch_size=32, limit_train=128, limit_eval=64, device="cpu")
    return aezoo.train(
        "conv", hparams=TINY, config=config, out=tmp_path_factory.mktemp("r") / "run", progress=False
    )


@pytest.fixture(scope="module")
def exported(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("e") / "export"
    return aezoo.export(trained_run.path, out, dtype="fp16", quantize="int8")


def test_export_writes_validated_models_and_manifest(exported, trained_run):
    files = sorted(p.name for p in exported.path.iterdir())
    assert files == [
        "aezoo-export.json",
        "decoder.fp16.onnx",
        "decoder.int8.onnx",
        "decoder.onnx",
        "encoder.onnx",
    ]
    m = exported.manifest
    assert m["architecture"] == "conv" and m["hparams"]["latent_dim"] == 16 and m["latent_size"] == 16
    assert m["run"] == "run" and m["opset"] == 18
    from aezoo.fileio import sha256

    assert m["source"] == {
        "sha256": sha256(trained_run.model_path),
        "file": "model.safetensors",
        "run": "run",
    }
    text = (exported.path / "aezoo-export.json").read_text()
    assert str(trained_run.path.parent) not in text, "the manifest names a path of the exporting machine"
    enc, dec = m["models"]["encoder"], m["models"]["decoder"]
    assert enc["inputs"][0]["shape"] == ["batch", 1, 28, 28] and enc["inputs"][0]["range"] == [0.0, 1.0]
    assert "uint8 / 255" in enc["inputs"][0]["description"]
    assert dec["inputs"][0]["shape"] == ["batch", 16] and dec["outputs"][0]["name"] == "image"
    cases = {(c["model"], c["case"]) for c in m["validation"]["cases"]}
    assert ("encoder", "random batch 7") in cases and ("decoder", "real batch 8") in cases
    assert all(c["passed"] for c in m["validation"]["cases"])
    assert "mnist test split" in m["validation"]["real_data"]
    for variant in ("decoder.fp16", "decoder.int8"):
        result = m["models"][variant]["validation"]["cases"]
        assert result and all(r["passed"] and r["psnr_db"] > 30 for r in result)
    # fp16 is judged where it is computed in half precision too, not only in onnxruntime's CPU
    # provider (which runs most of it in float32)
    fp16 = m["models"]["decoder.fp16"]["validation"]
    assert {r["runtime"] for r in fp16["cases"]} == {"onnxruntime", "reference"}
    assert "float16" in fp16["computes_in"]["reference"]
    by_runtime = {
        rt: max(r["max_abs_diff"] for r in fp16["cases"] if r["runtime"] == rt) for rt in fp16["computes_in"]
    }
    assert 0 < by_runtime["reference"] <= 1e-2 and by_runtime["onnxruntime"] <= 1e-2
    # how to use the output, and what loads the files
    assert m["decoding"] == {
        "kind": "image",
        "output": "image",
        "layout": "NCHW",
        "channels": 1,
        "color": "grey",
        "range": [0.0, 1.0],
        "to_8bit": "round(clamp((value - range[0]) / (range[1] - range[0]), 0, 1) * 255)",
        "polarity": m["dataset"]["polarity"],
    }
    assert m["dataset"]["polarity"].startswith("light on dark")
    assert m["runtimes"]["validated"][0]["runtime"] == "onnxruntime"
    assert m["runtimes"]["validated"][0]["version"] == m["versions"]["onnxruntime"]
    assert m["runtimes"]["minimum"] == {"onnxruntime": "1.18", "why": "ONNX IR version 10 and opset 18"}


def test_each_file_describes_itself(exported):
    proto = onnx.load(str(exported.path / "decoder.onnx"))
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["aezoo.architecture"] == "conv" and props["aezoo.part"] == "decoder"
    assert json.loads(props["aezoo.hparams"])["widths"] == [8, 16]
    assert json.loads(props["aezoo.outputs"])[0]["range"] == [0.0, 1.0]
    assert proto.ir_version <= 10  # onnxruntime-node 1.30 refuses IR 11+
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch"


def test_exported_decoder_matches_pytorch_at_any_batch(exported, trained_run):
    import torch

    model = aezoo.load(trained_run.path)
    for n in (1, 5, 64):
        code = np.random.default_rng(n).standard_normal((n, 16)).astype(np.float32)
        want = model.decoder(torch.from_numpy(code)).detach().numpy()
        got = exported.decoder(code)["image"]
        assert got.shape == (n, 1, 28, 28)
        assert np.max(np.abs(want - got)) < 1e-5


def test_runtime_wrapper_answers_wrong_inputs_clearly(exported):
    code = np.zeros((2, 16), np.float32)
    with pytest.raises(AezooError, match=r"input 'code' must be float32 \[batch, 16\], got float64; convert"):
        exported.decoder(code.astype(np.float64))
    with pytest.raises(
        AezooError, match=r"must have shape \[batch, 16\], got \[2, 15\] \(axis 1 must be 16\)"
    ):
        exported.decoder(np.zeros((2, 15), np.float32))
    with pytest.raises(AezooError, match=r"has no input 'z'; its inputs are code"):
        exported.decoder(z=code)
    with pytest.raises(AezooError, match="needs input"):
        exported.decoder()
    assert exported.decoder(code=code)["image"].shape == (2, 1, 28, 28)


def test_failed_validation_writes_nothing(trained_run, tmp_path):
    out = tmp_path / "strict"
    result = run_cli("export", str(trained_run.path), "--out", str(out), "--atol", "1e-12")
    assert result.returncode == 1
    assert "does not match PyTorch; nothing was written" in result.stderr
    assert "max abs diff" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no staging folder left behind


def test_export_cli_and_verify_in_both_runtimes(trained_run, tmp_path):
    import shutil

    result = run_cli("export", str(trained_run.path))  # by default into the run folder
    out = trained_run.path / "onnx"
    assert result.returncode == 0, result.stderr
    assert str(out / "decoder.onnx") in result.stdout
    for runtime in ("onnxruntime", "reference"):
        checked = run_cli("verify", str(out), "--runtime", runtime)  # finds the run's weights beside it
        assert checked.returncode == 0, checked.stderr
        assert "verified" in checked.stdout and "decoder random batch 3" in checked.stdout
    moved = tmp_path / "moved"
    shutil.move(out, moved)
    lost = run_cli("verify", str(moved))
    assert lost.returncode == 2 and "pass --weights" in lost.stderr and "Traceback" not in lost.stderr
    found = run_cli("verify", str(moved), "--weights", str(trained_run.path))
    assert found.returncode == 0, found.stderr


def test_verify_reports_a_swapped_file(trained_run, tmp_path):
    out = tmp_path / "exp"
    aezoo.export(trained_run.path, out)
    (out / "encoder.onnx").write_bytes((out / "decoder.onnx").read_bytes())
    swapped = aezoo.load_export(out)  # loading it to run it says so too, before any numbers
    with pytest.raises(AezooError, match=r"encoder\.onnx does not match the manifest's sha256"):
        swapped.encoder(np.zeros((1, 1, 28, 28), np.float32))
    assert swapped.decoder(np.zeros((1, 16), np.float32))["image"].shape == (1, 1, 28, 28)
    weights = ("--weights", str(trained_run.path))
    result = run_cli("verify", str(out), *weights)
    assert result.returncode == 1
    assert "encoder.onnx does not match the manifest's sha256: it was modified or swapped" in result.stderr
    decoder = (out / "decoder.onnx").read_bytes()
    (out / "decoder.onnx").write_bytes(decoder[: len(decoder) // 2])  # cut short
    for runtime in ("onnxruntime", "reference"):
        damaged = run_cli("verify", str(out), "--runtime", runtime, *weights)
        assert damaged.returncode == 1 and "Traceback" not in damaged.stderr, damaged.stderr
        assert f"decoder.onnx cannot be loaded by {runtime} (" in damaged.stderr
    bad_option = run_cli("verify", str(out), "--atol", "0", *weights)
    assert bad_option.returncode == 2 and "--atol must be positive, got 0.0" in bad_option.stderr


def test_export_refuses_bad_options_and_foreign_folders(trained_run, tmp_path):
    with pytest.raises(AezooError, match="--opset must be between"):
        aezoo.export(trained_run.path, tmp_path / "a", opset=3)
    with pytest.raises(AezooError, match="--dtype must be one of fp32, fp16"):
        aezoo.export(trained_run.path, tmp_path / "a", dtype="bf16")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(AezooError, match="exists and is not an aezoo export"):
        aezoo.export(trained_run.path, foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"
    result = run_cli("export", str(tmp_path / "nope"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_reexport_replaces_an_earlier_export(trained_run, tmp_path):
    out = tmp_path / "exp"
    first = aezoo.export(trained_run.path, out).manifest["models"]["decoder"]["sha256"]
    with pytest.raises(AezooError, match="holds an earlier export; pass --force"):
        aezoo.export(trained_run.path, out, quantize="int8")
    second = aezoo.export(trained_run.path, out, quantize="int8", force=True)
    assert second.manifest["models"]["decoder"]["sha256"] == first  # deterministic export
    assert (out / "decoder.int8.onnx").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]


def test_the_manifest_schema_is_enforced_on_load(exported, tmp_path):
    import copy
    import shutil

    folder = tmp_path / "copy"
    shutil.copytree(exported.path, folder)
    path = folder / "aezoo-export.json"
    good = json.loads(path.read_text())

    def edited(change):
        manifest = copy.deepcopy(good)
        change(manifest)
        return json.dumps(manifest)

    cases = [
        (
            edited(lambda m: m.update(format="aezoo-export/2")),
            "newer than this aezoo reads .*: upgrade aezoo",
        ),
        (edited(lambda m: m["models"]["decoder"].update(file="../x.onnx")), "schema at models/decoder/file"),
        (edited(lambda m: m["models"]["encoder"].pop("sha256")), "schema at models/encoder: 'sha256'"),
        (edited(lambda m: m.pop("models")), "schema at the top level: 'models' is a required property"),
        ("[1, 2]", "not an aezoo export manifest"),
        ("{not json", "is not valid JSON"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(AezooError, match=message):
            aezoo.load_export(folder)
        result = run_cli("verify", str(folder))
        assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
