"""``aezoo export``: encoder.onnx and decoder.onnx, validated before they are put in place.

The export is built in a temporary folder beside the destination (:mod:`~aezoo.onnx.staging`):
each part is traced (:mod:`~aezoo.onnx.tracing`), checked against PyTorch (:mod:`~aezoo.onnx.parity`),
optionally given reduced-precision variants (:mod:`~aezoo.onnx.variants`) and described in the
manifest (:mod:`~aezoo.onnx.manifest`); only then is it moved into place, so a failed export leaves
nothing half-written behind.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from aezoo.errors import AezooError
from aezoo.fileio import sha256
from aezoo.model import DEFAULT_EXPORT_ATOL, AutoEncoder, ExportPart
from aezoo.onnx import validation
from aezoo.onnx.codes import describe_code
from aezoo.onnx.manifest import FORMAT, build_manifest, case_json, describe_file, stamp_metadata
from aezoo.onnx.parity import VALIDATION_BATCHES, validate_part
from aezoo.onnx.runtime import MANIFEST_FILE
from aezoo.onnx.schema import check_manifest
from aezoo.onnx.staging import check_destination, staged
from aezoo.onnx.tracing import DEFAULT_OPSET, HIGHEST_OPSET, LOWEST_OPSET, MAX_IR_VERSION, trace_part
from aezoo.onnx.validation import ValidationFailed
from aezoo.onnx.variants import PRECISION, make_variant, validate_variant

DTYPES = ("fp32", "fp16")
QUANTIZE = ("int8",)
REAL_BATCH = 8


def export(
    source: AutoEncoder | str | os.PathLike[str],
    out_dir: str | os.PathLike[str] | None = None,
    *,
    opset: int = DEFAULT_OPSET,
    atol: float | None = None,
    dtype: str = "fp32",
    quantize: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    real_inputs: Any = None,
    echo: Callable[[str], None] | None = None,
    force: bool = False,
):
    """Export ``source`` (a run folder, a ``.safetensors`` file, a pretrained name or a model) to ``out_dir``.

    Writes ``encoder.onnx``, ``decoder.onnx`` (plus ``decoder.fp16.onnx`` for ``dtype="fp16"``
    and ``decoder.int8.onnx`` for ``quantize="int8"``) and ``aezoo-export.json``, and returns
    the export as an :class:`aezoo.onnx.ExportedModel`. ``atol`` bounds the difference of float
    outputs from PyTorch; by default each part's own (:attr:`ExportPart.atol`, else 1e-5).
    An earlier export in ``out_dir`` is replaced only with ``force``; a folder holding anything else
    is refused, so nothing aezoo did not write is ever removed.
    """
    from aezoo.onnx.runtime import ExportedModel

    say = echo or (lambda _line: None)
    if dtype not in DTYPES:
        raise AezooError(f"--dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if quantize is not None and quantize not in QUANTIZE:
        raise AezooError(f"--quantize must be one of {', '.join(QUANTIZE)}, got {quantize!r}")
    if not isinstance(opset, int) or not LOWEST_OPSET <= opset <= HIGHEST_OPSET:
        raise AezooError(
            f"--opset must be between {LOWEST_OPSET} and {HIGHEST_OPSET}, got {opset}; {DEFAULT_OPSET} is the "
            "default and the best supported"
        )
    if atol is not None and not atol > 0:
        raise AezooError(f"--atol must be positive, got {atol}")
    if out_dir is not None:
        check_destination(Path(out_dir), force=force)  # before the model is even read
    model, origin = _resolve_source(source)
    model = copy.deepcopy(model).cpu().eval()  # the caller's model stays where and as it was
    if out_dir is not None:
        out = Path(out_dir)
    else:  # into the run folder; beside you for a pretrained name, a file or a model in memory
        out = origin.output("onnx") if origin is not None else Path(f"{model.architecture}-onnx")
    with staged(out, force=force) as staging:
        data, data_note = _load_data(origin, data_dir) if origin is not None else (None, "")
        if data is not None:  # the manifest names no folder of this machine
            data.name = portable_dataset_name(data.name, data_dir)
        if real_inputs is None and data is not None:
            real_inputs, real_note = _real_inputs(model, data)
        elif real_inputs is not None:
            real_note = "given by the caller"
        else:
            real_note = data_note or "no dataset: random inputs only"
        parts = model.export_parts()
        if data is not None:
            parts["decoder"] = describe_code(
                model, parts["decoder"], data.train, f"the training split of {data.name}"
            )
        else:
            parts["decoder"] = describe_code(model, parts["decoder"], real_inputs, "given by the caller")
        entries, cases = _trace_and_validate(model, parts, staging, opset, atol, real_inputs, say)
        for kind in [v for v, wanted in (("fp16", dtype == "fp16"), ("int8", quantize == "int8")) if wanted]:
            entries[f"decoder.{kind}"] = _variant(kind, parts["decoder"], staging, real_inputs, say)
        for key, entry in entries.items():
            stamp_metadata(staging / entry["file"], model, key, entry)
            entry["sha256"] = sha256(staging / entry["file"])
            entry["bytes"] = (staging / entry["file"]).stat().st_size
        default_atol = atol if atol is not None else DEFAULT_EXPORT_ATOL
        manifest = build_manifest(model, origin, opset, default_atol, entries, cases, real_note)
        if data is not None:
            manifest["dataset"] = _dataset_json(data)
        decoding = model.export_decoding()
        if decoding is not None:
            if "polarity" in manifest.get("dataset", {}) and decoding.get("kind") == "image":
                decoding = {**decoding, "polarity": manifest["dataset"]["polarity"]}
            manifest["decoding"] = decoding
        check_manifest(manifest, f"the manifest of {out}")  # the contract holds before it is written
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    say(f"validated against onnxruntime: {len(cases)} cases passed")
    return ExportedModel(out)


# -- steps -----------------------------------------------------------------------------------------


def _trace_and_validate(
    model: AutoEncoder,
    parts: dict[str, ExportPart],
    staging: Path,
    opset: int,
    atol: float | None,
    real_inputs: Any,
    say: Callable[[str], None],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Each part traced into ``staging`` and checked against PyTorch: manifest entries, and the
    cases validated; a part that does not match raises :class:`ValidationFailed`."""
    entries: dict[str, Any] = {}
    cases: list[dict[str, Any]] = []
    for part_name, part in parts.items():
        path = staging / f"{part_name}.onnx"
        say(f"exporting {part_name} (opset {opset})")
        trace_part(model, part_name, part, path, opset)
        tolerance = part.tolerance(atol)
        reports = validate_part(part, path, tolerance, real_inputs)
        cases += [case_json(part_name, r) for r in reports]
        for report in reports:
            for tie in report.near_ties:
                say(f"{part_name} {report.case}: {tie.describe()}")
        if not all(r.passed for r in reports):
            raise ValidationFailed(
                f"{part_name}.onnx does not match PyTorch; nothing was written:\n"
                + validation.describe(reports, part_name, tolerance)
            )
        entries[part_name] = {**describe_file(path, part), "atol": tolerance}
    return entries, cases


def _variant(
    kind: str, decoder: ExportPart, staging: Path, real_inputs: Any, say: Callable[[str], None]
) -> dict[str, Any]:
    """``decoder.KIND.onnx`` made from the fp32 decoder and judged against it: its manifest entry."""
    path = staging / f"decoder.{kind}.onnx"
    say(f"writing decoder.{kind}.onnx")
    try:
        make_variant(staging / "decoder.onnx", path, kind)
    except Exception as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise AezooError(f"could not make decoder.{kind}.onnx ({detail}); export without it") from exc
    result = validate_variant(kind, decoder, staging / "decoder.onnx", path, real_inputs)
    entry = describe_file(path, decoder)
    entry.update({"variant_of": "decoder", "precision": PRECISION[kind], "validation": result})
    return entry


# -- where the model and its real inputs come from ---------------------------------------------


def _resolve_source(source: Any) -> tuple[AutoEncoder, Any]:
    """The model, and where it came from (a :class:`~aezoo.sources.ModelSource`; None for a model
    in memory)."""
    from aezoo.sources import open_source

    if isinstance(source, AutoEncoder):
        if not source.architecture:
            raise AezooError("the model has no architecture name: build it with aezoo.create()")
        return source, None
    origin = open_source(str(source))
    return origin.model, origin


def _load_data(origin: Any, data_dir: Any) -> tuple[Any, str]:
    """The dataset the model was trained on, or None and why not."""
    from aezoo.plugins import load_data

    try:
        return load_data(origin.dataset, data_dir=data_dir), ""
    except AezooError as exc:
        return None, f"skipped: {exc}"


def portable_dataset_name(name: str, data_dir: Any = None) -> str:
    """``name`` without this machine's folders: the data root as ``{data}`` (as recipes write
    it), any other absolute folder by its last part (``images:…/photos``)."""
    from aezoo.data import DATA_ROOT_MARK, data_root

    root = str(data_root(data_dir))
    if root and root in name:
        return name.replace(root, DATA_ROOT_MARK)
    kind, sep, argument = name.partition(":")
    if sep and os.path.isabs(argument):
        return f"{kind}:…/{Path(argument).name}"
    return name


#: What a manifest repeats of its dataset's description: enough to use the decoder's output.
DATASET_KEYS = ("kind", "shape", "channels", "polarity", "classes", "bars", "steps", "steps_per_bar")


def _dataset_json(data: Any) -> dict[str, Any]:
    return {"name": data.name, **{k: data.info[k] for k in DATASET_KEYS if k in data.info}}


def _real_inputs(model: AutoEncoder, data: Any) -> tuple[Any, str]:
    from aezoo.data import first_examples, to_device

    split = data.test if len(data.test) else data.val
    batch = first_examples(split, REAL_BATCH)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        inputs, _ = model.prepare_batch(to_device(batch, model.device), train=False)
    return inputs, f"first {len(next(iter(batch.values())))} examples of the {data.name} test split"


__all__ = [
    "DEFAULT_OPSET",
    "FORMAT",
    "MAX_IR_VERSION",
    "VALIDATION_BATCHES",
    "ValidationFailed",
    "export",
    "validate_part",
]
