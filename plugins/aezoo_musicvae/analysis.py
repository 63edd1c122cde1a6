"""What a trained MusicVAE does with its latent code: how much its decoder uses z, and whether
the melodies decoded along a path between two codes stay melodies of the data's kind.

- :func:`z_usage`: per-note accuracy of each melody decoded from its own z (``z_mean``) against
  decoded from the z of another melody of the same set. A decoder that ignores z (one that has
  learned only what melodies look like in general) scores the same both ways: the gap is 0.
- :func:`interpolation_in_kind`: for pairs of melodies, the argmax melodies decoded along the
  spherical path between their codes; an intermediate melody is *in kind* when its note density
  (onsets per bar) and its pitch range lie between those of the two ends (with a little slack).
- :func:`prior_in_kind`: melodies drawn from the prior (what ``aezoo sample`` gives) against
  held-out melodies: the share whose density and pitch range lie within the held-out ones' usual
  range. A model that encodes more in z reconstructs better but may sample worse: this is the
  other side of that trade.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from aezoo.evaluation import slerp
from aezoo_musicvae.model import MusicVAE, note_accuracy
from aezoo_musicvae.representation import FIRST_NOTE_CLASS, MIN_PITCH, STEPS_PER_BAR


@torch.no_grad()
def _decode(model: MusicVAE, z: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model.decode(z[i : i + batch_size]) for i in range(0, len(z), batch_size)])


@torch.no_grad()
def _encode(model: MusicVAE, tokens: torch.Tensor, batch_size: int) -> torch.Tensor:
    return torch.cat([model.encode(tokens[i : i + batch_size]) for i in range(0, len(tokens), batch_size)])


def other_melody(n: int, seed: int = 0) -> torch.Tensor:
    """For each of ``n`` melodies (``n`` ≥ 2) the index of another one: a seeded shuffle, each
    melody paired with the next in it (no melody is paired with itself)."""
    if n < 2:
        raise ValueError("z usage needs at least 2 melodies")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    other = torch.empty(n, dtype=torch.long)
    other[order] = order.roll(-1)
    return other


@torch.no_grad()
def z_usage(
    model: MusicVAE, tokens: torch.Tensor, *, batch_size: int = 256, seed: int = 0
) -> dict[str, float]:
    """Sampled (argmax, fed back) per-note accuracy of ``tokens`` decoded from their own ``z_mean``
    (``own_note_accuracy``) and from another melody's (``other_note_accuracy``), and the gap."""
    model.eval()
    tokens = tokens.long().to(model.device)
    z = _encode(model, tokens, batch_size)
    own = note_accuracy(_decode(model, z, batch_size), tokens).mean().item()
    swapped = z[other_melody(len(tokens), seed).to(z.device)]
    other = note_accuracy(_decode(model, swapped, batch_size), tokens).mean().item()
    return {"own_note_accuracy": own, "other_note_accuracy": other, "z_gap": own - other}


@dataclass(frozen=True)
class MelodyShape:
    """What "of the data's kind" compares: onsets per bar and the lowest and highest pitch."""

    density: float
    low: int | None
    high: int | None


def melody_shape(events: torch.Tensor) -> MelodyShape:
    """The shape of one class sequence ``[steps]``."""
    onsets = events[events >= FIRST_NOTE_CLASS] - FIRST_NOTE_CLASS + MIN_PITCH
    density = len(onsets) / (len(events) / STEPS_PER_BAR)
    if not len(onsets):
        return MelodyShape(density, None, None)
    return MelodyShape(density, int(onsets.min()), int(onsets.max()))


def in_kind(
    shape: MelodyShape, a: MelodyShape, b: MelodyShape, *, density_slack: float, pitch_slack: int
) -> tuple[bool, bool]:
    """Whether ``shape``'s density, and its pitch range, lie between those of ``a`` and ``b``."""
    low_d, high_d = sorted((a.density, b.density))
    density_ok = low_d - density_slack <= shape.density <= high_d + density_slack and shape.low is not None
    lows = [s.low for s in (a, b) if s.low is not None]
    highs = [s.high for s in (a, b) if s.high is not None]
    pitch_ok = (
        shape.low is not None
        and bool(lows)
        and min(lows) - pitch_slack <= shape.low
        and shape.high is not None
        and shape.high <= max(highs) + pitch_slack
    )
    return density_ok, pitch_ok


@torch.no_grad()
def interpolation_paths(model: MusicVAE, a: torch.Tensor, b: torch.Tensor, points: int) -> torch.Tensor:
    """The argmax melodies at ``points`` fractions from 0 to 1 along the spherical path between the
    codes (``z_mean``) of each row of ``a`` and of ``b``: ``int64 [pairs, points, steps]``."""
    model.eval()
    za = model.encode(a.long().to(model.device))
    zb = model.encode(b.long().to(model.device))
    t = torch.linspace(0, 1, points, device=za.device)
    codes = torch.stack([slerp(za[i], zb[i], t) for i in range(len(za))])  # [pairs, points, z]
    decoded = model.decode(codes.flatten(0, 1))
    return decoded.reshape(len(za), points, -1)


def interpolation_in_kind(
    model: MusicVAE,
    tokens: torch.Tensor,
    *,
    pairs: int = 64,
    points: int = 7,
    seed: int = 0,
    density_slack: float = 0.5,
    pitch_slack: int = 2,
) -> tuple[dict[str, float], torch.Tensor]:
    """Pairs of ``tokens`` (each melody with another, seeded), decoded along their slerp paths:
    the share of the intermediate melodies (all but the two ends) whose note density (±
    ``density_slack`` onsets per bar) and pitch range (± ``pitch_slack`` semitones) lie between
    the ends' (the original melodies'), each alone and both; and the paths with the two original
    melodies around each, ``[pairs, points + 2, steps]``."""
    count = min(pairs, len(tokens))
    chosen = torch.randperm(len(tokens), generator=torch.Generator().manual_seed(seed))[:count]
    a = tokens[chosen]
    b = tokens[chosen[other_melody(count, seed)]]
    paths = interpolation_paths(model, a, b, points).cpu()
    hits = {"density": 0, "pitch_range": 0, "both": 0}
    total = 0
    for i in range(count):
        ends = melody_shape(a[i].cpu()), melody_shape(b[i].cpu())
        for j in range(1, points - 1):
            density_ok, pitch_ok = in_kind(
                melody_shape(paths[i, j]), *ends, density_slack=density_slack, pitch_slack=pitch_slack
            )
            hits["density"] += density_ok
            hits["pitch_range"] += pitch_ok
            hits["both"] += density_ok and pitch_ok
            total += 1
    shares = {f"in_kind_{key}": value / max(total, 1) for key, value in hits.items()}
    framed = torch.cat([a.cpu()[:, None], paths, b.cpu()[:, None]], dim=1)
    return {"pairs": count, "points": points, **shares}, framed


def _quantiles(values: list[float], q: float) -> tuple[float, float]:
    ordered = torch.tensor(values, dtype=torch.float64)
    return float(ordered.quantile(q)), float(ordered.quantile(1 - q))


@torch.no_grad()
def prior_in_kind(
    model: MusicVAE,
    tokens: torch.Tensor,
    *,
    samples: int = 512,
    temperature: float = 1.0,
    seed: int = 0,
    q: float = 0.05,
    batch_size: int = 256,
) -> dict[str, float]:
    """``samples`` melodies from z ~ N(0, I), each step sampled at ``temperature`` (seeded), against
    the held-out ``tokens``: the share whose note density lies within the held-out melodies' ``q``
    and ``1 − q`` quantiles, whose lowest and highest pitches lie within those of the held-out
    lowest and highest pitches, and both; the share with no note; and the mean density of each."""
    model.eval()
    held_out = [melody_shape(row) for row in tokens.long().cpu()]
    voiced = [s for s in held_out if s.low is not None]
    if not voiced:
        raise ValueError("the held-out melodies hold no note")
    density_range = _quantiles([s.density for s in voiced], q)
    low_floor = _quantiles([float(s.low) for s in voiced if s.low is not None], q)[0]
    high_ceiling = _quantiles([float(s.high) for s in voiced if s.high is not None], q)[1]
    generator = torch.Generator(device=model.device).manual_seed(seed)
    drawn = torch.cat(
        [
            model.sample(min(batch_size, samples - start), temperature=temperature, generator=generator).cpu()
            for start in range(0, samples, batch_size)
        ]
    )
    hits = {"density": 0, "pitch_range": 0, "both": 0, "silent": 0}
    densities = []
    for row in drawn:
        shape = melody_shape(row)
        densities.append(shape.density)
        density_ok = shape.low is not None and density_range[0] <= shape.density <= density_range[1]
        pitch_ok = (
            shape.low is not None
            and shape.high is not None
            and low_floor <= shape.low
            and shape.high <= high_ceiling
        )
        hits["density"] += density_ok
        hits["pitch_range"] += pitch_ok
        hits["both"] += density_ok and pitch_ok
        hits["silent"] += shape.low is None
    return {
        "samples": len(drawn),
        "temperature": temperature,
        **{f"prior_in_kind_{key}": hits[key] / len(drawn) for key in ("density", "pitch_range", "both")},
        "prior_silent": hits["silent"] / len(drawn),
        "prior_density": sum(densities) / len(densities),
        "held_out_density": sum(s.density for s in held_out) / len(held_out),
    }
