"""The codebook: K code vectors, the nearest one for each encoder output, and their EMA update.

The codebook is learned by exponential moving averages (van den Oord et al., 2017, appendix A.1)
rather than by a codebook loss: each code moves to the running mean of the encoder outputs it was
chosen for. That needs no learning rate of its own and is untouched by Adam's per-parameter step
sizes, so the codes follow the encoder from the first steps, which is what a short CPU run needs. Codes that nothing
chooses any more are restarted on random encoder outputs of the batch, so all K stay in use.
"""

from __future__ import annotations

import torch
from torch import nn


class Codebook(nn.Module):
    """``codes`` vectors of length ``dim``, stored as buffers (the EMA updates them, not the optimiser)."""

    def __init__(self, codes: int, dim: int) -> None:
        super().__init__()
        self.codes = codes
        self.dim = dim
        embedding = torch.randn(codes, dim)
        self.register_buffer("embedding", embedding)
        #: moving average of how many encoder outputs each code was chosen for, per batch
        self.register_buffer("usage", torch.ones(codes))
        #: moving average of the sum of those outputs (``embedding = vector_sum / usage``)
        self.register_buffer("vector_sum", embedding.clone())

    def scores(self, z: torch.Tensor) -> torch.Tensor:
        """Minus the squared distance of each vector of ``z`` ``[N, D, H, W]`` to each code:
        ``[N, H, W, K]``, highest for the nearest code."""
        flat = z.permute(0, 2, 3, 1)
        distances = (
            flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ self.embedding.t() + self.embedding.pow(2).sum(-1)
        )
        return -distances

    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """The index of the nearest code to each vector of ``z`` ``[N, D, H, W]``: int64 ``[N, H, W]``."""
        return self.scores(z).argmax(-1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """The code vectors of integer ``indices`` ``[N, H, W]``: ``[N, D, H, W]``."""
        return nn.functional.embedding(indices, self.embedding).permute(0, 3, 1, 2)

    @torch.no_grad()
    def update(self, z: torch.Tensor, indices: torch.Tensor, decay: float, restart_below: float) -> None:
        """One EMA step towards the encoder outputs ``z`` ``[N, D, H, W]`` each code was chosen for
        (``indices``), then dead-code restarts: every code used by fewer than ``restart_below``
        vectors per batch on average is moved onto a random vector of ``z`` (global generator)."""
        flat = z.permute(0, 2, 3, 1).reshape(-1, self.dim).float()
        chosen = indices.reshape(-1)
        counts = torch.bincount(chosen, minlength=self.codes).to(flat.dtype)
        sums = torch.zeros_like(self.vector_sum).index_add_(0, chosen, flat)
        self.usage.mul_(decay).add_(counts, alpha=1 - decay)
        self.vector_sum.mul_(decay).add_(sums, alpha=1 - decay)
        used = self.usage > 1e-6  # a code unused since its start keeps its vector
        self.embedding[used] = self.vector_sum[used] / self.usage[used, None]
        dead = torch.nonzero(self.usage < restart_below).flatten()
        if len(dead):
            picks = flat[torch.randint(len(flat), (len(dead),), device=flat.device)]
            self.embedding[dead] = picks
            self.usage[dead] = restart_below
            self.vector_sum[dead] = picks * restart_below
