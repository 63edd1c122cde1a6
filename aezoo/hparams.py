"""Hyperparameter dataclasses: defaults, documentation, validation and parsing.

A plugin declares its hyperparameters as a frozen dataclass whose fields are made with
:func:`hparam`::

    @dataclass(frozen=True)
    class DenseHParams(HParams):
        latent_dim: int = hparam(32, "Size of the code.", min=1)

Construction validates every field, so a bad value is one :class:`~aezoo.errors.HParamError`
naming the field and its allowed range. This module does not import torch.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from aezoo.errors import HParamError, deprecated, did_you_mean

_MISSING = dataclasses.MISSING

#: The most values a list hyperparameter holds unless its field says otherwise: hyperparameters come
#: from files and command lines, and a list of a million layer widths would build for hours.
MAX_ITEMS = 1024


def hparam(
    default: Any,
    doc: str,
    *,
    min: float | None = None,
    max: float | None = None,
    choices: Sequence[Any] | None = None,
    max_items: int = MAX_ITEMS,
) -> Any:
    """A documented hyperparameter field with an optional range or set of choices; a list field
    holds at most ``max_items`` values."""
    if isinstance(default, list):
        default = tuple(default)
    meta = {
        "doc": doc,
        "min": min,
        "max": max,
        "choices": tuple(choices) if choices else None,
        "max_items": max_items,
    }
    return dataclasses.field(default=default, metadata=meta)


@dataclasses.dataclass(frozen=True)
class HParams:
    """Base class of every architecture's hyperparameters (a frozen dataclass)."""

    #: Filled in by the registry so errors can name the architecture.
    architecture: ClassVar[str] = "model"
    #: What one field is called in error messages.
    noun: ClassVar[str] = "hyperparameter"
    #: Fields that had another name in an older release, ``{"old_name": "new_name"}``: weights
    #: files, recipes and ``--set`` that use the old name still work, with a deprecation warning.
    renamed: ClassVar[Mapping[str, str]] = {}
    #: Fields that no longer exist, ``{"name": "why"}``: old files naming them still load (the value
    #: is dropped with a warning saying why).
    removed: ClassVar[Mapping[str, str]] = {}

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            _check_field(self._owner(), f, hints[f.name], value)
        self.validate()

    @classmethod
    def _owner(cls) -> tuple[str, str]:
        return cls.architecture, cls.noun

    @classmethod
    def invalid(cls, field: str, message: str) -> HParamError:
        """The error for a bad value of ``field`` (raise it from :meth:`validate`): one line
        naming the architecture and the field, ``message`` saying what is wrong."""
        return HParamError(cls._owner(), field, message)

    @classmethod
    def upgrade(cls, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with renamed fields under their new names and removed ones dropped, each
        with a deprecation warning; giving both a field's old and new name is an error."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            if name in cls.removed:
                deprecated(
                    f"{cls.architecture}: {cls.noun} '{name}' was removed ({cls.removed[name]}); its value is ignored"
                )
                continue
            new = cls.renamed.get(name)
            if new is not None:
                if new in values:
                    raise cls.invalid(name, f"was renamed '{new}'; give only '{new}'")
                deprecated(f"{cls.architecture}: {cls.noun} '{name}' is now called '{new}'; use the new name")
                name = new
            out[name] = value
        return out

    def validate(self) -> None:
        """Cross-field checks; override and raise :class:`HParamError` for a bad combination."""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible values (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> HParams:
        """Build from a mapping, rejecting unknown names with a close match."""
        values = cls.upgrade(values)
        known = {f.name for f in dataclasses.fields(cls)}
        for name in values:
            if name not in known:
                raise HParamError(cls._owner(), name, f"does not exist; {_choices_hint(name, known)}")
        return cls(**values)


def describe(cls: type[HParams]) -> list[dict[str, Any]]:
    """One row per hyperparameter: name, type, default, doc, and range or choices."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        rows.append(
            {
                "name": f.name,
                "type": _type_name(hints[f.name]),
                "default": f.default,
                "doc": f.metadata.get("doc", ""),
                "allowed": _allowed_text(f),
            }
        )
    return rows


def parse_assignments(cls: type[HParams], assignments: Sequence[str]) -> dict[str, Any]:
    """Parse ``key=value`` strings (``--set`` on the command line) into typed values."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out: dict[str, Any] = {}
    for item in assignments:
        if "=" not in item:
            raise HParamError(cls._owner(), item, "needs a value: write --set NAME=VALUE")
        key, _, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if key in cls.removed:
            raise cls.invalid(key, f"was removed ({cls.removed[key]})")
        key = next(iter(cls.upgrade({key: None})))  # a renamed field goes under its new name
        if key not in fields:
            raise HParamError(cls._owner(), key, f"does not exist; {_choices_hint(key, fields)}")
        out[key] = parse_value(cls._owner(), key, hints[key], text.strip())
    return out


def parse_value(owner: tuple[str, str], name: str, annotation: Any, text: str) -> Any:
    """Turn command-line text into a value of ``annotation``."""
    wanted = _type_name(annotation)
    args = typing.get_args(annotation)
    if _is_optional(annotation):
        if text.lower() in ("none", "null", ""):
            return None
        annotation = next(a for a in args if a is not type(None))
        args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    try:
        if origin is tuple:
            item_type = args[0] if args else str
            inner = text.replace(" ", "").strip("()[]")
            parts = inner.split(",") if inner else []
            if parts and parts[-1] == "":  # a trailing comma, as in (32,)
                parts.pop()
            if "" in parts:
                raise ValueError(text)
            return tuple(parse_value(owner, name, item_type, p) for p in parts)
        if annotation is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if annotation is int:
            return int(text)
        if annotation is float:
            return float(text)
        return text
    except ValueError:
        raise HParamError(owner, name, f"must be {wanted}, got {text!r}") from None


# -- internals -------------------------------------------------------------------------------


def _is_optional(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    union_types = (typing.Union, types.UnionType)
    return origin in union_types and type(None) in typing.get_args(annotation)


def _type_name(annotation: Any) -> str:
    if _is_optional(annotation):
        inner = next(a for a in typing.get_args(annotation) if a is not type(None))
        return f"{_type_name(inner)} or none"
    if typing.get_origin(annotation) is tuple:
        args = typing.get_args(annotation)
        return f"list of {_type_name(args[0]) if args else 'str'}"
    return {int: "int", float: "float", bool: "bool", str: "str"}.get(annotation, str(annotation))


def _allowed_text(f: dataclasses.Field) -> str:
    meta = f.metadata
    if meta.get("choices"):
        return "one of " + ", ".join(map(str, meta["choices"]))
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f"{lo} … {hi}"
    if lo is not None:
        return f">= {lo}"
    if hi is not None:
        return f"<= {hi}"
    return ""


def _check_field(arch: tuple[str, str], f: dataclasses.Field, annotation: Any, value: Any) -> None:
    if value is None:
        if _is_optional(annotation):
            return
        raise HParamError(arch, f.name, f"must be {_type_name(annotation)}, got none")
    if _is_optional(annotation):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if typing.get_origin(annotation) is tuple:
        if not isinstance(value, tuple):
            raise HParamError(arch, f.name, f"must be {_type_name(annotation)}, got {value!r}")
        item_type = (typing.get_args(annotation) or (str,))[0]
        if not value:
            raise HParamError(arch, f.name, "must not be empty")
        most = f.metadata.get("max_items", MAX_ITEMS)
        if len(value) > most:
            raise HParamError(arch, f.name, f"holds at most {most:,} values, got {len(value):,}")
        for item in value:
            _check_scalar(arch, f, item_type, item)
        return
    _check_scalar(arch, f, annotation, value)


def _check_scalar(arch: tuple[str, str], f: dataclasses.Field, annotation: Any, value: Any) -> None:
    ok = {
        bool: lambda v: isinstance(v, bool),
        int: lambda v: isinstance(v, int) and not isinstance(v, bool),
        float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
        str: lambda v: isinstance(v, str),
    }.get(annotation, lambda v: True)(value)
    if not ok:
        raise HParamError(arch, f.name, f"must be {_type_name(annotation)}, got {value!r}")
    meta = f.metadata
    if meta.get("choices") and value not in meta["choices"]:
        raise HParamError(arch, f.name, f"must be {_allowed_text(f)}, got {value!r}")
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if value != value:  # NaN
            raise HParamError(arch, f.name, "must be a number, got nan")
        if isinstance(value, float) and value in (float("inf"), float("-inf")):
            raise HParamError(arch, f.name, f"must be a finite number, got {value}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise HParamError(arch, f.name, f"must be {_allowed_text(f)}, got {value!r}")


def _choices_hint(name: str, known: typing.Iterable[str]) -> str:
    return did_you_mean(name, known) or "known: " + ", ".join(sorted(known))
