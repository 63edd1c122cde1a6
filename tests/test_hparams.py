"""Hyperparameter validation and parsing: one clear error naming the field and its range."""

from __future__ import annotations

import pytest

import aezoo
from aezoo.errors import HParamError
from aezoo.hparams import describe, parse_assignments


def test_defaults_and_overrides():
    model = aezoo.create("dense", latent_dim=8, hidden=[64])
    assert model.hparams.latent_dim == 8 and model.hparams.hidden == (64,)
    assert model.encoder(__import__("torch").zeros(2, 1, 28, 28)).shape == (2, 8)


@pytest.mark.parametrize(
    ("name", "values", "message"),
    [
        ("dense", {"latent_dim": 0}, r"dense: hyperparameter 'latent_dim' must be 1 … 65536, got 0"),
        ("dense", {"latent_dim": 2.5}, r"'latent_dim' must be int, got 2.5"),
        (
            "dense",
            {"activation": "relux"},
            r"'activation' must be one of relu, gelu, silu, tanh, got 'relux'",
        ),
        ("dense", {"hidden": ()}, r"'hidden' must not be empty"),
        ("conv", {"kernel_size": 4}, r"conv: hyperparameter 'kernel_size' must be odd, got 4"),
        ("conv", {"widths": (8, 8, 8, 8, 8, 8)}, r"'widths' has 6 stages, too many for 28-pixel images"),
        ("conv", {"latnt_dim": 3}, r"'latnt_dim' does not exist; did you mean 'latent_dim'\?"),
    ],
)
def test_bad_values_name_the_field_and_range(name, values, message):
    with pytest.raises(HParamError, match=message):
        aezoo.create(name, **values)


def test_parse_assignments_types_values():
    hp = aezoo.architecture("conv").hparams
    parsed = parse_assignments(
        hp, ["widths=16,8,8", "latent_dim=none", "batch_norm=false", "upsample=nearest"]
    )
    assert parsed == {"widths": (16, 8, 8), "latent_dim": None, "batch_norm": False, "upsample": "nearest"}
    with pytest.raises(HParamError, match=r"'latent_dim' must be int or none, got 'big'"):
        parse_assignments(hp, ["latent_dim=big"])
    with pytest.raises(HParamError, match="needs a value"):
        parse_assignments(hp, ["latent_dim"])
    assert parse_assignments(hp, ["widths=(32,)"]) == {"widths": (32,)}  # a trailing comma is Python's
    with pytest.raises(HParamError, match=r"'widths' must be list of int, got '32,,64'"):
        parse_assignments(hp, ["widths=32,,64"])  # a missing number is not dropped silently


def test_describe_lists_every_field_with_doc():
    rows = {r["name"]: r for r in describe(aezoo.architecture("conv").hparams)}
    assert rows["latent_dim"]["default"] == 128
    assert rows["downsample"]["allowed"] == "one of stride, maxpool"
    assert all(r["doc"] for r in rows.values())


def test_classic_geometry_gives_a_128_number_code():
    import torch

    model = aezoo.create(
        "conv", widths=(16, 8, 8), latent_dim=None, downsample="maxpool", upsample="nearest", batch_norm=False
    )
    code = model.encode(torch.zeros(2, 1, 28, 28))
    assert code.shape == (2, 128)
    assert model.decode(code).shape == (2, 1, 28, 28)
