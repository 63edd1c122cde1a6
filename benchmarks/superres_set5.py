"""Super-resolution ×2 on Set5 after training on T91 for a fixed CPU budget.

    python benchmarks/superres_set5.py --train DIR --eval DIR [--steps 18000] [--threads 2]

Trains `superres` on luminance with an L1 loss and a cosine learning-rate schedule (exactly
`aezoo train superres --dataset images:TRAIN --set loss=l1 --batch-size 16 --lr-schedule cosine
--max-steps STEPS --epochs 1000`), then evaluates PSNR and SSIM on the Y channel (scale pixels of
border shaved) over every Set5 image, next to bicubic upscaling of the same 8-bit low-resolution
input: PIL's bicubic (a = -0.5, the baseline papers report) and torch's (a = -0.75). 18,000 steps
take 30 minutes on 2 quiet cores of the machine this was written on (10 steps/s).
"""

from __future__ import annotations

import argparse
import sys
import time

import torch
import torch.nn.functional as F

import aezoo
from aezoo.evaluation import evaluate_split
from aezoo.trainer import TrainConfig, load_data

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from common import write_result


def torch_bicubic_psnr(model, split) -> float:
    from aezoo_superres import color

    values = []
    for i in range(len(split)):
        low, high = model.prepare_batch(split.batch(torch.tensor([i])), train=False)
        up = F.interpolate(low, scale_factor=model.hp.scale, mode="bicubic", align_corners=False).clamp(0, 1)
        values.append(float(color.psnr(up, high, model.hp.scale)))
    return sum(values) / len(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True, help="folder of training images (T91)")
    parser.add_argument("--eval", required=True, help="folder of evaluation images (Set5)")
    parser.add_argument("--steps", type=int, default=18000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--scale", type=int, default=2)
    parser.add_argument("--out", default="runs/superres-t91-bench")
    parser.add_argument(
        "--evaluate-only", action="store_true", help="evaluate the run in --out without training"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrainConfig(
        epochs=1000, max_steps=args.steps, batch_size=16, lr=1e-3, lr_schedule="cosine", threads=args.threads
    )
    started = time.perf_counter()
    if args.evaluate_only:
        from aezoo.runs import Run

        run = Run.open(args.out)
        minutes = max(r.get("time_s", 0) for r in run.metrics("train")) / 60  # the run's own clock
    else:
        run = aezoo.train(
            "superres", f"images:{args.train}", hparams={"loss": "l1", "scale": args.scale}, config=config,
            out=args.out, progress=False,
        )  # fmt: skip
        minutes = (time.perf_counter() - started) / 60
    model = run.load_model()
    from aezoo.checkpoint import read_metadata

    best_step = int(read_metadata(run.model_path).get("aezoo.step", -1))
    trained_steps = max(r["step"] for r in run.metrics("train"))
    evaluation = load_data(f"images:{args.eval}").split("all")
    metrics = evaluate_split(model, evaluation)
    row = {
        "model": "superres", "scale": args.scale, "planned_steps": args.steps, "trained_steps": trained_steps,
        "best_step": best_step, "train_minutes": minutes,
        "psnr_y": metrics["psnr_y"], "ssim_y": metrics["ssim_y"],
        "bicubic_pil_psnr_y": metrics["bicubic_psnr_y"], "bicubic_pil_ssim_y": metrics["bicubic_ssim_y"],
        "bicubic_torch_psnr_y": torch_bicubic_psnr(model, evaluation), "run": str(run.path),
        "params": sum(p.numel() for p in model.parameters()),
    }  # fmt: skip
    print(
        f"Set5 x{args.scale}: model {row['psnr_y']:.2f} dB / SSIM {row['ssim_y']:.4f}; bicubic (PIL) "
        f"{row['bicubic_pil_psnr_y']:.2f} dB / {row['bicubic_pil_ssim_y']:.4f}; bicubic (torch) "
        f"{row['bicubic_torch_psnr_y']:.2f} dB; trained {minutes:.1f} min"
    )
    command = "python benchmarks/superres_set5.py " + " ".join(sys.argv[1:])
    print(f"wrote {write_result('superres_set5', command, [row], threads=args.threads)}")


if __name__ == "__main__":
    main()
