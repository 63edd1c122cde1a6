"""Plugin discovery: the ``aezoo`` entry-point group, loaded through pluggy.

A plugin that fails to import or to register is recorded with its error and skipped, so every
other plugin keeps working; ``AEZOO_STRICT_PLUGINS=1`` turns such failures into errors.
``AEZOO_PLUGINS=name,name`` limits loading to those entry-point names.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from importlib import metadata
from typing import TYPE_CHECKING, Any

import pluggy

from aezoo import hookspecs
from aezoo.errors import AezooError, PluginError
from aezoo.registry import Architecture, Command, Dataset, Pretrained, Registry, TrainerCallback

if TYPE_CHECKING:
    from aezoo.data import DataSplits

ENTRY_POINT_GROUP = "aezoo"
STRICT_ENV = "AEZOO_STRICT_PLUGINS"
ALLOW_ENV = "AEZOO_PLUGINS"


@dataclasses.dataclass
class PluginRecord:
    """What happened to one plugin: loaded, broken or skipped (with the reason), or in conflict."""

    name: str
    distribution: str
    module: str
    status: str = "ok"  # "ok" | "broken" | "skipped" | "conflict"
    error: str = ""
    architectures: list[str] = dataclasses.field(default_factory=list)
    datasets: list[str] = dataclasses.field(default_factory=list)
    pretrained: list[str] = dataclasses.field(default_factory=list)
    callbacks: list[str] = dataclasses.field(default_factory=list)
    commands: list[str] = dataclasses.field(default_factory=list)
    #: The distribution's name alone (``aezoo``), for "pip install" hints; empty for code.
    package: str = ""


class PluginHost:
    """Owns the pluggy manager, the plugin records and the registry built from them."""

    def __init__(self, *, strict: bool | None = None, allow: set[str] | None = None) -> None:
        self.strict = _env_flag(STRICT_ENV) if strict is None else strict
        self.allow = _env_list(ALLOW_ENV) if allow is None else allow
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.records: dict[str, PluginRecord] = {}
        self.registry = Registry()

    # -- loading -----------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """aezoo's own callbacks (through the same hook, whatever ``AEZOO_PLUGINS`` says: a run needs
        its metrics log), then every plugin of the ``aezoo`` entry-point group."""
        from aezoo import builtin_callbacks
        from aezoo._version import __version__

        core = PluginRecord("aezoo", f"aezoo {__version__}", builtin_callbacks.__name__, package="aezoo")
        self.records[core.name] = core
        self.add(builtin_callbacks, name=core.name, record=core)
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
            record = PluginRecord(
                name=ep.name, distribution=dist, module=ep.value, package=ep.dist.name if ep.dist else ""
            )
            if ep.name in self.records:
                record.status, record.error = (
                    "broken",
                    (f"entry point name {ep.name!r} is also used by {self.records[ep.name].distribution}"),
                )
                self._fail(record)
                continue
            self.records[ep.name] = record
            if self.allow is not None and ep.name not in self.allow:
                record.status, record.error = "skipped", f"not listed in {ALLOW_ENV}"
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                record.status, record.error = "broken", f"import failed: {_one_line(exc)}"
                self._fail(record, exc)
                continue
            self.add(plugin, name=ep.name, record=record)

    def add(self, plugin: Any, *, name: str | None = None, record: PluginRecord | None = None) -> None:
        """Register a plugin object (a module or any object with hook implementations)."""
        name = name or getattr(plugin, "__name__", None) or repr(plugin)
        if record is None:
            module = getattr(plugin, "__name__", type(plugin).__name__)
            record = PluginRecord(name=name, distribution="registered in code", module=module)
            self.records[name] = record
        try:
            self.manager.register(plugin, name=name)
        except Exception as exc:
            record.status, record.error = "broken", f"not a valid plugin: {_one_line(exc)}"
            self._fail(record, exc)
            return
        label = f"{record.distribution} (plugin {name!r})"
        for hook, kind in (
            (self.manager.hook.aezoo_register_architectures, Architecture),
            (self.manager.hook.aezoo_register_datasets, Dataset),
            (self.manager.hook.aezoo_register_pretrained, Pretrained),
            (self.manager.hook.aezoo_register_callbacks, TrainerCallback),
            (self.manager.hook.aezoo_register_commands, Command),
        ):
            for impl in hook.get_hookimpls():
                if impl.plugin_name != name:
                    continue
                added: list[Any] = []

                def register(item: Any, kind: type = kind, added: list[Any] = added) -> None:
                    if not isinstance(item, kind):
                        raise TypeError(f"register() takes an aezoo.{kind.__name__}, got {item!r}")
                    item = dataclasses.replace(item, plugin=label, distribution=record.package)
                    conflict = self.registry.add(item)
                    if conflict:
                        self._conflict(record, conflict)
                    else:
                        added.append(item)

                try:
                    impl.function(register=register)
                except PluginError:
                    raise
                except Exception as exc:
                    for undo in self._provided(record):  # roll back a half-registered plugin
                        self.registry.table(undo)[1].pop(undo.name, None)
                    for item in added:
                        self.registry.table(item)[1].pop(item.name, None)
                    record.status = "broken"
                    record.error = f"registration failed: {_one_line(exc)}"
                    record.architectures.clear()
                    record.datasets.clear()
                    record.pretrained.clear()
                    record.callbacks.clear()
                    record.commands.clear()
                    self._fail(record, exc)
                    return
                for item in added:
                    names = {
                        Architecture: record.architectures,
                        Dataset: record.datasets,
                        TrainerCallback: record.callbacks,
                        Command: record.commands,
                    }.get(kind, record.pretrained)
                    names.append(item.name)

    def _provided(self, record: PluginRecord) -> list[Any]:
        """What ``record``'s plugin registered so far (to roll it back as a whole)."""
        reg = self.registry
        return [
            *(reg.architectures[n] for n in record.architectures if n in reg.architectures),
            *(reg.datasets[n] for n in record.datasets if n in reg.datasets),
            *(reg.pretrained[n] for n in record.pretrained if n in reg.pretrained),
            *(reg.callbacks[n] for n in record.callbacks if n in reg.callbacks),
            *(reg.commands[n] for n in record.commands if n in reg.commands),
        ]

    def _conflict(self, record: PluginRecord, message: str) -> None:
        """Both plugins keep working, but the contested name is unusable until one goes."""
        for other in self.records.values():
            if other is record or f"{other.distribution} (plugin {other.name!r})" in message:
                other.status = "conflict"
                other.error = message
        if self.strict:
            raise PluginError(f"{message} (unset {STRICT_ENV} to load the rest anyway)")

    def _fail(self, record: PluginRecord, exc: BaseException | None = None) -> None:
        if self.strict:
            raise PluginError(
                f"plugin {record.name!r} ({record.distribution}) is broken: {record.error} "
                f"(unset {STRICT_ENV} to skip broken plugins)"
            ) from exc


_lock = threading.Lock()
_host: PluginHost | None = None


def host() -> PluginHost:
    """The process-wide plugin host, built on first use."""
    global _host
    with _lock:
        if _host is None:
            new = PluginHost()
            new.load_entry_points()
            _host = new
        return _host


def registry() -> Registry:
    return host().registry


def load_data(
    spec: str, *, data_dir: str | os.PathLike[str] | None = None, seed: int = 0, stream: bool = False
) -> DataSplits:
    """Load a dataset by ``NAME`` or ``NAME:ARGUMENT`` through the registry; ``{data}`` in the
    argument stands for the data root. ``stream``: a folder dataset reads its files a batch at a
    time instead of holding them in memory (:mod:`aezoo.streaming`)."""
    from aezoo.data import DATA_ROOT_MARK, DataOptions, data_root, downloads_allowed

    spec = spec.replace(DATA_ROOT_MARK, str(data_root(data_dir)))
    dataset, argument = registry().dataset(spec)
    options = DataOptions(
        root=data_root(data_dir), download=downloads_allowed(), split_seed=seed, stream=stream
    )
    return dataset.load(options, argument)


def register_plugin(plugin: Any, name: str | None = None) -> None:
    """Register a plugin defined in code (a notebook, a test) next to the installed ones."""
    host().add(plugin, name=name)


def reset() -> None:
    """Forget everything loaded; the next lookup discovers plugins again."""
    global _host
    with _lock:
        _host = None


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_list(name: str) -> set[str] | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    detail = text[0] if text else ""
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


__all__ = ["AezooError", "PluginHost", "PluginRecord", "host", "register_plugin", "registry", "reset"]
