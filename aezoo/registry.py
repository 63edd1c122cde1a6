"""What plugins register (architectures, datasets, pretrained models, trainer callbacks, commands)
and how names are looked up."""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aezoo.errors import AezooError, deprecated, did_you_mean
from aezoo.hparams import HParams

if TYPE_CHECKING:
    from aezoo.data import DataOptions, DataSplits
    from aezoo.model import AutoEncoder

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


def _resolve(target: Callable[..., Any] | str, what: str) -> Callable[..., Any]:
    """Import ``"package.module:attribute"`` lazily; callables pass through."""
    if callable(target):
        return target
    module_name, _, attr = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AezooError(f"{what}: cannot import {target!r} ({exc})") from exc


def _check_name(kind: str, name: str) -> None:
    if not name or not set(name) <= _NAME_CHARS or not name[0].isalnum():
        raise ValueError(
            f"{kind} name {name!r} must be lower-case letters, digits, '-' or '_' "
            "and start with a letter or digit"
        )


@dataclasses.dataclass(frozen=True)
class Architecture:
    """An autoencoder architecture a plugin provides.

    Attributes:
        name: Unique, lower-case name used on the command line (``aezoo train NAME``).
        description: One line saying what it is.
        hparams: Frozen dataclass deriving from :class:`aezoo.HParams`, with a default for
            every field.
        builder: ``builder(hparams) -> aezoo.model.AutoEncoder``, or ``"module:function"``
            imported only when a model is built (keeps ``aezoo list`` fast).
        default_dataset: Name of the dataset ``aezoo train NAME`` uses by default.
        smoke_hparams: Small hyperparameters that build a fast model, used by the conformance
            checks (:mod:`aezoo.testing`) and smoke tests; empty means the defaults.
        renamed_from: Names this architecture had in older releases: weights files, recipes,
            pretrained names and commands that use one still work, with a deprecation warning.
    """

    name: str
    description: str
    hparams: type[HParams]
    builder: Callable[[Any], AutoEncoder] | str
    default_dataset: str
    smoke_hparams: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    renamed_from: tuple[str, ...] = ()
    plugin: str = ""
    #: The installed distribution that provides it (filled in by the plugin host).
    distribution: str = ""

    def __post_init__(self) -> None:
        _check_name("architecture", self.name)
        for old in self.renamed_from:
            _check_name("architecture", old)
        if not (isinstance(self.hparams, type) and issubclass(self.hparams, HParams)):
            raise TypeError(f"architecture {self.name!r}: hparams must subclass aezoo.HParams")
        if not dataclasses.is_dataclass(self.hparams):
            raise TypeError(f"architecture {self.name!r}: hparams must be a dataclass")
        if self.hparams.architecture != self.name:
            # A per-architecture subclass, so validation errors name this architecture.
            named = type(self.hparams.__name__, (self.hparams,), {"architecture": self.name})
            named.__module__ = self.hparams.__module__
            named.__qualname__ = self.hparams.__qualname__
            object.__setattr__(self, "hparams", named)

    def make_hparams(self, **values: Any) -> HParams:
        """Defaults overridden by ``values``; a bad name or value raises :class:`HParamError`."""
        return self.hparams.from_dict(values)

    def build(self, hparams: HParams | None = None, **values: Any) -> AutoEncoder:
        """Build the model from validated hyperparameters."""
        from aezoo.model import AutoEncoder

        if hparams is None:
            hparams = self.make_hparams(**values)
        elif values:
            hparams = dataclasses.replace(hparams, **values)
        model = _resolve(self.builder, f"architecture {self.name!r}")(hparams)
        if not isinstance(model, AutoEncoder):
            raise TypeError(
                f"architecture {self.name!r}: builder returned {type(model).__name__}, "
                "expected an aezoo.model.AutoEncoder"
            )
        model.architecture = self.name
        model.hparams = hparams
        return model


@dataclasses.dataclass(frozen=True)
class Dataset:
    """A dataset a plugin provides.

    Attributes:
        name: Unique name (``--dataset NAME``). A dataset that takes an argument is written
            ``NAME:ARGUMENT`` on the command line (``images:~/photos``).
        description: One line saying what it is.
        loader: ``loader(options, argument) -> aezoo.data.DataSplits`` or ``"module:function"``.
        argument: What the argument means (for example ``"PATH"``); empty for none.
    """

    name: str
    description: str
    loader: Callable[[DataOptions, str | None], DataSplits] | str
    argument: str = ""
    plugin: str = ""
    distribution: str = ""

    def __post_init__(self) -> None:
        _check_name("dataset", self.name)

    def load(self, options: DataOptions, argument: str | None = None) -> DataSplits:
        if self.argument and not argument:
            raise AezooError(
                f"dataset {self.name!r} needs {self.argument}: write --dataset {self.name}:{self.argument}"
            )
        if argument and not self.argument:
            raise AezooError(f"dataset {self.name!r} takes no argument; write --dataset {self.name}")
        return _resolve(self.loader, f"dataset {self.name!r}")(options, argument)


_PRETRAINED_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*:[A-Za-z0-9][A-Za-z0-9_-]*$")


def is_pretrained_name(text: str) -> bool:
    """Whether ``text`` is written like a pretrained name (``ARCH:TAG``, e.g. ``vae:mnist``)."""
    return bool(_PRETRAINED_NAME.match(text))


@dataclasses.dataclass(frozen=True)
class Pretrained:
    """Trained weights a plugin ships or points to, with their model card and recipe.

    Attributes:
        name: ``ARCH:TAG`` (``vae:mnist``): the architecture, then what it was trained for.
        weights: A ``.safetensors`` file written by :func:`aezoo.save` (its metadata holds the whole
            recipe), or an ``https://`` URL downloaded once into the user cache.
        card: The model card, a TOML file (see ``aezoo info NAME``).
        recipe: The recipe it was trained from (TOML), replayable with ``aezoo train --config``.
        sha256: The weights' SHA-256: required for a URL, checked for a file when given.
        description: One line; default: the card's ``summary``.
    """

    name: str
    weights: str | os.PathLike[str]
    card: str | os.PathLike[str]
    recipe: str | os.PathLike[str] | None = None
    sha256: str | None = None
    description: str = ""
    plugin: str = ""
    distribution: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not is_pretrained_name(self.name):
            raise ValueError(
                f"pretrained name {self.name!r} must be ARCH:TAG, e.g. 'vae:mnist' (lower-case architecture, "
                "then letters, digits, '-' or '_')"
            )
        if self.is_remote and not (
            isinstance(self.sha256, str) and re.fullmatch(r"[0-9a-f]{64}", self.sha256)
        ):
            raise ValueError(
                f"pretrained {self.name!r}: weights from a URL need their sha256 (64 hex digits)"
            )

    @classmethod
    def from_folder(cls, name: str, folder: str | os.PathLike[str], **kwargs: Any) -> Pretrained:
        """An entry laid out as ``folder/{model.safetensors, card.toml, recipe.toml}``."""
        folder = Path(folder)
        return cls(name, folder / "model.safetensors", folder / "card.toml", folder / "recipe.toml", **kwargs)

    @property
    def architecture(self) -> str:
        return self.name.partition(":")[0]

    @property
    def tag(self) -> str:
        return self.name.partition(":")[2]

    @property
    def is_remote(self) -> bool:
        return isinstance(self.weights, str) and self.weights.startswith(("https://", "http://"))


@dataclasses.dataclass(frozen=True)
class TrainerCallback:
    """A trainer callback a plugin provides (:class:`aezoo.callbacks.Callback`).

    Attributes:
        name: Unique, lower-case name; ``aezoo train --callback NAME`` turns on an opt-in one.
        builder: ``builder(config) -> Callback | None`` (or ``"module:function"``, imported when a
            training starts): the callback for a run with this :class:`~aezoo.trainer.TrainConfig`,
            or None when the run does not use it. Return one for every run to be always on; look
            for ``name`` in ``config.callbacks`` to be opt-in, or at a setting of your own.
        description: One line saying what it does.
        order: Callbacks are called in this order (lower first; aezoo's metrics log is 0).
    """

    name: str
    builder: Callable[..., Any] | str
    description: str = ""
    order: int = 100
    plugin: str = ""
    distribution: str = ""

    def __post_init__(self) -> None:
        _check_name("callback", self.name)

    def build(self, config: Any) -> Any:
        return _resolve(self.builder, f"callback {self.name!r}")(config)


@dataclasses.dataclass(frozen=True)
class Command:
    """A subcommand a plugin adds to ``aezoo`` (``aezoo NAME ...``), as llm and datasette let plugins do.

    Attributes:
        name: The subcommand; it cannot replace one of aezoo's own.
        help: One line for ``aezoo --help``.
        arguments: ``arguments(parser)`` adds its options to its ``argparse`` parser, or
            ``"module:function"``. Its module is imported for every ``aezoo`` command (``--help``
            too), so keep torch out of its top level.
        handler: ``handler(args) -> int | None`` (the exit status; None is 0), or
            ``"module:function"``, imported only when the command runs. Raise
            :class:`aezoo.AezooError` for a user's mistake: it is printed as one line, status 2.
        description: Longer text for ``aezoo NAME --help`` (default: ``help``).
    """

    name: str
    help: str
    arguments: Callable[..., Any] | str
    handler: Callable[..., Any] | str
    description: str = ""
    plugin: str = ""
    distribution: str = ""

    def __post_init__(self) -> None:
        _check_name("command", self.name)

    def configure_parser(self, parser: Any) -> None:
        _resolve(self.arguments, f"command {self.name!r}")(parser)

    def run(self, args: Any) -> int | None:
        return _resolve(self.handler, f"command {self.name!r}")(args)


Registered = Architecture | Dataset | Pretrained | TrainerCallback | Command


class Registry:
    """Architectures, datasets and pretrained models by name, with the plugin that provided each."""

    def __init__(self) -> None:
        self.architectures: dict[str, Architecture] = {}
        self.datasets: dict[str, Dataset] = {}
        self.pretrained: dict[str, Pretrained] = {}
        self.callbacks: dict[str, TrainerCallback] = {}
        self.commands: dict[str, Command] = {}
        #: name -> message, for names that two plugins registered (unusable until resolved).
        self.conflicts: dict[str, str] = {}
        #: An architecture's old name -> its name now (:attr:`Architecture.renamed_from`).
        self.renamed: dict[str, str] = {}

    def table(self, item: Registered) -> tuple[str, dict[str, Any]]:
        """The kind of ``item`` (``"architecture"``...) and the table it goes in."""
        if isinstance(item, Architecture):
            return "architecture", self.architectures
        if isinstance(item, Dataset):
            return "dataset", self.datasets
        if isinstance(item, TrainerCallback):
            return "callback", self.callbacks
        if isinstance(item, Command):
            return "command", self.commands
        return "pretrained model", self.pretrained

    def add(self, item: Registered) -> str | None:
        """Add ``item``; a name two plugins register becomes a conflict (its message is returned)."""
        kind, table = self.table(item)
        previous = table.get(item.name)
        if previous is not None:
            message = (
                f"{kind} {item.name!r} is registered by two plugins: {previous.plugin} and "
                f"{item.plugin}; uninstall one of them or limit loading with AEZOO_PLUGINS"
            )
            del table[item.name]
            self.conflicts[f"{kind}:{item.name}"] = message
            return message
        if f"{kind}:{item.name}" in self.conflicts:
            return self.conflicts[f"{kind}:{item.name}"]
        table[item.name] = item
        if isinstance(item, Architecture):
            self.renamed.update(dict.fromkeys(item.renamed_from, item.name))
        return None

    def list_architectures(self, pattern: str = "*") -> list[str]:
        return sorted(n for n in self.architectures if fnmatch.fnmatchcase(n, pattern))

    def architecture(self, name: str) -> Architecture:
        if not isinstance(name, str):
            raise AezooError(f"architecture name must be a string, got {name!r}")
        found = self.architectures.get(name) or self.architectures.get(name.lower())
        if found is not None:
            return found
        if name in self.renamed and self.renamed[name] in self.architectures:
            deprecated(f"architecture {name!r} is now called {self.renamed[name]!r}; use the new name")
            return self.architectures[self.renamed[name]]
        if f"architecture:{name}" in self.conflicts:
            raise AezooError(self.conflicts[f"architecture:{name}"])
        hint = did_you_mean(name, self.architectures) or "`aezoo list` shows them all"
        raise AezooError(f"no architecture {name!r}; {hint}")

    def dataset(self, spec: str) -> tuple[Dataset, str | None]:
        """Look up ``NAME`` or ``NAME:ARGUMENT``."""
        name, sep, argument = spec.partition(":")
        found = self.datasets.get(name)
        if found is not None:
            return found, (argument if sep else None)
        if f"dataset:{name}" in self.conflicts:
            raise AezooError(self.conflicts[f"dataset:{name}"])
        hint = did_you_mean(name, self.datasets) or "known: " + ", ".join(sorted(self.datasets))
        raise AezooError(f"no dataset {name!r}; {hint}")
