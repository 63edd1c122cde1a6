"""``aezoo new-plugin NAME``: a plugin distribution to start from, written from the templates in
``aezoo/plugin_template`` (package data, so it works from a wheel): a pyproject with the ``aezoo``
entry point, hyperparameters, a small dense image autoencoder that trains, the conformance kit as
its tests, and a README. It is written whole or not at all."""

from __future__ import annotations

import os
import re
import shutil
import string
import tempfile
from importlib import metadata, util
from pathlib import Path

from aezoo._version import __version__
from aezoo.errors import AezooError
from aezoo.fileio import fsync_dir, make_public, write_text

TEMPLATES = Path(__file__).with_name("plugin_template")
#: Lower-case words joined by single hyphens or underscores, starting with a letter.
NAME = re.compile(r"[a-z][a-z0-9]*(?:[-_][a-z0-9]+)*")
MAX_NAME = 40
DESCRIPTION = "Small fully connected image autoencoder, started with aezoo new-plugin"


def files(package: str) -> dict[str, str]:
    """Where each template goes in the distribution."""
    return {
        "pyproject.toml": "pyproject.toml.tmpl",
        "README.md": "README.md.tmpl",
        f"src/{package}/__init__.py": "__init__.py.tmpl",
        f"src/{package}/hparams.py": "hparams.py.tmpl",
        f"src/{package}/model.py": "model.py.tmpl",
        "tests/test_conformance.py": "test_conformance.py.tmpl",
    }


def names(name: str) -> dict[str, str]:
    """What the templates are filled with: the architecture's name, the distribution's, the
    package's, the classes'."""
    check_name(name)
    words = re.split(r"[-_]", name)
    camel = "".join(w.capitalize() for w in words)
    return {
        "name": name,
        "distribution": f"aezoo-{'-'.join(words)}",
        "package": f"aezoo_{'_'.join(words)}",
        "entry_point": name,
        "hparams_class": f"{camel}HParams",
        "model_class": f"{camel}AutoEncoder",
        "description": DESCRIPTION,
        "aezoo_version": __version__,
    }


def check_name(name: str) -> None:
    """A name that makes a valid architecture, distribution and package, and is not taken by an
    installed architecture, plugin or module; else one clear :class:`AezooError`."""
    if not NAME.fullmatch(name) or len(name) > MAX_NAME:
        raise AezooError(
            f"{name!r} cannot name a plugin: use lower-case letters and digits, words joined by '-' or '_', "
            f"starting with a letter, at most {MAX_NAME} characters (e.g. my-ae)"
        )
    from aezoo.plugins import registry

    spellings = {name, name.replace("-", "_"), name.replace("_", "-")}
    for arch in registry().architectures.values():
        if arch.name in spellings:
            raise AezooError(
                f"an architecture {arch.name!r} is already installed (from {arch.distribution}); choose another name"
            )
    taken = {ep.name for ep in metadata.entry_points(group="aezoo")}
    if name in taken:
        raise AezooError(f"a plugin {name!r} is already installed (`aezoo plugins`); choose another name")
    package = f"aezoo_{name.replace('-', '_')}"
    if util.find_spec(package) is not None:
        raise AezooError(f"a module {package!r} is already installed; choose another name")


def new_plugin(name: str, folder: str | os.PathLike[str] | None = None) -> Path:
    """Write the plugin distribution of ``name`` into ``folder`` (default ``./aezoo-NAME``), which
    must not exist or be empty; returns it. Nothing is left behind when it cannot be written."""
    values = names(name)
    target = Path(folder if folder is not None else values["distribution"]).expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise AezooError(f"{target} already exists and is not an empty folder; give another --dir")
    parent = target.parent
    if not parent.is_dir():
        raise AezooError(f"{parent} is not a folder; create it first or give another --dir")
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise AezooError(f"cannot write into {parent}: {exc.strerror or exc}") from None
    try:
        for relative, template in files(values["package"]).items():
            text = string.Template((TEMPLATES / template).read_text(encoding="utf-8")).substitute(values)
            write_text(staging / relative, text)
        for path in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            make_public(path, directory=True)
        os.rename(staging, target)  # an empty folder there is replaced
        fsync_dir(parent)
    except OSError as exc:
        raise AezooError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
