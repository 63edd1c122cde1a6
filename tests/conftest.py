from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

import aezoo.plugins

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def data_dir() -> Path | None:
    """Where the full MNIST sets are: $AEZOO_DATA, else ../shared/data."""
    for candidate in (os.environ.get("AEZOO_DATA"), SHARED_DATA):
        if candidate and (Path(candidate) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
            return Path(candidate)
    return None


@pytest.fixture(autouse=True)
def fresh_plugins(monkeypatch):
    """Every test discovers plugins anew, with no allow-list or strict mode from outside."""
    monkeypatch.delenv("AEZOO_PLUGINS", raising=False)
    monkeypatch.delenv("AEZOO_STRICT_PLUGINS", raising=False)
    aezoo.plugins.reset()
    yield
    aezoo.plugins.reset()


@pytest.fixture
def mnist_dir(monkeypatch) -> Path:
    root = data_dir()
    if root is None:
        pytest.skip("full MNIST not found: set AEZOO_DATA to a folder holding MNIST/raw")
    monkeypatch.setenv("AEZOO_DATA", str(root))
    return root


def make_distribution(site: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """A fake installed distribution: ``<dist>-1.0.dist-info`` with entry points, plus modules."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"  # as wheels name it
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = ["[aezoo]"] + [f"{name} = {target}" for name, target in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for name, source in modules.items():
        (site / f"{name}.py").write_text(textwrap.dedent(source))
    return site


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A temporary site directory on sys.path for fake third-party plugins."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))
    yield path
    for name in list(sys.modules):
        module = sys.modules[name]
        if getattr(module, "__file__", None) and str(path) in str(module.__file__):
            del sys.modules[name]


@pytest.fixture
def cli(capsys, tmp_path, monkeypatch):
    """``aezoo ARGS...`` in this process (so plugins and entries registered in code are seen), in an
    empty folder: ``(status, stdout, stderr)``; ``cli.cwd`` is that folder."""
    from aezoo.cli import main

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    run.cwd = work
    return run


@pytest.fixture(scope="session")
def melody_export(tmp_path_factory) -> Path:
    """An export of the pretrained ``musicvae:melody-2bar``, shared by the Node and browser melody
    tests: its weights exported as a model in memory, with 8 of its own melodies as the real inputs
    (exporting the name would load its training corpus, minutes of parsing on a cold cache)."""
    import torch

    import aezoo

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the step-by-step decoder's tiny ops: faster on one thread
    try:
        model = aezoo.load("musicvae:melody-2bar")
        real = model.sample(8, temperature=0.5, generator=torch.Generator().manual_seed(0))
        return aezoo.export(model, tmp_path_factory.mktemp("melody") / "export", real_inputs=real).path
    finally:
        torch.set_num_threads(threads)
