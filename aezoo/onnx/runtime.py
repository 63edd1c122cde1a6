"""Run an export from numpy, with inputs checked against the manifest before onnxruntime sees them."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aezoo.errors import AezooError

MANIFEST_FILE = "aezoo-export.json"


#: A manifest is small; anything bigger is not one.
MAX_MANIFEST_BYTES = 16 << 20


def read_manifest(export_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The export's manifest, checked against its format and JSON Schema before anything uses it."""
    from aezoo.onnx.schema import check_manifest

    path = Path(export_dir).expanduser() / MANIFEST_FILE
    if not path.is_file():
        raise AezooError(
            f"{path.parent} is not an aezoo export: it has no {MANIFEST_FILE} (run `aezoo export RUN`)"
        )
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise AezooError(f"{path} is {path.stat().st_size:,} bytes, too large to be a manifest; export again")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AezooError(f"{path} is not valid JSON ({exc}); export again") from exc
    check_manifest(manifest, str(path))
    return manifest


class OnnxPart:
    """One exported model (``encoder``, ``decoder`` or a variant) as a numpy function.

    Call it with arrays by position or by input name; it returns ``{output name: array}``. A
    wrong name, dtype, rank or fixed dimension is an :class:`~aezoo.AezooError` saying what was
    expected, before onnxruntime runs.
    """

    def __init__(self, path: str | os.PathLike[str], entry: Mapping[str, Any], name: str = "") -> None:
        self.path = Path(path)
        self.entry = dict(entry)
        self.name = name or self.path.stem
        self.inputs: list[dict[str, Any]] = list(entry["inputs"])
        self.outputs: list[dict[str, Any]] = list(entry["outputs"])
        self._session: Any = None

    def __repr__(self) -> str:
        sig = ", ".join(f"{i['name']}: {i['dtype']}{i['shape']}" for i in self.inputs)
        return f"<OnnxPart {self.name}({sig})>"

    @property
    def session(self) -> Any:
        """The onnxruntime session, made on first use from a file checked against the manifest's
        sha256, so a modified or swapped file is an error rather than wrong numbers."""
        if self._session is None:
            import onnxruntime as ort

            from aezoo.fileio import sha256

            if not self.path.is_file():
                raise AezooError(f"{self.path} is missing or not a file; export again")
            expected = self.entry.get("sha256")
            try:
                found = sha256(self.path)
            except OSError as exc:
                raise AezooError(
                    f"{self.path} cannot be read ({exc.strerror or exc}); export again"
                ) from None
            if expected and found != expected:
                raise AezooError(
                    f"{self.path} does not match the manifest's sha256 (it was modified or swapped); "
                    f"export again (`aezoo verify {self.path.parent}` says more)"
                )
            options = ort.SessionOptions()
            options.log_severity_level = 3
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        return self._session

    def feeds(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        """Match arguments to inputs and check them against the manifest."""
        names = [i["name"] for i in self.inputs]
        if len(args) > len(names):
            raise AezooError(f"{self.name} takes {len(names)} input(s) ({', '.join(names)}), got {len(args)}")
        values = dict(zip(names, args, strict=False))
        for key, value in kwargs.items():
            if key not in names:
                raise AezooError(f"{self.name} has no input {key!r}; its inputs are {', '.join(names)}")
            if key in values:
                raise AezooError(f"{self.name}: input {key!r} given twice")
            values[key] = value
        missing = [n for n in names if n not in values]
        if missing:
            raise AezooError(f"{self.name} needs input(s) {', '.join(missing)}")
        feeds: dict[str, np.ndarray] = {}
        batch: dict[str, int] = {}
        for spec in self.inputs:
            value = values[spec["name"]]
            array = np.asarray(value)
            want_dtype = np.dtype(spec["dtype"])
            shape_text = "[" + ", ".join(map(str, spec["shape"])) + "]"
            if array.dtype != want_dtype:
                raise AezooError(
                    f"{self.name} input {spec['name']!r} must be {want_dtype.name} {shape_text}, got "
                    f"{array.dtype.name}; convert it with .astype(np.{want_dtype.name})"
                )
            if array.ndim != len(spec["shape"]):
                raise AezooError(
                    f"{self.name} input {spec['name']!r} must have shape {shape_text}, got {list(array.shape)}"
                )
            for axis, (want, got) in enumerate(zip(spec["shape"], array.shape, strict=True)):
                if isinstance(want, int) and want > 0 and want != got:
                    raise AezooError(
                        f"{self.name} input {spec['name']!r} must have shape {shape_text}, got "
                        f"{list(array.shape)} (axis {axis} must be {want})"
                    )
                if isinstance(want, str) and want == "batch":
                    batch[spec["name"]] = got
            classes = spec.get("classes")
            if classes is not None and array.size and not 0 <= int(array.min()) <= int(array.max()) < classes:
                raise AezooError(
                    f"{self.name} input {spec['name']!r} holds indices from 0 to {classes - 1}, got values from "
                    f"{int(array.min())} to {int(array.max())}"
                )
            if len(set(batch.values())) > 1:
                raise AezooError(f"{self.name}: inputs disagree on the batch size: {batch}")
            feeds[spec["name"]] = np.ascontiguousarray(array)
        return feeds

    def __call__(self, *args: Any, **kwargs: Any) -> dict[str, np.ndarray]:
        feeds = self.feeds(*args, **kwargs)
        results = self.session.run(None, feeds)
        return {o["name"]: r for o, r in zip(self.outputs, results, strict=True)}


class ExportedModel:
    """An export folder: its manifest and each model as an :class:`OnnxPart`.

    ``export.encoder(images)["code"]``, ``export.decoder(code)["image"]``; variants are
    ``export.parts["decoder.fp16"]``.
    """

    def __init__(self, export_dir: str | os.PathLike[str]) -> None:
        from aezoo.onnx.schema import part_path

        self.path = Path(export_dir).expanduser()
        self.manifest = read_manifest(self.path)
        self.parts = {
            key: OnnxPart(part_path(self.path, entry["file"]), entry, key)
            for key, entry in self.manifest["models"].items()
        }

    def __repr__(self) -> str:
        return (
            f"ExportedModel({str(self.path)!r}, {self.manifest['architecture']!r}, parts={list(self.parts)})"
        )

    @property
    def encoder(self) -> OnnxPart:
        return self.parts["encoder"]

    @property
    def decoder(self) -> OnnxPart:
        return self.parts["decoder"]


def load_export(export_dir: str | os.PathLike[str]) -> ExportedModel:
    """Open an export folder written by ``aezoo export``."""
    return ExportedModel(export_dir)
