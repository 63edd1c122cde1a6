"""Every registered architecture passes the conformance kit; the kit chooses its checks by what a
model declares, and catches broken models."""

from __future__ import annotations

import pytest
import torch

import aezoo
from aezoo import testing
from aezoo.errors import AezooError
from aezoo.testing import _support, parametrize_with_checks


@parametrize_with_checks(aezoo.list_architectures())
def test_architecture_conforms(architecture, check):
    check(architecture)


def _names(architecture: str) -> set[str]:
    return {check.__name__ for check in testing.checks_for(architecture)}


def test_kit_has_one_test_per_check_that_applies():
    mark = parametrize_with_checks(["conv"])
    ids = [p.id for p in mark.args[1]]
    assert ids == [f"conv-{c.__name__}" for c in testing.checks_for("conv")]
    assert "conv-check_batch_invariance" in ids and "conv-check_sample_shapes_and_range" not in ids


def test_checks_follow_what_each_model_declares():
    everyone = {c.__name__ for c in testing.CHECKS if not testing.required_by(c)}
    assert everyone <= _names("dense")
    assert _names("dense") - everyone == {"check_files_round_trip", "check_image_decoding_matches_outputs"}
    assert {"check_sample_shapes_and_range", "check_log_likelihood"} <= _names("vae")
    assert "check_log_likelihood" not in _names("aae")  # a prior, but no likelihood
    assert "check_upscales_by_a_whole_factor" in _names("superres")
    assert {"check_decisions_match_outputs", "check_melody_decoding_matches_outputs"} <= _names("musicvae")
    assert "check_image_decoding_matches_outputs" not in _names("musicvae")


def test_a_capability_comes_from_the_protocol_not_the_name(monkeypatch):
    from aezoo_dense.model import DenseAutoEncoder

    assert testing.LIKELIHOOD not in testing.profile("dense").capabilities

    def log_likelihood(self, inputs, targets, samples):
        return (
            -torch.nn.functional.binary_cross_entropy(self(inputs), targets, reduction="none")
            .flatten(1)
            .sum(1)
        )

    monkeypatch.setattr(DenseAutoEncoder, "log_likelihood", log_likelihood, raising=False)
    assert testing.LIKELIHOOD in testing.profile("dense").capabilities
    assert "check_log_likelihood" in _names("dense")


def test_a_model_that_cannot_be_built_gets_the_contract_checks_which_say_why(monkeypatch):
    from aezoo_dense import model as dense

    def broken(hp):
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(dense, "build", broken)
    assert testing.checks_for("dense") == tuple(c for c in testing.CHECKS if not testing.required_by(c))
    (result,) = testing.run_checks("dense", only=["builds"])
    assert (result.status, result.message) == (
        "FAIL",
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied",
    )


def test_kit_catches_a_model_whose_forward_is_not_decode_of_encode(monkeypatch):
    from aezoo_dense.model import DenseAutoEncoder

    monkeypatch.setattr(DenseAutoEncoder, "forward", lambda self, x: self.decode(self.encode(x)) * 0.5)
    with pytest.raises(AssertionError, match="differs from forward"):
        testing.check_decode_encode_matches_forward("dense")


def _batch_statistics(monkeypatch):
    """dense's encoder made to subtract the batch mean: each row depends on the others."""
    from aezoo_dense.model import DenseAutoEncoder

    encode = DenseAutoEncoder.encode
    monkeypatch.setattr(DenseAutoEncoder, "encode", lambda self, x: encode(self, x - x.mean(0, keepdim=True)))


def test_kit_catches_a_model_whose_rows_depend_on_the_batch(monkeypatch):
    _batch_statistics(monkeypatch)
    with pytest.raises(AssertionError, match=r"encode\(\) output 0, row 0 differs by .* a batch of 5"):
        testing.check_batch_invariance("dense")


def test_kit_catches_randomness_no_seed_controls(monkeypatch):
    import numpy as np

    from aezoo_dense import model as dense

    original = dense.DenseAutoEncoder.__init__

    def jittered(self, hp):
        original(self, hp)
        with torch.no_grad():
            noise = np.random.default_rng().normal(size=tuple(self.decoder.net[-1].bias.shape))
            self.decoder.net[-1].bias += torch.from_numpy(noise).float()

    monkeypatch.setattr(dense.DenseAutoEncoder, "__init__", jittered)
    with pytest.raises(AssertionError, match="two builds under one seed differ in decoder"):
        testing.check_deterministic_under_a_seed("dense")


def test_kit_catches_samples_that_ignore_the_generator(monkeypatch):
    from aezoo_aae.model import AdversarialAutoEncoder

    def sample(self, n, *, temperature=1.0, generator=None):
        return self.decode(torch.randn(n, self.latent_size))

    monkeypatch.setattr(AdversarialAutoEncoder, "sample", sample)
    with pytest.raises(AssertionError, match="two generators of one seed gives different samples"):
        testing.check_sample_shapes_and_range("aae")


def test_kit_catches_samples_outside_the_declared_range(monkeypatch):
    from aezoo_aae.model import AdversarialAutoEncoder

    monkeypatch.setattr(
        AdversarialAutoEncoder,
        "sample",
        lambda self, n, *, temperature=1.0, generator=None: self.decoder.logits(
            self.sample_latent(n, temperature=temperature, generator=generator)
        ),
    )
    with pytest.raises(
        AssertionError, match=r"outside the decoder output 'image''s declared range \(0.0, 1.0\)"
    ):
        testing.check_sample_shapes_and_range("aae")


def test_kit_catches_a_likelihood_that_falls_with_more_samples(monkeypatch):
    from aezoo_vae.model import VAE

    monkeypatch.setattr(
        VAE, "log_likelihood", lambda self, x, t, samples: -torch.full((len(x),), float(samples))
    )
    with pytest.raises(AssertionError, match=r"-64\.0000 nats with 64 samples, lower than -1\.0000 with 1"):
        testing.check_log_likelihood("vae")


def test_kit_catches_files_that_do_not_read_back(monkeypatch):
    from aezoo.image import ImageAutoEncoder
    from aezoo_dense.model import DenseAutoEncoder

    inverted = lambda self, paths, **options: ImageAutoEncoder.read_examples(self, paths, invert=True)  # noqa: E731
    monkeypatch.setattr(DenseAutoEncoder, "read_examples", inverted)
    with pytest.raises(AssertionError, match="values read back differ by"):
        testing.check_files_round_trip("dense")


def test_kit_catches_a_model_that_crashes_on_data_it_cannot_read(monkeypatch):
    from aezoo_dense.model import DenseAutoEncoder

    monkeypatch.setattr(DenseAutoEncoder, "prepare_batch", lambda self, batch, train: (batch["image"],) * 2)
    with pytest.raises(AssertionError, match="raised KeyError"):
        testing.check_foreign_batch_is_a_clear_error("dense")


def test_kit_catches_parameters_without_gradient(monkeypatch):
    from aezoo_dense import model as dense

    original = dense.DenseAutoEncoder.__init__

    def with_unused_layer(self, hp):
        original(self, hp)
        self.unused = torch.nn.Linear(2, 2)

    monkeypatch.setattr(dense.DenseAutoEncoder, "__init__", with_unused_layer)
    with pytest.raises(AssertionError, match=r"receive no gradient .*unused"):
        testing.check_loss_finite_and_gradients_flow("dense")


def test_kit_catches_an_unconstrained_hyperparameter_set(monkeypatch):
    import dataclasses

    loose = dataclasses.make_dataclass(
        "Loose",
        [("size", int, dataclasses.field(default=3, metadata={"doc": "x"}))],
        bases=(aezoo.HParams,),
        frozen=True,
    )
    arch = aezoo.Architecture("loose", "Loose.", loose, "aezoo_dense.model:build", "mnist")
    monkeypatch.setattr(_support, "architecture", lambda name: arch)
    with pytest.raises(AssertionError, match="no hyperparameter declares a range"):
        testing.check_hparam_validation_rejects_bad_values("loose")


def test_a_declared_expected_failure_is_reported_with_its_reason(monkeypatch):
    from aezoo_dense.model import DenseAutoEncoder

    _batch_statistics(monkeypatch)
    monkeypatch.setattr(
        DenseAutoEncoder, "conformance_xfail", {"check_batch_invariance": "centres each batch"}
    )
    results = {r.check: r for r in testing.run_checks("dense", only=["batch_invariance", "shapes"])}
    assert results["check_shapes"].status == "PASS"
    assert results["check_batch_invariance"].status == "XFAIL"
    assert results["check_batch_invariance"].message.startswith(
        "centres each batch (encode() output 0, row 0"
    )
    testing.check_architecture("dense", only=["batch_invariance"])  # an expected failure raises nothing

    (param,) = [
        p for p in parametrize_with_checks(["dense"]).args[1] if p.id == "dense-check_batch_invariance"
    ]
    (mark,) = param.marks
    assert mark.name == "xfail" and mark.kwargs == {"reason": "centres each batch", "strict": True}


def test_an_expected_failure_that_passes_is_reported(monkeypatch):
    results = list(testing.run_checks("dense", xfail={"check_shapes": "thought broken"}, only=["shapes"]))
    assert [(r.check, r.status) for r in results] == [("check_shapes", "XPASS")]
    with pytest.raises(AssertionError, match="check_shapes: XPASS: declared to fail"):
        testing.check_architecture("dense", xfail={"check_shapes": "thought broken"}, only=["shapes"])


def test_an_expected_failure_must_name_a_check_and_a_reason():
    with pytest.raises(AezooError, match="names no check 'check_shape'; did you mean 'check_shapes'"):
        parametrize_with_checks(["dense"], xfail={"check_shape": "typo"})
    with pytest.raises(AezooError, match="the expected failure of check_shapes gives no reason"):
        testing.expected_failures("dense", xfail={"check_shapes": " "})
