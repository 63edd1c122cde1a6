"""Compare an ONNX model's outputs with PyTorch's (after optimum's ``validate_model_outputs``)."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aezoo.errors import AezooError

RUNTIMES = ("onnxruntime", "reference", "openvino", "tract")

#: The optional runtimes: the Python package each needs, and the extra that installs it.
OPTIONAL_RUNTIMES = {"openvino": "openvino", "tract": "tract"}


class ValidationFailed(AezooError):
    """An exported model does not reproduce PyTorch (or its fp32 self) within tolerance."""

    exit_code = 1


@dataclasses.dataclass
class OutputCheck:
    """One output on one case: shapes, the largest difference, and whether it passed."""

    name: str
    torch_shape: list[int]
    onnx_shape: list[int]
    max_abs_diff: float
    passed: bool
    exact: bool = False  # integer outputs must be identical
    note: str = ""
    near_ties: list[NearTie] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class NearTie:
    """An argmax choice that ONNX made differently from PyTorch where PyTorch's two best scores
    were within tolerance of each other: not an export error, but everything chosen after it in
    that example differs, so it is reported and the rest of the example is not compared."""

    example: int
    position: list[int]
    torch_choice: int
    onnx_choice: int
    gap: float

    def describe(self) -> str:
        where = ", ".join(map(str, self.position))
        return (
            f"near-tie at example {self.example}, position [{where}]: PyTorch chose {self.torch_choice}, "
            f"ONNX {self.onnx_choice}, PyTorch's two best scores {self.gap:.2g} apart; later positions "
            "of that example not compared"
        )


@dataclasses.dataclass
class CaseReport:
    case: str
    outputs: list[OutputCheck]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    @property
    def near_ties(self) -> list[NearTie]:
        return [t for o in self.outputs for t in o.near_ties]


class MissingRuntime(AezooError):
    """An optional runtime whose Python package is not installed."""


class RuntimeFailure(RuntimeError):
    """A runtime could not load or run a model; the message is one line naming the runtime, its
    version and, where the runtime's error names one, the operator."""


def runtime_version(runtime: str) -> str:
    """The installed version of ``runtime``'s package ("" where it is not installed)."""
    from importlib import metadata

    package = {"reference": "onnx"}.get(runtime, runtime)
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return ""


def runtime_label(runtime: str) -> str:
    """``tract 0.23.9``; the reference evaluator is onnx's."""
    version = runtime_version(runtime)
    name = "onnx.reference" if runtime == "reference" else runtime
    return f"{name} {version}".strip()


def require(runtime: str) -> Any:
    import importlib

    package = OPTIONAL_RUNTIMES[runtime]
    try:
        return importlib.import_module(package)
    except ImportError as exc:
        raise MissingRuntime(
            f"the {runtime} runtime needs the {package!r} package ({exc}): pip install 'aezoo[{runtime}]'"
        ) from None


# tract names the node: 'Failed analyse for node #8 "node_linear" Gemm', 'Evaluating #14 "lstm" Scan',
# 'Translating node #1 "frob" Unimplemented(Frobnicate)'; OpenVINO the operations it cannot convert:
# 'No conversion rule found for operations: com.example.Frobnicate'
_NODE = re.compile(r'#\d+ "([^"]*)" ([A-Z]\w*)(?:\((\w+)\))?')
_OV_OPS = re.compile(r"(?:for|following \w+) operations?: ([\w.:]+(?:, [\w.:]+)*)")
_NOISE = re.compile(r"^(Exception from src/|Check '.*' failed at |Summary:$|stack backtrace|backtrace)")


def describe_failure(runtime: str, exc: BaseException) -> str:
    """One line: the runtime and its version, the operator (where the error names one), the error."""
    text = str(exc).strip()
    keep = []
    for line in (line.strip() for line in text.splitlines()):
        if line.lower().startswith(("stack backtrace", "backtrace")):
            break  # tract may append a Rust backtrace
        if not line or line.startswith("at ") or line == "Caused by:" or _NOISE.match(line):
            continue  # tract chains its causes, numbered; OpenVINO prefixes source locations
        keep.append(re.sub(r"^(\d+: |-- )", "", line))
    detail = "; ".join(keep[:4]) if keep else type(exc).__name__
    where = ""
    if found := _NODE.search(text):
        where = f", operator {found.group(3) or found.group(2)} (node {found.group(1)!r})"
    elif found := _OV_OPS.search(text):
        where = f", operator {found.group(1)}"
    return f"{runtime_label(runtime)}{where}: {detail[:300]}"


def _guarded(runtime: str, run: Callable[[Mapping[str, np.ndarray]], list[np.ndarray]], backend: Any) -> Any:
    def call(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        try:
            return run(feeds)
        except Exception as exc:
            raise RuntimeFailure(describe_failure(runtime, exc)) from exc

    call.backend = backend  # the runtime's own object (OpenVINO's compiled model, tract's runnable)
    return call


def session(path: str | Path, runtime: str = "onnxruntime") -> Any:
    """A callable ``feeds -> list of arrays`` in the named runtime.

    ``openvino`` and ``tract`` (optional packages: ``pip install 'aezoo[openvino]'``,
    ``'aezoo[tract]'``) share no code with onnxruntime. OpenVINO runs on its CPU device with
    ``INFERENCE_PRECISION_HINT`` f32: on processors with bf16 units its CPU plugin otherwise computes
    in bf16 (differences up to 1e-2). A model such a runtime cannot load raises :class:`RuntimeFailure`,
    as does a run that fails, with one line naming the runtime, its version and the operator.
    """
    path = str(path)
    if runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        sess = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        return lambda feeds: sess.run(None, feeds)
    if runtime == "reference":
        from onnx.reference import ReferenceEvaluator

        ref = ReferenceEvaluator(path)
        return lambda feeds: ref.run(None, feeds)
    if runtime == "openvino":
        ov = require(runtime)
        try:
            core = ov.Core()
            compiled = core.compile_model(core.read_model(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        except Exception as exc:
            raise RuntimeFailure(describe_failure(runtime, exc)) from exc
        request = compiled.create_infer_request()

        def run_openvino(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            results = request.infer({name: np.ascontiguousarray(v) for name, v in feeds.items()})
            return [np.array(results[output]) for output in compiled.outputs]

        return _guarded(runtime, run_openvino, compiled)
    if runtime == "tract":
        tract = require(runtime)
        try:
            # the ONNX file's symbolic dimensions ("batch") become tract symbols: one plan, any batch
            model = tract.onnx().load(path)
            names = [model.input_name(i) for i in range(model.input_count())]
            runnable = model.into_model().into_runnable()
        except Exception as exc:
            raise RuntimeFailure(describe_failure(runtime, exc)) from exc

        def run_tract(feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
            outputs = runnable.run([np.ascontiguousarray(feeds[name]) for name in names])
            return [o.to_numpy() for o in outputs]

        return _guarded(runtime, run_tract, runnable)
    raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


def to_numpy(value: torch.Tensor) -> np.ndarray:
    return value.detach().cpu().numpy()


def compare(
    case: str,
    names: Sequence[str],
    expected: Sequence[torch.Tensor],
    actual: Sequence[np.ndarray],
    atol: float,
    decisions: Mapping[str, torch.Tensor] | None = None,
) -> CaseReport:
    """Names, shapes and values: floats within ``atol``, integers identical.

    ``decisions`` gives, for integer outputs that are argmaxes chosen one after another along
    their axes (an autoregressive decoder's tokens), PyTorch's scores with one more axis holding
    the options. Where such an output first differs in an example and PyTorch's scores of the two
    choices are within ``2 · atol`` (each runtime may be off by ``atol``), the flip is a near-tie:
    it is reported, and that example is compared only up to it (the flipped choice excluded, its
    scores included) in this output and in outputs sharing its leading axes. Any other
    difference fails.
    """
    checks = []
    if len(expected) != len(actual):
        note = f"PyTorch gives {len(expected)} outputs, ONNX {len(actual)}"
        return CaseReport(case, [OutputCheck("*", [], [], math.inf, False, note=note)])
    wants = {name: to_numpy(want) for name, want in zip(names, expected, strict=True)}
    gots = dict(zip(names, actual, strict=True))
    ties: dict[str, list[NearTie]] = {}
    cuts: dict[tuple[int, ...], dict[int, int]] = {}  # leading shape -> example -> first flip
    for name, scores in (decisions or {}).items():
        want, got = wants.get(name), gots.get(name)
        if want is not None and got is not None and want.shape == got.shape and want.ndim >= 1:
            found = _near_ties(want, got, to_numpy(scores), atol)
            if found:
                ties[name] = found
                cut = cuts.setdefault(want.shape, {})
                for tie in found:
                    cut[tie.example] = int(np.ravel_multi_index(tie.position, want.shape[1:]))
    for name in names:
        want_np, got = wants[name], gots[name]
        exact = not np.issubdtype(want_np.dtype, np.floating)
        if want_np.shape != got.shape:
            checks.append(
                OutputCheck(
                    name, list(want_np.shape), list(got.shape), math.inf, False, exact, "shape differs"
                )
            )
            continue
        if want_np.size == 0:
            checks.append(OutputCheck(name, list(want_np.shape), list(got.shape), 0.0, True, exact))
            continue
        mask = _compared(want_np.shape, cuts, include_flip=not exact)
        diffs = np.abs(want_np.astype(np.float64) - got.astype(np.float64))[mask]
        diff = float(np.max(diffs)) if diffs.size else 0.0
        finite = bool(np.all(np.isfinite(got[mask]))) == bool(np.all(np.isfinite(want_np[mask])))
        passed = finite and (diff == 0.0 if exact else diff <= atol)
        notes = [t.describe() for t in ties.get(name, [])]
        if exact and not passed:
            notes.append(_first_difference(want_np, got, mask))
        checks.append(
            OutputCheck(
                name, list(want_np.shape), list(got.shape), diff, passed, exact, "; ".join(notes),
                ties.get(name, []),
            )
        )  # fmt: skip
    return CaseReport(case, checks)


def _near_ties(want: np.ndarray, got: np.ndarray, scores: np.ndarray, atol: float) -> list[NearTie]:
    """Examples whose first difference is a flip between two scores within ``2 · atol``."""
    if scores.shape[:-1] != want.shape:
        return []
    ties = []
    flat_want, flat_got = want.reshape(len(want), -1), got.reshape(len(got), -1)
    flat_scores = scores.reshape(len(scores), flat_want.shape[1], -1).astype(np.float64)
    for example in range(len(want)):
        differ = np.flatnonzero(flat_want[example] != flat_got[example])
        if not len(differ):
            continue
        first = int(differ[0])
        options = flat_scores[example, first]
        best, chosen = int(flat_want[example, first]), int(flat_got[example, first])
        if not (0 <= chosen < len(options) and 0 <= best < len(options)):
            continue
        gap = float(options[best] - options[chosen])
        if gap <= 2 * atol:
            position = [int(i) for i in np.unravel_index(first, want.shape[1:])]
            ties.append(NearTie(example, position, best, chosen, gap))
    return ties


def _compared(
    shape: tuple[int, ...], cuts: dict[tuple[int, ...], dict[int, int]], include_flip: bool
) -> np.ndarray:
    """Which elements of an output of ``shape`` to compare, given near-tie flips in outputs whose
    shape is a prefix of it: an example's elements before its flip (and at it, for the scores)."""
    mask = np.ones(shape, dtype=bool)
    for lead, examples in cuts.items():
        if shape[: len(lead)] != lead:
            continue
        flat = mask.reshape(shape[0], int(np.prod(lead[1:], dtype=np.int64)), -1)
        for example, first in examples.items():
            flat[example, first + (1 if include_flip else 0) :] = False
    return mask


def _first_difference(want: np.ndarray, got: np.ndarray, mask: np.ndarray) -> str:
    where = np.argwhere((want != got) & mask)
    if not len(where):
        return ""
    index = tuple(int(i) for i in where[0])
    return f"first differs at {list(index)}: PyTorch {want[index]}, ONNX {got[index]}"


def describe(reports: Sequence[CaseReport], part: str, atol: float) -> str:
    lines = []
    for report in reports:
        for o in report.outputs:
            verdict = "ok" if o.passed else "FAILED"
            bound = "identical" if o.exact else f"atol {atol:g}"
            extra = f" ({o.note})" if o.note else ""
            lines.append(
                f"  {part} {report.case}: output {o.name!r} max abs diff {o.max_abs_diff:.3g} "
                f"[{bound}] {verdict}{extra}"
            )
    return "\n".join(lines)


def psnr(reference: np.ndarray, other: np.ndarray, peak: float) -> float:
    mse = float(np.mean((reference.astype(np.float64) - other.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(peak**2 / mse)
