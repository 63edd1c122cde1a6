"""Pictures of a run: training curves, the latent space, the decoded manifold (matplotlib)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from aezoo.data import DataSplits, batch_limit, iterate
from aezoo.errors import AezooError
from aezoo.evaluation import flat_codes
from aezoo.fileio import atomic_path
from aezoo.model import AutoEncoder, GaussianPrior
from aezoo.runs import Run


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)
    return path


def curves(run: Run, path: str | os.PathLike[str] | None = None) -> Path:
    """Training and validation curves of every metric in ``metrics.jsonl``, against steps."""
    train, val = run.metrics("train"), run.metrics("val")
    if not train and not val:
        raise AezooError(f"{run.path} has no metrics yet; train it first")
    skip = {"split", "epoch", "step", "lr", "time_s"}
    keys = sorted({k for r in train + val for k in r if k not in skip}, key=lambda k: (k != "loss", k))
    plt = _pyplot()
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, key in zip(axes.flat, keys, strict=False):
        for records, label, style in ((train, "train", "-"), (val, "validation", "o-")):
            points = [(r["step"], r[key]) for r in records if key in r]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, style, label=label, markersize=3)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(keys) :]:
        ax.axis("off")
    config = run.config
    fig.suptitle(f"{config.get('architecture')} on {config.get('dataset')} — {run.name}")
    return _save(fig, path or run.path / "curves.png")


def _labels(data_split: Any, n: int) -> torch.Tensor | None:
    batches = [b.get("label") for b in iterate(data_split, batch_limit(data_split, 4096), torch.arange(n))]
    return None if any(b is None for b in batches) else torch.cat(batches)


def _plane(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, str]:
    """A 2-d basis for the codes: the axes themselves for 2-d codes, else the principal plane."""
    if codes.shape[1] == 2:
        return torch.zeros(1, 2), torch.eye(2), "z"
    mean = codes.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(codes - mean, full_matrices=False)
    return mean, vh[:2].T, "principal component"


def latent(
    model: AutoEncoder,
    data: DataSplits,
    path: str | os.PathLike[str],
    split: str = "test",
    limit: int = 10000,
) -> Path:
    """Codes of ``split`` scattered in 2-d (directly, or on their principal plane), coloured by
    label; models with a N(0, I) prior get the prior's 1σ, 2σ, 3σ contours drawn over them."""
    target = data.split(split)
    codes = flat_codes(model, target, limit=limit)
    if codes.shape[1] < 2:
        raise AezooError(f"{model.architecture}'s code has {codes.shape[1]} dimension; a scatter needs 2")
    _, basis, axis_name = _plane(codes)
    xy = codes @ basis  # a projection through the origin keeps N(0, I) standard in the plane
    labels = _labels(target, len(codes))
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    scatter = ax.scatter(
        xy[:, 0], xy[:, 1], c=labels if labels is not None else "tab:blue", cmap="tab10", s=3, alpha=0.6
    )
    if labels is not None:
        classes = data.info.get("classes")
        bar = fig.colorbar(scatter, ax=ax, ticks=range(10))
        if classes:
            bar.ax.set_yticklabels(classes[:10], fontsize=7)
    if isinstance(model, GaussianPrior):
        angle = torch.linspace(0, 2 * torch.pi, 200)
        for radius in (1, 2, 3):
            ax.plot(radius * angle.cos(), radius * angle.sin(), "k--", lw=0.8, alpha=0.7)
        ax.plot([], [], "k--", lw=0.8, label="prior N(0, I): 1σ, 2σ, 3σ")
        mean, std = codes.mean(0), codes.std(0)
        ax.set_title(
            f"{model.architecture}: codes of {len(codes)} {split} examples\n"
            f"per-dimension mean {mean.abs().mean():.2f} (prior 0), std {std.mean():.2f} (prior 1)"
        )
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax.set_title(f"{model.architecture}: codes of {len(codes)} {split} examples")
    ax.set_xlabel(f"{axis_name} 1")
    ax.set_ylabel(f"{axis_name} 2")
    ax.set_aspect("equal", adjustable="datalim")
    return _save(fig, path)


@torch.no_grad()
def manifold(
    model: AutoEncoder,
    data: DataSplits | None,
    path: str | os.PathLike[str],
    *,
    steps: int = 20,
    dims: tuple[int, int] | None = None,
    span: float = 0.95,
) -> Path:
    """Decoded images over a 2-d plane of the code space, as one grid.

    Models with a N(0, I) prior: the plane spans the prior's quantiles ``(1-span)/2 … (1+span)/2``
    along two code dimensions (the only two for 2-d codes, ``dims`` if given, else the principal
    plane of the test codes, others at their mean). Other models: the principal plane of the test
    codes, ±2 standard deviations.
    """
    from torchvision.utils import make_grid

    from aezoo.image import save_picture

    quantiles = torch.linspace((1 - span) / 2, (1 + span) / 2, steps)
    normal = torch.distributions.Normal(0.0, 1.0)
    prior = isinstance(model, GaussianPrior)
    size = model.latent_size if prior else None
    if dims is not None and not prior:
        raise AezooError(
            f"--dims picks two dimensions of a prior; {model.architecture} has none, so its manifold "
            "spans the principal plane of its codes: drop --dims"
        )
    if prior and (size == 2 or dims is not None):
        if dims is not None and not (min(dims) >= 0 and max(dims) < size and dims[0] != dims[1]):
            raise AezooError(f"--dims must be two different dimensions between 0 and {size - 1}, got {dims}")
        a, b = dims or (0, 1)
        grid = normal.icdf(quantiles)
        codes = torch.zeros(steps * steps, size)
        codes[:, a] = grid.repeat(steps)
        codes[:, b] = grid.flip(0).repeat_interleave(steps)
    else:
        if data is None:
            raise AezooError("the principal plane needs the run's dataset")
        sample = flat_codes(model, data.split("test"), limit=5000)
        mean, basis, _ = _plane(sample)
        centred = (sample - mean) @ basis
        scale = centred.std(0)
        offsets = normal.icdf(quantiles) if prior else torch.linspace(-2, 2, steps)
        u = offsets.repeat(steps) * scale[0]
        v = offsets.flip(0).repeat_interleave(steps) * scale[1]
        codes = mean + u[:, None] * basis[:, 0] + v[:, None] * basis[:, 1]
    model.eval()
    images = model.decode(codes.to(model.device))
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise AezooError(f"{model.architecture} does not decode to images; a manifold needs an image decoder")
    return save_picture(make_grid(images.float().cpu(), nrow=steps, padding=1, pad_value=1.0), path)
