"""Checks of the model contract every architecture implements: building, shapes, errors, and the
same answer whatever the batch or the run."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from typing import Any

import torch

from aezoo.errors import AezooError, HParamError
from aezoo.model import AutoEncoder
from aezoo.testing import _support

#: How far a row computed in a batch may be from the same row computed alone (float outputs).
BATCH_ATOL = 1e-5


def check_builds_with_defaults(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Builds with default hyperparameters; exposes standalone ``encoder`` and ``decoder``."""
    arch = _support.architecture(architecture)
    torch.manual_seed(0)
    model = arch.build()
    assert isinstance(model, AutoEncoder), f"builder returned {type(model).__name__}, not an AutoEncoder"
    for part in ("encoder", "decoder"):
        module = getattr(model, part, None)
        assert isinstance(module, torch.nn.Module), f"model.{part} must be a torch.nn.Module, got {module!r}"
    assert model.architecture == architecture
    defaults = arch.make_hparams()
    assert model.hparams == defaults
    assert arch.hparams.from_dict(json.loads(json.dumps(defaults.to_dict()))) == defaults, (
        "hyperparameters do not survive a JSON round trip (safetensors metadata stores them as JSON)"
    )
    for f in dataclasses.fields(arch.hparams):
        assert f.metadata.get("doc"), f"hyperparameter {f.name!r} has no doc: declare it with aezoo.hparam()"
    assert arch.description and "\n" not in arch.description, "description must be one line"


def check_shapes(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Encoder, decoder and forward keep the batch dimension; export parts match their specs."""
    model = _support.build(architecture, hparams).eval()
    inputs, _ = _support.inputs(model, 3)
    with torch.no_grad():
        code = model.encode(inputs)
        first = _support.first
        assert first(code).shape[0] == 3, f"encode() changed the batch size: {tuple(first(code).shape)}"
        out = model.decode(code)
        assert first(out).shape[0] == 3, f"decode() changed the batch size: {tuple(first(out).shape)}"
        assert first(model(inputs)).shape[0] == 3, "forward() changed the batch size"
        for name, part in model.export_parts().items():
            args = part.example(3)
            assert len(args) == len(part.inputs), (
                f"{name}: {len(args)} example inputs, {len(part.inputs)} specs"
            )
            outs = _support.tensors(part.module(*args))
            assert len(outs) == len(part.outputs), f"{name}: {len(outs)} outputs, {len(part.outputs)} specs"
            for spec, value in zip(part.outputs, outs, strict=True):
                assert value.shape[0] == 3, f"{name} output {spec.name!r} has shape {tuple(value.shape)}"
                if spec.range is not None and value.is_floating_point():
                    lo, hi = spec.range
                    assert lo <= float(value.min()) and float(value.max()) <= hi, (
                        f"{name} output {spec.name!r} leaves its declared range {spec.range}"
                    )


def check_output_matches_targets(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """``forward(inputs)`` has the shape and kind (float or integer) of the targets it is trained
    towards, so a reconstruction can be compared with, and saved like, its target."""
    model = _support.build(architecture, hparams).eval()
    inputs, targets = _support.inputs(model, 2)
    with torch.no_grad():
        outputs = model(inputs)
    for output, target in zip(_support.tensors(outputs), _support.tensors(targets), strict=False):
        assert output.shape == target.shape, (
            f"forward() gives shape {tuple(output.shape)}, its targets have {tuple(target.shape)}"
        )
        assert output.is_floating_point() == target.is_floating_point(), (
            f"forward() gives {output.dtype}, its targets are {target.dtype}"
        )


def check_foreign_batch_is_a_clear_error(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """A batch of data the model cannot read (a dataset of another kind) raises
    ``aezoo.AezooError`` with a one-line message, so the CLI says what went wrong instead of
    printing a ``KeyError`` traceback."""
    model = _support.build(architecture, hparams)
    foreign = {"unrelated": torch.zeros(2, 3)}
    try:
        model.prepare_batch(foreign, train=True)
    except AezooError as exc:
        assert str(exc) and "\n" not in str(exc), f"the message must be one line, got {str(exc)!r}"
        return
    except Exception as exc:
        raise AssertionError(
            f"prepare_batch() of a batch it cannot read raised {type(exc).__name__}: {exc}; raise "
            "aezoo.AezooError naming the data the model reads"
        ) from exc
    raise AssertionError("prepare_batch() accepted a batch holding none of the keys it reads")


def check_decode_encode_matches_forward(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """In eval mode, ``decode(encode(x))`` is what ``forward(x)`` returns."""
    model = _support.build(architecture, hparams).eval()
    inputs, _ = _support.inputs(model, 4)
    with torch.no_grad():
        pairs = zip(
            _support.tensors(model.decode(model.encode(inputs))), _support.tensors(model(inputs)), strict=True
        )
        for a, b in pairs:
            torch.testing.assert_close(
                a, b, rtol=0, atol=1e-6, msg="decode(encode(x)) differs from forward(x)"
            )


def check_batch_invariance(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """In eval mode a batch of 5 gives the rows that 5 batches of 1 give: codes and outputs within
    1e-5, integer outputs equal (no batch statistics, no row mixing)."""
    model = _support.build(architecture, hparams).eval()
    inputs, _ = _support.inputs(model, 5, seed=4)
    with torch.no_grad():
        together = {"encode": model.encode(inputs), "forward": model(inputs)}
        alone = [{"encode": model.encode(x), "forward": model(x)} for x in _split_rows(inputs, 5)]
    for what, batched in together.items():
        for i, single in enumerate(alone):
            pairs = zip(_support.tensors(batched), _support.tensors(single[what]), strict=True)
            for j, (a, b) in enumerate(pairs):
                row = a[i : i + 1]
                where = f"{what}() output {j}, row {i}"
                assert row.shape == b.shape, (
                    f"{where}: shape {tuple(b.shape)} alone, {tuple(row.shape)} in a batch"
                )
                if a.is_floating_point():
                    diff = float((row - b).abs().max()) if row.numel() else 0.0
                    assert diff <= BATCH_ATOL, (
                        f"{where} differs by {diff:.3g} between a batch of 5 and a batch of 1 (eval mode; "
                        "batch statistics?)"
                    )
                else:
                    assert torch.equal(row, b), f"{where} differs between a batch of 5 and a batch of 1"


def check_deterministic_under_a_seed(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """The same seed builds the same weights, and the same training steps give the same losses and
    weights, bit for bit (randomness only from torch's generators, which the trainer seeds)."""
    runs = []
    for _ in range(2):
        model = _support.build(architecture, hparams, seed=5)
        initial = {k: v.clone() for k, v in model.state_dict().items()}
        torch.manual_seed(11)
        inputs, targets = _support.inputs(model, 2, train=True, seed=2)
        losses = _support.train_steps(model, inputs, targets, steps=2)
        runs.append((initial, losses, model.state_dict()))
    (init_a, losses_a, after_a), (init_b, losses_b, after_b) = runs
    for name in init_a:
        assert torch.equal(init_a[name], init_b[name]), f"two builds under one seed differ in {name}"
    assert losses_a == losses_b, f"the same seeded steps gave losses {losses_a} and {losses_b}"
    for name in after_a:
        assert torch.equal(after_a[name], after_b[name]), f"the same seeded steps left {name} different"


def check_hparam_validation_rejects_bad_values(
    architecture: str, hparams: Mapping[str, Any] | None = None
) -> None:
    """Each declared range or choice list rejects a value outside it, naming the field."""
    arch = _support.architecture(architecture)
    constrained = 0
    for f in dataclasses.fields(arch.hparams):
        meta = f.metadata
        bad: list[Any] = []
        if meta.get("choices"):
            bad.append("not-a-valid-choice")
        sample = f.default[0] if isinstance(f.default, tuple) and f.default else f.default
        numeric = isinstance(sample, (int, float)) and not isinstance(sample, bool)
        if numeric and meta.get("min") is not None:
            bad.append(type(sample)(meta["min"] - 1) if meta["min"] - 1 < meta["min"] else -math.inf)
        if numeric and meta.get("max") is not None:
            bad.append(type(sample)(meta["max"] + 1))
        for value in bad:
            constrained += 1
            value = (value,) if isinstance(f.default, tuple) else value
            try:
                arch.make_hparams(**{f.name: value})
            except HParamError as exc:
                assert exc.field == f.name, f"bad {f.name}={value!r} was blamed on {exc.field!r}"
                assert f.name in str(exc)
            else:
                raise AssertionError(f"{f.name}={value!r} is outside its declared range but was accepted")
    assert constrained, "no hyperparameter declares a range or choices: declare them with aezoo.hparam()"


def _split_rows(inputs: Any, n: int) -> list[Any]:
    return [_support.rows(inputs, i, i + 1) for i in range(n)]
