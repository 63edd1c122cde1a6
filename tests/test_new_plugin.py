"""``aezoo new-plugin NAME``: a plugin distribution that installs through its own pyproject, trains
with ``aezoo train``, and passes its own generated tests; a name or folder it cannot use is one
line, exit 2, with nothing written."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys

import pytest

from aezoo import testing

FILES = [
    "README.md",
    "pyproject.toml",
    "src/aezoo_my_ae/__init__.py",
    "src/aezoo_my_ae/hparams.py",
    "src/aezoo_my_ae/model.py",
    "tests/test_conformance.py",
]


def _run(*args, cwd, env=None) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, (
        f"{args} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    return done


def _files(folder) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_a_new_plugin_installs_trains_and_passes_its_own_tests(cli, tmp_path):
    dist = tmp_path / "dist"
    code, out, err = cli("new-plugin", "my-ae", "--dir", dist)
    assert code == 0, err
    assert _files(dist) == FILES
    assert out.splitlines()[-1] == (
        f"next: pip install -e {dist} && aezoo train my-ae --max-steps 200 && aezoo check my-ae"
    )
    _run(sys.executable, "-m", "ruff", "check", "--no-cache", ".", cwd=dist)
    _run(sys.executable, "-m", "ruff", "format", "--no-cache", "--check", ".", cwd=dist)

    # Installed as pip installs it, through its own pyproject (offline: no index, no isolation).
    site = tmp_path / "site"
    _run(sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "--target", site, dist, cwd=tmp_path)  # fmt: skip
    entry_points = (site / "aezoo_my_ae-0.1.0.dist-info" / "entry_points.txt").read_text()
    assert "[aezoo]\nmy-ae = aezoo_my_ae\n" in entry_points
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])),
    }

    listed = _run(sys.executable, "-m", "aezoo", "list", "my-*", cwd=tmp_path, env=env)
    assert (
        "my-ae  mnist    Small fully connected image autoencoder, started with aezoo new-plugin"
        in listed.stdout
    )
    run = tmp_path / "run"
    _run(sys.executable, "-m", "aezoo", "train", "my-ae", "--max-steps", 3, "--batch-size", 16,
         "--limit-train", 64, "--limit-eval", 32, "--no-test", "--no-progress", "--out", run, cwd=tmp_path, env=env)  # fmt: skip
    assert (run / "model.safetensors").is_file()
    assert '"step": 3' in (run / "metrics.jsonl").read_text()

    tested = _run(sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=dist, env=env)
    passed = re.search(r"(\d+) passed", tested.stdout)
    assert passed and int(passed.group(1)) == len(testing.checks_for("dense")), tested.stdout[-2000:]
    assert "failed" not in tested.stdout


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("My-AE", "'My-AE' cannot name a plugin: use lower-case letters and digits"),
        ("2d-ae", "'2d-ae' cannot name a plugin"),
        ("my--ae", "'my--ae' cannot name a plugin"),
        ("dense", "an architecture 'dense' is already installed (from aezoo"),
        ("images", "a plugin 'images' is already installed"),
    ],
)
def test_a_name_it_cannot_use_is_one_line_and_writes_nothing(cli, name, message):
    code, out, err = cli("new-plugin", name)
    assert (code, out) == (2, "")
    assert err.startswith(f"aezoo: error: {message}") and err.count("\n") == 1
    assert list(cli.cwd.iterdir()) == []


def test_a_folder_it_cannot_use_is_one_line_and_writes_nothing(cli, monkeypatch):
    code, _, err = cli("new-plugin", "my-ae")  # ./aezoo-my-ae
    assert code == 0, err
    before = _files(cli.cwd)
    code, out, err = cli("new-plugin", "my-ae")
    assert (code, out) == (2, "")
    assert (
        err
        == f"aezoo: error: {cli.cwd / 'aezoo-my-ae'} already exists and is not an empty folder; give another --dir\n"
    )

    (cli.cwd / "a-file").write_text("x")
    code, _, err = cli("new-plugin", "other", "--dir", "a-file/inside")
    assert (
        code == 2
        and err
        == f"aezoo: error: {cli.cwd / 'a-file'} is not a folder; create it first or give another --dir\n"
    )

    from aezoo import scaffold

    written = []

    def full_disk(path, text):
        if len(written) == 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        written.append(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    monkeypatch.setattr(scaffold, "write_text", full_disk)
    code, _, err = cli("new-plugin", "other")
    assert (
        code == 2
        and err == f"aezoo: error: cannot write {cli.cwd / 'aezoo-other'}: No space left on device\n"
    )
    assert _files(cli.cwd) == sorted([*before, "a-file"]) and not list(
        cli.cwd.glob(".*")
    )  # no staging folder left


def test_an_empty_folder_is_filled(cli):
    (cli.cwd / "empty").mkdir()
    code, _, err = cli("new-plugin", "my-ae", "--dir", "empty")
    assert code == 0, err
    assert _files(cli.cwd / "empty") == FILES
