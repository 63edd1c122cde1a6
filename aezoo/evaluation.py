"""Numbers about a trained model: split metrics, the PCA baseline, likelihoods."""

from __future__ import annotations

import math
from typing import Any

import torch

from aezoo.data import DataSplits, Split, batch_limit, first_examples, iterate, to_device
from aezoo.errors import AezooError
from aezoo.model import AutoEncoder


def evaluate_split(
    model: AutoEncoder,
    split: Split,
    *,
    seed: int = 2,
    batch_size: int = 256,
    indices: torch.Tensor | None = None,
) -> dict[str, float]:
    """Mean of ``model.evaluate`` over ``split`` (weighted by batch size), or over its examples at
    ``indices``, in eval mode, with the global generator seeded so noise and crops are the same
    every time."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    device = model.device
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for batch in iterate(split, batch_limit(split, batch_size), indices):
            inputs, targets = model.prepare_batch(to_device(batch, device), train=False)
            n = len(next(iter(batch.values())))
            for key, value in model.evaluate(inputs, targets).items():
                sums[key] = sums.get(key, 0.0) + float(value) * n
            count += n
    return {k: v / max(count, 1) for k, v in sums.items()}


def reported_metrics(model: AutoEncoder, split: Split) -> list[str]:
    """The names of the metrics validation reports for ``model``, from its first two examples (the
    model is left in train mode and the random state as it was)."""
    if len(split) == 0:
        return []
    names = list(evaluate_split(model, split, batch_size=2, indices=torch.arange(min(2, len(split)))))
    model.train()
    return names


def flat_codes(
    model: AutoEncoder, split: Split, *, batch_size: int = 512, limit: int | None = None
) -> torch.Tensor:
    """``model.encode`` of every example of ``split``, one row each (codes must be vectors)."""
    rows = []
    n = len(split) if limit is None else min(limit, len(split))
    model.eval()
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(2)
        for batch in iterate(split, batch_limit(split, batch_size), torch.arange(n)):
            inputs, _ = model.prepare_batch(to_device(batch, model.device), train=False)
            code = model.encode(inputs)
            code = code[0] if isinstance(code, (tuple, list)) else code
            if code.ndim != 2 or not code.is_floating_point():
                raise AezooError(
                    f"{model.architecture}'s code is {not_a_vector(code)}; latent plots need models with "
                    "vector codes"
                )
            rows.append(code.float().cpu())
    return torch.cat(rows)


def not_a_vector(code: torch.Tensor) -> str:
    """What a code that is not one vector of numbers per example is, for error messages."""
    if not code.is_floating_point():
        shape = "×".join(map(str, code.shape[1:]))
        return f"{shape} integer indices (a codebook's), not a vector of numbers"
    return f"a {code.ndim - 1}-d feature map, not a vector"


def check_pca_baseline(model: AutoEncoder, split: Split) -> int:
    """The code size of ``model`` when the PCA baseline applies to it (a vector code, inputs and
    targets of one shape: checked on two examples of ``split``), else an :class:`AezooError`."""
    probe_inputs, probe_targets = model.prepare_batch(
        to_device(first_examples(split, 2), model.device), train=False
    )
    with torch.no_grad():
        probe = model.encode(probe_inputs)
    probe = probe[0] if isinstance(probe, (tuple, list)) else probe
    if probe.ndim != 2 or not probe.is_floating_point():
        raise AezooError(
            f"{model.architecture}'s code is {not_a_vector(probe)}; the PCA "
            "baseline compares models with vector codes"
        )
    if probe_targets.shape != probe_inputs.shape:
        raise AezooError(
            f"{model.architecture}'s inputs and targets differ in shape; the PCA baseline needs x → x"
        )
    return int(probe.shape[1])


def check_likelihood(model: AutoEncoder) -> None:
    """An :class:`AezooError` unless ``model`` can estimate its log-likelihood (``--nll``)."""
    from aezoo.model import LikelihoodModel

    if not isinstance(model, LikelihoodModel):
        raise AezooError(
            f"{model.architecture} has no likelihood to estimate: --nll needs a generative model "
            "with a prior and a decoder likelihood (see `aezoo list`)"
        )


def pca_baseline(
    model: AutoEncoder,
    data: DataSplits,
    split: str = "test",
    *,
    seed: int = 2,
    eps: float = 1e-4,
    ours: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Test MSE (and BCE) of the model against PCA with as many components as its code has.

    PCA is fitted on the training split's targets; it reconstructs the same inputs the model sees
    (noisy ones for a denoiser), projected and clipped to [0, 1], compared with the targets.
    Applies to models whose code is a vector and whose inputs and targets have one shape
    (:func:`check_pca_baseline`). ``ours``: the model's own metrics on ``split``, when measured.
    """
    target = data.split(split)
    components = check_pca_baseline(model, target)
    _, train = _flat_pairs(model, data.train, seed, limit=20000)
    inputs, targets = _flat_pairs(model, target, seed)
    if components > min(train.shape):
        raise AezooError(f"code size {components} exceeds what PCA can fit on {train.shape[0]} examples")
    mean = train.mean(0, keepdim=True)
    _, _, vh = torch.linalg.svd(train - mean, full_matrices=False)
    basis = vh[:components]
    recon = ((inputs - mean) @ basis.T @ basis + mean).clamp(0, 1)
    pca_mse = float(((recon - targets) ** 2).mean())
    p = recon.clamp(eps, 1 - eps)
    pca_bce = float(-(targets * p.log() + (1 - targets) * (1 - p).log()).mean())
    if ours is None:
        ours = evaluate_split(model, target, seed=seed)
    return {
        "components": components,
        "model_mse": ours.get("mse", math.nan),
        "model_bce": ours.get("bce", math.nan),
        "pca_mse": pca_mse,
        "pca_bce": pca_bce,
        "examples": len(target),
        "pca_fit_examples": train.shape[0],
    }


def _flat_pairs(
    model: AutoEncoder, split: Split, seed: int, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prepared (inputs, targets) of a split, flattened to rows, with evaluation's noise seed."""
    inputs, targets = [], []
    n = len(split) if limit is None else min(limit, len(split))
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for batch in iterate(split, batch_limit(split, 1024), torch.arange(n)):
            x, y = model.prepare_batch(to_device(batch, model.device), train=False)
            inputs.append(x.flatten(1).double().cpu())
            targets.append(y.flatten(1).double().cpu())
    return torch.cat(inputs), torch.cat(targets)


def log_likelihood(
    model: AutoEncoder, split: Split, samples: int, *, batch_size: int = 64, seed: int = 0
) -> dict[str, float]:
    """Importance-sampled negative log-likelihood in nats per example (models that implement
    ``log_likelihood(inputs, targets, samples)``)."""
    check_likelihood(model)
    model.eval()
    total, count = 0.0, 0
    with torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(seed)
        for batch in iterate(split, batch_limit(split, batch_size)):
            inputs, targets = model.prepare_batch(to_device(batch, model.device), train=False)
            total += float(model.log_likelihood(inputs, targets, samples).sum())
            count += len(inputs)
    return {"nll": -total / count, "samples": samples, "examples": count}


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between rows ``a`` and ``b`` at fractions ``t`` (linear when the
    two are parallel)."""
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1, 1))
    t = t[:, None]
    if float(omega.abs()) < 1e-6:
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


@torch.no_grad()
def interpolate(
    model: AutoEncoder, batch: dict[str, torch.Tensor], steps: int, *, spherical: bool = True
) -> Any:
    """Decode ``steps`` codes from the first example's code to the second's (ends included)."""
    model.eval()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        inputs, _ = model.prepare_batch(to_device(batch, model.device), train=False)
    code = model.encode(inputs)
    if not isinstance(code, torch.Tensor):
        raise AezooError(f"{model.architecture}'s code is not a single tensor; it cannot be interpolated")
    if not code.is_floating_point():
        raise AezooError(
            f"{model.architecture}'s codes are integer indices (chosen from a codebook); there is no path "
            "between two of them to decode"
        )
    flat = code.flatten(1)
    t = torch.linspace(0, 1, steps, device=flat.device)
    path = slerp(flat[0], flat[1], t) if spherical else (1 - t[:, None]) * flat[0] + t[:, None] * flat[1]
    return model.decode(path.view(steps, *code.shape[1:]))
