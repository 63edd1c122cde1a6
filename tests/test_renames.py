"""Files that outlive renames: a plugin renames an architecture and a hyperparameter and removes
another; weights saved by the old release still load, with one deprecation line each."""

from __future__ import annotations

import dataclasses
import sys
import types
import warnings
from typing import ClassVar

import pytest
import torch

import aezoo
from aezoo import HParams, hparam
from aezoo.errors import AezooDeprecationWarning


@dataclasses.dataclass(frozen=True)
class BlobV1(HParams):
    code_size: int = hparam(8, "Size of the code.", min=1, max=512)
    dropout: float = hparam(0.0, "Dropout (release 1 only).", min=0, max=1)


@dataclasses.dataclass(frozen=True)
class BlobV2(HParams):
    latent_dim: int = hparam(8, "Size of the code.", min=1, max=512)
    renamed: ClassVar[dict[str, str]] = {"code_size": "latent_dim"}
    removed: ClassVar[dict[str, str]] = {"dropout": "it never helped"}


def _dense(latent_dim: int) -> aezoo.AutoEncoder:
    torch.manual_seed(0)
    return aezoo.architecture("dense").build(latent_dim=latent_dim, hidden=(16,))


def _plugin(name: str, architecture: aezoo.Architecture, monkeypatch) -> None:
    module = types.ModuleType(name)
    module.aezoo_register_architectures = aezoo.hookimpl(lambda register: register(architecture))
    monkeypatch.setitem(sys.modules, name, module)
    aezoo.register_plugin(module, name)


def _release_1(monkeypatch) -> None:
    arch = aezoo.Architecture("blob", "release 1", BlobV1, lambda hp: _dense(hp.code_size), "mnist")
    _plugin("blob_release_1", arch, monkeypatch)


def _release_2(monkeypatch) -> None:
    arch = aezoo.Architecture(
        "blob2", "release 2", BlobV2, lambda hp: _dense(hp.latent_dim), "mnist", renamed_from=("blob",)
    )
    _plugin("blob_release_2", arch, monkeypatch)


@pytest.fixture
def old_file(tmp_path, monkeypatch):
    """Weights saved by release 1 (architecture 'blob', code_size 5, dropout 0.5)."""
    _release_1(monkeypatch)
    model = aezoo.create("blob", code_size=5, dropout=0.5)
    path = tmp_path / "old.safetensors"
    aezoo.save(model, path)
    aezoo.plugins.reset()
    _release_2(monkeypatch)
    return path, model.state_dict()


def test_weights_of_the_old_release_load_under_the_new_names(old_file):
    path, state = old_file
    with pytest.warns(AezooDeprecationWarning) as caught:
        model = aezoo.load(path)
    messages = [str(w.message) for w in caught]
    assert "architecture 'blob' is now called 'blob2'; use the new name" in messages
    assert "blob2: hyperparameter 'code_size' is now called 'latent_dim'; use the new name" in messages
    assert "blob2: hyperparameter 'dropout' was removed (it never helped); its value is ignored" in messages
    assert model.architecture == "blob2" and model.hparams.to_dict() == {"latent_dim": 5}
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())


def test_the_command_line_says_it_in_one_line_each(monkeypatch, cli):
    _release_2(monkeypatch)
    status, out, err = cli("info", "blob")
    assert status == 0 and out.startswith("blob2: release 2"), err
    assert "aezoo: warning: architecture 'blob' is now called 'blob2'; use the new name" in err.splitlines()
    assert "Traceback" not in err and "FutureWarning" not in err
    status, _, err = cli("train", "blob", "--set", "code_size=3", "--set", "dropout=0.1", "--epochs", "0")
    assert status == 2 and err.strip().splitlines()[-1] == (
        "aezoo: error: blob2: hyperparameter 'dropout' was removed (it never helped)"
    )


def test_old_names_in_code_and_recipes(monkeypatch):
    _release_2(monkeypatch)
    with pytest.warns(AezooDeprecationWarning) as caught:
        assert aezoo.create("blob", code_size=3).hparams.to_dict() == {"latent_dim": 3}
    assert [str(w.message) for w in caught] == [
        "architecture 'blob' is now called 'blob2'; use the new name",
        "blob2: hyperparameter 'code_size' is now called 'latent_dim'; use the new name",
    ]
    with pytest.raises(
        aezoo.HParamError, match="'code_size' was renamed 'latent_dim'; give only 'latent_dim'"
    ):
        BlobV2.from_dict({"code_size": 3, "latent_dim": 4})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names warn about nothing
        assert aezoo.create("blob2", latent_dim=3).hparams.to_dict() == {"latent_dim": 3}
    from aezoo.recipes import recipe_from_dict

    recipe = recipe_from_dict({"architecture": "blob", "hparams": {"code_size": "6"}}, "old.toml")
    with pytest.warns(AezooDeprecationWarning) as caught:
        arch, hparams, _ = recipe.resolve()
    assert arch.name == "blob2" and hparams.to_dict() == {"latent_dim": 6} and len(caught) == 2


def test_an_old_name_never_shadows_an_installed_architecture(monkeypatch):
    arch = aezoo.Architecture(
        "blob3",
        "renamed from dense?",
        BlobV2,
        lambda hp: _dense(hp.latent_dim),
        "mnist",
        renamed_from=("dense",),
    )
    _plugin("blob_release_3", arch, monkeypatch)
    assert aezoo.architecture("dense").name == "dense"
