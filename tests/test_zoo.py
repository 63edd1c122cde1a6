"""The shipped zoo: an entry per built-in, each card held to its weights, each recipe replayable."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import aezoo
from aezoo import checkpoint, pretrained, recipes
from aezoo.errors import AezooError
from tests.conftest import REPO, data_dir
from tests.test_cli import aezoo as run_aezoo

BUILT_INS = {"dense", "conv", "denoising", "superres", "vae", "aae", "musicvae"}
#: What every shipped entry together may weigh.
BUDGET_BYTES = 25_000_000


def shipped() -> list[str]:
    aezoo.plugins.reset()
    names = [n for n, item in pretrained.entries().items() if item.distribution == "aezoo"]
    aezoo.plugins.reset()
    return names


SHIPPED = shipped()


def test_an_entry_for_every_built_in_architecture():
    assert {name.partition(":")[0] for name in SHIPPED} >= BUILT_INS


def test_the_shipped_weights_fit_the_budget():
    total = sum(Path(pretrained.entry(name).weights).stat().st_size for name in SHIPPED)
    assert 0 < total <= BUDGET_BYTES


@pytest.mark.parametrize("name", SHIPPED)
def test_card_states_data_licence_training_and_commands(name):
    card = pretrained.card(pretrained.entry(name))
    for key in ("source", "licence", "description"):
        assert card["dataset"].get(key), f"{name}: the card's dataset has no {key}"
    for key in ("command", "steps", "wall_time", "machine", "date"):
        assert card["training"].get(key), f"{name}: the card's training has no {key}"
    assert card["training"]["command"].startswith("aezoo train --config ")
    full = card["metrics"]["full"]
    assert card["metrics"]["headline"] in full
    assert all(value["command"].startswith(f"aezoo evaluate {name}") for value in full.values())
    assert pretrained.checks(card), f"{name}: the card records no figure for the test suite to check"


@pytest.mark.parametrize("name", SHIPPED)
def test_card_figures_match_the_weights(name):
    item = pretrained.entry(name)
    for check in pretrained.checks(pretrained.card(item)):
        if "{data}" in str(check.get("dataset", "")) and data_dir() is None:
            if os.environ.get("CI"):
                pytest.fail(f"{name}'s check needs $AEZOO_DATA ({check['dataset']}), which CI must provide")
            pytest.skip("this card's check reads a dataset from $AEZOO_DATA")
        measured = pretrained.measure(item, check, data_dir=data_dir())
        for key, recorded in check["metrics"].items():
            assert measured[key] == pytest.approx(recorded, rel=check["rtol"]), (
                f"{name}: {key} on {check.get('examples_text', check['split'])} is {measured[key]:.6g}, "
                f"its card says {recorded:.6g}"
            )


@pytest.mark.parametrize("name", SHIPPED)
def test_weights_carry_their_recipe_and_distribution(name):
    item = pretrained.entry(name)
    metadata = checkpoint.read_metadata(item.weights)
    assert metadata["aezoo.distribution"] == "aezoo"
    shipped = recipes.read_recipe(item.recipe)
    stored = recipes.recipe_from_dict(checkpoint.recipe_of(metadata), f"{name}'s weights")
    assert stored.dataset == shipped.dataset and stored.architecture == shipped.architecture
    arch, hparams, trainer = shipped.resolve()
    assert stored.resolve()[1:] == (hparams, trainer), "the recipe beside the card is not the weights' own"
    assert arch.name == item.architecture and aezoo.load(name).hparams == hparams


@pytest.mark.parametrize("name", SHIPPED)
def test_recipe_replays(name, tmp_path, monkeypatch):
    """Each shipped recipe trains as recorded (a few steps of it here; its data checked first)."""
    root = data_dir()
    if root is None:
        pytest.skip("the recipes were trained on the full datasets in $AEZOO_DATA")
    item = pretrained.entry(name)
    out = tmp_path / "replay"
    result = run_aezoo(
        "train", "--config", str(item.recipe), "--max-steps", "2", "--limit-train", "32", "--limit-eval", "8",
        "--no-test", "--no-progress", "--out", str(out), env={"AEZOO_DATA": str(root)}, cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    replayed = recipes.read_recipe(out / "config.json")
    recorded = recipes.read_recipe(item.recipe)
    assert (replayed.architecture, replayed.dataset) == (recorded.architecture, recorded.dataset)
    assert replayed.resolve()[1] == recorded.resolve()[1]


def test_sample_from_a_pretrained_model_offline_with_no_data(tmp_path):
    empty = tmp_path / "no-data"
    result = run_aezoo(
        "sample",
        "vae:mnist-2d",
        "-n",
        "16",
        env={"AEZOO_DATA": str(empty), "AEZOO_OFFLINE": "1"},
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "vae-mnist-2d-samples.png").exists()


def test_pretrained_lists_every_entry_with_its_headline():
    result = run_aezoo("pretrained")
    assert result.returncode == 0, result.stderr
    for name in SHIPPED:
        line = next(line for line in result.stdout.splitlines() if line.startswith(name + " "))
        card = pretrained.card(pretrained.entry(name))
        assert pretrained.headline(card).split()[0] in line and " MB" in line


def test_pretrained_names_need_their_architecture():
    with pytest.raises(AezooError, match="did you mean 'vae:mnist'"):
        aezoo.load("vae:mnsit")
