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
from aezoo_musicvae.representation import events_to_notes
from tests.melody_checks import check_midi, same_choices

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


# -- melodies (musicvae) ---------------------------------------------------------------------------


def test_node_decodes_melodies_by_argmax_like_onnxruntime_into_midi_files(melody_export, tmp_path):
    """By default each code is decoded by argmax (temperature 0, zero noise); every token equals
    onnxruntime's in Python (near-ties aside), and each MIDI file is the Python writer's."""
    node = node_or_skip()
    exported = aezoo.load_export(melody_export)
    decoding = exported.manifest["decoding"]
    codes = codes_for(melody_export, 3, seed=3)
    codes[0] = 0.0  # the prior's mean
    out = tmp_path / "midi"
    result = decode(node, melody_export, codes.tolist(), tmp_path, "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert (got["temperature"], got["seed"]) == (0, None) and "noise" not in got
    tokens = got["outputs"]["tokens"]["data"]
    zeros = np.zeros((len(codes), decoding["steps"], decoding["classes"]), np.float32)
    _, ties = same_choices(exported, codes, 0.0, zeros, tokens, "onnxruntime-node")
    print("\n".join(ties) or "no near-ties: every token identical")
    assert got["files"] == [str(out / f"melody-{i}.mid") for i in range(len(codes))]
    assert sorted(p.name for p in out.iterdir()) == [f"melody-{i}.mid" for i in range(len(codes))]
    for i, melody in enumerate(got["melodies"]):
        assert melody["tokens"] == tokens[i]
        notes = events_to_notes(tokens[i])
        assert melody["notes"] == [{"start": n.start, "end": n.end, "pitch": n.pitch} for n in notes]
        check_midi(out / f"melody-{i}.mid", [tokens[i]], decoding)


def test_node_samples_melodies_with_the_manifests_gumbel_noise_from_a_seed(melody_export, tmp_path):
    node = node_or_skip()
    exported = aezoo.load_export(melody_export)
    decoding = exported.manifest["decoding"]
    codes = codes_for(melody_export, 2, seed=4).tolist()
    runs = {}
    for name, args in {
        "seed 7": ("--temperature", "0.8", "--seed", "7"),
        "seed 7 again": ("--temperature=0.8", "--seed=7"),
        "seed 8": ("--temperature", "0.8", "--seed", "8"),
        "seed alone": ("--seed", "7"),
    }.items():
        result = decode(node, melody_export, codes, tmp_path, "--json", *args)
        assert result.returncode == 0, result.stderr
        runs[name] = json.loads(result.stdout)
    first = runs["seed 7"]
    assert (first["temperature"], first["seed"]) == (0.8, 7)
    assert (
        runs["seed 7 again"]["noise"] == first["noise"]
        and runs["seed 7 again"]["melodies"] == first["melodies"]
    )
    assert runs["seed 8"]["noise"] != first["noise"]
    assert (runs["seed alone"]["temperature"], runs["seed alone"]["noise"]) == (
        1,
        first["noise"],
    )  # the manifest's 1
    noise = np.asarray(first["noise"]["data"], dtype=np.float32)
    assert noise.shape == (2, decoding["steps"], decoding["classes"]) == tuple(first["noise"]["dims"])
    rule = exported.decoder.inputs[2]["sampling"]
    low, high = (-np.log(-np.log(np.float64(rule[k]))) for k in ("u_low", "u_high"))
    assert low - 1e-4 <= noise.min() and noise.max() <= high + 1e-4
    # standard Gumbel: mean γ = 0.5772, standard deviation π/√6 = 1.2825 (5,760 draws: ±0.05, ±0.04)
    assert abs(noise.mean() - 0.5772) < 0.07 and abs(noise.std() - 1.2825) < 0.06
    for run, temperature in ((first, 0.8), (runs["seed alone"], 1.0)):
        tokens = run["outputs"]["tokens"]["data"]
        _, ties = same_choices(exported, codes, temperature, noise, tokens, "onnxruntime-node")
        print("\n".join(ties))

    picked = decode(node, melody_export, codes, tmp_path, "--json", "--temperature", "0.5")
    assert picked.returncode == 0 and isinstance(json.loads(picked.stdout)["seed"], int)
    assert "sampled with --seed" in picked.stderr


def test_node_melody_mistakes_are_one_line_with_status_2(melody_export, exports, tmp_path):
    node = node_or_skip()
    codes = codes_for(melody_export, 1, seed=5).tolist()
    for args, message in [
        (("--temperature", "-1"), "--temperature must be a number ≥ 0"),
        (("--seed", "1.5"), "--seed must be a whole number"),
        (("--seed",), "--seed needs a whole number"),
    ]:
        result = decode(node, melody_export, codes, tmp_path, "--json", *args)
        assert result.returncode == 2 and result.stdout == "", args
        assert message in result.stderr and result.stderr.strip().count("\n") == 0, result.stderr
    wrong = decode(node, melody_export, [[0.0, 1.0]], tmp_path, "--json")
    assert (
        wrong.returncode == 2 and 'code 0 has shape [2]; the decoder\'s input "z" wants [64]' in wrong.stderr
    )
    image = decode(node, exports["vae"], [[0.0, 0.0]], tmp_path, "--json", "--seed", "1")
    assert image.returncode == 2 and "--temperature and --seed are for melody decoders" in image.stderr
