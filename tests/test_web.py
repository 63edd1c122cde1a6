"""``aezoo serve`` and its page: the server answers its whitelist only, and only to its own address;
in a real browser (Debian's chromium, headless) the page draws what onnxruntime decodes."""

from __future__ import annotations

import contextlib
import copy
import http.client
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import aezoo
from aezoo import AezooError, cli
from aezoo.serve import ORT_ENV, ORT_FILES, ORT_WEB_VERSION, ExportServer, ort_dir, page_dir, serve

REPO = Path(__file__).resolve().parents[1]
WEB = REPO / "exports" / "web"
PAGE_TEST = WEB / "tests" / "page.test.mjs"

TENSOR = {"dtype": "float32", "description": "a tensor"}
ENTRY = {"opset": 18, "ir_version": 10, "sha256": "0" * 64, "bytes": 4}
MANIFEST: dict[str, Any] = {
    "format": "aezoo-export/1",
    "architecture": "vae",
    "hparams": {},
    "versions": {"aezoo": "0", "onnxruntime": "0"},
    "opset": 18,
    "latent_shape": [2],
    "latent_size": 2,
    "models": {
        "encoder": {
            **ENTRY,
            "file": "encoder.onnx",
            "inputs": [{**TENSOR, "name": "image", "shape": ["batch", 1, 4, 4]}],
            "outputs": [{**TENSOR, "name": "z", "shape": ["batch", 2]}],
        },
        "decoder": {
            **ENTRY,
            "file": "decoder.onnx",
            "inputs": [{**TENSOR, "name": "z", "shape": ["batch", 2], "sampling": {"kind": "normal"}}],
            "outputs": [{**TENSOR, "name": "image", "shape": ["batch", 1, 4, 4], "range": [0, 1]}],
        },
    },
    "validation": {"runtime": "onnxruntime", "atol": 1e-5, "passed": True, "cases": []},
}


def fake_export(folder: Path, manifest: dict[str, Any] = MANIFEST) -> Path:
    """An export folder the server accepts (the .onnx files are not models: it does not run them)."""
    folder.mkdir(parents=True)
    (folder / "aezoo-export.json").write_text(json.dumps(manifest))
    for entry in manifest["models"].values():
        (folder / entry["file"]).write_bytes(b"onnx")
    (folder / "notes.txt").write_text("in the folder, not in the manifest")
    return folder


def fake_ort(folder: Path) -> Path:
    folder.mkdir(parents=True)
    for name in ORT_FILES:
        (folder / name).write_text(f"// {name}")
    (folder / "ort.min.js.map").write_text("not on the list")
    return folder


@contextlib.contextmanager
def running(served: ExportServer) -> Iterator[ExportServer]:
    thread = threading.Thread(target=served.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.shutdown()
        served.server_close()
        thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportServer]:
    """One server for the read-only tests."""
    tmp = tmp_path_factory.mktemp("serve")
    with running(
        ExportServer(fake_export(tmp / "export"), "127.0.0.1", 0, ort=fake_ort(tmp / "ort"))
    ) as served:
        yield served


def request(
    server: ExportServer, path: str, host: str | None = "", method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """A raw request: ``path`` sent exactly as given; ``host`` "" for the server's own, None for none."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        if host is not None:
            connection.putheader("Host", host or f"127.0.0.1:{server.port}")
        connection.endheaders()
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


# -- the whitelist -----------------------------------------------------------------------------


def test_serves_the_page_the_export_and_onnxruntime(server: ExportServer) -> None:
    page = page_dir()
    for path, file, kind in [
        ("/", page / "index.html", "text/html"),
        ("/index.html", page / "index.html", "text/html"),
        ("/app.js", page / "app.js", "text/javascript"),
        ("/style.css", page / "style.css", "text/css"),
        ("/aezoo-export.json", server.export_dir / "aezoo-export.json", "application/json"),
        ("/decoder.onnx", server.export_dir / "decoder.onnx", "application/octet-stream"),
        ("/encoder.onnx?v=1", server.export_dir / "encoder.onnx", "application/octet-stream"),
        ("/ort/ort-wasm-simd-threaded.wasm", None, "application/wasm"),
        ("/ort/ort.wasm.min.mjs", None, "text/javascript"),
    ]:
        status, headers, body = request(server, path)
        assert status == 200, path
        assert headers["content-type"].startswith(kind), path
        assert headers["x-content-type-options"] == "nosniff"
        if file is not None:
            assert body == file.read_bytes(), path
    status, headers, body = request(server, "/", method="HEAD")
    assert (status, body) == (200, b"") and int(headers["content-length"]) > 0
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/../pyproject.toml",
        "/../../../../etc/passwd",
        "/%2e%2e/pyproject.toml",
        "/%2E%2E/%2E%2E/pyproject.toml",
        "/..%2fpyproject.toml",
        "/..%2F..%2Fpyproject.toml",
        "/%2e%2e%2fpyproject.toml",
        "/.%2e/pyproject.toml",
        "/ort/../aezoo-export.json",
        "/ort/..%2f..%2fpackage.json",
        "/ort/%2e%2e/%2e%2e/package.json",
        "//etc/passwd",
        "/%2fetc%2fpasswd",
        "/etc/passwd",
        "/%c0%ae%c0%ae/pyproject.toml",
        "/app.js%00",
        "/app.js/",
        "/ort/",
        "/ort/ort.min.js.map",
        "/node_modules/onnxruntime-web/package.json",
        "/aezoo_web/../../pyproject.toml",
        "/__init__.py",
        "/tests/page.test.mjs",
        "/notes.txt",
        "/export/decoder.onnx",
        "http://127.0.0.1/../pyproject.toml",
    ],
)
def test_nothing_outside_the_whitelist(server: ExportServer, path: str) -> None:
    status, _, body = request(server, path)
    assert status == 404, path
    assert b"[project]" not in body and b"root:" not in body


def test_a_symlink_out_of_its_folder_is_not_followed(tmp_path: Path) -> None:
    page = tmp_path / "page"
    shutil.copytree(page_dir(), page)
    (page / "style.css").unlink()
    (page / "style.css").symlink_to(REPO / "pyproject.toml")
    export = fake_export(tmp_path / "export")
    with running(ExportServer(export, port=0, page=page, ort=fake_ort(tmp_path / "ort"))) as served:
        assert request(served, "/style.css")[0] == 404
        assert request(served, "/app.js")[0] == 200
        secret = tmp_path / "secret.onnx"
        secret.write_text("outside the export")
        (export / "encoder.onnx").unlink()
        (export / "encoder.onnx").symlink_to(secret)  # a file the manifest names, now a link out
        status, _, body = request(served, "/encoder.onnx")
        assert status == 404 and b"outside" not in body
        (export / "decoder-v2.onnx").write_bytes(b"v2")  # a link that stays inside the folder is fine
        (export / "decoder.onnx").unlink()
        (export / "decoder.onnx").symlink_to("decoder-v2.onnx")
        assert request(served, "/decoder.onnx")[::2] == (200, b"v2")


# -- the Host check ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "host",
    [
        "evil.example:{port}",
        "localhost.evil.example:{port}",
        "127.0.0.1.nip.io:{port}",
        "127.0.0.1:1",
        "localhost:{other}",
        "127.0.0.2:{port}",
        "[::1]:{port}",
        "localhost",
        "127.0.0.1",
        "",
        None,
    ],
)
def test_a_foreign_host_header_is_refused(server: ExportServer, host: str | None) -> None:
    value = None if host is None else host.format(port=server.port, other=server.port + 1)
    if value == "":
        value = " "  # present but empty
    for path in ("/", "/aezoo-export.json", "/no-such-file"):
        status, _, body = request(server, path, host=value)
        assert status == 403, (value, path)
        assert b"vae" not in body


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}"])
def test_its_own_address_is_welcome(server: ExportServer, host: str) -> None:
    assert request(server, "/aezoo-export.json", host=host.format(port=server.port))[0] == 200


def test_other_methods_are_refused(server: ExportServer) -> None:
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        assert request(server, "/aezoo-export.json", method=method)[0] >= 400


def test_the_pinned_onnxruntime_web_is_the_one_the_lockfile_installs() -> None:
    package = json.loads((WEB / "package.json").read_text())
    lock = json.loads((WEB / "package-lock.json").read_text())
    assert package["dependencies"]["onnxruntime-web"] == ORT_WEB_VERSION
    assert lock["packages"]["node_modules/onnxruntime-web"]["version"] == ORT_WEB_VERSION


# -- the command -------------------------------------------------------------------------------


def test_mistakes_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(ORT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(
        AezooError, match=rf"onnxruntime-web is missing: {ORT_ENV}=.* has no ort.wasm.min.mjs"
    ):
        ort_dir()
    monkeypatch.delenv(ORT_ENV)
    clone = tmp_path / "web"
    shutil.copytree(page_dir(), clone / "aezoo_web")
    (clone / "package.json").write_text("{}")
    with pytest.raises(AezooError, match=r"has no node_modules: run `npm ci` in exports/web"):
        ort_dir(clone / "aezoo_web")
    (clone / "package.json").unlink()  # an installed wheel: no npm project beside the page
    with pytest.raises(
        AezooError, match=rf"npm install onnxruntime-web@{ORT_WEB_VERSION}` and set {ORT_ENV}"
    ):
        ort_dir(clone / "aezoo_web")
    monkeypatch.setenv(ORT_ENV, str(fake_ort(tmp_path / "ort")))
    export = fake_export(tmp_path / "export")
    (tmp_path / "empty").mkdir()
    cases = [
        ([str(tmp_path / "empty")], "is neither an export folder"),
        ([str(export), "--port", "70000"], "--port must be between 0 and 65535"),
    ]
    broken = copy.deepcopy(MANIFEST)
    broken["models"]["decoder"]["file"] = "../../pyproject.onnx"  # the schema keeps names inside
    (fake_export(tmp_path / "broken") / "aezoo-export.json").write_text(json.dumps(broken))
    cases.append(([str(tmp_path / "broken")], "does not follow the manifest schema at models/decoder/file"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        cases.append(([str(export), "--port", str(taken.getsockname()[1])], "is already in use"))
        for args, message in cases:
            assert cli.main(["serve", *args]) == 2, args
            err = capsys.readouterr().err
            assert message in err and len(err.strip().splitlines()) == 1, err


def test_ctrl_c_stops_it_with_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(ORT_ENV, str(fake_ort(tmp_path / "ort")))
    export = fake_export(tmp_path / "export")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    main_thread = threading.get_ident()
    answered = []

    def interrupt() -> None:  # once it answers, Ctrl-C
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                connection.request("GET", "/aezoo-export.json")
                answered.append(connection.getresponse().status)
                connection.close()
                break
            except OSError:
                time.sleep(0.05)
        signal.pthread_kill(main_thread, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    assert cli.main(["serve", str(export), "--port", str(port)]) == 130
    out, err = capsys.readouterr()
    assert answered == [200]
    assert f"at http://127.0.0.1:{port}/" in out
    assert err.strip() == "aezoo: interrupted" and "Traceback" not in err
    with socket.socket() as again:  # nothing listens there any more (TIME_WAIT aside)
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


# -- the page in a real browser ----------------------------------------------------------------


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


def test_the_page_draws_what_onnxruntime_decodes(tmp_path: Path) -> None:
    chromium, node = browser_or_skip()
    version = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=60)
    print(f"browser: {version.stdout.strip()}")

    started: queue.Queue[Any] = queue.Queue()

    def run() -> None:  # `aezoo serve vae:mnist-2d`: exported on the fly into a temporary folder
        try:
            serve("vae:mnist-2d", port=0, started=started.put)
        except BaseException as exc:
            started.put(exc)

    began = time.monotonic()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    server = started.get(timeout=300)
    if isinstance(server, BaseException):
        raise server
    exported_in = time.monotonic() - began
    unsupported = copy.deepcopy(MANIFEST)  # a decoder taking two inputs: the page says so
    unsupported["models"]["decoder"]["inputs"].append({**TENSOR, "name": "temperature", "shape": [1]})
    try:
        with running(ExportServer(fake_export(tmp_path / "two-inputs", unsupported), port=0)) as other:
            exported = aezoo.load_export(server.export_dir)
            codes = np.array([[0, 0], [1.5, -2], [-2.9, 2.9], [0.31, 0.77]], dtype=np.float32)
            expected = exported.decoder(codes)["image"]
            script = [str(PAGE_TEST), server.url, "--codes", json.dumps(codes.tolist())]
            script += ["--unsupported", other.url, "--screenshot", str(tmp_path / "page.png")]
            began = time.monotonic()
            result = subprocess.run(
                [node, *script],
                cwd=WEB,
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "CHROMIUM": chromium},
            )
            browsed_in = time.monotonic() - began
    finally:
        export_dir = server.export_dir
        server.shutdown()
        thread.join(30)
    assert not export_dir.exists(), "the temporary export outlived the server"
    assert result.returncode == 0, result.stderr + result.stdout[-2000:]
    report = json.loads(result.stdout)
    assert report["ready"] == {"supported": True, "view": "latent"} and report["errors"] == []
    low, high = exported.decoder.outputs[0].get("range", [0, 1])
    for code, want, got in zip(codes, expected, report["results"], strict=True):
        assert got["code"] == pytest.approx(code.tolist(), abs=1e-6)
        assert (got["width"], got["height"]) == (28, 28)
        rgba = np.array(got["rgba"], dtype=np.float64).reshape(28, 28, 4)
        assert (rgba[..., 3] == 255).all() and (rgba[..., 0] == rgba[..., 1]).all()
        scaled = np.clip((want[0].astype(np.float64) - low) / (high - low), 0, 1)
        diff = np.abs(rgba[..., 0] / 255 - scaled).max()
        assert diff <= 1 / 255 + 1e-6, f"canvas differs from onnxruntime by {diff * 255:.2f}/255 for {code}"
    # dragging the pad from its top-left quarter to its bottom-right one: the prior's ±3σ plane
    assert report["drag"]["start"] == pytest.approx([-1.5, 1.5], abs=0.05)
    assert report["drag"]["end"] == pytest.approx([1.5, -1.5], abs=0.05)
    assert report["sample"]["code"] != report["drag"]["end"]
    assert report["unsupported"]["ready"]["supported"] is False and report["unsupported"]["explorerHidden"]
    assert "not supported yet by this page" in report["unsupported"]["message"]
    assert "2 inputs" in report["unsupported"]["message"]
    draw_ms = [r["lastDrawMs"] for r in report["results"]]
    print(f"setCode to redrawn canvas: {', '.join(f'{ms:.1f}' for ms in draw_ms)} ms")
    print(f"export {exported_in:.1f} s, browser script {browsed_in:.1f} s")
