"""Parity of an exported part with PyTorch: fresh random inputs at several batch sizes and a real
batch, run in a runtime and compared output by output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from aezoo.model import ExportPart
from aezoo.onnx import validation

VALIDATION_BATCHES = (1, 7)


def torch_outputs(module: torch.nn.Module, args: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
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
        expected = torch_outputs(part.module, args)
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
