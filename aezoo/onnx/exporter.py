"""``aezoo export``: encoder.onnx and decoder.onnx, validated before they are put in place.

The export is built in a temporary folder beside the destination and moved into place only after
every model passed ``onnx.checker`` and matched PyTorch in onnxruntime, so a failed export leaves
nothing half-written behind.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo._version import __version__
from aezoo.errors import AezooError
from aezoo.fileio import make_public, sha256
from aezoo.model import DEFAULT_EXPORT_ATOL, AutoEncoder, ExportPart
from aezoo.onnx import validation
from aezoo.onnx.runtime import MANIFEST_FILE

FORMAT = "aezoo-export/1"
#: The torch.onnx (dynamo) exporter writes opset 18 and up natively; below, it down-converts,
#: which can fail or produce invalid graphs (LSTM ``Split`` nodes at 17), caught by validation.
DEFAULT_OPSET = 18
LOWEST_OPSET = 9
HIGHEST_OPSET = 25
#: onnxruntime-node 1.30 refuses IR version 11 and above.
MAX_IR_VERSION = 10
DTYPES = ("fp32", "fp16")
QUANTIZE = ("int8",)
#: Error allowed for reduced-precision variants, as a fraction of the output's value range.
VARIANT_TOLERANCE = {"fp16": 1e-2, "int8": 5e-2}
#: Share of an autoregressive decoder's choices a variant must make as the fp32 decoder does.
VARIANT_CHOICE_AGREEMENT = 0.95
VALIDATION_BATCHES = (1, 7)
REAL_BATCH = 8


class ValidationFailed(AezooError):
    """An exported model does not reproduce PyTorch within tolerance."""

    exit_code = 1


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
):
    """Export ``source`` (a run folder, a ``.safetensors`` file, a pretrained name or a model) to ``out_dir``.

    Writes ``encoder.onnx``, ``decoder.onnx`` (plus ``decoder.fp16.onnx`` for ``dtype="fp16"``
    and ``decoder.int8.onnx`` for ``quantize="int8"``) and ``aezoo-export.json``, and returns
    the export as an :class:`aezoo.onnx.ExportedModel`. ``atol`` bounds the difference of float
    outputs from PyTorch; by default each part's own (:attr:`ExportPart.atol`, else 1e-5).
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
    model, origin = _resolve_source(source)
    model = copy.deepcopy(model).cpu().eval()  # the caller's model stays where and as it was
    name = origin.label if origin is not None else (model.architecture or "model")
    out = Path(out_dir) if out_dir is not None else Path("exports") / name
    _check_destination(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        if real_inputs is None and origin is not None:
            real_inputs, real_note = _real_inputs(model, origin.dataset, data_dir)
        else:
            real_note = "given by the caller" if real_inputs is not None else "no dataset: random inputs only"
        entries: dict[str, Any] = {}
        cases: list[dict[str, Any]] = []
        parts = model.export_parts()
        for part_name, part in parts.items():
            path = staging / f"{part_name}.onnx"
            say(f"exporting {part_name} (opset {opset})")
            _export_part(model, part_name, part, path, opset)
            tolerance = part.tolerance(atol)
            reports = validate_part(part, path, tolerance, real_inputs)
            cases += [_case_json(part_name, r) for r in reports]
            for report in reports:
                for tie in report.near_ties:
                    say(f"{part_name} {report.case}: {tie.describe()}")
            failed = [r for r in reports if not r.passed]
            if failed:
                raise ValidationFailed(
                    f"{part_name}.onnx does not match PyTorch; nothing was written:\n"
                    + validation.describe(reports, part_name, tolerance)
                )
            entries[part_name] = {**_entry(path, part), "atol": tolerance}
        variants = []
        if dtype == "fp16":
            variants.append("fp16")
        if quantize == "int8":
            variants.append("int8")
        for kind in variants:
            path = staging / f"decoder.{kind}.onnx"
            say(f"writing decoder.{kind}.onnx")
            try:
                _make_variant(staging / "decoder.onnx", path, kind)
            except Exception as exc:
                detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise AezooError(f"could not make decoder.{kind}.onnx ({detail}); export without it") from exc
            result = _validate_variant(kind, parts["decoder"], staging / "decoder.onnx", path, real_inputs)
            entry = _entry(path, parts["decoder"])
            entry.update({"variant_of": "decoder", "precision": _PRECISION[kind], "validation": result})
            entries[f"decoder.{kind}"] = entry
        for key, entry in entries.items():
            _stamp_metadata(staging / entry["file"], model, key, entry)
            entry["sha256"] = sha256(staging / entry["file"])
            entry["bytes"] = (staging / entry["file"]).stat().st_size
        default_atol = atol if atol is not None else DEFAULT_EXPORT_ATOL
        manifest = _manifest(model, origin, opset, default_atol, entries, cases, real_note)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    say(f"validated against onnxruntime: {len(cases)} cases passed")
    return ExportedModel(out)


# -- steps ---------------------------------------------------------------------------------------


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


def _check_destination(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).exists())):
        raise AezooError(f"{out} exists and is not an aezoo export; choose another --out")


def _real_inputs(model: AutoEncoder, dataset: str, data_dir: Any) -> tuple[Any, str]:
    from aezoo.data import first_examples, load_data, to_device

    try:
        data = load_data(dataset, data_dir=data_dir)
    except AezooError as exc:
        return None, f"skipped: {exc}"
    split = data.test if len(data.test) else data.val
    batch = first_examples(split, REAL_BATCH)
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        inputs, _ = model.prepare_batch(to_device(batch, model.device), train=False)
    return inputs, f"first {len(next(iter(batch.values())))} examples of the {dataset} test split"


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """The exporter talks a lot; keep it for error messages only."""
    log = io.StringIO()
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            warnings.simplefilter("ignore")
            yield log
    finally:
        logging.disable(previous)


def _export_part(model: AutoEncoder, part_name: str, part: ExportPart, path: Path, opset: int) -> None:
    import onnx

    with torch.no_grad():
        args = part.example(2)
    dynamic = tuple(dict(spec.dynamic) or None for spec in part.inputs)
    with _quiet():
        try:
            torch.onnx.export(
                part.module,
                args,
                str(path),
                dynamo=True,
                input_names=[s.name for s in part.inputs],
                output_names=[s.name for s in part.outputs],
                dynamic_shapes=dynamic,
                opset_version=opset,
                external_data=False,
                verbose=False,
            )
        except Exception as exc:
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AezooError(
                f"torch.onnx.export failed for the {part_name} of {model.architecture!r} at opset {opset}: "
                f"{detail}"
            ) from exc
    proto = onnx.load(str(path))
    written = _default_opset(proto)
    if written != opset:
        path.unlink()
        raise AezooError(
            f"opset {opset} cannot be honoured for the {part_name} of {model.architecture!r}: the "
            f"exporter wrote opset {written}; use --opset {written}"
        )
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
        onnx.save(proto, str(path))
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as exc:
        first = str(exc).strip().splitlines()[0]
        hint = f"; use --opset {DEFAULT_OPSET}" if opset < DEFAULT_OPSET else ""
        raise AezooError(
            f"opset {opset} cannot be honoured for the {part_name} of {model.architecture!r}: the exported "
            f"graph fails onnx.checker ({first}){hint}"
        ) from exc


def _outputs(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    with torch.no_grad():
        result = module(*args)
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def validate_part(
    part: ExportPart, path: Path, atol: float, real_inputs: Any = None, runtime: str = "onnxruntime",
    batches: tuple[int, ...] = VALIDATION_BATCHES,
) -> list[validation.CaseReport]:  # fmt: skip
    """Run ``path`` in ``runtime`` and PyTorch on fresh random inputs at each batch size and on
    ``real_inputs`` (model inputs, if given); one report per case."""
    run = validation.session(path, runtime)
    names = [s.name for s in part.outputs]
    cases: list[tuple[str, tuple[torch.Tensor, ...]]] = []
    with torch.random.fork_rng():
        for n in batches:
            torch.manual_seed(1000 + n)
            with torch.no_grad():
                cases.append((f"random batch {n}", part.example(n)))
    if real_inputs is not None:
        with torch.no_grad():
            cases.append((f"real batch {len(real_inputs)}", part.from_model_inputs(real_inputs)))
    reports = []
    for case, args in cases:
        expected = _outputs(part.module, args)
        feeds = {s.name: validation.to_numpy(a) for s, a in zip(part.inputs, args, strict=True)}
        try:
            actual = run(feeds)
        except Exception as exc:
            detail = str(exc).strip().splitlines()[0][:300]
            check = validation.OutputCheck(
                "*", [], [], float("inf"), False, note=f"{runtime} failed: {detail}"
            )
            reports.append(validation.CaseReport(case, [check]))
            continue
        decisions = part.decisions(args, expected) if part.decisions is not None else None
        reports.append(validation.compare(case, names, expected, actual, atol, decisions))
    return reports


_VARIANT_OPTION = {"fp16": "--dtype fp16", "int8": "--quantize int8"}
_PRECISION = {
    "fp16": "float16 weights and arithmetic, float32 inputs and outputs",
    "int8": "int8 weights (onnxruntime dynamic quantisation), float32 inputs and outputs",
}


def _make_variant(fp32_path: Path, path: Path, kind: str) -> None:
    import onnx

    with _quiet():
        if kind == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            proto = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
            _toposort(proto.graph)  # the converter appends its input casts at the end
            onnx.save(proto, str(path))
        else:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32_path), str(path), weight_type=QuantType.QInt8)
    proto = onnx.load(str(path))
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
        onnx.save(proto, str(path))
    onnx.checker.check_model(str(path), full_check=True)


def _validate_variant(
    kind: str, part: ExportPart, fp32_path: Path, path: Path, real_inputs: Any
) -> dict[str, Any]:
    """The variant's own error against the fp32 model: max abs diff and, for bounded outputs, PSNR.

    For a part whose integer outputs are step-by-step choices (``part.decisions``: an
    autoregressive decoder's tokens), what counts is the choices: at least
    :data:`VARIANT_CHOICE_AGREEMENT` of them must equal the fp32 model's in every case. One choice
    flipped on a near-tie changes every later step, so the float outputs laid out
    ``[batch, steps, ...]`` are reported up to and including each sequence's first flipped step,
    not gated (int8 weights move a trained decoder's logits by up to about 1 while its tokens
    agree at 99.9 % of steps; on random latents sampled at temperatures up to 1.5, 99.1 %).
    """
    reference = validation.session(fp32_path)
    candidate = validation.session(path)
    with torch.random.fork_rng():
        torch.manual_seed(1007)
        with torch.no_grad():
            args = part.example(7)
    cases = [("random batch 7", args)]
    if real_inputs is not None:
        with torch.no_grad():
            cases.append((f"real batch {len(real_inputs)}", part.from_model_inputs(real_inputs)))
    results: dict[str, Any] = {"against": "decoder.onnx (fp32) in onnxruntime", "cases": []}
    for case, case_args in cases:
        feeds = {s.name: validation.to_numpy(a) for s, a in zip(part.inputs, case_args, strict=True)}
        want, got = reference(feeds), candidate(feeds)
        prefix = None
        if part.decisions is not None:
            prefix = _agreeing_prefix(part, want, got)
            for spec, w, g in zip(part.outputs, want, got, strict=True):
                if np.issubdtype(w.dtype, np.floating):
                    continue
                agreement = float(np.mean(w == g))
                record = {
                    "case": case,
                    "output": spec.name,
                    "identical_fraction": agreement,
                    "required": VARIANT_CHOICE_AGREEMENT,
                    "passed": agreement >= VARIANT_CHOICE_AGREEMENT,
                }
                results["cases"].append(record)
                if not record["passed"]:
                    raise _refused(
                        kind,
                        f"chooses a different {spec.name!r} than the fp32 decoder at {1 - agreement:.1%} "
                        f"of steps ({case}), more than {1 - VARIANT_CHOICE_AGREEMENT:.0%}",
                    )
        for spec, w, g in zip(part.outputs, want, got, strict=True):
            if not np.issubdtype(w.dtype, np.floating):
                continue
            w64, g64 = w.astype(np.float64), g.astype(np.float64)
            per_step = prefix is not None and w.ndim >= 2 and w.shape[:2] == prefix.shape
            if per_step:
                w64, g64 = w64[prefix], g64[prefix]
            diff = float(np.max(np.abs(w64 - g64))) if w64.size else 0.0
            scale = (spec.range[1] - spec.range[0]) if spec.range else float(np.max(np.abs(w))) or 1.0
            tolerance = VARIANT_TOLERANCE[kind] * scale
            record = {"case": case, "output": spec.name, "max_abs_diff": diff, "tolerance": tolerance}
            if per_step:
                record["compared"] = "each sequence up to its first flipped choice; reported, not gated"
            if spec.range:
                record["psnr_db"] = round(validation.psnr(w, g, scale), 2)
            record["passed"] = bool(np.all(np.isfinite(g))) and (diff <= tolerance or per_step)
            results["cases"].append(record)
            if not record["passed"]:
                raise _refused(
                    kind,
                    f"differs from the fp32 decoder by {diff:.3g} on output {spec.name!r} ({case}), more "
                    f"than {tolerance:.3g}",
                )
    return results


def _refused(kind: str, why: str) -> ValidationFailed:
    return ValidationFailed(
        f"decoder.{kind}.onnx {why}; nothing was written: export without {_VARIANT_OPTION[kind]}"
    )


def _agreeing_prefix(part: ExportPart, want: list[np.ndarray], got: list[np.ndarray]) -> np.ndarray | None:
    """``[batch, steps]`` mask of the steps up to and including each sequence's first step where an
    integer output differs (all steps where none does), or None without ``[batch, steps]`` choices."""
    choices = [
        (w, g)
        for spec, w, g in zip(part.outputs, want, got, strict=True)
        if not np.issubdtype(w.dtype, np.floating) and w.ndim == 2
    ]
    if not choices:
        return None
    differs = np.zeros(choices[0][0].shape, dtype=bool)
    for w, g in choices:
        differs |= w != g
    steps = differs.shape[1]
    first = np.where(differs.any(1), differs.argmax(1), steps - 1)
    return np.arange(steps)[None, :] <= first[:, None]


def _entry(path: Path, part: ExportPart) -> dict[str, Any]:
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
            rows.append(row)
        return rows

    return {
        "file": path.name,
        "opset": _default_opset(proto),
        "ir_version": proto.ir_version,
        "inputs": tensors(proto.graph.input),
        "outputs": tensors(proto.graph.output),
    }


def _stamp_metadata(path: Path, model: AutoEncoder, key: str, entry: dict[str, Any]) -> None:
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


def _manifest(
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
        "source": _source_json(origin),
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
        "validation": {
            "runtime": f"onnxruntime {onnxruntime.__version__} (CPUExecutionProvider)",
            "atol": atol,
            "real_data": real_note,
            "passed": all(c["passed"] for c in cases),
            "cases": cases,
        },
    }


def _source_json(origin: Any) -> dict[str, Any] | None:
    if origin is None:
        return None
    source = {"path": str(origin.weights.resolve()), "sha256": sha256(origin.weights)}
    if origin.pretrained is not None:
        source["pretrained"] = origin.pretrained.name
    return source


def _case_json(part: str, report: validation.CaseReport) -> dict[str, Any]:
    return {
        "model": part,
        "case": report.case,
        "passed": report.passed,
        "outputs": {o.name: {"max_abs_diff": o.max_abs_diff, "exact": o.exact} for o in report.outputs},
        "near_ties": [dataclasses.asdict(t) for t in report.near_ties],
    }


def _move_into_place(staging: Path, out: Path) -> None:
    make_public(staging, directory=True)  # mkdtemp made it private
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _toposort(graph: Any) -> None:
    """Reorder ``graph.node`` so every node comes after the producers of its inputs."""
    available = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        ready = [n for n in pending if all(name in available for name in n.input)]
        if not ready:
            raise AezooError("the fp16 conversion produced a graph with a cycle or a missing input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if n not in ready]
    copies = [type(n)() for n in ordered]
    for duplicate, node in zip(copies, ordered, strict=True):
        duplicate.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)


def _default_opset(proto: Any) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)
