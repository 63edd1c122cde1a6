"""exports/node/decode.mjs: an export's decoder in onnxruntime-node, checked against onnxruntime in
Python (the manifest's atol) and its PNG files against the same output rounded to 8 bits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import aezoo
from aezoo.onnx import validation

REPO = Path(__file__).resolve().parents[1]
NODE_DIR = REPO / "exports" / "node"
DECODE = NODE_DIR / "decode.mjs"


def node_or_skip() -> str:
    """node with exports/node's npm packages; missing ones fail under CI, else skip."""
    node = shutil.which("node")
    missing = []
    if not node:
        missing.append("node")
    if not (NODE_DIR / "node_modules" / "onnxruntime-node").is_dir():
        missing.append("exports/node/node_modules (npm ci)")
    if missing:
        message = f"{' and '.join(missing)} missing: run `bash exports/install-test-deps.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(node)


def decode(node: str, export: Path, codes, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    codes_file = tmp_path / "codes.json"
    codes_file.write_text(json.dumps(codes))
    return subprocess.run(
        [node, str(DECODE), str(export), str(codes_file), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=NODE_DIR,
    )


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("node-exports")
    vae = aezoo.export("vae:mnist-2d", root / "vae").path
    torch.manual_seed(0)
    conv = aezoo.create("conv", **aezoo.architecture("conv").smoke_hparams).eval()
    with torch.no_grad():
        real = conv.prepare_batch(conv.example_batch(4, torch.Generator().manual_seed(7)), train=False)[0]
    conv_path = aezoo.export(conv, root / "conv", real_inputs=real).path
    return {"vae": vae, "conv": conv_path}


def codes_for(export: Path, n: int, seed: int) -> np.ndarray:
    manifest = json.loads((export / "aezoo-export.json").read_text())
    shape = [d for d in manifest["models"]["decoder"]["inputs"][0]["shape"][1:]]
    return np.random.default_rng(seed).standard_normal((n, *shape)).astype(np.float32)


@pytest.mark.parametrize("name", ["vae", "conv"])
def test_node_decodes_like_onnxruntime_and_writes_pngs(name, exports, tmp_path):
    node = node_or_skip()
    export = exports[name]
    manifest = json.loads((export / "aezoo-export.json").read_text())
    entry = manifest["models"]["decoder"]
    codes = codes_for(export, 3, seed=len(name))
    if name == "vae":
        codes[0] = 0.0  # the prior's mean
    out = tmp_path / "png"
    result = decode(node, export, codes.tolist(), tmp_path, "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    run = validation.session(export / entry["file"])
    want = run({entry["inputs"][0]["name"]: codes})
    for spec, expected in zip(entry["outputs"], want, strict=True):
        tensor = got["outputs"][spec["name"]]
        actual = np.asarray(tensor["data"], dtype=np.float32)
        assert tensor["dims"] == list(expected.shape) == list(actual.shape)
        diff = float(np.max(np.abs(actual - expected)))
        assert diff <= entry["atol"], f"{name} {spec['name']}: max abs diff {diff:.3g} > atol {entry['atol']}"
    image = want[0]
    lo, hi = entry["outputs"][0].get("range", [0, 1])
    _, channels, height, width = image.shape
    assert sorted(p.name for p in out.iterdir()) == [f"code-{i}.png" for i in range(len(codes))]
    assert got["files"] == [str(out / f"code-{i}.png") for i in range(len(codes))]
    for i in range(len(codes)):
        with Image.open(out / f"code-{i}.png") as png:
            assert png.size == (width, height)
            assert png.mode == ("L" if channels == 1 else "RGB")
            pixels = np.asarray(png, dtype=np.float64)
        expected = np.clip((image[i].astype(np.float64) - lo) / (hi - lo), 0, 1) * 255
        expected = expected[0] if channels == 1 else expected.transpose(1, 2, 0)
        # 8-bit rounding, plus the two runtimes' difference (at most atol) scaled to pixels
        worst = float(np.max(np.abs(pixels - expected)))
        assert worst <= 0.5 + 255 * entry["atol"] / (hi - lo) + 1e-6, f"{name} code {i}: {worst}"


def test_node_writes_only_json_when_asked(exports, tmp_path):
    node = node_or_skip()
    result = decode(node, exports["vae"], [[0.5, -0.5]], tmp_path, "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert got["files"] == [] and got["outputs"]["image"]["dims"] == [1, 1, 28, 28]


def test_node_writes_outputs_json_for_a_decoder_that_is_not_an_image(exports, tmp_path):
    """A decoder whose output is not [batch, C, H, W] (here: the vae's, reshaped to [batch, 784]
    by editing a copy of the folder's manifest and file) goes to outputs.json."""
    node = node_or_skip()
    import onnx

    from aezoo.fileio import sha256

    folder = tmp_path / "flat"
    shutil.copytree(exports["vae"], folder)
    model = onnx.load(folder / "decoder.onnx")
    graph = model.graph
    old = graph.output[0]
    shape = onnx.helper.make_tensor("flat_shape", onnx.TensorProto.INT64, [2], [-1, 784])
    graph.initializer.append(shape)
    graph.node.append(onnx.helper.make_node("Reshape", [old.name, "flat_shape"], ["pixels"]))
    flat = onnx.helper.make_tensor_value_info("pixels", onnx.TensorProto.FLOAT, ["batch", 784])
    graph.output.remove(old)
    graph.output.append(flat)
    onnx.save(model, folder / "decoder.onnx")
    manifest = json.loads((folder / "aezoo-export.json").read_text())
    entry = manifest["models"]["decoder"]
    entry["outputs"] = [{"name": "pixels", "dtype": "float32", "shape": ["batch", 784]}]
    entry["sha256"] = sha256(folder / "decoder.onnx")
    (folder / "aezoo-export.json").write_text(json.dumps(manifest))
    out = tmp_path / "out"
    result = decode(node, folder, [[0.0, 0.0], [1.0, 1.0]], tmp_path, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["outputs.json"]
    pixels = np.asarray(json.loads((out / "outputs.json").read_text())["pixels"], dtype=np.float32)
    want = validation.session(exports["vae"] / "decoder.onnx")({"z": np.array([[0, 0], [1, 1]], np.float32)})
    assert pixels.shape == (2, 784)
    assert np.max(np.abs(pixels - want[0].reshape(2, 784))) <= entry["atol"]


def test_node_errors_are_one_line_with_status_2(exports, tmp_path):
    node = node_or_skip()
    vae = exports["vae"]
    wrong = decode(node, vae, [[0.0, 1.0, 2.0]], tmp_path, "--json")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.strip().count("\n") == 0
    assert 'code 0 has shape [3]; the decoder\'s input "z" wants [2] per code' in wrong.stderr

    ragged = decode(node, vae, [[0.0, 1.0], [1.0]], tmp_path, "--json")
    assert ragged.returncode == 2 and "code 1 has shape [1]" in ragged.stderr

    missing = decode(node, tmp_path / "nowhere", [[0.0, 0.0]], tmp_path, "--json")
    assert missing.returncode == 2 and "is missing" in missing.stderr

    swapped = tmp_path / "swapped"
    shutil.copytree(vae, swapped)
    shutil.copy(vae / "encoder.onnx", swapped / "decoder.onnx")
    bad = decode(node, swapped, [[0.0, 0.0]], tmp_path, "--json")
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0
    assert "decoder.onnx does not match the manifest's sha256" in bad.stderr

    (swapped / "decoder.onnx").unlink()
    gone = decode(node, swapped, [[0.0, 0.0]], tmp_path, "--json")
    assert gone.returncode == 2 and "decoder.onnx is missing" in gone.stderr

    usage = subprocess.run([node, str(DECODE)], capture_output=True, text=True, timeout=60)
    assert usage.returncode == 2 and "usage: node decode.mjs" in usage.stderr
