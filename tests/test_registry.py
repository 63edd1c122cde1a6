"""Plugin discovery through real entry points, isolation of broken plugins, name lookups."""

from __future__ import annotations

import pytest

import aezoo
import aezoo.plugins
from aezoo.errors import AezooError, PluginError
from tests.conftest import make_distribution

TOY_PLUGIN = """
from dataclasses import dataclass
import aezoo

@dataclass(frozen=True)
class ToyHParams(aezoo.HParams):
    latent_dim: int = aezoo.hparam(4, "Code size.", min=1)

def build(hp):
    import torch
    from aezoo.image import ImageAutoEncoder, ImageDecoder

    class Decoder(ImageDecoder):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(hp.latent_dim, 16)
        def logits(self, z):
            return self.net(z).unflatten(1, (1, 4, 4))

    class Toy(ImageAutoEncoder):
        def __init__(self):
            super().__init__()
            self.image_shape = (1, 4, 4)
            self.encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, hp.latent_dim))
            self.decoder = Decoder()
    return Toy()

@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(aezoo.Architecture(name="{name}", description="A toy.", hparams=ToyHParams,
                                builder=build, default_dataset="mnist"))
"""


def toy(name: str) -> str:
    return TOY_PLUGIN.replace("{name}", name)


def test_builtins_are_discovered_through_entry_points():
    records = aezoo.plugins.host().records
    for plugin in ("dense", "conv", "images"):
        assert records[plugin].status == "ok"
        assert records[plugin].distribution.startswith("aezoo ")
    assert {"dense", "conv"} <= set(aezoo.list_architectures())
    assert {"mnist", "fashion-mnist"} <= set(aezoo.list_datasets())


def test_list_architectures_takes_fnmatch_patterns():
    assert aezoo.list_architectures("con*") == ["conv"]
    assert aezoo.list_architectures("*ens*") == ["dense"]
    assert aezoo.list_architectures("nothing*") == []


def test_unknown_name_suggests_close_matches():
    with pytest.raises(AezooError, match=r"no architecture 'cnov'; did you mean 'conv'\?"):
        aezoo.create("cnov")
    with pytest.raises(AezooError, match=r"no dataset 'minst'; did you mean 'mnist'\?"):
        aezoo.plugins.registry().dataset("minst")


def test_third_party_distribution_is_discovered(site):
    make_distribution(site, "aezoo-toy", {"toy": "aezoo_toy"}, {"aezoo_toy": toy("toy")})
    assert "toy" in aezoo.list_architectures()
    record = aezoo.plugins.host().records["toy"]
    assert (record.distribution, record.status, record.architectures) == ("aezoo-toy 1.0", "ok", ["toy"])
    model = aezoo.create("toy", latent_dim=3)
    assert model.architecture == "toy" and model.hparams.latent_dim == 3


def test_plugin_that_fails_to_import_is_isolated(site):
    make_distribution(site, "aezoo-bad", {"bad": "aezoo_bad"}, {"aezoo_bad": "import no_such_module_xyz\n"})
    record = aezoo.plugins.host().records["bad"]
    assert record.status == "broken"
    assert "ModuleNotFoundError" in record.error and "no_such_module_xyz" in record.error
    assert {"dense", "conv"} <= set(aezoo.list_architectures())  # everything else works


def test_plugin_that_fails_to_register_is_isolated_and_rolled_back(site):
    source = (
        toy("half")
        + """
@aezoo.hookimpl
def aezoo_register_datasets(register):
    raise RuntimeError("cannot reach the dataset index")
"""
    )
    make_distribution(site, "aezoo-half", {"half": "aezoo_half"}, {"aezoo_half": source})
    record = aezoo.plugins.host().records["half"]
    assert record.status == "broken"
    assert "RuntimeError: cannot reach the dataset index" in record.error
    assert "conv" in aezoo.list_architectures()


def test_strict_mode_turns_a_broken_plugin_into_an_error(site, monkeypatch):
    make_distribution(site, "aezoo-bad", {"bad": "aezoo_bad"}, {"aezoo_bad": "raise ImportError('boom')\n"})
    monkeypatch.setenv("AEZOO_STRICT_PLUGINS", "1")
    with pytest.raises(
        PluginError, match=r"plugin 'bad' .*aezoo-bad 1.0.* is broken: import failed: ImportError: boom"
    ):
        aezoo.list_architectures()


def test_allow_list_limits_loaded_entry_points(site, monkeypatch):
    make_distribution(site, "aezoo-bad", {"bad": "aezoo_bad"}, {"aezoo_bad": "raise ImportError('boom')\n"})
    monkeypatch.setenv("AEZOO_PLUGINS", "conv, images")
    assert aezoo.list_architectures() == ["conv"]
    records = aezoo.plugins.host().records
    assert records["bad"].status == "skipped" and records["dense"].status == "skipped"


def test_same_name_from_two_distributions_is_a_clear_conflict(site):
    make_distribution(site, "aezoo-one", {"one": "aezoo_one"}, {"aezoo_one": toy("twin")})
    make_distribution(site, "aezoo-two", {"two": "aezoo_two"}, {"aezoo_two": toy("twin")})
    with pytest.raises(AezooError) as info:
        aezoo.create("twin")
    message = str(info.value)
    assert "'twin' is registered by two plugins" in message
    assert "aezoo-one 1.0" in message and "aezoo-two 1.0" in message
    records = aezoo.plugins.host().records
    assert records["one"].status == records["two"].status == "conflict"
    assert "conv" in aezoo.list_architectures()  # the rest still works


def test_conflict_is_an_error_in_strict_mode(site, monkeypatch):
    make_distribution(site, "aezoo-one", {"one": "aezoo_one"}, {"aezoo_one": toy("conv")})
    monkeypatch.setenv("AEZOO_STRICT_PLUGINS", "1")
    with pytest.raises(PluginError, match="'conv' is registered by two plugins"):
        aezoo.list_architectures()


def test_register_plugin_in_code(monkeypatch):
    import sys
    import types

    module = types.ModuleType("inline_plugin")
    monkeypatch.setitem(sys.modules, "inline_plugin", module)
    exec(toy("inline"), module.__dict__)
    aezoo.register_plugin(module)
    assert "inline" in aezoo.list_architectures()
