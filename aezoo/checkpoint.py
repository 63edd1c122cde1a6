"""Model and trainer-state files, in safetensors only (nothing is ever pickled).

A model file's metadata alone rebuilds the model: ``aezoo.architecture``, ``aezoo.hparams``
(JSON) and ``aezoo.version``; ``aezoo.distribution`` names the distribution that provides the
architecture (so a missing plugin is named) and ``aezoo.recipe`` (JSON), where known, the whole
recipe it was trained from (architecture, hyperparameters, dataset, trainer settings).

A training checkpoint (``last.safetensors``, :mod:`aezoo.trainstate`) is such a file too, holding
the latest weights, with the trainer's state beside them in tensors named ``@...`` that loading
a model skips.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from aezoo._version import __version__
from aezoo.errors import AezooError, HParamError
from aezoo.fileio import atomic_path
from aezoo.model import AutoEncoder
from aezoo.modelsize import check_file_tensors, check_fits

MODEL_FILE = "model.safetensors"
LAST_FILE = "last.safetensors"
STATE_FILE = "trainer_state.safetensors"
FORMAT = "1"


#: Storage precisions :func:`save` offers (floating-point tensors only; loading casts back).
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


#: Tensors of a checkpoint that are not the model's (optimisers, random generators, the best
#: weights): their names start with this, which no module attribute path can.
STATE_PREFIX = "@"


def save(
    model: AutoEncoder,
    path: str | os.PathLike[str],
    *,
    recipe: dict[str, Any] | None = None,
    dtype: str = "float32",
    **extra: str,
) -> Path:
    """Write ``model``'s weights and the metadata needed to rebuild it, atomically.

    ``recipe`` (architecture, hparams, dataset, trainer) is stored whole; ``dtype`` stores the
    floating-point tensors in a smaller precision (``float16``), cast back to the model's on load.
    """
    metadata = model_metadata(model, recipe=recipe, dtype=dtype, **extra)
    tensors = model_tensors(model.state_dict(), dtype)
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return path


def model_metadata(
    model: AutoEncoder, *, recipe: dict[str, Any] | None = None, dtype: str = "float32", **extra: str
) -> dict[str, str]:
    """What a weights file says of its model: enough to rebuild it, and how it was trained."""
    if not model.architecture:
        raise ValueError("model has no architecture name: build it with aezoo.create()")
    if dtype not in STORAGE_DTYPES:
        raise AezooError(f"storage dtype must be one of {', '.join(STORAGE_DTYPES)}, got {dtype!r}")
    metadata = {
        "aezoo.format": FORMAT,
        "aezoo.architecture": model.architecture,
        "aezoo.hparams": json.dumps(model.hparams.to_dict(), sort_keys=True),
        "aezoo.version": __version__,
        "aezoo.torch_version": torch.__version__,
        "aezoo.distribution": _distribution(model.architecture),
        **{f"aezoo.{k}": str(v) for k, v in extra.items()},
    }
    if recipe is not None:
        metadata["aezoo.recipe"] = json.dumps(recipe, sort_keys=True)
    if dtype != "float32":
        metadata["aezoo.storage_dtype"] = dtype
    return metadata


def model_tensors(state: dict[str, torch.Tensor], dtype: str = "float32") -> dict[str, torch.Tensor]:
    """A state dict as the tensors a weights file stores (CPU, tied weights once, ``dtype``)."""
    tensors = _storable(state)
    if dtype != "float32":
        tensors = {k: v.to(STORAGE_DTYPES[dtype]) if v.is_floating_point() else v for k, v in tensors.items()}
    return tensors


def _distribution(architecture: str) -> str:
    from aezoo.plugins import registry

    found = registry().architectures.get(architecture)
    return found.distribution if found is not None else ""


def recipe_of(metadata: dict[str, str]) -> dict[str, Any] | None:
    """The recipe stored in a model file's metadata, or None (files saved without one)."""
    text = metadata.get("aezoo.recipe")
    if not text:
        return None
    try:
        recipe = json.loads(text)
    except json.JSONDecodeError:
        return None
    return recipe if isinstance(recipe, dict) else None


def _storable(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state dict as separate CPU tensors that safetensors accepts.

    An exact alias (tied weights: same storage, offset, shape and strides) is stored once and
    restored on load by :func:`_untie`. Any other view is copied: cuDNN packs an LSTM's weights into
    one flat buffer on the GPU, which ``safetensors.torch.save_model`` refuses to write.
    """
    seen: set[tuple[Any, ...]] = set()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        identity = (value.device, value.data_ptr(), value.dtype, tuple(value.shape), value.stride())
        if identity in seen and value.numel() > 0:
            continue
        seen.add(identity)
        out[key] = value.detach().to("cpu", copy=True).contiguous()
    return out


def read_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """The metadata of a model file, with a clear error for a missing or corrupt one."""
    path = resolve_model_path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        if path.suffix != ".safetensors":
            raise AezooError(
                f"{path} is not a weights file; give a run folder or a .safetensors file"
            ) from exc
        raise AezooError(
            f"{path} is not a readable safetensors file ({_short(exc)}); it is corrupt or "
            "truncated: train again or restore it"
        ) from exc
    written = str(metadata.get("aezoo.format", FORMAT))
    if written.isdigit() and int(written) > int(FORMAT):
        raise AezooError(
            f"{path} is weights format {written}, newer than this aezoo reads ({FORMAT}): upgrade aezoo"
        )
    if "aezoo.architecture" not in metadata or "aezoo.hparams" not in metadata:
        raise AezooError(
            f"{path} is a safetensors file without aezoo metadata; save models with "
            "aezoo.save() so they can be loaded by name"
        )
    return metadata


def resolve_model_path(path: str | os.PathLike[str]) -> Path:
    """A run folder means its ``model.safetensors``."""
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.exists():
        raise AezooError(f"{path} does not exist; give a run folder or a .safetensors file")
    return path


def load(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> AutoEncoder:
    """Rebuild a model from a run folder or a ``.safetensors`` file (:func:`aezoo.load` also takes
    a pretrained name)."""
    from aezoo.plugins import registry
    from aezoo.trainconfig import select_device

    device = select_device(str(device))  # a bad device is the caller's mistake, not the file's
    path = resolve_model_path(path)
    metadata = read_metadata(path)
    name = metadata["aezoo.architecture"]
    try:
        hparams_values = json.loads(metadata["aezoo.hparams"])
    except json.JSONDecodeError as exc:
        raise AezooError(f"{path}: its aezoo.hparams metadata is not valid JSON") from exc
    try:
        arch = registry().architecture(name)
    except AezooError as exc:
        dist = metadata.get("aezoo.distribution")
        if (
            dist
            and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", dist)
            and name not in registry().architectures
        ):
            raise AezooError(
                f"{path} holds a {name!r} model, whose architecture comes from the {dist!r} distribution, "
                f"which is not installed here: pip install {dist}"
            ) from exc
        raise AezooError(f"{path} holds a {name!r} model, but: {exc} (is its plugin installed?)") from exc
    if not isinstance(hparams_values, dict):
        raise AezooError(f"{path}: its aezoo.hparams metadata is not a table of hyperparameters")
    try:
        hparams = arch.make_hparams(**hparams_values)
    except HParamError as exc:
        raise AezooError(f"{path}: its metadata is not a model aezoo can build ({exc})") from None
    # measured on the meta device and held to the file's header before anything is allocated
    state = check_fits(arch, hparams, where=str(path))
    if state is not None:
        check_file_tensors(state, _header_tensors(path), architecture=name, where=str(path))
    model = arch.build(hparams)
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            # a checkpoint's trainer state (``@...``) is not the model's
            tensors = {k: f.get_tensor(k) for k in f.keys() if not k.startswith(STATE_PREFIX)}  # noqa: SIM118
    except (SafetensorError, OSError) as exc:
        raise AezooError(f"{path} is corrupt ({_short(exc)}); train again or restore it") from exc
    try:
        model.load_state_dict(_untie(model, tensors), strict=True)
    except RuntimeError as exc:
        raise AezooError(
            f"{path}: weights do not fit a {name!r} model with these hyperparameters ({_short(exc)})"
        ) from exc
    return model.to(device).eval()


def _header_tensors(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """The model's tensors a weights file declares, ``name -> (shape, dtype)``, from its header only."""
    try:
        with safe_open(str(path), framework="pt") as f:
            return {
                k: (tuple(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype())
                for k in f.keys()  # noqa: SIM118
                if not k.startswith(STATE_PREFIX)
            }
    except (SafetensorError, OSError, ValueError) as exc:
        raise AezooError(f"{path} is corrupt ({_short(exc)}); train again or restore it") from exc


def _untie(model: torch.nn.Module, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """:func:`save` stores tied weights once: give every alias of them its value back."""
    state = model.state_dict()
    missing = set(state) - set(tensors)
    if not missing:
        return tensors
    by_ptr: dict[int, str] = {}
    for key, value in state.items():
        if key in tensors:
            by_ptr.setdefault(value.data_ptr(), key)
    out = dict(tensors)
    for key in missing:
        source = by_ptr.get(state[key].data_ptr())
        if source is not None:
            out[key] = tensors[source]
    return out


def _short(exc: BaseException) -> str:
    """The first line of an error that says something (torch's load_state_dict opens with a
    heading such as "Error(s) in loading state_dict for Model:")."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].endswith(":"):
        lines = lines[1:]
    return lines[0][:200] if lines else type(exc).__name__
