"""The hooks an aezoo plugin implements.

A plugin is a module (or any object) exposed in the ``aezoo`` entry-point group::

    [project.entry-points.aezoo]
    my_plugin = "my_package.aezoo_plugin"

whose functions are decorated with :data:`aezoo.hookimpl` and named after a hook below. The
hooks use the *register callback* style: the plugin calls ``register(...)`` once per thing it
provides, so aezoo knows exactly which plugin provided which name (and can name both
distributions when two provide the same one). Hooks must be cheap: register lazily-imported
builders (``"package.module:function"``) rather than importing heavy code at registration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from aezoo.registry import Architecture, Command, Dataset, Pretrained, TrainerCallback

PROJECT = "aezoo"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def aezoo_register_architectures(register: Callable[[Architecture], None]) -> None:
    """Register model architectures: call ``register(aezoo.Architecture(...))`` for each."""


@hookspec
def aezoo_register_datasets(register: Callable[[Dataset], None]) -> None:
    """Register datasets: call ``register(aezoo.Dataset(...))`` for each."""


@hookspec
def aezoo_register_pretrained(register: Callable[[Pretrained], None]) -> None:
    """Register pretrained models: call ``register(aezoo.Pretrained(...))`` for each (weights
    shipped in the package, or a URL with its sha256), each with its model card and recipe."""


@hookspec
def aezoo_register_callbacks(register: Callable[[TrainerCallback], None]) -> None:
    """Register trainer callbacks: call ``register(aezoo.TrainerCallback(...))`` for each (loggers,
    stopping rules; see :mod:`aezoo.callbacks`)."""


@hookspec
def aezoo_register_commands(register: Callable[[Command], None]) -> None:
    """Register subcommands of ``aezoo``: call ``register(aezoo.Command(...))`` for each."""
