"""``aezoo train``: a new run, a recipe, or ``--resume``."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from aezoo.errors import AezooError


def add_parsers(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train an architecture into a run folder",
        description="Train NAME into runs/NAME-TIMESTAMP (or --out), train a recipe with --config (options "
        "given here override it), or continue a run with --resume.",
    )
    p.add_argument("name", nargs="?", help="architecture (see `aezoo list`); optional with --config")
    p.add_argument(
        "--config",
        metavar="FILE",
        help="a recipe (.toml, or .json: a run's config.json repeats that run) to train",
    )
    p.add_argument(
        "--allow-other-data",
        action="store_true",
        help="with --config: train even if the dataset differs from the one the recipe recorded",
    )
    p.add_argument("--dataset", help="dataset name, or NAME:ARGUMENT (default: the architecture's)")
    p.add_argument("--data-dir", help="dataset root (default: $AEZOO_DATA, else a per-user cache)")
    p.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a hyperparameter (repeatable); `aezoo info NAME` lists them",
    )
    p.add_argument("--out", help="run folder to create (default: runs/NAME-TIMESTAMP)")
    p.add_argument("--resume", metavar="RUN", help="continue this run from its last checkpoint")
    p.add_argument("--epochs", type=int)
    p.add_argument("--max-steps", type=int)
    p.add_argument(
        "--batch-size",
        type=int,
        help="examples per step; with several processes the global batch, split among them",
    )
    p.add_argument("--lr", type=float, help="learning rate")
    p.add_argument("--optimizer")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--grad-clip", type=float, help="clip gradient norm to this value")
    p.add_argument("--lr-schedule", help="constant (default) or cosine (decays to 0 over the run)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--limit-train", type=int, metavar="N", help="use only N training examples")
    p.add_argument("--limit-eval", type=int, metavar="N", help="use only N val/test examples")
    p.add_argument("--no-test", action="store_true", help="skip the final test-set evaluation")
    p.add_argument(
        "--stream",
        action="store_true",
        default=None,
        help="read a folder dataset (images:PATH, midi:PATH) from disk a batch at a time, not all into memory",
    )
    p.add_argument(
        "--data-workers",
        type=int,
        metavar="N",
        help="with --stream: processes reading the next batches (0: none; default: CPU cores less one, at most 4)",
    )
    p.add_argument(
        "--save-every", type=int, metavar="N", help="also save a checkpoint every N steps (and every epoch)"
    )
    p.add_argument(
        "--save-minutes",
        type=float,
        metavar="M",
        help="also save a checkpoint when M minutes have passed since the last (default 10)",
    )
    p.add_argument(
        "--init-from",
        metavar="MODEL",
        help="start from this run's, file's or pretrained model's weights (same sizes; a fresh optimiser)",
    )
    p.add_argument(
        "--select",
        metavar="METRIC[:max]",
        help="the validation metric that chooses the best model (default loss; psnr_y:max)",
    )
    p.add_argument(
        "--early-stop",
        metavar="METRIC:PATIENCE",
        help="stop when val METRIC has not improved for PATIENCE epochs (loss:3; psnr_y:5:max)",
    )
    p.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="write TensorBoard event files into RUN/tensorboard (pip install 'aezoo[tensorboard]')",
    )
    p.add_argument(
        "--callback",
        dest="callbacks",
        action="append",
        metavar="NAME",
        help="turn on a plugin's trainer callback (repeatable; `aezoo plugins` lists them)",
    )
    p.add_argument(
        "--precision",
        metavar="P",
        help="fp32 (default), bf16 (autocast; cpu or cuda) or fp16 (autocast and a gradient scaler; "
        "cuda); validation and test run in fp32",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        default=None,
        help="torch.compile the model's loss for the training steps (minutes to compile on a CPU)",
    )
    p.add_argument(
        "--compile-backend",
        metavar="NAME",
        help="with --compile: torch.compile's backend (default inductor; aot_eager or eager to debug)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train on N processes of this machine (data-parallel, one GPU each or the CPU; torchrun "
        "is started for you); for several machines run `torchrun ... -m aezoo train` (README)",
    )
    p.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    training_job = _prepare(args)  # a mistake in the command is one line before any process starts
    if args.nproc is not None and args.nproc != 1:
        from aezoo.launch import launch, without_nproc

        return launch(args.nproc, without_nproc(args.argv))
    from aezoo import distributed

    path = training_job()
    if distributed.current().is_writer:
        print(path)
    return 0


def _prepare(args: argparse.Namespace) -> Callable[[], str]:
    """Check everything the command says that needs no data (the names, the recipe, the values,
    the run to resume) and return the training to run, which returns the run's folder."""
    from aezoo import trainer, training

    progress = False if args.no_progress else None
    settings: dict[str, Any] = {
        "epochs": args.epochs,
        "max_steps": args.max_steps,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "weight_decay": args.weight_decay,
        "grad_clip": args.grad_clip,
        "lr_schedule": args.lr_schedule,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        "limit_train": args.limit_train,
        "limit_eval": args.limit_eval,
        "save_every": args.save_every,
        "init_from": args.init_from,
        "select": args.select,
        "early_stop": args.early_stop,
        "tensorboard": args.tensorboard,
        "callbacks": tuple(args.callbacks) if args.callbacks else None,
        "save_minutes": args.save_minutes,
        "stream": args.stream,
        "data_workers": args.data_workers,
        "precision": args.precision,
        "compile": args.compile,
        "compile_backend": args.compile_backend,
    }
    if args.resume:
        given = {f"--{k.replace('_', '-')}" for k, v in settings.items() if v is not None}
        given -= {"--epochs", "--max-steps", "--lr", "--stream", "--data-workers"}
        given |= {flag for flag, value in (("--dataset", args.dataset), ("--set", args.assignments),
                                             ("--out", args.out), ("--no-test", args.no_test),
                                             ("--config", args.config)) if value}  # fmt: skip
        if given:
            raise AezooError(
                f"--resume continues a run with its own settings; drop {', '.join(sorted(given))} "
                "(only --epochs and --max-steps may extend it, --lr change its learning rate, and "
                "--stream and --data-workers change how its data is read)"
            )
        from aezoo.sources import refuse_pretrained

        refuse_pretrained(args.resume, "it has no training history to resume (train its recipe instead)")
        from aezoo.runs import Run

        saved = Run.open(args.resume).config.get("architecture")  # not a run: said before anything starts
        if args.name and saved != args.name:
            raise AezooError(f"{args.resume} is a {saved!r} run, not {args.name!r}")

        def resume() -> str:
            training.resume(
                args.resume,
                epochs=args.epochs,
                max_steps=args.max_steps,
                lr=args.lr,
                stream=args.stream,
                data_workers=args.data_workers,
                data_dir=args.data_dir,
                progress=progress,
            )
            return str(args.resume)

        return resume
    if args.allow_other_data and not args.config:
        raise AezooError("--allow-other-data goes with --config (a recipe that recorded its data)")
    from aezoo.hparams import parse_assignments
    from aezoo.recipes import read_recipe, recipe_from_dict

    recipe = read_recipe(args.config) if args.config else None
    if recipe is None:
        if not args.name:
            raise AezooError(
                "name an architecture to train (see `aezoo list`), --config FILE, or --resume RUN"
            )
        recipe = recipe_from_dict({"architecture": args.name}, "the command line")
    elif args.name and args.name != recipe.architecture:
        raise AezooError(
            f"{args.config} trains {recipe.architecture!r}, not {args.name!r}; drop the name or the --config"
        )
    arch, recorded_hparams, recorded_trainer = recipe.resolve()
    values = {**recorded_hparams.to_dict(), **parse_assignments(arch.hparams, args.assignments)}
    hparams = arch.make_hparams(**values) if args.assignments else recorded_hparams
    settings = {key: value for key, value in settings.items() if value is not None}
    if args.no_test:
        settings["evaluate_test"] = False
    config = trainer.TrainConfig.from_dict({**recorded_trainer.to_dict(), **settings})
    dataset = args.dataset or recipe.dataset
    expect = None
    if args.config and not args.allow_other_data and (not args.dataset or args.dataset == recipe.dataset):
        expect = recipe.provenance.get("dataset_info")
    # a replay starts from the weights its run started from, unless --init-from names others
    expect_init = recipe.provenance.get("init_weights") if args.config and not args.init_from else None

    def train() -> str:
        run = training.train(
            arch.name,
            dataset,
            hparams=hparams,
            config=config,
            out=args.out,
            data_dir=args.data_dir,
            progress=progress,
            expect_data=expect,
            expect_init=expect_init,
            recipe_source=str(args.config),
        )
        return str(run.path)

    return train
