"""Recipes: ``aezoo train --config FILE`` (TOML, or a run's config.json), overrides, mistakes, replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from aezoo import recipes

TINY = ["--set", "hidden=16", "--set", "latent_dim=2"]
SMALL = ["--limit-train", "256", "--limit-eval", "64", "--no-progress"]


def records(run: Path) -> list[dict]:
    """metrics.jsonl without its wall-clock times."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k != "time_s"} for line in lines]


def config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text())


def one_error_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("aezoo: error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_a_run_records_its_thread_count_and_leaves_the_processs_as_it_was(cli, tmp_path):
    import torch

    before = torch.get_num_threads()
    want = 1 if before > 1 else 2
    code, _, err = cli(
        "train", "dense", *TINY, "--max-steps", "2", *SMALL, "--threads", want, "--out", tmp_path / "a"
    )
    assert code == 0, err
    assert config(tmp_path / "a")["trainer"]["threads"] == want
    assert torch.get_num_threads() == before  # the next run's default is torch's, not this run's
    code, _, err = cli("train", "--resume", tmp_path / "a", "--max-steps", "3", "--no-progress")
    assert code == 0, err
    assert torch.get_num_threads() == before
    code, _, err = cli("train", "dense", *TINY, "--max-steps", "1", *SMALL, "--out", tmp_path / "b")
    assert code == 0, err
    assert config(tmp_path / "b")["trainer"]["threads"] == before


def test_a_runs_config_replays_bit_exactly(cli, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    code, out, err = cli("train", "dense", *TINY, "--max-steps", "3", *SMALL, "--out", a)
    assert code == 0, err
    assert out.strip() == str(a)
    recorded = config(a)
    threads = recorded["trainer"]["threads"]
    assert isinstance(threads, int) and not isinstance(threads, bool) and threads >= 1
    assert {"sizes", "fingerprint"} <= set(recorded["dataset_info"])
    assert set(recorded["dataset_info"]["sizes"]) == {"train", "val", "test"}

    code, out, err = cli("train", "--config", a / "config.json", "--no-progress", "--out", b)
    assert code == 0, err
    assert out.strip() == str(b)
    first, second = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert first.keys() == second.keys()
    for key in first:
        assert first[key].dtype == second[key].dtype
        assert first[key].equal(second[key]), key
    for split in ("train", "val"):
        numbers = [r for r in records(a) if r["split"] == split]
        assert numbers and numbers == [r for r in records(b) if r["split"] == split]
    replayed = config(b)
    for key in ("architecture", "hparams", "dataset", "dataset_info", "trainer"):
        assert replayed[key] == recorded[key], key


RECIPE = """\
architecture = "dense"
dataset = "mnist"

[hparams]
hidden = [16]
latent_dim = 3

[trainer]
epochs = 7
max_steps = 50
batch_size = 64
limit_train = 256
limit_eval = 64
evaluate_test = false
"""


def test_command_line_options_override_a_toml_recipe(cli, tmp_path):
    recipe = tmp_path / "recipe.toml"
    recipe.write_text(RECIPE)
    run = tmp_path / "run"
    code, _, err = cli(
        "train", "dense", "--config", recipe, "--max-steps", "2", "--set", "latent_dim=2", "--no-progress",
        "--out", run,
    )  # fmt: skip
    assert code == 0, err
    saved = config(run)
    assert saved["trainer"]["max_steps"] == 2  # the command line wins
    assert saved["trainer"]["epochs"] == 7 and saved["trainer"]["batch_size"] == 64  # the recipe's
    assert saved["trainer"]["evaluate_test"] is False
    assert saved["hparams"]["latent_dim"] == 2 and saved["hparams"]["hidden"] == [16]
    assert [r["step"] for r in records(run) if r["split"] == "val"][-1] == 2
    assert not [r for r in records(run) if r["split"] == "test"]

    other = tmp_path / "other"
    code, _, err = cli("train", "conv", "--config", recipe, "--out", other)
    assert code == 2
    line = one_error_line(err)
    assert f"{recipe} trains 'dense', not 'conv'" in line
    assert not other.exists() and not (cli.cwd / "runs").exists()


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("unknown.toml", 'architecture = "dense"\nflavour = 1\n', "unknown key 'flavour'"),
        ("close.toml", 'architecture = "dense"\nhparam = {}\n', "did you mean 'hparams'?"),
        ("flat.toml", 'architecture = "dense"\nepochs = 3\n', "trainer settings go in its [trainer] table"),
        ("seed.toml", 'architecture = "dense"\nseed = 5\n', "'seed' is a trainer setting; it goes in the [trainer] table"),
        ("type.toml", 'architecture = "dense"\nhparams = "x"\n', "'hparams' must be a table, got 'x'"),
        ("value-type.toml", 'architecture = "dense"\n[hparams]\nlatent_dim = "two"\n', "'latent_dim' must be int"),
        ("range.toml", 'architecture = "dense"\n[hparams]\nlatent_dim = 0\n', "'latent_dim' must be 1 … 65536, got 0"),
        ("lr.toml", 'architecture = "dense"\n[trainer]\nlr = -1.0\n', "[trainer] setting 'lr' must be"),
        ("misspelt.toml", 'architecture = "dense"\n[trainer]\nepoch = 3\n', "'epoch' does not exist; did you mean 'epochs'?"),
        ("hp.toml", 'architecture = "dense"\n[hparams]\nlatnet_dim = 2\n', "did you mean 'latent_dim'?"),
        ("arch.toml", 'architecture = "dnse"\n', "architecture: no architecture 'dnse'; did you mean 'dense'?"),
        ("noarch.toml", "[hparams]\nlatent_dim = 2\n", "no 'architecture'"),
        ("list.json", "[1, 2]", "a recipe is a table of settings, got a list"),
        ("bad.toml", 'architecture = "dense\n', "is not valid TOML"),
        ("bad.json", '{"architecture": ', "is not valid JSON"),
        ("missing.toml", None, "does not exist"),
        ("folder", "", "is a folder"),
    ],
)  # fmt: skip
def test_a_bad_recipe_is_one_line_naming_the_file_and_nothing_is_created(cli, tmp_path, name, text, message):
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    elif text is not None:
        path.write_text(text)
    out = tmp_path / "run"
    code, stdout, err = cli("train", "--config", path, "--out", out, "--max-steps", "1", *SMALL)
    assert code == 2, err
    line = one_error_line(err)
    assert len(err.strip().splitlines()) == 1, err
    assert str(path) in line and message in line
    assert stdout == ""
    assert not out.exists() and not (cli.cwd / "runs").exists()


def test_none_in_toml_sets_an_optional_hparam_to_none(cli, tmp_path):
    recipe = tmp_path / "conv.toml"
    recipe.write_text('architecture = "conv"\n\n[hparams]\nwidths = [4, 8]\nlatent_dim = "none"\n')
    arch, hparams, _ = recipes.read_recipe(recipe).resolve()
    assert arch.name == "conv" and hparams.latent_dim is None and hparams.widths == (4, 8)
    run = tmp_path / "run"
    code, _, err = cli("train", "--config", recipe, "--max-steps", "1", "--no-test", *SMALL, "--out", run)
    assert code == 0, err
    assert config(run)["hparams"]["latent_dim"] is None


def test_a_replay_on_other_data_is_refused_unless_allowed(cli, tmp_path, mnist_dir, monkeypatch):
    a = tmp_path / "a"
    code, _, err = cli("train", "dense", *TINY, "--max-steps", "2", "--no-test", *SMALL, "--out", a)
    assert code == 0, err
    assert config(a)["dataset_info"]["sizes"]["train"] == 55_000
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("AEZOO_DATA", str(empty))  # the shipped subset is used then
    monkeypatch.setenv("AEZOO_OFFLINE", "1")
    b = tmp_path / "b"
    code, stdout, err = cli("train", "--config", a / "config.json", "--no-progress", "--out", b)
    assert code == 2, err
    line = one_error_line(err)
    assert "55,000 train" in line and "other data" in line and "--allow-other-data" in line
    assert str(a / "config.json") in line
    assert stdout == "" and not b.exists() and not (cli.cwd / "runs").exists()

    code, stdout, err = cli(
        "train", "--config", a / "config.json", "--allow-other-data", "--no-progress", "--out", b
    )
    assert code == 0, err
    assert stdout.strip() == str(b) and (b / "model.safetensors").exists()
    info = config(b)["dataset_info"]
    assert (
        info["sizes"]["train"] != 55_000 and info["fingerprint"] != config(a)["dataset_info"]["fingerprint"]
    )


def test_allow_other_data_needs_a_config(cli):
    code, _, err = cli("train", "dense", "--allow-other-data")
    assert code == 2 and "--allow-other-data goes with --config" in one_error_line(err)
    assert not (cli.cwd / "runs").exists()


def test_to_toml_round_trips_through_read_recipe(tmp_path):
    recipe = recipes.recipe_from_dict(
        {
            "architecture": "conv",
            "dataset": "mnist",
            "hparams": {"widths": [8, 16], "latent_dim": None, "batch_norm": False, "downsample": "maxpool"},
            "trainer": {"epochs": 3, "lr": 3e-4, "grad_clip": None, "device": "cpu", "threads": 2},
            "dataset_info": {
                "kind": "image",
                "sizes": {"train": 55_000, "val": 5_000, "test": 10_000},
                "fingerprint": "0123456789abcdef",
                "subset": 'a "quoted" subset',
            },
            "versions": {"aezoo": "0.1.0"},
        },
        "config.json",
    )
    path = tmp_path / "recipe.toml"
    path.write_text(recipes.to_toml(recipe, comment="A recipe.\nTwo lines of comment."))
    again = recipes.read_recipe(path)
    assert path.read_text().startswith("# A recipe.\n# Two lines of comment.\n")
    assert again.architecture == recipe.architecture and again.dataset == recipe.dataset
    arch, hparams, trainer = recipe.resolve()
    arch_again, hparams_again, trainer_again = again.resolve()
    assert arch_again is arch and hparams_again == hparams and trainer_again == trainer
    assert hparams_again.latent_dim is None and trainer_again.grad_clip is None
    recorded = recipe.provenance["dataset_info"]
    read = again.provenance["dataset_info"]
    assert read == {k: recorded[k] for k in ("sizes", "fingerprint", "subset")}
    assert again.provenance.keys() == {"dataset_info"}  # versions are not written
