"""aezoo: a plugin-based autoencoder model zoo for PyTorch with ONNX export.

Importing aezoo does not import torch; the functions that need it import it when called.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aezoo._version import __version__
from aezoo.callbacks import Callback
from aezoo.errors import AezooError, HParamError, PluginError
from aezoo.hookspecs import hookimpl
from aezoo.hparams import HParams, hparam
from aezoo.registry import Architecture, Command, Dataset, Pretrained, TrainerCallback

if TYPE_CHECKING:
    from aezoo.model import AutoEncoder
    from aezoo.runs import Run


def list_architectures(pattern: str = "*") -> list[str]:
    """Names of the registered architectures matching ``pattern`` (fnmatch wildcards)."""
    from aezoo.plugins import registry

    return registry().list_architectures(pattern)


def list_datasets() -> list[str]:
    """Names of the registered datasets."""
    from aezoo.plugins import registry

    return sorted(registry().datasets)


def architecture(name: str) -> Architecture:
    """The registered :class:`Architecture` called ``name`` (close matches suggested)."""
    from aezoo.plugins import registry

    return registry().architecture(name)


def create(name: str, *, pretrained: str | None = None, **hparams: Any) -> AutoEncoder:
    """A new, untrained model of architecture ``name`` with ``hparams`` over the defaults; with
    ``pretrained="TAG"``, the trained model ``NAME:TAG`` instead (``create("vae", pretrained="mnist")``)."""
    if pretrained is not None:
        if hparams:
            raise AezooError(
                f"a pretrained model comes with its own hyperparameters; drop {', '.join(sorted(hparams))}"
            )
        return load(f"{name}:{pretrained}")
    from aezoo.modelsize import check_fits

    arch = architecture(name)
    values = arch.make_hparams(**hparams)
    check_fits(arch, values)  # a model larger than this machine's memory is one line, not a crash
    return arch.build(values)


def load(path: str | os.PathLike[str], device: str = "cpu") -> AutoEncoder:
    """The model in a run folder, a ``.safetensors`` file or a pretrained entry (``"vae:mnist"``),
    in eval mode."""
    from aezoo.checkpoint import load as _load
    from aezoo.registry import is_pretrained_name

    if isinstance(path, str) and not Path(path).expanduser().exists() and is_pretrained_name(path):
        from aezoo import pretrained

        path = pretrained.weights_path(pretrained.entry(path))
    return _load(path, device=device)


def list_pretrained(pattern: str = "*") -> list[str]:
    """Names of the registered pretrained models matching ``pattern`` (``"vae:*"``)."""
    import fnmatch

    from aezoo.plugins import registry

    return sorted(n for n in registry().pretrained if fnmatch.fnmatchcase(n, pattern))


def save(
    model: AutoEncoder,
    path: str | os.PathLike[str],
    *,
    recipe: dict[str, Any] | None = None,
    dtype: str = "float32",
) -> None:
    """Write ``model`` to a ``.safetensors`` file that :func:`load` can rebuild it from; ``recipe``
    is stored in its metadata, ``dtype="float16"`` halves the file (see :func:`aezoo.checkpoint.save`)."""
    from aezoo.checkpoint import save as _save

    _save(model, path, recipe=recipe, dtype=dtype)


def train(architecture: str, dataset: str | None = None, **kwargs: Any) -> Run:
    """Train a model into a new run folder; see :func:`aezoo.training.train`."""
    from aezoo.training import train as _train

    return _train(architecture, dataset, **kwargs)


def export(source: Any, out_dir: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
    """Export a run, ``.safetensors`` file or model to validated ONNX; see :func:`aezoo.onnx.export`."""
    from aezoo.onnx import export as _export

    return _export(source, out_dir, **kwargs)


def load_export(export_dir: str | os.PathLike[str]) -> Any:
    """Open an export folder to run its encoder and decoder from numpy."""
    from aezoo.onnx import load_export as _load_export

    return _load_export(export_dir)


def register_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin object defined in code, next to the installed ones."""
    from aezoo.plugins import register_plugin as _register

    _register(plugin, name)


__all__ = [
    "AezooError",
    "Architecture",
    "Callback",
    "Command",
    "Dataset",
    "HParamError",
    "HParams",
    "PluginError",
    "Pretrained",
    "TrainerCallback",
    "__version__",
    "architecture",
    "create",
    "export",
    "hookimpl",
    "hparam",
    "list_architectures",
    "list_datasets",
    "list_pretrained",
    "load",
    "load_export",
    "register_plugin",
    "save",
    "train",
]
