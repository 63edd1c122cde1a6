"""aezoo's page under CPU throttling: a latent pad's move to the redrawn image, "Sample" to notes.

    python benchmarks/page_latency.py [--moves 60] [--samples 50] [--throttles 4,1]
                                      [--only images,melodies] [--exports DIR]

Headless Debian chromium (playwright-core from exports/web) opens `aezoo serve` of each export
(aezoo.serve.ExportServer, onnxruntime-web in WebAssembly, one thread) and slows its CPU with
DevTools' Emulation.setCPUThrottlingRate (4: a phone-class CPU; 1: none); benchmarks/js/
page_latency.mjs drives it. Timings are the page's own performance.now() figures:

- image decoders with a vector code (the pretrained vae:mnist-2d, vae:mnist, conv:mnist,
  dense:mnist, denoising:mnist, aae:mnist-2d): the latent view's `lastDrawMs`, from the pointer
  handler's code change to the redrawn canvas, over --moves pointer moves across #pad (mouse
  down, then one move at a time, each waiting for its redraw; 5 untimed first), and how long each
  pointer event waited before its handler ran (its timeStamp to the handler);
- melody decoders: the melody view's `lastSampleMs`, from the "Sample" button's click handler to the
  notes shown and playable, over --samples clicks (3 untimed first), at the page's temperature (1),
  for the pretrained musicvae:melody-2bar and a 16-bar hierarchical musicvae with untrained
  weights (latency does not depend on them) and benchmarks/musicvae.py's 16-bar sizes (SIXTEEN:
  encoder 128, z 64, decoder 128, seed 0).

Beside each: onnxruntime in Python (CPU, one thread, unthrottled) decoding the same codes at batch 1
(melodies: the same z at the same temperature with fresh Gumbel noise), median over all of them
after 3 untimed calls. Targets at 4x: median <= 8 ms for the 2-d VAE's redraw, <= 50 ms for a
2-bar melody. About 2 minutes on the 2-core machine, plus about 5 to export (the 16-bar decoder
unrolls to about 6,600 nodes; --exports DIR keeps the exports for the next run). Writes
benchmarks/results/page_latency.json with the load averages at the start and the end.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

import aezoo
from aezoo.onnx.runtime import read_manifest

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import js_bridge
from common import write_result
from musicvae import SIXTEEN

IMAGES = ("vae:mnist-2d", "vae:mnist", "conv:mnist", "dense:mnist", "denoising:mnist", "aae:mnist-2d")
MELODY_2BAR = "musicvae:melody-2bar"
MELODY_16BAR = "musicvae-hierarchical-16bar"  # untrained, benchmarks/musicvae.py's 16-bar sizes
TARGETS_MS = {"vae:mnist-2d": 8.0, MELODY_2BAR: 50.0}
TARGET_THROTTLE = 4


def export_all(names: list[str], root: Path) -> dict[str, Path]:
    """Each export's folder (exported once; reused when already there)."""
    folders = {}
    for name in names:
        folder = root / name.replace(":", "-")
        if not (folder / "aezoo-export.json").exists():
            started = time.perf_counter()
            if name == MELODY_16BAR:
                torch.manual_seed(0)
                model = aezoo.create("musicvae", **{**SIXTEEN, "decoder": "hierarchical"})
                aezoo.export(model, folder)
            else:
                aezoo.export(name, folder)
            print(f"{name}: exported in {time.perf_counter() - started:.0f} s", flush=True)
        folders[name] = folder
    return folders


def ort_session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def median_ms(session: Any, feeds: list[dict[str, np.ndarray]]) -> float:
    for f in feeds[:3]:
        session.run(None, f)
    times = []
    for f in feeds:
        started = time.perf_counter()
        session.run(None, f)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def gumbel(shape: tuple[int, ...], sampling: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    """The manifest's noise rule: -log(-log(u)), u uniform in [u_low, u_high]."""
    u = rng.uniform(sampling["u_low"], sampling["u_high"], size=shape)
    return (-np.log(-np.log(u))).astype(np.float32)


def image_row(found: dict[str, Any], folder: Path) -> dict[str, Any]:
    row = _row(found, "image", [m["lastDrawMs"] for m in found["moves"]])
    if found["moves"]:
        row["input_delay_median_ms"] = statistics.median(m["inputDelayMs"] for m in found["moves"])
        decodes = [m["decodeMs"] for m in found["moves"] if m["decodeMs"] is not None]
        row["decode_median_ms"] = statistics.median(decodes) if decodes else None
        row["event_to_canvas_median_ms"] = statistics.median(
            m["inputDelayMs"] + m["lastDrawMs"] for m in found["moves"]
        )
        session = ort_session(folder / "decoder.onnx")
        name = session.get_inputs()[0].name
        feeds = [{name: np.array([m["code"]], dtype=np.float32)} for m in found["moves"]]
        row["python_onnxruntime_median_ms"] = median_ms(session, feeds)
    return row


def melody_row(found: dict[str, Any], folder: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    row = _row(found, "melody", [s["lastSampleMs"] for s in found["samples"]])
    if found["samples"]:
        decoding = manifest["decoding"]
        sampling = next(s for s in manifest["models"]["decoder"]["inputs"] if s["name"] == "noise")[
            "sampling"
        ]
        rng = np.random.default_rng(0)
        feeds = [
            {
                "z": np.array([s["z"]], dtype=np.float32),
                "temperature": np.array([s["temperature"]], dtype=np.float32),
                "noise": gumbel((1, decoding["steps"], decoding["classes"]), sampling, rng),
            }
            for s in found["samples"]
        ]
        row["python_onnxruntime_median_ms"] = median_ms(ort_session(folder / "decoder.onnx"), feeds)
        row["temperature"] = found["samples"][0]["temperature"]
        row["steps"] = decoding["steps"]
    return row


def _row(found: dict[str, Any], kind: str, times: list[float]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "model": found["name"], "kind": kind, "throttle": found["throttle"], "view": found["view"],
        "times_ms": times, "n": len(times),
    }  # fmt: skip
    if found["view"] is None or not times:
        row["error"] = f"the page did not open its {kind} view: {found.get('reason')}"
        return row
    row["median_ms"] = statistics.median(times)
    row["p90_ms"] = float(np.percentile(times, 90))
    target = TARGETS_MS.get(found["name"])
    if target is not None and found["throttle"] == TARGET_THROTTLE:
        row["target_ms"], row["target_met"] = target, row["median_ms"] <= target
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--moves", type=int, default=60, help="timed pointer moves per image decoder")
    parser.add_argument("--samples", type=int, default=50, help="timed Sample clicks per melody decoder")
    parser.add_argument("--throttles", default="4,1", help="CPU slowdowns (DevTools), comma-separated")
    parser.add_argument("--only", default="images,melodies")
    parser.add_argument("--models", default=None, help="comma-separated names (default: all of --only)")
    parser.add_argument(
        "--exports", default=None, help="export here (reused when present) instead of a temp dir"
    )
    args = parser.parse_args()
    why = js_bridge.missing_tools(browser=True)
    if why:
        sys.exit(f"page_latency.py {why}")
    torch.set_num_threads(1)
    only = args.only.split(",")
    images = list(IMAGES) if "images" in only else []
    melodies = [MELODY_2BAR, MELODY_16BAR] if "melodies" in only else []
    if args.models:
        chosen = args.models.split(",")
        images, melodies = [n for n in images if n in chosen], [n for n in melodies if n in chosen]
    throttles = [float(t) for t in args.throttles.split(",")]
    load_start = js_bridge.load()
    print(f"load average at the start: {load_start}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_dir, contextlib.ExitStack() as stack:
        folders = export_all(images + melodies, Path(args.exports or tmp_dir))
        load_start = js_bridge.load()  # the exports take minutes: the load the timings saw
        urls = {name: stack.enter_context(js_bridge.serving(folder)) for name, folder in folders.items()}
        job = {
            "images": [
                {"name": n, "url": urls[n], "throttle": t, "moves": args.moves, "warmup": 5}
                for t in throttles
                for n in images
            ],
            "melodies": [
                {"name": n, "url": urls[n], "throttle": t, "samples": args.samples, "warmup": 3}
                for t in throttles
                for n in melodies
            ],
        }
        report = js_bridge.run_driver("page_latency.mjs", job, Path(tmp_dir))
        load_end = js_bridge.load()
        rows = [image_row(found, folders[found["name"]]) for found in report["images"]]
        for found in report["melodies"]:
            manifest = read_manifest(folders[found["name"]])
            rows.append(melody_row(found, folders[found["name"]], manifest))
    for row in rows:
        print(describe(row))
    if report["errors"]:
        print(f"errors in the page: {report['errors']}")
    print(f"load average at the end: {load_end}")
    command = "python benchmarks/page_latency.py " + " ".join(sys.argv[1:])
    path = write_result(
        "page_latency", command.strip(), rows, browser=report["browser"], load_start=load_start,
        load_end=load_end, page_errors=report["errors"],
    )  # fmt: skip
    print(f"wrote {path}")


def describe(row: dict[str, Any]) -> str:
    where = f"{row['model']} at {row['throttle']:g}x"
    if "error" in row:
        return f"{where}: {row['error']}"
    text = f"{where}: median {row['median_ms']:.1f} ms (p90 {row['p90_ms']:.1f}, n {row['n']})"
    if "input_delay_median_ms" in row:
        text += f", event waited {row['input_delay_median_ms']:.1f} ms"
    text += f"; onnxruntime in Python {row['python_onnxruntime_median_ms']:.3f} ms"
    if "target_ms" in row:
        text += f"; target <= {row['target_ms']:g} ms {'met' if row['target_met'] else 'NOT met'}"
    return text


if __name__ == "__main__":
    main()
