"""Every registered architecture passes the conformance kit; the kit catches broken models."""

from __future__ import annotations

import pytest
import torch

import aezoo
from aezoo import testing
from aezoo.testing import parametrize_with_checks


@parametrize_with_checks(aezoo.list_architectures())
def test_architecture_conforms(architecture, check):
    check(architecture)


def test_kit_has_one_test_per_check():
    mark = parametrize_with_checks(["conv"])
    ids = [p.id for p in mark.args[1]]
    assert ids == [f"conv-{c.__name__}" for c in testing.CHECKS]


def test_kit_catches_a_model_whose_forward_is_not_decode_of_encode(monkeypatch):
    from aezoo_dense.model import DenseAutoEncoder

    monkeypatch.setattr(DenseAutoEncoder, "forward", lambda self, x: self.decode(self.encode(x)) * 0.5)
    with pytest.raises(AssertionError, match="differs from forward"):
        testing.check_decode_encode_matches_forward("dense")


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
    monkeypatch.setattr(testing, "_architecture", lambda name: arch)
    with pytest.raises(AssertionError, match="no hyperparameter declares a range"):
        testing.check_hparam_validation_rejects_bad_values("loose")
