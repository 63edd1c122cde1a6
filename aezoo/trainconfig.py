"""The trainer's settings (validated like hyperparameters, recorded in every run's config) and
the device it trains on."""

from __future__ import annotations

import dataclasses

import torch

from aezoo.errors import AezooError
from aezoo.hparams import HParams, hparam
from aezoo.model import OPTIMIZERS


@dataclasses.dataclass(frozen=True)
class TrainConfig(HParams):
    """Trainer settings (validated like hyperparameters)."""

    architecture = "trainer"
    noun = "setting"

    epochs: int = hparam(10, "Passes over the training set.", min=1)
    max_steps: int | None = hparam(None, "Stop after this many optimisation steps.", min=1)
    batch_size: int = hparam(128, "Examples per step.", min=1)
    optimizer: str = hparam("adam", "Optimiser.", choices=OPTIMIZERS)
    lr: float = hparam(1e-3, "Learning rate.", min=1e-12, max=10.0)
    weight_decay: float = hparam(0.0, "Weight decay.", min=0.0)
    lr_schedule: str = hparam(
        "constant",
        "constant, or cosine: decay to 0 over the run (where the model sets no schedule).",
        choices=("constant", "cosine"),
    )
    grad_clip: float | None = hparam(None, "Clip the gradient norm to this value.", min=1e-12)
    seed: int = hparam(0, "Seed of initialisation, data order and noise.", min=0)
    device: str = hparam("auto", "cuda, mps, cpu, cuda:N, or auto (cuda, then mps, then cpu).")
    threads: int | None = hparam(None, "Torch CPU threads (default: torch's choice).", min=1)
    limit_train: int | None = hparam(None, "Use only the first N training examples.", min=1)
    limit_eval: int | None = hparam(None, "Use only the first N validation/test examples.", min=1)
    log_every: int = hparam(50, "Write a train record to metrics.jsonl every N steps.", min=1)
    save_every: int | None = hparam(
        None, "Also save a checkpoint every N steps (one is always saved at each epoch's end).", min=1
    )
    save_minutes: float = hparam(
        10.0, "Also save a checkpoint when this many minutes have passed since the last one.", min=0.01
    )
    evaluate_test: bool = hparam(True, "Evaluate the best model on the test split at the end.")
    stream: bool = hparam(
        False,
        "Read a folder dataset (images:PATH, midi:PATH) from disk a batch at a time instead of holding "
        "it in memory; the same batches in the same order as in memory.",
    )
    data_workers: int | None = hparam(
        None,
        "Processes that read the next batches of a streamed dataset while the model trains (0: none, "
        "the training process reads them; default: the CPU cores less one, at most 4).",
        min=0,
    )
    flush_denormal: bool = hparam(
        True,
        "On the CPU, treat denormal floats as zero while training (as TensorFlow does): gradients "
        "through hundreds of recurrent steps fall into that range and slow the backward pass up to 9x.",
    )
    precision: str = hparam(
        "fp32",
        "Arithmetic of the training steps: fp32, bf16 (autocast; cpu or cuda) or fp16 (autocast with a "
        "gradient scaler; cuda only). Validation and test always run in fp32.",
        choices=("fp32", "bf16", "fp16"),
    )
    compile: bool = hparam(
        False, "torch.compile the model's loss (its forward and objective) for the training steps."
    )
    compile_backend: str = hparam(
        "inductor", "The torch.compile backend with compile (inductor; aot_eager or eager to debug)."
    )

    init_from: str | None = hparam(
        None,
        "A run folder, weights file or pretrained name whose weights start the model (a warm start: "
        "same architecture and tensor shapes; the optimiser and the step count start fresh).",
    )
    select: str = hparam(
        "loss",
        "METRIC[:max]: the validation metric that chooses the best model (model.safetensors, which "
        "the test figures measure); lower is better unless :max.",
    )
    early_stop: str | None = hparam(
        None,
        "METRIC:PATIENCE[:max]: stop when the validation METRIC has not improved for PATIENCE epochs "
        "(lower is better unless :max).",
    )
    tensorboard: bool = hparam(False, "Write TensorBoard event files into RUN/tensorboard.")
    callbacks: tuple[str, ...] | None = hparam(
        None, "Opt-in trainer callbacks by name (`aezoo plugins` lists them)."
    )

    def watched_metrics(self) -> dict[str, str]:
        """The validation metrics these settings read, by the option that names each."""
        watched = {"--select": parse_select(self.select)[0]}
        if self.early_stop is not None:
            from aezoo.builtin_callbacks import parse_early_stop

            watched["--early-stop"] = parse_early_stop(self.early_stop)[0]
        return watched

    def validate(self) -> None:
        try:
            parse_select(self.select)
        except ValueError as exc:
            raise self.invalid("select", f"must be METRIC or METRIC:max ({exc})") from None
        if self.early_stop is not None:
            from aezoo.builtin_callbacks import parse_early_stop

            try:
                parse_early_stop(self.early_stop)
            except ValueError as exc:
                raise self.invalid("early_stop", f"must be METRIC:PATIENCE[:max] ({exc})") from None
        if self.device != "auto":
            try:
                torch.device(self.device)
            except RuntimeError:
                raise self.invalid(
                    "device", f"must be auto, cpu, cuda, cuda:N or mps, got {self.device!r}"
                ) from None


def parse_select(spec: str) -> tuple[str, str]:
    """``METRIC[:min|max]`` → (metric, mode); ``ValueError`` says what is wrong."""
    metric, _, mode = spec.partition(":")
    if not metric:
        raise ValueError("write a validation metric's name, e.g. loss or psnr_y:max")
    mode = mode or "min"
    if mode not in ("min", "max"):
        raise ValueError(f"the direction must be min or max, got {mode!r}")
    return metric, mode


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an unavailable explicit device is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise AezooError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type not in ("cpu", "cuda", "mps"):
        raise AezooError(f"--device {name!r}: aezoo runs on cpu, cuda or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise AezooError(f"--device {name}: CUDA is not available here; use --device cpu or auto")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise AezooError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise AezooError(f"--device {name}: MPS is not available here; use --device cpu or auto")
    return device
