"""Piano-roll pictures of class sequences (pitch up, time right, bar lines grey), drawn with numpy."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from aezoo.fileio import atomic_path
from aezoo_musicvae.representation import STEPS_PER_BAR, Note, events_to_notes

BLUE = (0.16, 0.38, 0.74)
ORANGE = (0.90, 0.45, 0.10)
GREY = (0.80, 0.80, 0.80)
PAPER = 0.96  # roll background, so the white gaps between rolls show
ROW = 3  # pixels per semitone
GAP = 6  # pixels between rolls


def _roll(
    notes: list[Note], steps: int, low: int, high: int, width: int, color: tuple[float, ...]
) -> np.ndarray:
    rows = (high - low + 1) * ROW
    canvas = np.full((3, rows, steps * width), PAPER, dtype=np.float32)
    canvas[:, :, :: STEPS_PER_BAR * width] = np.array(GREY, dtype=np.float32)[:, None, None]
    canvas[:, :, -1] = np.array(GREY, dtype=np.float32)[:, None]
    for note in notes:
        top = (high - note.pitch) * ROW
        left, right = note.start * width, note.end * width - 1  # a 1-pixel gap between notes
        canvas[:, top : top + ROW - 1, left:right] = np.array(color, dtype=np.float32)[:, None, None]
    return canvas


def piano_rolls(
    groups: Sequence[Sequence[Sequence[int]]], pixels_per_step: int | None = None
) -> torch.Tensor:
    """One picture ``[3, H, W]`` in [0, 1]: for each group (an original and its reconstruction,
    or one sample), its sequences as rolls one above the other over a shared pitch range; the
    first sequence of a group blue, the others orange."""
    steps = max(len(seq) for group in groups for seq in group)
    width = pixels_per_step or max(2, 512 // steps)
    blocks = []
    for group in groups:
        notes = [events_to_notes(seq) for seq in group]
        pitches = [n.pitch for ns in notes for n in ns] or [60]
        low, high = min(pitches) - 2, max(pitches) + 2
        for i, ns in enumerate(notes):
            blocks.append(_roll(ns, steps, low, high, width, BLUE if i == 0 else ORANGE))
            blocks.append(np.ones((3, 2 if i + 1 < len(notes) else GAP, steps * width), dtype=np.float32))
    return torch.from_numpy(np.concatenate(blocks[:-1], axis=1))


def save_png(picture: torch.Tensor, path: str | os.PathLike[str]) -> Path:
    """Write a ``[3, H, W]`` picture in [0, 1] as PNG, atomically (PIL: no torchvision import)."""
    from PIL import Image

    pixels = picture.clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    path = Path(path)
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    return path
