"""``aezoo serve`` of a VQ-VAE export opens the page's code-grid view, in a real browser (Debian's
chromium, headless, driven by exports/web/tests/codes.test.mjs): a fixed grid of codes is drawn as
onnxruntime decodes it in Python, within 8-bit rounding, and a click on a cell gives exactly that
cell its next code and redraws."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aezoo
from aezoo.serve import ExportServer, serve

REPO = Path(__file__).resolve().parents[3]
WEB = REPO / "exports" / "web"
DRIVER = WEB / "tests" / "codes.test.mjs"
NAME = "vqvae:mnist"
CLICKED = (2, 5)


def browser_or_skip() -> tuple[str, str]:
    """chromium and node with the page's npm packages; missing ones fail under CI, else skip."""
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    node = shutil.which("node")
    missing = [what for what, found in (("Debian's chromium", chromium), ("node", node)) if not found]
    if not (WEB / "node_modules" / "playwright-core").is_dir():
        missing.append("exports/web/node_modules (npm ci)")
    if missing:
        message = f"{' and '.join(missing)} missing: run `bash exports/install-test-deps.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(chromium), str(node)


@pytest.fixture(scope="module")
def served() -> Iterator[ExportServer]:
    """``aezoo serve vqvae:mnist``: exported on the fly into a temporary folder."""
    started: queue.Queue[Any] = queue.Queue()

    def run() -> None:
        try:
            serve(NAME, port=0, started=started.put)
        except BaseException as exc:
            started.put(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    server = started.get(timeout=300)
    if isinstance(server, BaseException):
        raise server
    try:
        yield server
    finally:
        server.shutdown()
        thread.join(30)


def grids(classes: int) -> list[list[list[int]]]:
    """Two fixed grids: every code somewhere in the first, a diagonal stripe in the second."""
    first = (np.arange(49) * 37 % classes).reshape(7, 7)
    second = np.where(np.eye(7, dtype=bool) | np.eye(7, k=1, dtype=bool), classes - 1, 0)
    return [first.tolist(), second.tolist()]


@pytest.fixture(scope="module")
def browsed(served: ExportServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    chromium, node = browser_or_skip()
    exported = aezoo.load_export(served.export_dir)
    classes = exported.decoder.inputs[0]["classes"]
    screenshot = tmp_path_factory.mktemp("page") / "codes.png"
    script = [str(DRIVER), served.url, "--codes", json.dumps(grids(classes))]
    script += ["--click", ",".join(map(str, CLICKED)), "--screenshot", str(screenshot)]
    result = subprocess.run(
        [node, *script],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "CHROMIUM": chromium},
    )
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    report = json.loads(result.stdout)
    assert report["ready"] == {"supported": True, "view": "codes"} and report["errors"] == []
    print(f"screenshot {screenshot}")
    return {**report, "exported": exported, "classes": classes}


def assert_drawn(shown: dict[str, Any], codes: np.ndarray, exported: Any) -> None:
    """The canvas is onnxruntime's decoding of ``codes`` within 8-bit rounding."""
    want = exported.decoder(codes[None].astype(np.int64))["image"][0, 0].astype(np.float64)
    assert (shown["width"], shown["height"]) == (28, 28)
    rgba = np.array(shown["rgba"], dtype=np.float64).reshape(28, 28, 4)
    assert (rgba[..., 3] == 255).all() and (rgba[..., 0] == rgba[..., 2]).all()
    diff = np.abs(rgba[..., 0] / 255 - np.clip(want, 0, 1)).max()
    assert diff <= 1 / 255 + 1e-6, f"canvas differs from onnxruntime by {diff * 255:.2f}/255"


def test_a_fixed_grid_is_drawn_as_onnxruntime_decodes_it(browsed: dict[str, Any]) -> None:
    for grid, shown in zip(grids(browsed["classes"]), browsed["results"], strict=True):
        assert shown["codes"] == grid
        assert_drawn(shown, np.array(grid), browsed["exported"])
        assert shown["lastDrawMs"] > 0
    first, second = (np.array(r["rgba"]) for r in browsed["results"])
    assert np.abs(first - second).mean() > 1, "two different grids drew the same picture"


def test_a_click_gives_exactly_that_cell_its_next_code(browsed: dict[str, Any]) -> None:
    click = browsed["click"]
    before, after = np.array(click["before"]), np.array(click["after"])
    assert before.tolist() == grids(browsed["classes"])[-1]
    changed = np.argwhere(before != after).tolist()
    assert changed == [list(CLICKED)]
    assert after[CLICKED] == (before[CLICKED] + 1) % browsed["classes"]
    assert click["label"] == str(after[CLICKED])
    assert_drawn(click, after, browsed["exported"])


def test_random_draws_a_new_grid_of_valid_codes(browsed: dict[str, Any]) -> None:
    for grid in (browsed["initial"], browsed["random"]["codes"]):
        codes = np.array(grid)
        assert codes.shape == (7, 7) and codes.min() >= 0 and codes.max() < browsed["classes"]
    assert browsed["random"]["codes"] != browsed["click"]["after"]
