"""The page's upscale view (``aezoo serve superres:t91-x2``) in a real browser (Debian's chromium,
headless): a picture given through the file input or the hook comes out as ``aezoo upscale`` writes
it, within 8-bit rounding; grey pictures go through the model as they are; too large ones are
refused in one line; the download is the result. Its pixel maths (pixels.js) is checked in node."""

from __future__ import annotations

import json
import os
import queue
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

import aezoo
from aezoo.serve import ExportServer, serve

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "exports" / "web"
DRIVER = WEB / "tests" / "upscale.test.mjs"
NAME = "superres:t91-x2"
SCALE = 2
MAX_PIXELS = 1_000_000  # upscale.js's MAX_PIXELS, as README.md states it

# The page computes in float64 and stores float32; torch and onnxruntime in float32. A value within
# ~1e-6 of a rounding boundary (k + 0.5) / 255 can land on either side: measured on Set5's baby
# (512×512 → 1024×1024) 67 of 3,145,728 values differ, each by 1 level, none by more.
MAX_LEVELS = 1
MAX_SHARE_DIFFERING = 1e-3


def browser_or_skip() -> tuple[str, str]:
    """chromium and node with the page's npm packages; missing ones fail under CI, else skip."""
    chromium = os.environ.get("CHROMIUM") or shutil.which("chromium")
    node = shutil.which("node")
    missing = []
    if not chromium:
        missing.append("Debian's chromium")
    if not node:
        missing.append("node")
    if (
        not (WEB / "node_modules" / "playwright-core").is_dir()
        or not (WEB / "node_modules" / "onnxruntime-web").is_dir()
    ):
        missing.append("exports/web/node_modules (npm ci)")
    if missing:
        message = f"{' and '.join(missing)} missing: run `bash exports/install-test-deps.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return str(chromium), str(node)


def picture(height: int, width: int, seed: int) -> np.ndarray:
    """A small photo-like RGB picture: smooth shading, a hard-edged disc, stripes and noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    red = 128 + 100 * np.sin(x / 5) * np.cos(y / 7)
    green = 255 * x / width
    disc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(height, width) / 3) ** 2
    blue = np.where(disc, 230.0, 40.0) + 60 * (np.floor(x / 3) % 2)
    rgb = np.stack([red, green, blue], -1) + 12 * rng.standard_normal((height, width, 3))
    return np.clip(rgb, 0, 255).round().astype(np.uint8)


def rgba_of(image: dict[str, Any]) -> np.ndarray:
    return np.array(image["rgba"], dtype=np.int16).reshape(image["height"], image["width"], 4)


def assert_close(got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Within 8-bit rounding: at most MAX_LEVELS apart, and rarely apart at all."""
    assert got.shape == want.shape, what
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16))
    share = float((diff > 0).mean())
    assert diff.max() <= MAX_LEVELS and share <= MAX_SHARE_DIFFERING, (
        f"{what}: max {diff.max()} levels apart, {share:.2%} of values differ"
    )


def bicubic_reference(array: np.ndarray) -> np.ndarray:
    """torch's bicubic ×SCALE of an [H, W, C] uint8 picture, clamped and rounded to 8 bits."""
    low = torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255
    high = F.interpolate(low, scale_factor=SCALE, mode="bicubic", align_corners=False)
    return high.clamp(0, 1).mul(255).round()[0].permute(1, 2, 0).to(torch.uint8).numpy()


@pytest.fixture(scope="module")
def model() -> Any:
    return aezoo.load(NAME)


@pytest.fixture(scope="module")
def served() -> Iterator[ExportServer]:
    """``aezoo serve superres:t91-x2``: exported on the fly into a temporary folder."""
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


@pytest.fixture(scope="module")
def pictures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The pictures the browser gets, as files and as arrays."""
    folder = tmp_path_factory.mktemp("pictures")
    colour = picture(29, 37, seed=0)  # odd, unequal sides: a transposed or shifted result shows
    grey = picture(23, 31, seed=1)[..., 0]
    Image.fromarray(colour).save(folder / "colour.png")
    Image.fromarray(grey, mode="L").save(folder / "grey.png")
    Image.new("RGB", (1001, 1000), (30, 60, 90)).save(folder / "large.png")  # 1,001,000 pixels
    (folder / "notes.png").write_text("not a picture")
    hooked = picture(20, 26, seed=2)
    rgba = np.concatenate([hooked, np.full((*hooked.shape[:2], 1), 255, np.uint8)], -1)
    (folder / "hook.json").write_text(
        json.dumps([{"width": 26, "height": 20, "rgba": rgba.ravel().tolist()}])
    )
    return {"folder": folder, "colour": colour, "grey": grey, "hooked": hooked}


@pytest.fixture(scope="module")
def browsed(served: ExportServer, pictures: dict[str, Any]) -> dict[str, Any]:
    """One browser session: grey.png then colour.png through the file input, a download, a picture
    through window.aezoo.upscale, then the two files the page refuses."""
    chromium, node = browser_or_skip()
    folder = pictures["folder"]
    (folder / "downloads").mkdir()
    script = [
        str(DRIVER),
        served.url,
        "--file",
        str(folder / "grey.png"),
        "--file",
        str(folder / "colour.png"),
    ]
    script += ["--download", str(folder / "downloads"), "--screenshot", str(folder / "upscale.png")]
    script += ["--hook", str(folder / "hook.json")]
    script += ["--refused", str(folder / "large.png"), "--refused", str(folder / "notes.png")]
    began = time.monotonic()
    result = subprocess.run(
        [node, *script],
        cwd=WEB,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "CHROMIUM": chromium},
    )
    print(f"browser script {time.monotonic() - began:.1f} s; screenshot {folder / 'upscale.png'}")
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    report = json.loads(result.stdout)
    assert report["ready"] == {"supported": True, "view": "upscale"} and report["errors"] == []
    return report


def reference(model: Any, source: Path, tmp_path: Path) -> np.ndarray:
    """What `aezoo upscale superres:t91-x2 SOURCE` writes (SuperResolution.upscale_file)."""
    return np.array(Image.open(model.upscale_file(source, tmp_path / f"{source.stem}-aezoo.png")))


def test_a_colour_picture_comes_out_as_aezoo_upscale_writes_it(
    browsed: dict[str, Any], pictures: dict[str, Any], model: Any, tmp_path: Path
) -> None:
    shown = browsed["files"][1]
    assert shown["name"] == "colour.png"
    want = reference(model, pictures["folder"] / "colour.png", tmp_path)
    assert want.shape == (29 * SCALE, 37 * SCALE, 3)
    got = rgba_of(shown["model"])
    assert (got[..., 3] == 255).all()
    assert_close(got[..., :3], want, "model canvas against aezoo upscale")
    assert_close(rgba_of(shown["bicubic"])[..., :3], bicubic_reference(pictures["colour"]), "bicubic canvas")
    assert np.abs(got[..., :3] - rgba_of(shown["bicubic"])[..., :3]).mean() > 1, "the model did nothing"
    assert "37×29 → 74×58" in shown["info"] and "Y through the model" in shown["info"]
    assert shown["lastUpscaleMs"] > 0 and "ms" in shown["timing"]
    print(f"colour 37×29: {shown['lastUpscaleMs']:.0f} ms ({shown['timing']})")


def test_a_grey_picture_goes_through_the_model_as_it_is(
    browsed: dict[str, Any], pictures: dict[str, Any], model: Any, tmp_path: Path
) -> None:
    shown = browsed["files"][0]
    assert shown["name"] == "grey.png"
    want = reference(model, pictures["folder"] / "grey.png", tmp_path)
    assert want.shape == (23 * SCALE, 31 * SCALE)
    got = rgba_of(shown["model"])
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 0] == got[..., 2]).all()
    assert_close(got[..., 0], want, "grey model canvas against aezoo upscale")
    assert_close(
        rgba_of(shown["bicubic"])[..., :1], bicubic_reference(pictures["grey"][..., None]), "grey bicubic"
    )
    assert "grey" in shown["info"]


def test_the_hook_upscales_pixels(browsed: dict[str, Any], pictures: dict[str, Any], model: Any) -> None:
    [result] = browsed["hook"]
    hooked = pictures["hooked"]
    want = model.upscale(torch.from_numpy(hooked).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    assert result["mode"] == "colour" and result["ms"] > 0
    assert (result["model"]["width"], result["model"]["height"]) == (26 * SCALE, 20 * SCALE)
    assert_close(rgba_of(result["model"])[..., :3], want, "hook's model result")
    assert_close(rgba_of(result["bicubic"])[..., :3], bicubic_reference(hooked), "hook's bicubic")


def test_the_download_is_the_result_as_png(browsed: dict[str, Any]) -> None:
    path = Path(browsed["download"])
    assert path.name == "colour-x2.png"
    with Image.open(path) as png:
        assert png.format == "PNG"
        saved = np.array(png.convert("RGBA"))
    assert (saved == rgba_of(browsed["files"][1]["model"])).all()


def test_the_divider_follows_the_pointer_and_the_keys(browsed: dict[str, Any]) -> None:
    moves = browsed["interaction"]
    assert (moves["start"], moves["end"], moves["key"]) == (20, 80, 75)
    zoomed = moves["zoomed"]  # 200 %: two device pixels per image pixel
    assert zoomed["cssWidth"] * zoomed["ratio"] == pytest.approx(2 * zoomed["width"], abs=1)


def test_too_large_and_unreadable_files_are_refused_in_one_line(browsed: dict[str, Any]) -> None:
    assert browsed["maxPixels"] == MAX_PIXELS
    large, notes = browsed["refused"]
    for refused in (large, notes):
        assert refused["shown"] and not refused["upscaled"] and refused["canvasKept"]
        assert "\n" not in refused["message"].strip()
    assert "large.png is 1001×1000, 1,001,000 pixels" in large["message"]
    assert "at most 1,000,000" in large["message"] and "aezoo upscale" in large["message"]
    assert "notes.png is not an image this browser can read; give a PNG or JPEG" in notes["message"]


def test_the_pixel_maths_is_torchs(served: ExportServer) -> None:
    """pixels.js in node against torch (float64) with the manifest's own colour matrices."""
    _, node = browser_or_skip()
    rebuild = json.loads((served.export_dir / "aezoo-export.json").read_text())["decoding"]["color_rebuild"]
    rng = np.random.default_rng(3)
    rgb = rng.random((3, 7, 9))
    code = """
    import { readFileSync } from "node:fs";
    import { bicubic, rgbToYcbcr, ycbcrToRgb } from "./aezoo_web/pixels.js";
    const { rgb, rebuild, width, height } = JSON.parse(readFileSync(0, "utf8"));
    const planes = rgb.map((p) => Float32Array.from(p));
    const ycbcr = rgbToYcbcr(planes, rebuild.rgb_to_ycbcr);
    const up = ycbcr.map((p) => bicubic(p, width, height, 3));
    const back = ycbcrToRgb(up, rebuild.ycbcr_to_rgb);
    const list = (ps) => ps.map((p) => Array.from(p));
    console.log(JSON.stringify({ ycbcr: list(ycbcr), up: list(up), back: list(back) }));
    """
    given = {"rgb": rgb.reshape(3, -1).tolist(), "rebuild": rebuild, "width": 9, "height": 7}
    result = subprocess.run(
        [node, "--input-type=module", "-e", code],
        cwd=WEB,
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    got = {key: np.array(planes) for key, planes in json.loads(result.stdout).items()}  # [3, pixels]
    from aezoo_superres import color

    ycbcr = color.rgb_to_ycbcr(torch.from_numpy(rgb).float().double()[None])  # as the page stores it
    up = F.interpolate(ycbcr, scale_factor=3, mode="bicubic", align_corners=False)
    back = color.ycbcr_to_rgb(up)
    np.testing.assert_allclose(got["ycbcr"], ycbcr[0].reshape(3, -1).numpy(), atol=1e-6)
    np.testing.assert_allclose(got["up"], up[0].reshape(3, -1).numpy(), atol=2e-6)
    np.testing.assert_allclose(got["back"], back[0].reshape(3, -1).numpy(), atol=2e-6)


def test_an_rgb_model_gets_r_g_and_b(tmp_path: Path) -> None:
    """A 3-channel model (untrained, tiny): colour and grey pictures both go in as R, G and B."""
    chromium, node = browser_or_skip()
    torch.manual_seed(0)
    model = aezoo.create("superres", channels=3, loss="l1", features=8, depth=2)
    folder = aezoo.export(model, tmp_path / "export").path
    colour = picture(11, 14, seed=4)
    grey = np.repeat(picture(9, 12, seed=5)[..., :1], 3, axis=-1)
    images = []
    for array in (colour, grey):
        rgba = np.concatenate([array, np.full((*array.shape[:2], 1), 255, np.uint8)], -1)
        images.append({"width": array.shape[1], "height": array.shape[0], "rgba": rgba.ravel().tolist()})
    (tmp_path / "hook.json").write_text(json.dumps(images))
    server = ExportServer(folder, port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        result = subprocess.run(
            [node, str(DRIVER), server.url, "--hook", str(tmp_path / "hook.json")],
            cwd=WEB,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "CHROMIUM": chromium},
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    report = json.loads(result.stdout)
    assert report["view"] == "upscale" and report["errors"] == []
    for array, got in zip((colour, grey), report["hook"], strict=True):
        want = model.upscale(torch.from_numpy(array).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
        assert got["mode"] == "rgb"
        assert_close(rgba_of(got["model"])[..., :3], want, "an RGB model's result")
