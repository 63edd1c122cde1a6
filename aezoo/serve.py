"""``aezoo serve``: aezoo's browser page for an export, decoding codes live, on this machine only.

The server answers a fixed list of paths and nothing else: the page's files (``/``, ``/app.js``,
...), the onnxruntime-web files the page loads (``/ort/...``), and the export's manifest and the
``.onnx`` files it names. A path is looked up in that list as a whole, never joined onto a folder,
so ``..``, percent-encoded dots and slashes and unknown names are 404; a listed file that is a
symlink leading out of its folder is 404 too. A request whose ``Host`` is not the address the
server bound (``127.0.0.1:PORT``, ``localhost:PORT``) is 403, so a web page elsewhere cannot reach
it through DNS rebinding.

The page lives in ``exports/web/aezoo_web/`` (the ``aezoo_web`` package, so a wheel has it);
onnxruntime-web comes from ``exports/web/node_modules`` (``npm ci`` in ``exports/web``) or from
``$AEZOO_ORT_WEB``.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import ipaddress
import os
import shutil
import signal
import socket
import socketserver
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import unquote

from aezoo.errors import AezooError
from aezoo.onnx.runtime import MANIFEST_FILE, read_manifest

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765

#: The page's files, served at ``/NAME`` (``index.html`` at ``/`` too).
PAGE_FILES = (
    "index.html",
    "app.js",
    "common.js",
    "latent.js",
    "style.css",
    "favicon.svg",
    "upscale.js",
    "pixels.js",
    "upscale.css",
    "melody.js",
    "melody-page.js",
    "melody.css",
    "midi.js",
    "sampling.js",
    "pianoroll.js",
    "synth.js",
    "codes.js",
    "codes.css",
)
#: The onnxruntime-web files the page loads (its wasm-only ES module build), served at ``/ort/NAME``.
ORT_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
#: A folder holding ``ORT_FILES`` (onnxruntime-web's ``dist``), instead of ``exports/web/node_modules``.
ORT_ENV = "AEZOO_ORT_WEB"
#: The onnxruntime-web that ``exports/web/package.json`` pins (and its lockfile installs).
ORT_WEB_VERSION = "1.30.0"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
}
# 'wasm-unsafe-eval' lets onnxruntime-web compile its WebAssembly; nothing else runs but our files.
PAGE_POLICY = (
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

Echo = Callable[[str], None]


# -- what is served ----------------------------------------------------------------------------


def page_dir() -> Path:
    """The page's folder: ``exports/web/aezoo_web`` in a clone, else the installed ``aezoo_web``."""
    clone = Path(__file__).resolve().parents[1] / "exports" / "web" / "aezoo_web"
    candidates = [clone]
    spec = importlib.util.find_spec("aezoo_web")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    for folder in candidates:
        if all((folder / name).is_file() for name in PAGE_FILES):
            return folder.resolve()
    raise AezooError("aezoo's web page (the aezoo_web package) is missing or incomplete; reinstall aezoo")


def ort_dir(page: Path | None = None) -> Path:
    """onnxruntime-web's ``dist`` folder: ``$AEZOO_ORT_WEB``, else ``node_modules`` beside the page."""
    given = os.environ.get(ORT_ENV)
    web = (page or page_dir()).parent
    if given:
        folder = Path(given).expanduser()
        folder = folder / "dist" if (folder / "dist").is_dir() else folder
    else:
        folder = web / "node_modules" / "onnxruntime-web" / "dist"
    missing = [name for name in ORT_FILES if not (folder / name).is_file()]
    if not missing:
        return folder.resolve()
    if given:
        why = f"{ORT_ENV}={given} has no {missing[0]}; point it at onnxruntime-web {ORT_WEB_VERSION}'s dist folder"
    elif (web / "package.json").is_file():  # a clone: exports/web is the page's npm project
        why = (
            f"{web} has no node_modules: run `npm ci` in exports/web (or `bash exports/install-test-deps.sh`)"
        )
    else:
        why = f"`npm install onnxruntime-web@{ORT_WEB_VERSION}` and set {ORT_ENV} to its dist folder"
    raise AezooError(f"onnxruntime-web is missing: {why}")


def routes(export_dir: Path, page: Path, ort: Path) -> dict[str, tuple[Path, Path]]:
    """URL path -> (file, the folder it must stay inside), for everything the server answers."""
    manifest = read_manifest(export_dir)
    export_root, page, ort = export_dir.resolve(), page.resolve(), ort.resolve()
    table: dict[str, tuple[Path, Path]] = {"/": (page / "index.html", page)}
    table.update({f"/{name}": (page / name, page) for name in PAGE_FILES})
    table.update({f"/ort/{name}": (ort / name, ort) for name in ORT_FILES})
    table[f"/{MANIFEST_FILE}"] = (export_root / MANIFEST_FILE, export_root)
    for entry in manifest["models"].values():  # the schema keeps these plain names inside the folder
        table[f"/{entry['file']}"] = (export_root / entry["file"], export_root)
    decoder = export_root / manifest["models"]["decoder"]["file"]
    if not decoder.is_file():
        raise AezooError(f"{decoder} is missing; export again")
    return table


# -- the server --------------------------------------------------------------------------------


class ExportServer(ThreadingHTTPServer):
    """An HTTP server for one export and the page; ``url`` is where to open it."""

    daemon_threads = True

    def __init__(
        self,
        export_dir: str | os.PathLike[str],
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        *,
        page: Path | None = None,
        ort: Path | None = None,
        echo: Echo | None = None,
    ) -> None:
        check_port(port)
        page = page or page_dir()
        self.export_dir = Path(export_dir).expanduser()
        self.table = routes(self.export_dir, page, ort or ort_dir(page))
        self.echo = echo
        self.host = host
        try:
            info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise AezooError(f"cannot bind --host {host}: {exc.strerror}") from None
        family, _, _, _, address = min(info, key=lambda i: i[0] != socket.AF_INET)  # IPv4 first
        self.address_family = family
        try:
            super().__init__(address[:2], Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise AezooError(
                    f"{host}:{port} is already in use; choose another --port (0 picks a free one)"
                ) from None
            raise AezooError(f"cannot bind {host}:{port}: {exc.strerror or exc}") from None
        self.ip = ipaddress.ip_address(self.server_address[0])
        self.port = int(self.server_address[1])
        self.hosts = {host.lower(), str(self.ip)}
        if self.ip.is_loopback or self.ip.is_unspecified:
            self.hosts.add("localhost")

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # without HTTPServer's reverse DNS lookup
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    @property
    def url(self) -> str:
        shown = "127.0.0.1" if self.ip.is_unspecified else str(self.ip)
        if self.ip.version == 6 and not self.ip.is_unspecified:
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/"

    def host_allowed(self, header: str | None) -> bool:
        """Whether a request's ``Host`` names this server: its address or name (``localhost`` when
        bound to loopback) and its port; any IP literal when bound to all addresses. A DNS name
        that was not given as --host is refused: that is how DNS rebinding would arrive."""
        if not header:
            return False
        value = header.strip().lower()
        if value.startswith("["):  # [v6]:port
            name, _, rest = value[1:].partition("]")
            port = rest[1:] if rest.startswith(":") else ("80" if not rest else "")
        else:
            name, colon, port = value.rpartition(":")
            if not colon:
                name, port = value, "80"
        if port != str(self.port):
            return False
        if name in self.hosts:
            return True
        if not self.ip.is_unspecified:
            return False
        try:
            ipaddress.ip_address(name)
        except ValueError:
            return False
        return True

    def lookup(self, raw: str) -> Path | None:
        """The file a request path names, or None: the path must be in the table, and the file it
        resolves to (symlinks followed) must be inside its own folder."""
        target = raw.split("?", 1)[0].split("#", 1)[0]
        found = self.table.get(target) or self.table.get(unquote(target, errors="strict"))
        if found is None:
            return None
        path, root = found
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(root) or not real.is_file():
            return None
        return real

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):  # the browser went away mid-answer
            return
        super().handle_error(request, client_address)


class Handler(BaseHTTPRequestHandler):
    """GET and HEAD of the server's table; everything else is refused."""

    server: ExportServer
    server_version = "aezoo-serve"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle keep-alive connection is closed after this many seconds

    def do_GET(self) -> None:
        self.answer(body=True)

    def do_HEAD(self) -> None:
        self.answer(body=False)

    def answer(self, body: bool) -> None:
        if not self.server.host_allowed(self.headers.get("Host")):
            self.refuse(HTTPStatus.FORBIDDEN, "this server answers only to its own address")
            return
        try:
            path = self.server.lookup(self.path)
        except UnicodeDecodeError:
            path = None
        file = _open_unlinked(path) if path is not None else None
        if path is None or file is None:
            self.refuse(HTTPStatus.NOT_FOUND, "not found")
            return
        with file:
            size = os.fstat(file.fileno()).st_size
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", CONTENT_TYPES.get(path.suffix, "application/octet-stream"))
            self.send_header("Content-Length", str(size))
            self.common_headers()
            if path.suffix == ".html":
                self.send_header("Content-Security-Policy", PAGE_POLICY)
            self.end_headers()
            if body:
                shutil.copyfileobj(file, self.wfile, 1 << 20)

    def refuse(self, status: HTTPStatus, text: str) -> None:
        if self.server.echo is not None:
            self.server.echo(
                f"{status.value} {self.command} {self.path!r} (Host {self.headers.get('Host')!r})"
            )
        data = f"{status.value} {status.phrase}: {text}\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.common_headers()
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def common_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Referrer-Policy", "no-referrer")

    def log_message(self, format: str, *args: Any) -> None:  # quiet: refusals are echoed instead
        pass


def _open_unlinked(path: Path) -> BinaryIO | None:
    """``path`` (already resolved) opened for reading, unless a symlink was put there since."""
    try:
        return os.fdopen(os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)), "rb")
    except OSError:
        return None


# -- aezoo serve ---------------------------------------------------------------------------------


@contextlib.contextmanager
def export_folder(spec: str, echo: Echo | None = None) -> Iterator[tuple[Path, bool]]:
    """``(spec, False)`` when ``spec`` is an export folder; else ``spec`` (a run, a weights file or a
    pretrained name) exported into a temporary folder, removed on leaving, and True."""
    path = Path(spec).expanduser()
    if path.is_file() and path.name == MANIFEST_FILE:
        path = path.parent
    if path.is_dir() and (path / MANIFEST_FILE).is_file():
        yield path, False
        return
    from aezoo.onnx import export
    from aezoo.runs import CONFIG_FILE

    if path.is_dir() and not (path / CONFIG_FILE).is_file():
        raise AezooError(
            f"{path} is neither an export folder (no {MANIFEST_FILE}) nor a run folder (no {CONFIG_FILE})"
        )
    with tempfile.TemporaryDirectory(prefix="aezoo-serve-") as tmp:
        yield export(spec, Path(tmp) / "export", echo=echo).path, True


@contextlib.contextmanager
def _terminate_as_exit() -> Iterator[None]:
    """SIGTERM ends the server as Ctrl-C does: cleanly, its temporary export removed. Ctrl-C gets
    its handler explicitly too: a process started in the background inherits SIGINT ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    previous_int = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, previous_int)


def check_port(port: int) -> None:
    if not 0 <= port <= 65535:
        raise AezooError(f"--port must be between 0 and 65535 (0 picks a free one), got {port}")


def serve(
    spec: str,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    echo: Echo | None = None,
    started: Callable[[ExportServer], None] | None = None,
) -> None:
    """Serve the page for ``spec`` (an export folder, or a run, file or pretrained name exported on
    the fly) until interrupted or ``server.shutdown()``; the temporary export is removed on the way
    out. ``started`` gets the running server (default: print its URL)."""
    check_port(port)  # the user's own mistake first, then what the machine lacks
    page = page_dir()
    ort = ort_dir(page)  # both checked before a possibly long export
    with _terminate_as_exit(), export_folder(spec, echo) as (folder, temporary):
        server = ExportServer(folder, host, port, page=page, ort=ort, echo=echo)
        with server:
            if not (server.ip.is_loopback or echo is None):
                echo(f"listening on {host}: other machines can fetch this model (the default is 127.0.0.1)")
            if started is None:
                how = " (exported to a temporary folder)" if temporary else ""
                print(f"serving {spec}{how} at {server.url} (Ctrl-C to stop)", flush=True)
            else:
                started(server)
            server.serve_forever()
