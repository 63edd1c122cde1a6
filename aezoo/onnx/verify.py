"""``aezoo verify``: re-check an export against its manifest and its run's weights."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from aezoo.errors import AezooError
from aezoo.onnx import validation
from aezoo.onnx.runtime import read_manifest
from aezoo.onnx.schema import part_path

VERIFY_BATCHES = (1, 3)


@dataclasses.dataclass
class VerifyReport:
    lines: list[str]
    problems: list[str]

    @property
    def passed(self) -> bool:
        return not self.problems


def verify(
    export_dir: str | os.PathLike[str],
    *,
    runtime: str = "onnxruntime",
    weights: str | os.PathLike[str] | None = None,
    atol: float | None = None,
) -> VerifyReport:
    """Checksums against the manifest, then parity with the weights in ``runtime``:
    ``onnxruntime``, ``reference`` (``onnx.reference.ReferenceEvaluator``), or ``openvino`` and
    ``tract``, which share no code with onnxruntime (optional: ``pip install 'aezoo[openvino]'``,
    ``'aezoo[tract]'``). A part a runtime cannot run is a problem naming the runtime, its version
    and, where its error names one, the operator."""
    from aezoo import checkpoint
    from aezoo.fileio import sha256
    from aezoo.onnx.parity import validate_part

    if runtime not in validation.RUNTIMES:
        raise AezooError(f"--runtime must be one of {', '.join(validation.RUNTIMES)}, got {runtime!r}")
    if runtime in validation.OPTIONAL_RUNTIMES:
        validation.require(runtime)  # one line naming the extra to install, before any work
    if atol is not None and not atol > 0:
        raise AezooError(f"--atol must be positive, got {atol}")
    root = Path(export_dir).expanduser()
    manifest = read_manifest(root)
    lines: list[str] = []
    problems: list[str] = []
    for entry in manifest["models"].values():
        path = part_path(root, entry["file"])
        if not path.is_file():
            problems.append(f"{entry['file']} is missing or not a file")
            continue
        if sha256(path) != entry["sha256"]:
            problems.append(
                f"{entry['file']} does not match the manifest's sha256: it was modified or swapped"
            )
        else:
            lines.append(f"{entry['file']}: sha256 ok")
    recorded = manifest.get("source") or {}
    if not weights and not recorded:
        raise AezooError(f"{root} was exported from a model in memory; pass --weights FILE to check parity")
    model_file = _weights_file(str(weights) if weights else "", recorded, root)
    if not weights and sha256(model_file) != recorded.get("sha256"):
        problems.append(f"{model_file} changed since the export (sha256 differs): export again")
    model = checkpoint.load(model_file).eval()
    if model.architecture != manifest["architecture"]:
        raise AezooError(
            f"{model_file} holds a {model.architecture!r} model, the export a {manifest['architecture']!r} one"
        )
    parts = model.export_parts()
    for key, part in parts.items():
        entry = manifest["models"].get(key)
        if entry is None or not (root / entry["file"]).is_file():
            continue
        tolerance = atol if atol is not None else entry.get("atol", manifest["validation"]["atol"])
        try:
            validation.session(root / entry["file"], runtime)
        except (ImportError, validation.MissingRuntime):
            raise
        except validation.RuntimeFailure as exc:  # openvino or tract cannot run this model
            problems.append(f"{entry['file']} cannot be loaded by {exc}")
            continue
        except Exception as exc:  # a damaged file the runtime cannot even load
            reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            problems.append(f"{entry['file']} cannot be loaded by {runtime} ({reason}): export again")
            continue
        reports = validate_part(part, root / entry["file"], tolerance, None, runtime, VERIFY_BATCHES)
        text = validation.describe(reports, key, tolerance)
        lines.append(text)
        if not all(r.passed for r in reports):
            problems.append(f"{entry['file']} does not match the weights in {runtime}:\n{text}")
    return VerifyReport(lines, problems)


def _weights_file(given: str, recorded: dict, root: Path) -> Path:
    """The weights to compare with: ``given`` (a path or a pretrained name); else the export's
    pretrained entry; else the run folder the export sits in, when its weights are the ones
    exported (``aezoo export RUN`` writes ``RUN/onnx``)."""
    from aezoo import checkpoint, pretrained
    from aezoo.fileio import sha256
    from aezoo.registry import is_pretrained_name

    if given:
        path = Path(given).expanduser()
        if path.exists():
            return checkpoint.resolve_model_path(path)
        if is_pretrained_name(given):
            return pretrained.weights_path(pretrained.entry(given))
        raise AezooError(
            f"weights {given} not found; pass --weights with the run folder or .safetensors file"
        )
    if recorded.get("pretrained"):
        return pretrained.weights_path(pretrained.entry(recorded["pretrained"]))
    if recorded.get("path") and Path(recorded["path"]).is_file():  # exports of aezoo 0.1 name a path
        return Path(recorded["path"])
    for folder in (root.parent, root.parent.parent):
        candidate = folder / recorded.get("file", checkpoint.MODEL_FILE)
        if candidate.is_file() and sha256(candidate) == recorded.get("sha256"):
            return candidate
    name = recorded.get("run") or "the model"
    raise AezooError(
        f"the weights that {root} was exported from ({name}, sha256 {str(recorded.get('sha256'))[:12]}…) are not "
        "beside it; pass --weights with the run folder or .safetensors file"
    )
