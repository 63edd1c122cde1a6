"""What the benchmarks that drive Node and chromium share: arrays to and from the drivers' JSON,
serving an export to the browser, running a driver script, and the machine's load."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
JS = Path(__file__).resolve().parent / "js"
WEB = REPO / "exports" / "web"
NODE_PROJECT = REPO / "exports" / "node"


def encode(array: np.ndarray) -> dict[str, Any]:
    """An array as the drivers read it: dtype, dims and its little-endian bytes in base64."""
    array = np.ascontiguousarray(array)
    data = array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()
    return {"dtype": str(array.dtype), "dims": list(array.shape), "data": base64.b64encode(data).decode()}


def decode(spec: dict[str, Any]) -> np.ndarray:
    dtype = np.dtype(spec["dtype"]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(spec["data"]), dtype=dtype).reshape(spec["dims"]).copy()


def load() -> list[float]:
    """The 1, 5 and 15 minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def missing_tools(browser: bool) -> str | None:
    """Why the Node (and, with ``browser``, chromium) drivers cannot run here, or None."""
    missing = []
    if not shutil.which("node"):
        missing.append("node")
    if browser:
        if not Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium").exists():
            missing.append("Debian's chromium (/usr/bin/chromium or $CHROMIUM)")
        if not (WEB / "node_modules" / "playwright-core").is_dir():
            missing.append("exports/web/node_modules (npm ci in exports/web)")
    elif not (NODE_PROJECT / "node_modules" / "onnxruntime-node").is_dir():
        missing.append("exports/node/node_modules (ONNXRUNTIME_NODE_INSTALL=skip npm ci in exports/node)")
    return f"needs {', '.join(missing)}" if missing else None


def browser_version() -> str:
    chromium = os.environ.get("CHROMIUM") or "/usr/bin/chromium"
    try:
        out = subprocess.run([chromium, "--version"], capture_output=True, text=True, timeout=60)
    except OSError:
        return "unknown"
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else "unknown"


def run_driver(script: str, job: dict[str, Any], folder: Path, timeout: float = 3600) -> dict[str, Any]:
    """Run ``benchmarks/js/SCRIPT JOB.json RESULT.json`` and return the result (its stderr streams
    through); a driver that writes no result raises."""
    job_file, result_file = folder / f"{script}.job.json", folder / f"{script}.result.json"
    job_file.write_text(json.dumps(job))
    result_file.unlink(missing_ok=True)
    done = subprocess.run(
        ["node", str(JS / script), str(job_file), str(result_file)],
        stdout=subprocess.PIPE,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    if not result_file.exists():
        raise RuntimeError(f"{script} wrote no result (exit {done.returncode}; its stderr is above)")
    return json.loads(result_file.read_text())


@contextlib.contextmanager
def serving(export_dir: Path) -> Iterator[str]:
    """``aezoo serve EXPORT`` on a free port of 127.0.0.1 for as long as the block runs; its URL."""
    from aezoo.serve import ExportServer

    server = ExportServer(export_dir, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.url
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
