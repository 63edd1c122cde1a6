"""Recipes: everything a training needs, in one TOML (or JSON) file.

A recipe names the architecture, its hyperparameters, the dataset and the trainer settings::

    architecture = "vae"
    dataset = "mnist"

    [hparams]
    latent_dim = 2

    [trainer]
    epochs = 100
    lr_schedule = "cosine"

``aezoo train --config FILE`` runs one; options on the command line override it. Every run's
``config.json`` is a recipe too: its provenance keys (versions, dates, what the dataset held) are
read as provenance, never as settings, so ``aezoo train --config runs/X/config.json`` repeats run X.
TOML has no null: a string is read as the command line reads it (``latent_dim = "none"``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from aezoo.errors import AezooError, HParamError, did_you_mean
from aezoo.hparams import HParams, parse_value

#: The settings a recipe holds.
RECIPE_KEYS = ("architecture", "hparams", "dataset", "trainer")
#: What a run's config.json records beside them: read as provenance, never as settings.
PROVENANCE_KEYS = (
    "dataset_info",
    "init_weights",
    "seed",
    "device",
    "processes",
    "versions",
    "created",
    "recipe",
)
#: Recipes are small; anything bigger is not one.
MAX_RECIPE_BYTES = 1 << 20


@dataclasses.dataclass(frozen=True)
class Recipe:
    """The settings of one training, and where they came from."""

    architecture: str
    hparams: dict[str, Any]
    dataset: str | None
    trainer: dict[str, Any]
    provenance: dict[str, Any] = dataclasses.field(default_factory=dict)
    source: str = "recipe"

    def settings(self) -> dict[str, Any]:
        """The recipe as plain data (what a weights file's ``aezoo.recipe`` metadata holds)."""
        return {
            "architecture": self.architecture,
            "hparams": dict(self.hparams),
            "dataset": self.dataset,
            "trainer": dict(self.trainer),
        }

    def resolve(self) -> tuple[Any, HParams, Any]:
        """The architecture, validated hyperparameters and :class:`~aezoo.trainer.TrainConfig`;
        a bad name or value is one :class:`AezooError` naming the key and this recipe's file."""
        from aezoo.plugins import registry
        from aezoo.trainer import TrainConfig

        try:
            arch = registry().architecture(self.architecture)
        except AezooError as exc:
            raise AezooError(f"{self.source}: architecture: {exc}") from None
        hparams = _typed(arch.hparams, self.hparams, self.source, "hparams")
        trainer = _typed(TrainConfig, self.trainer, self.source, "trainer")
        return arch, hparams, trainer


def read_recipe(path: str | os.PathLike[str]) -> Recipe:
    """Read and check a recipe file (``.toml``, or ``.json`` such as a run's ``config.json``)."""
    path = Path(path).expanduser()
    where = str(path)
    if path.is_dir():
        raise AezooError(f"{where} is a folder; give a recipe file (a run's recipe is its config.json)")
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise AezooError(f"{where} does not exist; give a recipe file (.toml or .json)") from None
    except OSError as exc:
        raise AezooError(f"{where} cannot be read ({exc.strerror or exc})") from None
    if len(raw) > MAX_RECIPE_BYTES:
        raise AezooError(f"{where} is {len(raw):,} bytes, too large to be a recipe")
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise AezooError(f"{where} is not valid {kind} ({exc}); fix the file") from None
    return recipe_from_dict(data, where)


def recipe_from_dict(data: Any, source: str = "recipe") -> Recipe:
    """A :class:`Recipe` from parsed data, its structure checked (values are checked by
    :meth:`Recipe.resolve`)."""
    if not isinstance(data, dict):
        raise AezooError(f"{source}: a recipe is a table of settings, got a {type(data).__name__}")
    for key in data:
        if key not in RECIPE_KEYS and key not in PROVENANCE_KEYS:
            hint = did_you_mean(key, RECIPE_KEYS) or f"a recipe holds {', '.join(RECIPE_KEYS)}"
            if key in _trainer_fields():
                hint = f"trainer settings go in its [trainer] table ({key} = ...)"
            raise AezooError(f"{source}: unknown key {key!r}; {hint}")
    if "architecture" not in data:
        raise AezooError(f"{source}: no 'architecture'; name one, e.g. architecture = \"vae\"")
    for key, kind, noun in (
        ("architecture", str, "a string"),
        ("dataset", str, "a string"),
        ("hparams", dict, "a table"),
        ("trainer", dict, "a table"),
        ("dataset_info", dict, "a table"),
        ("init_weights", dict, "a table"),
    ):
        if key in data and data[key] is not None and not isinstance(data[key], kind):
            raise AezooError(f"{source}: {key!r} must be {noun}, got {data[key]!r}")
    for key in ("seed", "device"):  # provenance beside a run's [trainer], which holds them too
        if key in data and key not in (data.get("trainer") or {}):
            raise AezooError(
                f"{source}: {key!r} is a trainer setting; it goes in the [trainer] table ({key} = ...)"
            )
    provenance = {k: data[k] for k in PROVENANCE_KEYS if k in data}
    return Recipe(
        architecture=data["architecture"],
        hparams=dict(data.get("hparams") or {}),
        dataset=data.get("dataset"),
        trainer=dict(data.get("trainer") or {}),
        provenance=provenance,
        source=source,
    )


def to_toml(recipe: Recipe, comment: str = "") -> str:
    """The recipe as TOML (``None`` written ``"none"``), with provenance after the settings."""
    lines = [f"# {line}".rstrip() for line in comment.splitlines()]
    lines.append(f"architecture = {toml_value(recipe.architecture)}")
    if recipe.dataset is not None:
        lines.append(f"dataset = {toml_value(recipe.dataset)}")
    for table in ("hparams", "trainer"):
        lines += ["", f"[{table}]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in getattr(recipe, table).items()]
    info = recipe.provenance.get("dataset_info")
    if info:
        lines += ["", "# What the dataset held when this recipe was trained (provenance, not settings)."]
        lines.append("[dataset_info]")
        lines += [
            f"{k} = {toml_value(v)}" for k, v in info.items() if k in ("subset", "fingerprint", "sizes")
        ]
    return "\n".join(lines) + "\n"


def check_same_data(recorded: Mapping[str, Any] | None, found: Mapping[str, Any], source: str) -> None:
    """A replay whose dataset differs from the one its recipe recorded says so, in one line."""
    if not recorded or "fingerprint" not in recorded or recorded["fingerprint"] == found.get("fingerprint"):
        return
    raise AezooError(
        f"{source} was trained on {_data_text(recorded)}, but this machine's dataset holds "
        f"{_data_text(found)}, so the replay would train on other data; give the recorded data "
        "(--data-dir), or pass --allow-other-data to train on this data anyway"
    )


def _data_text(info: Mapping[str, Any]) -> str:
    sizes = info.get("sizes") or {}
    text = " / ".join(f"{sizes[k]:,} {k}" for k in ("train", "val", "test") if k in sizes) or "other examples"
    if info.get("subset"):
        text += f" ({info['subset']})"
    return f"{text}, fingerprint {str(info.get('fingerprint', '?'))[:12]}"


def _trainer_fields() -> set[str]:
    from aezoo.trainer import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)}


def _typed(cls: type[HParams], values: Mapping[str, Any], source: str, table: str) -> HParams:
    """Values of a recipe table as ``cls``: strings parsed as on the command line."""
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    try:
        for key, value in cls.upgrade(values).items():
            if key in fields and isinstance(value, str) and hints[key] is not str:
                value = parse_value(cls._owner(), key, hints[key], value)
            elif isinstance(value, list):
                value = tuple(value)
            out[key] = value
        return cls.from_dict(out)
    except HParamError as exc:
        detail = str(exc).split(": ", 1)[-1]  # "setting 'lr' must be float, got 'x'"
        raise AezooError(f"{source}: [{table}] {detail}") from None


def toml_value(value: Any) -> str:
    if value is None:
        return '"none"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            repr(value) if math.isfinite(value) else ("inf" if value > 0 else "-inf" if value < 0 else "nan")
        )
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    return json.dumps(str(value), ensure_ascii=False)
