"""Using a trained model: reconstruct, evaluate, interpolate, sample, plot."""

from __future__ import annotations

import argparse
import math
from typing import Any

from aezoo.commands.output import MODEL_HELP, open_model
from aezoo.errors import AezooError

#: ``aezoo sample -n``: at most this many, drawn this many at a time.
SAMPLE_LIMIT = 10_000
SAMPLE_BATCH = 256


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "reconstruct", help="a picture of a run's model at work on test examples or your images"
    )
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument("images", nargs="*", help="image files (default: examples of the dataset's --split)")
    p.add_argument(
        "-o",
        "--out",
        help="output PNG (default: RUN/reconstructions-SPLIT.png; ./NAME-… for a pretrained model)",
    )
    p.add_argument(
        "-n", type=int, help="examples from the dataset (default and most: what one picture shows)"
    )
    p.add_argument("--split", default="test")
    p.add_argument("--dataset", help="examples from another dataset (default: the run's), e.g. images:PATH")
    p.add_argument("--invert", action="store_true", help="invert your images (dark ink on white paper)")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("evaluate", help="metrics of a run's model on a split; PCA baseline; likelihood")
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument(
        "--split", default="test", help="train, val, test, or a dataset's extra split (default test)"
    )
    p.add_argument("--dataset", help="evaluate on another dataset (default: the run's)")
    p.add_argument(
        "--baseline", choices=["pca"], help="compare with PCA using as many components as the code"
    )
    p.add_argument("--nll", action="store_true", help="importance-sampled negative log-likelihood (nats)")
    p.add_argument("--samples", type=int, help="importance samples per example for --nll (default 1000)")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N examples")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto")
    p.add_argument("--data-dir")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("interpolate", help="decode the path between the codes of two of your files")
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument("start", help="a file the model reads (an image for image models)")
    p.add_argument("end")
    p.add_argument("--steps", type=int, default=8, help="points on the path, ends included (default 8)")
    p.add_argument("--linear", action="store_true", help="a straight line instead of spherical (slerp)")
    p.add_argument("--invert", action="store_true", help="invert images (dark ink on white paper)")
    p.add_argument("-o", "--out", help="output file stem (default: RUN/interpolation)")
    p.set_defaults(func=cmd_interpolate)

    p = sub.add_parser("sample", help="decode samples from a generative model's prior")
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument("-n", type=int, default=64)
    p.add_argument("--temperature", type=float, default=1.0, help="scale of the prior's noise (default 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", help="output file stem (default: RUN/samples)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("plot", help="pictures: training curves, latent scatter, decoded manifold")
    p.add_argument("what", choices=["curves", "latent", "manifold"])
    p.add_argument("run", help=MODEL_HELP)
    p.add_argument("-o", "--out", help="output PNG (default: RUN/WHAT.png)")
    p.add_argument("--split", default="test", help="split whose codes are plotted (latent)")
    p.add_argument("--dims", help="manifold: two code dimensions, e.g. 0,1 (default: the principal plane)")
    p.add_argument("--steps", type=int, default=20, help="manifold: images per side (default 20)")
    p.add_argument("--data-dir")
    p.set_defaults(func=cmd_plot)


def source_data(source: Any, data_dir: str | None, dataset: str | None = None) -> Any:
    from aezoo.plugins import load_data

    return load_data(dataset or source.dataset, data_dir=data_dir, seed=0)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    import torch

    from aezoo.data import batch_limit, iterate, to_device
    from aezoo.image import save_picture, side_by_side

    source = open_model(args.run)
    model = source.model
    if args.images:
        batches = [model.read_examples(args.images, invert=args.invert)]
        label = "yours"
    else:
        limit = model.pictured_examples
        n = limit if args.n is None else args.n
        if not 1 <= n <= limit:
            raise AezooError(
                f"-n must be between 1 and {limit} (the examples a {model.architecture} picture shows), "
                f"got {n}"
            )
        split = source_data(source, args.data_dir, args.dataset).split(args.split)
        count = min(n, len(split))
        batches = list(iterate(split, batch_limit(split, count), torch.arange(count)))
        label = args.split
    drawn: dict[str, list[torch.Tensor]] = {}
    outputs = None
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        model.eval()
        for batch in batches:
            inputs, targets = model.prepare_batch(to_device(batch, model.device), train=False)
            for stem, image in model.pictures(inputs, targets).items():
                drawn.setdefault(stem, []).append(image)
            if args.images and model.writes_reconstructions:
                outputs = model(inputs)
    if not drawn:
        raise AezooError(f"{model.architecture} draws no pictures")
    for stem, images in drawn.items():
        image = images[0] if len(images) == 1 else side_by_side(images)
        if args.out and len(drawn) == 1:
            path = args.out
        elif args.out:
            path = f"{args.out.removesuffix('.png')}-{stem}.png"
        else:
            path = source.output(f"{stem}-{label}.png")
        print(save_picture(image, path))
    if outputs is not None:  # your files' reconstructions as files too (MIDI for melodies)
        files_stem = args.out.removesuffix(".png") if args.out else source.output(f"reconstructions-{label}")
        for path in model.save_outputs(outputs, files_stem):
            print(path)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import json

    from aezoo import evaluation

    if args.samples is not None and not args.nll:
        raise AezooError("--samples sets the importance samples of --nll: add --nll, or drop --samples")
    samples = 1000 if args.samples is None else args.samples
    if samples < 1:
        raise AezooError(f"--samples must be at least 1, got {samples}")
    source = open_model(args.run, args.device)
    model = source.model
    data = source_data(source, args.data_dir, args.dataset)
    if args.limit is not None:
        if args.limit < 1:
            raise AezooError(f"--limit must be at least 1, got {args.limit}")
        data = data.limited(args.limit, args.limit)
    split = data.split(args.split)
    if args.nll:  # what cannot be asked of this model is said before minutes of evaluating
        evaluation.check_likelihood(model)
    if args.baseline == "pca":
        evaluation.check_pca_baseline(model, split)
    seed = source.seed + 2
    report: dict[str, Any] = {
        "model": args.run,
        "dataset": data.name,
        "split": args.split,
        "examples": len(split),
        "device": str(model.device),
    }
    report["metrics"] = evaluation.evaluate_split(model, split, seed=seed)
    if args.baseline == "pca":
        report["pca"] = evaluation.pca_baseline(model, data, args.split, seed=seed, ours=report["metrics"])
    if args.nll:
        report["nll"] = evaluation.log_likelihood(model, split, samples)
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{model.architecture} on {data.name} {args.split} ({len(split)} examples)")
    for key, value in report["metrics"].items():
        print(f"  {key:<24} {value:.6g}")
    if "pca" in report:
        pca = report["pca"]
        print(
            f"  vs PCA with {pca['components']} components (fitted on {pca['pca_fit_examples']} training examples):"
        )
        print(f"    {'':<12} {'model':>10} {'PCA':>10}")
        print(f"    {'MSE':<12} {pca['model_mse']:>10.5f} {pca['pca_mse']:>10.5f}")
        print(f"    {'BCE':<12} {pca['model_bce']:>10.5f} {pca['pca_bce']:>10.5f}")
    if "nll" in report:
        print(f"  NLL {report['nll']['nll']:.2f} nats ({samples} importance samples per example)")
    return 0


def cmd_interpolate(args: argparse.Namespace) -> int:
    from aezoo.evaluation import interpolate

    source = open_model(args.run)
    model = source.model
    if not 2 <= args.steps <= 256:
        raise AezooError(f"--steps must be between 2 and 256, got {args.steps}")
    batch = model.read_examples([args.start, args.end], invert=args.invert)
    outputs = interpolate(model, batch, args.steps, spherical=not args.linear)
    for path in model.save_outputs(outputs, source.output("interpolation", args.out)):
        print(path)
    return 0


def cmd_sample(args: argparse.Namespace) -> int:
    import torch

    source = open_model(args.run)
    model = source.model
    if not 1 <= args.n <= SAMPLE_LIMIT:
        raise AezooError(f"-n must be between 1 and {SAMPLE_LIMIT:,}, got {args.n}")
    if not (args.temperature > 0 and math.isfinite(args.temperature)):
        raise AezooError(f"--temperature must be a positive number, got {args.temperature}")
    generator = torch.Generator(device=model.device).manual_seed(args.seed)
    outputs = torch.cat(  # decoded in batches: the decoder's activations stay small
        [
            model.sample(min(SAMPLE_BATCH, args.n - start), temperature=args.temperature, generator=generator)
            for start in range(0, args.n, SAMPLE_BATCH)
        ]
    )
    for path in model.save_outputs(outputs, source.output("samples", args.out)):
        print(path)
    return 0


def cmd_plot(args: argparse.Namespace) -> int:
    from aezoo import plots

    if args.what == "curves":
        from aezoo.runs import Run
        from aezoo.sources import refuse_pretrained

        refuse_pretrained(args.run, "training curves come from a run's metrics.jsonl")
        run = Run.open(args.run)
        print(plots.curves(run, args.out))
        return 0
    source = open_model(args.run)
    model = source.model
    out = source.output(f"{args.what}.png", args.out)
    if args.what == "latent":
        print(plots.latent(model, source_data(source, args.data_dir), out, split=args.split))
        return 0
    dims = None
    if args.dims:
        try:
            a, b = (int(d) for d in args.dims.split(","))
        except ValueError:
            raise AezooError(f"--dims takes two dimensions like 0,1, got {args.dims!r}") from None
        dims = (a, b)
    if not 2 <= args.steps <= 64:
        raise AezooError(f"--steps must be between 2 and 64, got {args.steps}")
    from aezoo.model import GaussianPrior

    prior_plane = isinstance(model, GaussianPrior) and (dims is not None or model.latent_size == 2)
    needs_data = not prior_plane
    data = source_data(source, args.data_dir) if needs_data else None
    print(plots.manifold(model, data, out, steps=args.steps, dims=dims))
    return 0
