"""Models outside PyTorch: export to ONNX, verify an export, serve it in the browser."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="export a run's encoder and decoder to ONNX, validated against onnxruntime",
        description="Write encoder.onnx, decoder.onnx and aezoo-export.json, each model validated "
        "against PyTorch in onnxruntime before anything is put in place.",
    )
    p.add_argument("run", help="run folder, .safetensors file or pretrained name")
    p.add_argument(
        "--out", help="export folder (default: RUN/onnx; ./NAME-onnx for a pretrained name or a file)"
    )
    p.add_argument(
        "--force", action="store_true", help="replace an earlier export in the --out folder (nothing else is)"
    )
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18, the lowest supported)")
    p.add_argument(
        "--atol",
        type=float,
        help="max abs difference from PyTorch allowed (default: each model's own; 1e-5 unless the "
        "architecture declares more, as a recurrent decoder's logits may need)",
    )
    p.add_argument("--dtype", default="fp32", help="fp32, or fp16 to add decoder.fp16.onnx")
    p.add_argument("--quantize", help="int8 to add decoder.int8.onnx (dynamic quantisation)")
    p.add_argument("--data-dir", help="dataset root for the real-data validation batch")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("verify", help="re-check an export: checksums, and parity with the run's weights")
    p.add_argument("export_dir")
    p.add_argument(
        "--runtime",
        default="onnxruntime",
        help="onnxruntime (default), reference (onnx's ReferenceEvaluator), openvino "
        "(pip install 'aezoo[openvino]') or tract (pip install 'aezoo[tract]')",
    )
    p.add_argument("--weights", help="run folder or .safetensors file (default: the one in the manifest)")
    p.add_argument("--atol", type=float, help="tolerance (default: the export's)")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "serve",
        help="open an export in the browser: decode codes live from a latent pad and sliders",
        description="Serve aezoo's page and an export on this machine (an export folder as it is; a run, "
        "file or pretrained name is exported into a temporary folder first). Needs `npm ci` in exports/web.",
    )
    p.add_argument("export", help="export folder, or a run folder, .safetensors file or pretrained name")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.set_defaults(func=cmd_serve)


def cmd_export(args: argparse.Namespace) -> int:
    from aezoo.onnx import export

    exported = export(
        args.run,
        args.out,
        opset=args.opset,
        atol=args.atol,
        dtype=args.dtype,
        quantize=args.quantize,
        data_dir=args.data_dir,
        echo=lambda line: print(line, file=sys.stderr),
        force=args.force,
    )
    for entry in exported.manifest["models"].values():
        shapes = ", ".join(
            f"{t['name']} {t['dtype']}{t['shape']}" for t in entry["inputs"] + entry["outputs"]
        )
        print(f"{exported.path / entry['file']}  ({entry['bytes'] / 1e6:.2f} MB; {shapes})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from aezoo.onnx import verify

    report = verify(args.export_dir, runtime=args.runtime, weights=args.weights, atol=args.atol)
    for line in report.lines:
        print(line)
    for problem in report.problems:
        print(f"PROBLEM: {problem}", file=sys.stderr)
    print("verified" if report.passed else f"{len(report.problems)} problem(s)")
    return 0 if report.passed else 1


def cmd_serve(args: argparse.Namespace) -> int:
    from aezoo.serve import serve

    serve(args.export, host=args.host, port=args.port, echo=lambda line: print(line, file=sys.stderr))
    return 0
