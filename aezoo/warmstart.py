"""Warm starts: a new run whose model begins from another model's weights (``--init-from``): a
run folder, a weights file or a pretrained name. The optimiser, schedule and step start fresh; the
weights must fit the new model exactly (same architecture, same tensor names and shapes), so
hyperparameters that only change lengths or losses (a sequence length, a loss weight) may
differ, while a different width is refused in one line.

The run records what it started from (``init_weights`` in its config.json: the name as given and a
digest of the weights), so a replay of that config.json whose source now holds other weights (a
run trained further, a file replaced) says so instead of silently starting elsewhere."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import torch

from aezoo.errors import AezooError
from aezoo.modelsize import meta_state


def initial_weights(spec: str, arch: Any, hparams: Any) -> dict[str, torch.Tensor]:
    """The state of the model ``spec`` names, checked against the ``arch`` model ``hparams`` build."""
    from pathlib import Path

    from aezoo import checkpoint, pretrained
    from aezoo.registry import is_pretrained_name

    try:
        path = Path(spec).expanduser()
        if not path.exists() and is_pretrained_name(spec):
            path = pretrained.weights_path(pretrained.entry(spec))
        source = checkpoint.load(path)
    except AezooError as exc:
        raise AezooError(f"--init-from {spec}: {exc}") from None
    if source.architecture != arch.name:
        raise AezooError(
            f"--init-from {spec} holds a {source.architecture!r} model; this run trains {arch.name!r}"
        )
    state = source.state_dict()
    expected = meta_state(arch, hparams)
    if expected is not None:
        wanted = {name: shape for name, (shape, _) in expected.tensors.items()}
        have = {name: tuple(value.shape) for name, value in state.items()}
        problems = [f"{n} is missing" for n in wanted if n not in have]
        problems += [f"{n} is not in this model" for n in have if n not in wanted]
        problems += [
            f"{n} is {list(have[n])} there, {list(wanted[n])} here"
            for n in wanted
            if n in have and have[n] != wanted[n]
        ]
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            raise AezooError(
                f"--init-from {spec}: its weights do not fit this {arch.name} model: {problems[0]}{more}; "
                "the sizes in --set must match the source's"
            )
    return state


def weights_digest(state: Mapping[str, torch.Tensor]) -> str:
    """The sha256 of a state's tensors (names, dtypes, shapes and values, in name order): the same
    weights give the same digest whatever file or folder holds them."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        digest.update(f"{name}\0{tensor.dtype}\0{list(tensor.shape)}\0".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_same_start(
    recorded: Mapping[str, Any] | None, spec: str, state: Mapping[str, torch.Tensor], source: str
) -> dict[str, str]:
    """What this run records of its start; a replay whose ``spec`` now holds weights other than
    the ones ``recorded`` (a run's ``init_weights``) is one line saying so."""
    found = {"from": spec, "sha256": weights_digest(state)}
    if recorded and recorded.get("from") == spec and recorded.get("sha256") not in (None, found["sha256"]):
        raise AezooError(
            f"{source} started from --init-from {spec}, whose weights were {recorded['sha256'][:12]}; "
            f"it now holds other weights ({found['sha256'][:12]}), so the replay would start elsewhere; "
            "give the recorded weights, or pass --init-from on the command line to start from these"
        )
    return found
