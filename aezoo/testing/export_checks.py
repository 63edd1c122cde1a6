"""Checks of the ONNX export: parity with PyTorch, and a manifest that tells other runtimes
everything and follows its schema. The checks share one export per model."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import torch

from aezoo.errors import AezooError
from aezoo.testing import _support

#: The batch sizes every exported part is compared with PyTorch at.
PARITY_BATCHES = (1, 3)


def check_onnx_export_parity(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Encoder and decoder export to ONNX and match PyTorch in onnxruntime at batch 1 and 3."""
    from aezoo.onnx import load_export
    from aezoo.onnx.validation import compare

    model = _support.build(architecture, hparams).eval()
    exported = load_export(_support.export_of(architecture, hparams))
    for name, part in model.export_parts().items():
        for n in PARITY_BATCHES:
            torch.manual_seed(100 + n)
            with torch.no_grad():
                args = part.example(n)
                expected = _support.tensors(part.module(*args))
            actual = exported.parts[name](*[a.numpy() for a in args])
            decisions = part.decisions(args, expected) if part.decisions is not None else None
            report = compare(
                f"batch {n}", list(actual), expected, list(actual.values()), part.tolerance(), decisions
            )
            for o in report.outputs:
                assert o.passed, (
                    f"{name} output {o.name!r} at batch {n}: max abs diff {o.max_abs_diff:.3g} {o.note}"
                )


def check_manifest_complete(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """The export manifest says everything another runtime needs, and each file says it too."""
    import onnx

    from aezoo.fileio import sha256
    from aezoo.onnx.tracing import MAX_IR_VERSION

    root = _support.export_of(architecture, hparams)
    manifest = json.loads((root / "aezoo-export.json").read_text())
    for key in (
        "format",
        "architecture",
        "hparams",
        "versions",
        "opset",
        "latent_size",
        "models",
        "validation",
    ):
        assert key in manifest, f"manifest lacks {key!r}"
    assert manifest["architecture"] == architecture
    assert {"aezoo", "torch", "onnx", "onnxruntime"} <= set(manifest["versions"])
    shape = manifest["latent_shape"]
    if all(isinstance(d, int) for d in shape):
        assert manifest["latent_size"] == math.prod(shape) > 0, "latent_size must be the code's size"
    else:
        assert manifest["latent_size"] is None, "a code that grows with the input has no fixed latent_size"
    assert manifest["validation"]["passed"] is True
    assert {"encoder", "decoder"} <= set(manifest["models"])
    code = manifest["models"]["decoder"]["inputs"][0]
    assert code.get("sampling", {}).get("kind"), (
        "the decoder's code input does not say how to draw one (TensorSpec.sampling)"
    )
    decoding = manifest.get("decoding")
    if decoding is not None:  # AutoEncoder.export_decoding() said how to use the output
        outputs = [o["name"] for o in manifest["models"]["decoder"]["outputs"]]
        assert decoding["output"] in outputs, (
            f"decoding names output {decoding['output']!r}; the decoder has {outputs}"
        )
    assert manifest["runtimes"]["validated"], "the manifest does not say where it was validated"
    for name, entry in manifest["models"].items():
        path = root / entry["file"]
        assert sha256(path) == entry["sha256"], f"{entry['file']} does not match its sha256"
        assert entry["ir_version"] <= MAX_IR_VERSION, (
            f"{name}: IR {entry['ir_version']} is too new for ort-node"
        )
        for tensor in entry["inputs"] + entry["outputs"]:
            for key in ("name", "dtype", "shape", "description"):
                assert tensor.get(key) not in (None, ""), f"{name} {tensor.get('name')!r} lacks {key!r}"
            assert tensor["shape"][0] == "batch", f"{name} {tensor['name']!r}: batch axis is not symbolic"
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        for key in ("aezoo.architecture", "aezoo.part", "aezoo.hparams", "aezoo.version", "aezoo.inputs"):
            assert key in props, f"{entry['file']} lacks metadata_props {key!r}"
        assert not (root / f"{entry['file']}.data").exists(), "external data files must not be written"


def check_manifest_follows_schema(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """The export manifest validates against ``aezoo/onnx/manifest.schema.json`` (the contract
    every runtime reads it by), its ``decoding`` section included."""
    from aezoo.onnx.schema import check_manifest

    root = _support.export_of(architecture, hparams)
    path = root / "aezoo-export.json"
    try:
        check_manifest(json.loads(path.read_text(encoding="utf-8")), "the manifest")
    except AezooError as exc:
        raise AssertionError(str(exc)) from None
