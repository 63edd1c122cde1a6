"""What a model can do, as the conformance kit sees it. Each capability is derived from what the
model declares (a protocol or mixin it implements, a method it overrides, its export parts, its
manifest's data kind), never from its architecture's name, and brings the checks that apply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch

from aezoo.model import AutoEncoder, GaussianPrior, LikelihoodModel
from aezoo.testing import _support

#: ``sample()`` draws new outputs (``GaussianPrior``, or ``sample`` overridden).
PRIOR = "prior"
#: ``log_likelihood()`` estimates log p(x) (``LikelihoodModel``).
LIKELIHOOD = "likelihood"
#: Targets are the inputs enlarged by a whole factor on every spatial axis (super-resolution).
UPSCALER = "upscaler"
#: The decoder's code is a tensor of integer indices (a codebook's), not floats.
INTEGER_CODES = "integer-codes"
#: The decoder chooses integer outputs step by step as an argmax (``ExportPart.decisions``).
AUTOREGRESSIVE = "autoregressive"
#: ``read_examples`` and ``save_outputs`` read and write the user's files.
FILES = "files"
#: The manifest's ``decoding`` section: images, melodies (``KIND + "-data"``).
IMAGE_DATA = "image-data"
MELODY_DATA = "melody-data"

Check = Callable[..., None]
F = TypeVar("F", bound=Callable[..., None])


def requires(*needed: str) -> Callable[[F], F]:
    """Mark a check as applying only to models with every capability in ``needed``."""

    def mark(check: F) -> F:
        check.requires = frozenset(needed)  # type: ignore[attr-defined]
        return check

    return mark


def required_by(check: Check) -> frozenset[str]:
    """The capabilities ``check`` applies to (empty: every model)."""
    return getattr(check, "requires", frozenset())


def capabilities(model: AutoEncoder) -> frozenset[str]:
    """Every capability ``model`` declares."""
    found = set()
    if isinstance(model, GaussianPrior) or _overrides(model, "sample"):
        found.add(PRIOR)
    if isinstance(model, LikelihoodModel):
        found.add(LIKELIHOOD)
    if _overrides(model, "read_examples") and _overrides(model, "save_outputs"):
        found.add(FILES)
    decoding = model.export_decoding()
    if decoding is not None and decoding.get("kind"):
        found.add(f"{decoding['kind']}-data")
    decoder = model.export_parts()["decoder"]
    if decoder.decisions is not None:
        found.add(AUTOREGRESSIVE)
    with torch.no_grad():
        code = decoder.example(1)[0]
    if not (code.is_floating_point() or code.is_complex()):
        found.add(INTEGER_CODES)
    if upscale_factor(model) is not None:
        found.add(UPSCALER)
    return frozenset(found)


def upscale_factor(model: AutoEncoder) -> int | None:
    """The whole factor > 1 by which the model's targets are larger than its inputs on every spatial
    axis (image-like tensors ``[N, C, H, W...]``), or None."""
    inputs, targets = _support.inputs(model, 1)
    if not (isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)):
        return None
    if inputs.ndim < 4 or inputs.ndim != targets.ndim or not inputs.is_floating_point():
        return None
    factors = {
        t // i if i and t % i == 0 else 0 for i, t in zip(inputs.shape[2:], targets.shape[2:], strict=True)
    }
    factor = factors.pop() if len(factors) == 1 else 0
    return factor if factor > 1 else None


def _overrides(model: Any, method: str) -> bool:
    return getattr(type(model), method) is not getattr(AutoEncoder, method)
