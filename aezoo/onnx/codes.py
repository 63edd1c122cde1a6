"""How a runtime draws a code for an exported decoder: the prior where the model has one, the
statistics of training codes for vector codes without one, how often each index was chosen for
codes of integer indices (a codebook's), and a plain "no" for feature maps."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from aezoo.model import AutoEncoder, ExportPart, GaussianPrior

#: Training examples whose codes give the statistics of a code without a prior.
CODE_STATS_EXAMPLES = 4096
QUANTILES = (0.01, 0.5, 0.99)


def describe_code(model: AutoEncoder, decoder: ExportPart, data: Any, where: str) -> ExportPart:
    """``decoder`` with its first input's ``sampling`` filled in (unless the part gave one).

    ``data`` is the training split (or any examples) the statistics come from, ``where`` says what
    they are; None when the export has no data (then the manifest says how to get codes instead).
    """
    spec = decoder.inputs[0]
    if spec.sampling is not None:
        return decoder
    with torch.no_grad():
        example = decoder.example(2)[0]
    if spec.classes is not None:
        sampling = _indices(model, spec.classes, data, where)
    elif isinstance(model, GaussianPrior):
        sampling = {
            "kind": "normal",
            "mean": 0.0,
            "std": 1.0,
            "note": "the model's prior N(0, I): draw every number independently from a standard normal",
        }
    elif example.ndim != 2:
        sampling = {
            "kind": "none",
            "note": "a feature map the encoder computes from an input; not meant to be drawn: encode an input",
        }
    elif data is None:
        sampling = {
            "kind": "unknown",
            "note": "exported without its training data: encode examples to get codes, or export from the run",
        }
    else:
        sampling = _statistics(model, data, where)
    inputs = [dataclasses.replace(spec, sampling=sampling), *decoder.inputs[1:]]
    return dataclasses.replace(decoder, inputs=inputs)


def _statistics(model: AutoEncoder, data: Any, where: str) -> dict[str, Any]:
    from aezoo.data import Split
    from aezoo.evaluation import flat_codes

    if isinstance(data, Split):
        codes = flat_codes(model, data, limit=CODE_STATS_EXAMPLES)
    else:  # prepared model inputs given by the caller
        with torch.no_grad():
            codes = model.encode(data)
        codes = (codes[0] if isinstance(codes, (tuple, list)) else codes).float().cpu()
    codes = codes.double()
    quantiles = torch.quantile(codes, torch.tensor(QUANTILES, dtype=torch.float64), dim=0)
    return {
        "kind": "empirical",
        "mean": [round(float(v), 6) for v in codes.mean(0)],
        "std": [round(float(v), 6) for v in codes.std(0, unbiased=len(codes) > 1)],
        "quantiles": {
            str(q): [round(float(v), 6) for v in row] for q, row in zip(QUANTILES, quantiles, strict=True)
        },
        "examples": len(codes),
        "note": f"per-dimension statistics of the codes of {len(codes):,} examples ({where}): draw each number "
        "from N(mean, std) of its dimension for plausible codes; they are not independent, so a drawn code is "
        "a rougher image than a real one",
    }


def _indices(model: AutoEncoder, classes: int, data: Any, where: str) -> dict[str, Any]:
    """Codes of integer indices in ``[0, classes)``: how often training examples chose each one,
    or uniform when the export has no data."""
    sampling: dict[str, Any] = {"kind": "indices", "classes": classes}
    if data is None:
        return {
            **sampling,
            "distribution": "uniform",
            "note": f"integer indices: draw each element uniformly from 0 to {classes - 1} (exported without "
            "its training data, so how often each index occurs is unknown)",
        }
    codes = _encoded_indices(model, data)
    counts = torch.bincount(codes.flatten(), minlength=classes)[:classes]
    total = int(counts.sum())
    return {
        **sampling,
        "distribution": "empirical",
        "probabilities": [round(float(c) / total, 8) for c in counts],
        "examples": len(codes),
        "note": f"integer indices from 0 to {classes - 1}: draw each element from `probabilities`, how often "
        f"each index occurs in the codes of {len(codes):,} examples ({where}); the elements of a real code are "
        "not independent, so a drawn code decodes to a rougher picture than an encoded one",
    }


def _encoded_indices(model: AutoEncoder, data: Any) -> torch.Tensor:
    """The integer codes of up to :data:`CODE_STATS_EXAMPLES` examples (a split or model inputs)."""
    from aezoo.data import Split, batch_limit, iterate, to_device

    def encode(inputs: Any) -> torch.Tensor:
        with torch.no_grad():
            codes = model.encode(inputs)
        return (codes[0] if isinstance(codes, (tuple, list)) else codes).long().cpu()

    if not isinstance(data, Split):
        return encode(data)
    model.eval()
    rows = []
    n = min(CODE_STATS_EXAMPLES, len(data))
    with torch.random.fork_rng():
        torch.manual_seed(2)
        for batch in iterate(data, batch_limit(data, 512), torch.arange(n)):
            rows.append(encode(model.prepare_batch(to_device(batch, model.device), train=False)[0]))
    return torch.cat(rows)
