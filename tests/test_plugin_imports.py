"""Plugins build on aezoo's public names only, and the shipped weights survive that rule.

A plugin imports no other plugin (shared blocks live in :mod:`aezoo.nn`) and, from the core,
only public names: listed in the module's ``__all__``, or without a leading underscore in a module
that has none. The pretrained entries' weights files were saved before the blocks moved to
``aezoo.nn``; each still loads (strictly: every parameter name must match) and computes the numbers
recorded from the release that saved it.
"""

from __future__ import annotations

import ast
import functools
import importlib
import re
from pathlib import Path

import pytest
import torch

import aezoo

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "plugins"
PLUGIN_STRING = re.compile(r"(aezoo_\w+)(\.\w+)*(:\w+)?")


def core_file(module: str) -> Path | None:
    """The source file of core module ``aezoo[.x.y]``, or None if there is no such module."""
    parts = module.split(".")
    if parts[0] != "aezoo":
        return None
    base = ROOT.joinpath(*parts)
    for path in (base / "__init__.py", base.with_suffix(".py")):
        if path.is_file():
            return path
    return None


@functools.cache
def declared_all(module: str) -> frozenset[str] | None:
    """The names in a core module's ``__all__``, or None when it declares none."""
    tree = ast.parse(core_file(module).read_text())  # type: ignore[union-attr]
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            try:
                return frozenset(ast.literal_eval(node.value))  # type: ignore[attr-defined]
            except ValueError:  # computed (``[*names, ...]``): the imported module's own
                return frozenset(importlib.import_module(module).__all__)
    return None


def is_public(module: str, name: str) -> bool:
    """Whether ``module.name`` is public: in ``__all__``, or a submodule or (without ``__all__``) a
    name without a leading underscore."""
    names = declared_all(module)
    if names is not None and name in names:
        return True
    if name.startswith("_"):
        return False
    return core_file(f"{module}.{name}") is not None or names is None


def private_part(module: str) -> str | None:
    return next((p for p in module.split(".") if p.startswith("_")), None)


def violations(path: Path, own: str) -> list[str]:
    """Each import rule that ``path`` (a file of plugin package ``own``) breaks, as 'line: what'."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[tuple[int, str]] = []
    modules: dict[str, str] = {}  # local name → core module it is bound to

    def other_plugin(module: str) -> str | None:
        top = module.split(".")[0]
        return top if top.startswith("aezoo_") and top != own else None

    def check_module(line: int, module: str) -> bool:
        if (plugin := other_plugin(module)) is not None:
            found.append((line, f"imports another plugin, {plugin}"))
        elif module.split(".")[0] == "aezoo" and (part := private_part(module)):
            found.append((line, f"imports private core module {module} ({part})"))
        else:
            return module.split(".")[0] == "aezoo"
        return False

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if check_module(node.lineno, alias.name):
                    bound = alias.asname or alias.name.split(".")[0]
                    modules[bound] = alias.name if alias.asname else "aezoo"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if check_module(node.lineno, node.module):
                for alias in node.names:
                    if not is_public(node.module, alias.name):
                        found.append((node.lineno, f"imports private core name {node.module}.{alias.name}"))
                    elif core_file(f"{node.module}.{alias.name}"):
                        modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = PLUGIN_STRING.fullmatch(node.value)
            if match and match.group(1) != own:
                found.append((node.lineno, f"names another plugin's module, {node.value!r}"))

    for node in ast.walk(tree):  # attribute chains on core modules: aezoo.x, aezoo.model.Y
        if not isinstance(node, ast.Attribute):
            continue
        chain: list[str] = []
        value: ast.expr = node
        while isinstance(value, ast.Attribute):
            chain.insert(0, value.attr)
            value = value.value
        if not isinstance(value, ast.Name) or value.id not in modules:
            continue
        module = modules[value.id]
        for part in chain:
            if not is_public(module, part):
                found.append((node.lineno, f"uses private core name {module}.{part}"))
                break
            if core_file(f"{module}.{part}") is None:
                break
            module = f"{module}.{part}"
    return [f"{line}: {what}" for line, what in sorted(set(found))]


def plugin_files() -> list[tuple[Path, str]]:
    """Each Python file under ``plugins/`` and the plugin package it belongs to: a built-in's folder
    is its package; a separate distribution (a folder with its own ``pyproject.toml``, such as
    ``plugins/aezoo-vqvae``) owns the package inside it, and its tests count as that package's."""
    files = []
    for path in sorted(PLUGINS.glob("*/**/*.py")):
        folder = PLUGINS / path.relative_to(PLUGINS).parts[0]
        own = folder.name
        if (folder / "pyproject.toml").is_file():
            packages = sorted(p.parent.name for p in folder.glob("*/__init__.py") if p.parent.name != "tests")
            assert len(packages) == 1, f"{folder.name} should hold one plugin package, found {packages}"
            own = packages[0]
        files.append((path, own))
    return files


def test_no_plugin_imports_another_plugin_or_a_private_core_name():
    files = plugin_files()
    packages = {own for _, own in files}
    assert {
        "aezoo_conv",
        "aezoo_dense",
        "aezoo_vae",
        "aezoo_aae",
        "aezoo_denoising",
        "aezoo_vqvae",
    } <= packages
    broken = [f"{path.relative_to(ROOT)}:{v}" for path, own in files for v in violations(path, own)]
    assert not broken, "plugins must build on aezoo's public names only:\n" + "\n".join(broken)


def test_the_import_check_catches_each_kind_of_violation(tmp_path):
    sample = tmp_path / "aezoo_mine" / "model.py"
    sample.parent.mkdir()
    sample.write_text(
        "import aezoo\n"  # 1 fine
        "import aezoo_conv.model\n"  # 2 another plugin
        "from aezoo import HParams, hparam, model, __version__\n"  # 3 fine: __all__ and a submodule
        "from aezoo import os\n"  # 4 not in aezoo.__all__
        "from aezoo.nn import mlp, math\n"  # 5 math is not in aezoo.nn.__all__
        "from aezoo.nn import _check_stages\n"  # 6 private
        "from aezoo.image import ImageAutoEncoder\n"  # 7 fine: image has no __all__
        "from aezoo._version import __version__ as v\n"  # 8 private module
        "from aezoo_dense.model import DenseAutoEncoder\n"  # 9 another plugin
        "from aezoo_mine.hparams import MineHParams\n"  # 10 fine: its own package
        "from . import hparams\n"  # 11 fine: relative
        "builder = 'aezoo_conv.model:build'\n"  # 12 another plugin by name
        "x = aezoo.hookimpl, aezoo.Pretrained.from_folder, aezoo.model.AutoEncoder\n"  # 13 fine
        "y = aezoo._version\n"  # 14 private
        "z = aezoo.image._private, model._helper\n"  # 15 private, twice
        "own = 'aezoo_mine.model:build'\n"  # 16 fine
    )
    found = violations(sample, "aezoo_mine")
    assert [v.split(":")[0] for v in found] == ["2", "4", "5", "6", "8", "9", "12", "14", "15", "15"], found
    assert "another plugin, aezoo_conv" in found[0]
    assert "aezoo.os" in found[1] and "aezoo.nn.math" in found[2] and "aezoo.nn._check_stages" in found[3]
    assert "aezoo._version" in found[4] and "aezoo_dense" in found[5]
    assert "aezoo.image._private" in found[8] and "aezoo.model._helper" in found[9]


# Recorded with aezoo 0.1's plugins (before the blocks moved to aezoo.nn) from the same code as
# `fingerprint` below: (code shape, code sum, code |sum|), (output shape, output sum, output |sum|,
# four values of the flattened output at evenly spaced positions).
FINGERPRINTS = {
    "aae:mnist-2d": (
        ([2, 2], -1.532916, 1.532916),
        ([2, 1, 28, 28], 218.56764, 218.56764, [2e-07, 0.5591814, 0.0867379, 6e-07]),
    ),
    # conv:mnist's weights were retrained (40 epochs) after the move: recorded when they were packed
    "conv:mnist": (
        ([2, 128], -84.922158, 807.242602),
        ([2, 1, 28, 28], 482.683574, 482.683574, [2.03e-05, 0.8452342, 0.0036588, 1.31e-05]),
    ),
    "denoising:mnist": (
        ([2, 128], 31.119962, 524.487984),
        ([2, 1, 28, 28], 364.319027, 364.319027, [0.0021989, 0.0225172, 0.5839173, 0.0012189]),
    ),
    "dense:mnist": (
        ([2, 32], 46.118558, 311.915296),
        ([2, 1, 28, 28], 407.346047, 407.346047, [0.0, 0.990162, 0.5828276, 0.0]),
    ),
    # musicvae:melody-2bar was retrained (128 free bits, 48 epochs) after the move: recorded when packed
    "musicvae:melody-2bar": (
        ([2, 64], 4.818149, 67.880668),
        ([2, 32], 1698.0, 1698.0, [44.0, 0.0, 1.0, 0.0]),
    ),
    "superres:t91-x2": (
        ([2, 65, 16, 17], 3990.139244, 3990.139244),
        ([2, 1, 32, 34], 1047.827873, 1047.827873, [0.4658716, 0.738889, 0.7555527, 0.3299298]),
    ),
    # vae:mnist was retrained (180 epochs) after the move: recorded when it was packed
    "vae:mnist": (
        ([2, 32], -6.619402, 49.824805),
        ([2, 1, 28, 28], 161.740897, 161.740897, [0.0, 0.0059232, 0.0215383, 9.5e-07]),
    ),
    # vae:mnist-2d was retrained with a 1024-512 network after the move: recorded when it was packed
    "vae:mnist-2d": (
        ([2, 2], -2.654841, 2.654841),
        ([2, 1, 28, 28], 226.014189, 226.014189, [6.759e-07, 0.6405963, 0.017945, 1.123e-06]),
    ),
    # plugins/aezoo-vqvae's entry (built on aezoo.nn's conv_block and UpConvStack), recorded when it
    # was packed: a change to those blocks must keep a third party's weights computing the same
    "vqvae:mnist": (
        ([2, 7, 7], 26706.0, 26706.0),
        ([2, 1, 28, 28], 569.848904, 569.848904, [0.0232594, 0.002699, 0.0142397, 0.0045758]),
    ),
}


def fingerprint(name: str) -> tuple[tuple, tuple]:
    """Load ``name`` and summarise its code and output for two fixed example inputs."""
    model = aezoo.load(name)
    batch = model.example_batch(2, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)  # a model that corrupts its inputs draws the same noise
    with torch.no_grad():
        inputs, _ = model.prepare_batch(batch, train=False)
        code = model.encode(inputs).double()
        output = model(inputs).double()
    flat = output.flatten()
    positions = torch.linspace(0, flat.numel() - 1, 4).long()
    return (
        (list(code.shape), code.sum().item(), code.abs().sum().item()),
        (list(output.shape), flat.sum().item(), flat.abs().sum().item(), flat[positions].tolist()),
    )


def test_every_built_in_entry_has_a_fingerprint():
    from aezoo.plugins import registry

    built_in = {n for n, item in registry().pretrained.items() if item.distribution == "aezoo"}
    assert built_in and built_in <= set(FINGERPRINTS), (
        f"record these in FINGERPRINTS: {built_in - set(FINGERPRINTS)}"
    )


@pytest.mark.parametrize("name", sorted(FINGERPRINTS))
def test_weights_saved_before_the_move_load_and_compute_the_same(name):
    got = fingerprint(name)
    (code_shape, *code), (out_shape, *out, values) = FINGERPRINTS[name]
    assert got[0][0] == code_shape and got[1][0] == out_shape
    assert got[0][1:] == pytest.approx(tuple(code), rel=1e-4, abs=1e-5)
    assert got[1][1:3] == pytest.approx(tuple(out), rel=1e-4, abs=1e-5)
    assert got[1][3] == pytest.approx(values, rel=1e-4, abs=1e-5)
