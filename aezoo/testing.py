"""The conformance kit: checks every architecture must pass, for plugin authors' own test suites.

After scikit-learn's ``check_estimator``: each check is a plain function taking an architecture
name (and optionally hyperparameters) that raises ``AssertionError`` with a reason when the
architecture breaks the model contract. In a plugin's tests::

    from aezoo.testing import parametrize_with_checks

    @parametrize_with_checks(["my-arch"])
    def test_my_arch_conforms(architecture, check):
        check(architecture)

gives one pytest test per check (``-k "my-arch and export"`` selects one). Checks use
``Architecture.smoke_hparams`` unless given ``hparams``, and need no dataset: inputs come from
``AutoEncoder.example_batch``.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import math
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

import aezoo
from aezoo.errors import AezooError, HParamError
from aezoo.model import AutoEncoder, OptimizerConfig

Check = Callable[..., None]
PARITY_BATCHES = (1, 3)


def _architecture(name: str) -> aezoo.Architecture:
    return aezoo.architecture(name)


def _hparams(name: str, hparams: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(_architecture(name).smoke_hparams if hparams is None else hparams)


def _build(name: str, hparams: Mapping[str, Any] | None, seed: int = 0) -> AutoEncoder:
    torch.manual_seed(seed)
    return _architecture(name).build(**_hparams(name, hparams))


def _first(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, (tuple, list)) else value


def _tensors(value: Any) -> tuple[torch.Tensor, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,)


def _inputs(model: AutoEncoder, n: int, *, train: bool = False, seed: int = 0) -> tuple[Any, Any]:
    generator = torch.Generator(device=model.device).manual_seed(seed)
    return model.prepare_batch(model.example_batch(n, generator), train=train)


# -- the checks -----------------------------------------------------------------------------------


def check_builds_with_defaults(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Builds with default hyperparameters; exposes standalone ``encoder`` and ``decoder``."""
    arch = _architecture(architecture)
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
    model = _build(architecture, hparams).eval()
    inputs, _ = _inputs(model, 3)
    with torch.no_grad():
        code = model.encode(inputs)
        assert _first(code).shape[0] == 3, f"encode() changed the batch size: {tuple(_first(code).shape)}"
        out = model.decode(code)
        assert _first(out).shape[0] == 3, f"decode() changed the batch size: {tuple(_first(out).shape)}"
        assert _first(model(inputs)).shape[0] == 3, "forward() changed the batch size"
        for name, part in model.export_parts().items():
            args = part.example(3)
            assert len(args) == len(part.inputs), (
                f"{name}: {len(args)} example inputs, {len(part.inputs)} specs"
            )
            outs = _tensors(part.module(*args))
            assert len(outs) == len(part.outputs), f"{name}: {len(outs)} outputs, {len(part.outputs)} specs"
            for spec, value in zip(part.outputs, outs, strict=True):
                assert value.shape[0] == 3, f"{name} output {spec.name!r} has shape {tuple(value.shape)}"
                if spec.range is not None and value.is_floating_point():
                    lo, hi = spec.range
                    assert lo <= float(value.min()) and float(value.max()) <= hi, (
                        f"{name} output {spec.name!r} leaves its declared range {spec.range}"
                    )


def check_foreign_batch_is_a_clear_error(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """A batch of data the model cannot read (a dataset of another kind) raises
    ``aezoo.AezooError`` with a one-line message, so the CLI says what went wrong instead of
    printing a ``KeyError`` traceback."""
    model = _build(architecture, hparams)
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
    model = _build(architecture, hparams).eval()
    inputs, _ = _inputs(model, 4)
    with torch.no_grad():
        for a, b in zip(_tensors(model.decode(model.encode(inputs))), _tensors(model(inputs)), strict=True):
            torch.testing.assert_close(
                a, b, rtol=0, atol=1e-6, msg="decode(encode(x)) differs from forward(x)"
            )


def check_loss_finite_and_gradients_flow(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Every update's loss is finite and every trainable parameter receives a finite gradient."""
    model = _build(architecture, hparams).train()
    inputs, targets = _inputs(model, 4, train=True)
    optimizers = _optimizers(model)
    reached: set[int] = set()
    for update in model.training_step(inputs, targets, 0):
        assert update.optimizer in optimizers, (
            f"training_step() yielded an update for optimizer {update.optimizer!r}; "
            f"configure_optimizers() declares {sorted(optimizers)}"
        )
        assert update.loss.ndim == 0 and torch.isfinite(update.loss), f"loss is {update.loss}"
        opt = optimizers[update.optimizer]
        opt.zero_grad(set_to_none=True)
        update.loss.backward()
        for group in opt.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    assert torch.isfinite(p.grad).all(), "a gradient is not finite"
                    if torch.any(p.grad != 0):
                        reached.add(id(p))
        opt.step()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in reached]
    assert not missing, f"parameters receive no gradient from any update: {missing[:6]}"


def check_few_steps_lower_the_loss(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Thirty steps on one fixed batch lower its loss."""
    model = _build(architecture, hparams)
    inputs, targets = _inputs(model, 16, train=False, seed=1)
    optimizers = _optimizers(model, lr=3e-3)

    def loss() -> float:
        with torch.no_grad():
            return float(model.loss(inputs, targets, None).loss)

    model.train()
    before = loss()
    for step in range(30):
        for update in model.training_step(inputs, targets, step):
            opt = optimizers[update.optimizer]
            opt.zero_grad(set_to_none=True)
            update.loss.backward()
            opt.step()
    after = loss()
    assert math.isfinite(after) and after < before, f"loss went from {before:.5f} to {after:.5f}"


def check_hparam_validation_rejects_bad_values(
    architecture: str, hparams: Mapping[str, Any] | None = None
) -> None:
    """Each declared range or choice list rejects a value outside it, naming the field."""
    arch = _architecture(architecture)
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


def check_save_load_round_trip(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """``aezoo.save`` then ``aezoo.load`` gives bit-identical weights and outputs."""
    model = _build(architecture, hparams, seed=3).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.safetensors"
        aezoo.save(model, path)
        loaded = aezoo.load(path)
    assert type(loaded) is type(model) and loaded.hparams == model.hparams
    want, got = model.state_dict(), loaded.state_dict()
    assert list(want) == list(got), "state dict keys differ after loading"
    for key in want:
        assert torch.equal(want[key], got[key]), f"{key} differs after loading"
    inputs, _ = _inputs(model, 2)
    with torch.no_grad():
        for a, b in zip(_tensors(model(inputs)), _tensors(loaded(inputs)), strict=True):
            assert torch.equal(a, b), "outputs differ after loading"


def check_onnx_export_parity(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Encoder and decoder export to ONNX and match PyTorch in onnxruntime at batch 1 and 3."""
    from aezoo.onnx import load_export
    from aezoo.onnx.validation import compare

    model = _build(architecture, hparams).eval()
    exported = load_export(_exported(architecture, _key(hparams, architecture)))
    for name, part in model.export_parts().items():
        for n in PARITY_BATCHES:
            torch.manual_seed(100 + n)
            with torch.no_grad():
                args = part.example(n)
                expected = _tensors(part.module(*args))
            actual = exported.parts[name](*[a.numpy() for a in args])
            decisions = part.decisions(args, expected) if part.decisions is not None else None
            report = compare(
                f"batch {n}", list(actual), expected, list(actual.values()), part.tolerance(), decisions
            )
            for o in report.outputs:
                assert o.passed, (
                    f"{name} output {o.name!r} at batch {n}: max abs diff {o.max_abs_diff:.3g} {o.note}"
                )


def check_manifest_complete(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """The export manifest says everything another runtime needs, and each file says it too."""
    import onnx

    from aezoo.fileio import sha256
    from aezoo.onnx.tracing import MAX_IR_VERSION

    root = _exported(architecture, _key(hparams, architecture))
    manifest = json.loads((root / "aezoo-export.json").read_text())
    for key in (
        "format",
        "architecture",
        "hparams",
        "versions",
        "opset",
        "latent_size",
        "models",
        "validation",
    ):
        assert key in manifest, f"manifest lacks {key!r}"
    assert manifest["architecture"] == architecture
    assert {"aezoo", "torch", "onnx", "onnxruntime"} <= set(manifest["versions"])
    shape = manifest["latent_shape"]
    if all(isinstance(d, int) for d in shape):
        assert manifest["latent_size"] == math.prod(shape) > 0, "latent_size must be the code's size"
    else:
        assert manifest["latent_size"] is None, "a code that grows with the input has no fixed latent_size"
    assert manifest["validation"]["passed"] is True
    assert {"encoder", "decoder"} <= set(manifest["models"])
    code = manifest["models"]["decoder"]["inputs"][0]
    assert code.get("sampling", {}).get("kind"), (
        "the decoder's code input does not say how to draw one (TensorSpec.sampling)"
    )
    decoding = manifest.get("decoding")
    if decoding is not None:  # AutoEncoder.export_decoding() said how to use the output
        outputs = [o["name"] for o in manifest["models"]["decoder"]["outputs"]]
        assert decoding["output"] in outputs, (
            f"decoding names output {decoding['output']!r}; the decoder has {outputs}"
        )
    assert manifest["runtimes"]["validated"], "the manifest does not say where it was validated"
    for name, entry in manifest["models"].items():
        path = root / entry["file"]
        assert sha256(path) == entry["sha256"], f"{entry['file']} does not match its sha256"
        assert entry["ir_version"] <= MAX_IR_VERSION, (
            f"{name}: IR {entry['ir_version']} is too new for ort-node"
        )
        for tensor in entry["inputs"] + entry["outputs"]:
            for key in ("name", "dtype", "shape", "description"):
                assert tensor.get(key) not in (None, ""), f"{name} {tensor.get('name')!r} lacks {key!r}"
            assert tensor["shape"][0] == "batch", f"{name} {tensor['name']!r}: batch axis is not symbolic"
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False).metadata_props}
        for key in ("aezoo.architecture", "aezoo.part", "aezoo.hparams", "aezoo.version", "aezoo.inputs"):
            assert key in props, f"{entry['file']} lacks metadata_props {key!r}"
        assert not (root / f"{entry['file']}.data").exists(), "external data files must not be written"


#: Every check, in the order they are run.
CHECKS: tuple[Check, ...] = (
    check_builds_with_defaults,
    check_shapes,
    check_foreign_batch_is_a_clear_error,
    check_decode_encode_matches_forward,
    check_loss_finite_and_gradients_flow,
    check_few_steps_lower_the_loss,
    check_hparam_validation_rejects_bad_values,
    check_save_load_round_trip,
    check_onnx_export_parity,
    check_manifest_complete,
)


def check_architecture(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Run every check on ``architecture``; the first failure raises ``AssertionError``."""
    for check in CHECKS:
        check(architecture, hparams)


def parametrize_with_checks(
    architectures: Iterable[str], hparams: Mapping[str, Mapping[str, Any]] | None = None
):
    """A ``pytest.mark.parametrize`` over (architecture, check), one test id per pair:
    ``conv-check_onnx_export_parity``. The test receives ``check`` already bound to the
    architecture's hyperparameters (``hparams[name]`` or its smoke hyperparameters)."""
    import pytest

    params = []
    for name in architectures:
        for check in CHECKS:
            bound = functools.partial(check, hparams=(hparams or {}).get(name))
            functools.update_wrapper(bound, check)
            params.append(pytest.param(name, bound, id=f"{name}-{check.__name__}"))
    return pytest.mark.parametrize(("architecture", "check"), params)


# -- internals ------------------------------------------------------------------------------------


def _optimizers(model: AutoEncoder, lr: float = 1e-3) -> dict[str, torch.optim.Optimizer]:
    out = {}
    for name, value in model.configure_optimizers(OptimizerConfig(lr=lr)).items():
        out[name] = value[0] if isinstance(value, tuple) else value
    return out


def _key(hparams: Mapping[str, Any] | None, architecture: str) -> str:
    return json.dumps(_hparams(architecture, hparams), sort_keys=True, default=list)


_export_root: Path | None = None


@functools.cache
def _exported(architecture: str, hparams_key: str) -> Path:
    """Export once per (architecture, hyperparameters) and share it between checks."""
    global _export_root
    from aezoo.onnx import export

    if _export_root is None:
        _export_root = Path(tempfile.mkdtemp(prefix="aezoo-conformance-"))
        atexit.register(shutil.rmtree, _export_root, True)
    model = _build(architecture, json.loads(hparams_key)).eval()
    with torch.no_grad():
        real, _ = _inputs(model, 4, seed=7)
    out = _export_root / f"{architecture}-{abs(hash(hparams_key))}"
    export(model, out, real_inputs=real)
    return out


__all__ = ["CHECKS", "check_architecture", "parametrize_with_checks", *[c.__name__ for c in CHECKS]]
