"""Every pretrained entry's export in six runtimes: agreement with PyTorch, and latency at batch 1.

    python benchmarks/runtimes.py [--runs 30] [--only vae:mnist-2d,...] [--runtimes onnxruntime,...]
                                  [--exports DIR]

For each built-in's pretrained entry (`aezoo pretrained`), `aezoo.export(name)` writes encoder.onnx
and decoder.onnx (fp32), and each part runs in onnxruntime (Python), onnxruntime-node
(exports/node's pinned copy, benchmarks/js/run_node.mjs), onnxruntime-web in headless Debian
chromium (exports/web's pinned copy, WebAssembly, served by aezoo.serve.ExportServer,
benchmarks/js/run_web.mjs), onnx.reference, OpenVINO (CPU, f32) and tract, on the same inputs:
the first 4 examples of the entry's test split (MNIST digits, melodies) at batch 1 (the first)
and 4 — for superres:t91-x2, whose test images differ in size, the four quadrants of its first
low-resolution image — and the decoder on the encoder's codes; musicvae's decoder twice, at
temperature 0 with zero noise (the argmax) and at temperature 1 with Gumbel noise (torch seed 0).
Each output is compared with PyTorch's (float32): the largest absolute difference of float
outputs (up to a reported near-tie, as `aezoo verify` compares) and the share of tokens that agree
for integer outputs; target: within 1e-4 everywhere. Latency: the median of up to --runs calls at
batch 1 after 3 untimed ones (fewer once --budget-s is spent, at least 3), one thread in every
runtime: onnxruntime intra- and inter-op 1, OpenVINO INFERENCE_NUM_THREADS 1, tract single-threaded,
onnx.reference with numpy's BLAS at 1 thread, onnxruntime-web numThreads 1 (its SIMD WebAssembly
build), PyTorch eager set_num_threads(1) beside them. Python runtimes also record their process CPU
time over wall time while timed (above 1 would mean a second thread).

About 2 minutes on the 2-core machine (plus a minute to export, without --exports). Writes
benchmarks/results/runtimes.json, with the load averages at the start and the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import aezoo
from aezoo.data import first_examples
from aezoo.onnx import validation
from aezoo.plugins import load_data

sys.path.insert(0, __file__.rsplit("/", 1)[0])
import js_bridge
from common import write_result
from runtimes_table import table

NAMES = (
    "vae:mnist-2d", "vae:mnist", "conv:mnist", "dense:mnist", "denoising:mnist", "aae:mnist-2d",
    "superres:t91-x2", "musicvae:melody-2bar",
)  # fmt: skip
PYTHON_RUNTIMES = ("onnxruntime", "reference", "openvino", "tract")
#: numpy's BLAS (onnx.reference computes with numpy) reads these once, when it loads.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
JS_RUNTIMES = {"onnxruntime-node": "run_node.mjs", "onnxruntime-web": "run_web.mjs"}
RUNTIMES = ("onnxruntime", "onnxruntime-node", "onnxruntime-web", "reference", "openvino", "tract")
TARGET_ATOL = 1e-4
THREADS = 1


@dataclass
class Case:
    name: str
    args: tuple[torch.Tensor, ...]
    expected: tuple[torch.Tensor, ...]
    timed: bool


@dataclass
class Part:
    """One row of the table: a part of an export, with one setting of its inputs."""

    model: str
    part: str
    variant: str
    file: Path
    export: Path
    spec: Any  # aezoo.model.ExportPart
    cases: list[Case]

    @property
    def id(self) -> str:
        return f"{self.model} {self.part}" + (f" ({self.variant})" if self.variant else "")


def real_inputs(model: Any, manifest: dict[str, Any]) -> torch.Tensor:
    """Four real examples (model inputs): the test split's first four, or four quadrants of the
    first where the split gives one example per batch (images of different sizes)."""
    data = load_data(manifest["dataset"]["name"])
    split = data.test if len(data.test) else data.val
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        real, _ = model.prepare_batch(first_examples(split, 4), train=False)
    if len(real) >= 4:
        return real[:4]
    h, w = real.shape[-2] // 2, real.shape[-1] // 2
    image = real[0]
    return torch.stack([image[..., y : y + h, x : x + w] for y in (0, h) for x in (0, w)])


def sampling_settings(part: Any, args: tuple[torch.Tensor, ...]) -> dict[str, tuple[torch.Tensor, ...]]:
    """A decoder that takes a temperature and Gumbel noise: argmax and sampled settings; else one."""
    names = [s.name for s in part.inputs]
    if names[1:] != ["temperature", "noise"]:
        return {"": args}
    from aezoo_musicvae.model import gumbel

    z, _, noise = args
    n = len(z)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        gumbel_noise = gumbel(tuple(noise.shape))
    return {
        "temperature 0, zero noise": (z, torch.zeros(n), torch.zeros_like(noise)),
        "temperature 1, Gumbel noise": (z, torch.ones(n), gumbel_noise),
    }


def build_parts(name: str, folder: Path) -> list[Part]:
    model = aezoo.load(name).eval()
    manifest = json.loads((folder / "aezoo-export.json").read_text())
    real = real_inputs(model, manifest)
    parts = []
    for part_name, spec in model.export_parts().items():
        with torch.no_grad():
            full = spec.from_model_inputs(real)
        for variant, args in sampling_settings(spec, full).items():
            cases = []
            for n in (1, 4):
                case_args = tuple(a[:n].contiguous() for a in args)
                with torch.no_grad():
                    out = spec.module(*case_args)
                out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
                cases.append(Case(f"batch {n}", case_args, out, timed=n == 1))
            file = folder / manifest["models"][part_name]["file"]
            parts.append(Part(name, part_name, variant, file, folder, spec, cases))
    return parts


def python_session(path: Path, runtime: str) -> Callable[[dict[str, np.ndarray]], list[np.ndarray]]:
    """``validation.session``'s runtimes at one thread (onnxruntime and OpenVINO set here; tract is
    single-threaded; onnx.reference's numpy BLAS by ONE_THREAD)."""
    if runtime == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = THREADS
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(None, feeds)
    if runtime == "openvino":
        ov = validation.require(runtime)
        core = ov.Core()
        config = {"INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": THREADS}
        compiled = core.compile_model(core.read_model(str(path)), "CPU", config)
        request = compiled.create_infer_request()

        def run(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
            results = request.infer({k: np.ascontiguousarray(v) for k, v in feeds.items()})
            return [np.array(results[output]) for output in compiled.outputs]

        return run
    return validation.session(path, runtime)


def time_calls(call: Callable[[], Any], args: argparse.Namespace) -> tuple[list[float], float]:
    """Wall times (ms) of up to ``args.runs`` calls after 3 untimed ones, and CPU over wall time."""
    for _ in range(3):
        call()
    times: list[float] = []
    begun, cpu = time.perf_counter(), time.process_time()
    while len(times) < args.runs:
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
        if len(times) >= 3 and time.perf_counter() - begun > args.budget_s:
            break
    return times, (time.process_time() - cpu) / (time.perf_counter() - begun)


def feeds_of(part: Part, case: Case) -> dict[str, np.ndarray]:
    return {s.name: a.numpy() for s, a in zip(part.spec.inputs, case.args, strict=True)}


def judge(part: Part, case: Case, actual: list[np.ndarray]) -> dict[str, Any]:
    """One case's comparison with PyTorch: per output, the difference or the tokens' agreement."""
    names = [s.name for s in part.spec.outputs]
    decisions = part.spec.decisions(case.args, case.expected) if part.spec.decisions else None
    report = validation.compare(case.name, names, case.expected, actual, TARGET_ATOL, decisions)
    outputs = {}
    for check, want, got in zip(report.outputs, case.expected, actual, strict=True):
        entry: dict[str, Any] = {"max_abs_diff": check.max_abs_diff, "passed": check.passed}
        if check.exact and want.shape == tuple(got.shape):
            entry["agreement"] = float(np.mean(want.numpy() == got))
        if check.note:
            entry["note"] = check.note
        outputs[check.name] = entry
    return {"case": case.name, "passed": report.passed, "outputs": outputs}


def row_of(part: Part, runtime: str, version: str) -> dict[str, Any]:
    return {
        "model": part.model, "part": part.part, "variant": part.variant, "runtime": runtime,
        "runtime_version": version, "threads": THREADS, "error": None, "cases": [],
    }  # fmt: skip


def python_rows(part: Part, args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for runtime in (r for r in PYTHON_RUNTIMES if r in args.runtimes):
        label = validation.runtime_label(runtime)
        row = row_of(part, "onnx.reference" if runtime == "reference" else runtime, label)
        rows.append(row)
        try:
            run = python_session(part.file, runtime)
        except Exception as exc:
            row["error"] = f"does not load: {validation.describe_failure(runtime, exc)}"
            continue
        for case in part.cases:
            feeds = feeds_of(part, case)
            try:
                actual = run(feeds)
            except Exception as exc:
                failure = str(exc) if isinstance(exc, validation.RuntimeFailure) else None
                error = failure or validation.describe_failure(runtime, exc)
                row["cases"].append({"case": case.name, "passed": False, "error": error})
                continue
            row["cases"].append(judge(part, case, actual))
            if case.timed:
                row["times_ms"], row["cpu_per_wall"] = time_calls(lambda run=run, f=feeds: run(f), args)
        print(summary(row), flush=True)
    return rows


def eager_row(part: Part, args: argparse.Namespace) -> dict[str, Any]:
    row = row_of(part, "PyTorch eager", f"torch {torch.__version__}")
    case = next(c for c in part.cases if c.timed)

    def call() -> None:
        with torch.inference_mode():
            part.spec.module(*case.args)

    row["times_ms"], row["cpu_per_wall"] = time_calls(call, args)
    return row


def js_rows(parts: list[Part], runtime: str, args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    """All parts in one Node or chromium process; rows as python_rows gives."""
    web = runtime == "onnxruntime-web"
    why = js_bridge.missing_tools(browser=web)
    results: dict[str, Any] = {}
    version = ""
    if why is None:
        options = {"threads": THREADS, "runs": args.runs, "warmup": 3, "budgetMs": args.budget_s * 1000}
        job_parts = []
        for part in parts:
            cases = [
                {"name": c.name, "timed": c.timed, "feeds": {k: js_bridge.encode(v) for k, v in feeds_of(part, c).items()}}
                for c in part.cases
            ]  # fmt: skip
            job_parts.append({"id": part.id, "file": str(part.file), "key": part.part, "cases": cases})
        with contextlib.ExitStack() as stack:
            folders = sorted({p.export for p in parts}) if web else []
            urls = {folder: stack.enter_context(js_bridge.serving(folder)) for folder in folders}
            for job_part, part in zip(job_parts, parts, strict=True):
                job_part["url"] = urls.get(part.export)
            report = js_bridge.run_driver(JS_RUNTIMES[runtime], {"options": options, "parts": job_parts}, tmp)
        results = {p["id"]: p for p in report["parts"]}
        version = f"{runtime} {report['version']}" + (f", chromium {report['browser']}" if web else "")
        version += f", node {report['node']}" if "node" in report else ""
        if report.get("errors"):
            print(f"{runtime}: {report['errors']}", flush=True)
    rows = []
    for part in parts:
        row = row_of(part, runtime, version)
        rows.append(row)
        found = results.get(part.id)
        if why is not None:
            row["error"] = why
            continue
        if found is None or found["error"]:
            row["error"] = f"does not load: {found['error']}" if found else "no result from the driver"
            continue
        for case, result in zip(part.cases, found["cases"], strict=True):
            if result["error"]:
                row["cases"].append(
                    {"case": case.name, "passed": False, "error": f"{version}: {result['error']}"}
                )
                continue
            actual = [js_bridge.decode(result["outputs"][s.name]) for s in part.spec.outputs]
            row["cases"].append(judge(part, case, actual))
            if case.timed:
                row["times_ms"] = result["times_ms"]
        print(summary(row), flush=True)
    return rows


def summary(row: dict[str, Any]) -> str:
    if "times_ms" in row:
        row["median_ms"] = statistics.median(row["times_ms"])
        row["runs"] = len(row["times_ms"])
    floats = [
        o["max_abs_diff"] for c in row["cases"] for o in c.get("outputs", {}).values() if "agreement" not in o
    ]
    tokens = [o["agreement"] for c in row["cases"] for o in c.get("outputs", {}).values() if "agreement" in o]
    row["max_abs_diff"] = max(floats) if floats else None
    row["token_agreement"] = min(tokens) if tokens else None
    failed = [c for c in row["cases"] if not c["passed"]]
    row["within_target"] = bool(row["cases"]) and not failed and row["error"] is None
    where = f"{row['model']} {row['part']} {row['variant']} {row['runtime']}".replace("  ", " ")
    if row["error"]:
        return f"{where}: {row['error']}"
    bits = [f"max abs diff {row['max_abs_diff']:.2g}" if row["max_abs_diff"] is not None else ""]
    bits += [f"tokens {row['token_agreement']:.1%}" if tokens else ""]
    bits += [f"{row['median_ms']:.3f} ms" if "median_ms" in row else ""]
    bits += [f"{c['case']}: {c.get('error') or 'outside 1e-4'}" for c in failed]
    return f"{where}: " + ", ".join(b for b in bits if b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="timed calls per runtime and part (at most)")
    parser.add_argument("--budget-s", type=float, default=5.0, help="timing stops after this many seconds")
    parser.add_argument("--only", default=",".join(NAMES), help="comma-separated pretrained names")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES))
    parser.add_argument(
        "--exports", default=None, help="export here (reused when present) instead of a temp dir"
    )
    args = parser.parse_args()
    if any(os.environ.get(k) != v for k, v in ONE_THREAD.items()):  # start again with them set
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **ONE_THREAD})
    args.runtimes = args.runtimes.split(",")
    torch.set_num_threads(THREADS)
    load_start = js_bridge.load()
    print(f"load average at the start: {load_start}", flush=True)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        root = Path(args.exports or tmp_dir)
        parts: list[Part] = []
        for name in args.only.split(","):
            folder = root / name.replace(":", "-")
            if not (folder / "aezoo-export.json").exists():
                aezoo.export(name, folder)
            for part in build_parts(name, folder):
                parts.append(part)
                rows.append(eager_row(part, args))
                summary(rows[-1])
                rows += python_rows(part, args)
        for runtime in (r for r in JS_RUNTIMES if r in args.runtimes):
            rows += js_rows(parts, runtime, args, Path(tmp_dir))
    load_end = js_bridge.load()
    print(f"load average at the end: {load_end}")
    print(table(rows, RUNTIMES))
    command = "python benchmarks/runtimes.py " + " ".join(sys.argv[1:])
    path = write_result(
        "runtimes", command.strip(), rows, threads=THREADS, target_atol=TARGET_ATOL, load_start=load_start,
        load_end=load_end, browser=js_bridge.browser_version(),
    )  # fmt: skip
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
