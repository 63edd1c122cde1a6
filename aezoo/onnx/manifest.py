"""``aezoo-export.json``: what other runtimes need to know of an export, and the same essentials
stamped into each file's ``metadata_props``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo._version import __version__
from aezoo.fileio import sha256
from aezoo.model import AutoEncoder, ExportPart
from aezoo.onnx import validation
from aezoo.onnx.runtime import MANIFEST_FILE
from aezoo.onnx.schema import FORMAT
from aezoo.onnx.tracing import default_opset


def describe_file(path: Path, part: ExportPart) -> dict[str, Any]:
    import onnx

    proto = onnx.load(str(path))
    specs = {s.name: s for s in [*part.inputs, *part.outputs]}

    def tensors(values: Any) -> list[dict[str, Any]]:
        rows = []
        for v in values:
            t = v.type.tensor_type
            spec = specs.get(v.name)
            row = {
                "name": v.name,
                "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name,
                "shape": [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim],
                "description": spec.description if spec else "",
            }
            if spec is not None and spec.range is not None:
                row["range"] = list(spec.range)
            if spec is not None and spec.classes is not None:
                row["classes"] = spec.classes
            if spec is not None and spec.sampling is not None:
                row["sampling"] = dict(spec.sampling)
            rows.append(row)
        return rows

    return {
        "file": path.name,
        "opset": default_opset(proto),
        "ir_version": proto.ir_version,
        "inputs": tensors(proto.graph.input),
        "outputs": tensors(proto.graph.output),
    }


def stamp_metadata(path: Path, model: AutoEncoder, key: str, entry: dict[str, Any]) -> None:
    """The essentials of the manifest, inside the model, so a lone file says what it is."""
    import onnx

    proto = onnx.load(str(path))
    props = {
        "aezoo.format": FORMAT,
        "aezoo.architecture": model.architecture,
        "aezoo.part": key,
        "aezoo.hparams": json.dumps(model.hparams.to_dict(), sort_keys=True),
        "aezoo.version": __version__,
        "aezoo.inputs": json.dumps(entry["inputs"]),
        "aezoo.outputs": json.dumps(entry["outputs"]),
        "aezoo.manifest": MANIFEST_FILE,
    }
    if "precision" in entry:
        props["aezoo.precision"] = entry["precision"]
    del proto.metadata_props[:]
    for k, v in props.items():
        proto.metadata_props.add(key=k, value=v)
    proto.producer_name = "aezoo"
    proto.producer_version = __version__
    proto.doc_string = (
        f"aezoo {model.architecture} {key}: {model.architecture} autoencoder, see {MANIFEST_FILE}"
    )
    onnx.save(proto, str(path))


def build_manifest(
    model: AutoEncoder,
    origin: Any,
    opset: int,
    atol: float,
    entries: dict[str, Any],
    cases: list[dict[str, Any]],
    real_note: str,
) -> dict[str, Any]:
    import onnx
    import onnxruntime
    import onnxscript

    latent = entries["decoder"]["inputs"][0]["shape"][1:]
    vector = bool(latent) and all(isinstance(d, int) for d in latent)
    return {
        "format": FORMAT,
        "architecture": model.architecture,
        "hparams": model.hparams.to_dict(),
        "run": origin.run.name if origin is not None and origin.run is not None else None,
        "source": source_json(origin),
        "versions": {
            "aezoo": __version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxscript": onnxscript.__version__,
            "onnxruntime": onnxruntime.__version__,
        },
        "opset": opset,
        "latent_shape": latent,
        # a number only for fixed-size codes; a feature map that grows with the image has none
        "latent_size": int(np.prod(latent)) if vector else None,
        "models": entries,
        "runtimes": runtimes_json(entries),
        "validation": {
            "runtime": f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
            "atol": atol,
            "real_data": real_note,
            "passed": all(c["passed"] for c in cases),
            "cases": cases,
        },
    }


#: The first onnxruntime release that reads each ONNX IR version, and that implements each opset
#: (onnxruntime's version matrix): a file needs the later of the two. aezoo writes IR 10, opset 18.
ONNXRUNTIME_FOR_IR = {9: "1.15", 10: "1.18"}
ONNXRUNTIME_FOR_OPSET = {18: "1.14", 19: "1.15", 20: "1.17", 21: "1.18"}


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split(".") if p.isdigit())


def minimum_onnxruntime(ir_version: int, opset: int) -> str | None:
    """The oldest onnxruntime that loads a file of this IR version and opset, None when unknown."""
    needs = [ONNXRUNTIME_FOR_IR.get(ir_version), ONNXRUNTIME_FOR_OPSET.get(opset)]
    if any(n is None for n in needs):
        return None
    return max(needs, key=_version_key)  # type: ignore[arg-type]


def runtimes_json(entries: dict[str, Any]) -> dict[str, Any]:
    """Where the export was validated and what a runtime needs to load it. Each file is validated
    at export in onnxruntime's CPU provider; ``aezoo verify --runtime`` checks the others
    (reference, openvino, tract), and ``exports/README.md`` lists what each was seen to run."""
    import onnxruntime

    ir = max(e["ir_version"] for e in entries.values())
    opset = max(e["opset"] for e in entries.values())
    minimum = minimum_onnxruntime(ir, opset)
    return {
        "validated": [
            {
                "runtime": "onnxruntime",
                "version": onnxruntime.__version__,
                "provider": "CPUExecutionProvider",
                "files": sorted(e["file"] for e in entries.values()),
            }
        ],
        "minimum": {
            "onnxruntime": minimum,
            "why": f"ONNX IR version {ir} and opset {opset}",
        },
    }


def source_json(origin: Any) -> dict[str, Any] | None:
    """The weights exported, named by their sha256 and their pretrained or run name (no path of the
    exporting machine: ``aezoo verify --weights`` takes them where they cannot be found)."""
    if origin is None:
        return None
    source = {"sha256": sha256(origin.weights), "file": origin.weights.name}
    if origin.pretrained is not None:
        source["pretrained"] = origin.pretrained.name
    if origin.run is not None:
        source["run"] = origin.run.name
    return source


def case_json(part: str, report: validation.CaseReport) -> dict[str, Any]:
    return {
        "model": part,
        "case": report.case,
        "passed": report.passed,
        "outputs": {o.name: {"max_abs_diff": o.max_abs_diff, "exact": o.exact} for o in report.outputs},
        "near_ties": [dataclasses.asdict(t) for t in report.near_ties],
    }
