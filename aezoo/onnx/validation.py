"""Compare an ONNX model's outputs with PyTorch's (after optimum's ``validate_model_outputs``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

RUNTIMES = ("onnxruntime", "reference")


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


@dataclasses.dataclass
class CaseReport:
    case: str
    outputs: list[OutputCheck]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)


def session(path: str | Path, runtime: str = "onnxruntime") -> Any:
    """A callable ``feeds -> list of arrays`` in the named runtime."""
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
    raise ValueError(f"unknown runtime {runtime!r}; choose one of {', '.join(RUNTIMES)}")


def to_numpy(value: torch.Tensor) -> np.ndarray:
    return value.detach().cpu().numpy()


def compare(
    case: str,
    names: Sequence[str],
    expected: Sequence[torch.Tensor],
    actual: Sequence[np.ndarray],
    atol: float,
) -> CaseReport:
    """Names, shapes and values: floats within ``atol``, integers identical."""
    checks = []
    if len(expected) != len(actual):
        note = f"PyTorch gives {len(expected)} outputs, ONNX {len(actual)}"
        return CaseReport(case, [OutputCheck("*", [], [], math.inf, False, note=note)])
    for name, want, got in zip(names, expected, actual, strict=True):
        want_np = to_numpy(want)
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
        diff = float(np.max(np.abs(want_np.astype(np.float64) - got.astype(np.float64))))
        finite = bool(np.all(np.isfinite(got))) == bool(np.all(np.isfinite(want_np)))
        passed = finite and (diff == 0.0 if exact else diff <= atol)
        checks.append(OutputCheck(name, list(want_np.shape), list(got.shape), diff, passed, exact))
    return CaseReport(case, checks)


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
