"""ONNX: export+validation wall time, file sizes, and onnxruntime latency against PyTorch eager.

    python benchmarks/onnx_runtime.py [--threads 2] [--runs 50]

For every built-in architecture (default hyperparameters, untrained weights: latency and size do
not depend on the values): time `aezoo.export` (export, onnx.checker, onnxruntime validation at
batch 1, 7 and a real batch), compare each .onnx file's size with the safetensors weights, and time
encoder and decoder at batch 1 and 64 in onnxruntime and in PyTorch eager with the same thread
count, on the first examples of the architecture's default dataset (MNIST digits; for musicvae,
chorale windows, decoded by argmax) (median of --runs runs each, taken in 10 alternating blocks of --runs/10 after 5
warm-up calls).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

import aezoo
from aezoo.data import first_examples
from aezoo.plugins import load_data, registry

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import paired_median_ms, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--only", default=None, help="comma-separated architectures (default: all)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import onnxruntime as ort

    names = args.only.split(",") if args.only else aezoo.list_architectures()
    rows = []
    total_export = 0.0
    for name in names:
        torch.manual_seed(0)
        model = aezoo.create(name).eval()
        data = load_data(registry().architecture(name).default_dataset)
        with torch.no_grad():
            real, _ = model.prepare_batch(first_examples(data.test, 64), train=False)
        with tempfile.TemporaryDirectory() as tmp:
            weights = Path(tmp) / "model.safetensors"
            aezoo.save(model, weights)
            started = time.perf_counter()
            exported = aezoo.export(weights, Path(tmp) / "export", real_inputs=real[:8])
            export_s = time.perf_counter() - started
            total_export += export_s
            row = {"model": name, "export_and_validate_s": export_s, "weights_bytes": weights.stat().st_size}
            options = ort.SessionOptions()
            options.intra_op_num_threads = args.threads
            options.inter_op_num_threads = 1
            for part_name, part in model.export_parts().items():
                entry = exported.manifest["models"][part_name]
                row[f"{part_name}_onnx_bytes"] = entry["bytes"]
                session = ort.InferenceSession(
                    str(exported.path / entry["file"]), options, providers=["CPUExecutionProvider"]
                )
                for batch in (1, 64):
                    with torch.no_grad():
                        inputs = part.from_model_inputs(real[:batch])
                    feeds = {s.name: a.numpy() for s, a in zip(part.inputs, inputs, strict=True)}

                    def eager(part=part, inputs=inputs):
                        with torch.inference_mode():
                            part.module(*inputs)

                    def onnx(session=session, feeds=feeds):
                        session.run(None, feeds)

                    eager_ms, ort_ms = paired_median_ms(eager, onnx, args.runs)
                    row[f"{part_name}_b{batch}_eager_ms"] = eager_ms
                    row[f"{part_name}_b{batch}_ort_ms"] = ort_ms
                    row[f"{part_name}_b{batch}_ratio"] = ort_ms / eager_ms
                    print(
                        f"{name} {part_name} batch {batch}: eager {eager_ms:.3f} ms, onnxruntime {ort_ms:.3f} ms "
                        f"({ort_ms / eager_ms:.2f}x)",
                        flush=True,
                    )
        rows.append(row)
        print(f"{name}: export+validation {export_s:.1f}s", flush=True)
    print(f"all built-ins: export+validation {total_export:.1f}s")
    command = "python benchmarks/onnx_runtime.py " + " ".join(sys.argv[1:])
    path = write_result(
        "onnx_runtime", command.strip(), rows, threads=args.threads, total_export_s=total_export
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
