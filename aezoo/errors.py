"""Errors a user can cause. The CLI prints them as one line and exits with status 2."""

from __future__ import annotations

import difflib
import warnings
from collections.abc import Iterable


class AezooError(Exception):
    """A mistake the user can fix: a bad name, value, file or input.

    The message is a complete sentence saying what was wrong and how to fix it.
    """

    #: The command line's exit status for this error.
    exit_code = 2


class HParamError(AezooError, ValueError):
    """A hyperparameter value that is missing, mistyped or out of its allowed range."""

    def __init__(self, owner: tuple[str, str], field: str, message: str) -> None:
        self.architecture, noun = owner
        self.field = field
        super().__init__(f"{self.architecture}: {noun} '{field}' {message}")


class PluginError(AezooError):
    """A plugin that could not be loaded or registered (raised only in strict mode)."""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``"did you mean 'vae'?"`` for the closest known names, or an empty string."""
    close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
    if not close:
        return ""
    return "did you mean " + " or ".join(repr(c) for c in close) + "?"


class AezooDeprecationWarning(FutureWarning):
    """A name a file, recipe or command still uses but a plugin has renamed or removed.

    Shown to users by default (a ``FutureWarning``); the command line prints it as one line.
    """


def deprecated(message: str) -> None:
    """Tell the user (once per place) that something they wrote has a new name or is gone."""
    warnings.warn(message, AezooDeprecationWarning, stacklevel=3)
