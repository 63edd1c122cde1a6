"""Tracing one part (encoder or decoder) to ONNX with torch.onnx's dynamo exporter, and checking
the file it writes: the opset asked for, an IR version every runtime reads, ``onnx.checker``."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from aezoo.errors import AezooError
from aezoo.model import AutoEncoder, ExportPart

#: The torch.onnx (dynamo) exporter writes opset 18 and up natively; below, it down-converts,
#: which can fail or produce invalid graphs (LSTM ``Split`` nodes at 17), caught by validation.
DEFAULT_OPSET = 18


LOWEST_OPSET = 9


HIGHEST_OPSET = 25


#: onnxruntime-node 1.30 refuses IR version 11 and above.
MAX_IR_VERSION = 10


@contextlib.contextmanager
def quiet() -> Iterator[io.StringIO]:
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


def trace_part(model: AutoEncoder, part_name: str, part: ExportPart, path: Path, opset: int) -> None:
    import onnx

    with torch.no_grad():
        args = part.example(2)
    dynamic = tuple(dict(spec.dynamic) or None for spec in part.inputs)
    with quiet():
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
    written = default_opset(proto)
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


def default_opset(proto: Any) -> int:
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), -1)
