"""Reduced-precision variants of the decoder (fp16 weights, int8 dynamic quantisation), each
judged against the fp32 decoder before it is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo.errors import AezooError
from aezoo.model import ExportPart
from aezoo.onnx import validation
from aezoo.onnx.tracing import MAX_IR_VERSION, quiet
from aezoo.onnx.validation import ValidationFailed

#: Error allowed for reduced-precision variants, as a fraction of the output's value range.
VARIANT_TOLERANCE = {"fp16": 1e-2, "int8": 5e-2}


#: Share of an autoregressive decoder's choices a variant must make as the fp32 decoder does.
VARIANT_CHOICE_AGREEMENT = 0.95


VARIANT_OPTION = {"fp16": "--dtype fp16", "int8": "--quantize int8"}


PRECISION = {
    "fp16": "float16 weights and arithmetic, float32 inputs and outputs",
    "int8": "int8 weights (onnxruntime dynamic quantisation), float32 inputs and outputs",
}


def make_variant(fp32_path: Path, path: Path, kind: str) -> None:
    import onnx

    with quiet():
        if kind == "fp16":
            from onnxruntime.transformers.float16 import convert_float_to_float16

            proto = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)
            toposort(proto.graph)  # the converter appends its input casts at the end
            onnx.save(proto, str(path))
        else:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            quantize_dynamic(str(fp32_path), str(path), weight_type=QuantType.QInt8)
    proto = onnx.load(str(path))
    if proto.ir_version > MAX_IR_VERSION:
        proto.ir_version = MAX_IR_VERSION
        onnx.save(proto, str(path))
    onnx.checker.check_model(str(path), full_check=True)


#: The runtimes each variant is judged in, and the precision each computes it in. onnxruntime's CPU
#: provider has float16 kernels for few operators and runs the rest in float32 behind inserted
#: casts, so it flatters an fp16 model; onnx's reference evaluator computes float16 operators in
#: float16 (numpy), as a half-precision device would. A variant must pass in every runtime listed.
JUDGED_IN = {
    "fp16": {
        "onnxruntime": "mostly float32: the CPU provider casts to float32 around operators it has no "
        "float16 kernel for",
        "reference": "float16: onnx's reference evaluator computes float16 operators in float16 (numpy)",
    },
    "int8": {
        "onnxruntime": "int8 matrix products with int32 accumulation (dynamic quantisation), the rest float32",
    },
}


def validate_variant(
    kind: str, part: ExportPart, fp32_path: Path, path: Path, real_inputs: Any
) -> dict[str, Any]:
    """The variant's own error against the fp32 model (in onnxruntime) in each runtime of
    :data:`JUDGED_IN`: max abs diff and, for bounded outputs, PSNR.

    For a part whose integer outputs are step-by-step choices (``part.decisions``: an
    autoregressive decoder's tokens), what counts is the choices: at least
    :data:`VARIANT_CHOICE_AGREEMENT` of them must equal the fp32 model's in every case. One choice
    flipped on a near-tie changes every later step, so the float outputs laid out
    ``[batch, steps, ...]`` are reported up to and including each sequence's first flipped step,
    not gated (int8 weights move a trained decoder's logits by up to about 1 while its tokens
    agree at 99.9 % of steps; on random latents sampled at temperatures up to 1.5, 99.1 %).
    """
    reference = validation.session(fp32_path)
    with torch.random.fork_rng():
        torch.manual_seed(1007)
        with torch.no_grad():
            args = part.example(7)
    cases = [("random batch 7", args)]
    if real_inputs is not None:
        with torch.no_grad():
            cases.append((f"real batch {len(real_inputs)}", part.from_model_inputs(real_inputs)))
    results: dict[str, Any] = {
        "against": "decoder.onnx (fp32) in onnxruntime",
        "computes_in": dict(JUDGED_IN[kind]),
        "cases": [],
    }
    for runtime in JUDGED_IN[kind]:
        candidate = validation.session(path, runtime)
        for case, case_args in cases:
            feeds = {s.name: validation.to_numpy(a) for s, a in zip(part.inputs, case_args, strict=True)}
            records = _judge(kind, part, reference(feeds), candidate(feeds), f"{case}, {runtime}")
            results["cases"] += [{"runtime": runtime, **r} for r in records]
    return results


def _judge(
    kind: str, part: ExportPart, want: list[np.ndarray], got: list[np.ndarray], case: str
) -> list[dict[str, Any]]:
    """Records of one case in one runtime; raises :func:`refused` at the first that fails."""
    records: list[dict[str, Any]] = []
    prefix = None
    if part.decisions is not None:
        prefix = agreeing_prefix(part, want, got)
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
            records.append(record)
            if not record["passed"]:
                raise refused(
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
        records.append(record)
        if not record["passed"]:
            raise refused(
                kind,
                f"differs from the fp32 decoder by {diff:.3g} on output {spec.name!r} ({case}), more "
                f"than {tolerance:.3g}",
            )
    return records


def refused(kind: str, why: str) -> ValidationFailed:
    return ValidationFailed(
        f"decoder.{kind}.onnx {why}; nothing was written: export without {VARIANT_OPTION[kind]}"
    )


def agreeing_prefix(part: ExportPart, want: list[np.ndarray], got: list[np.ndarray]) -> np.ndarray | None:
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


def toposort(graph: Any) -> None:
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
