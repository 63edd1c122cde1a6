"""A fully connected autoencoder with a Bernoulli (per-pixel BCE) likelihood."""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from aezoo.image import ImageAutoEncoder, ImageDecoder
from aezoo_dense.hparams import DenseHParams

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def mlp(widths: list[int], activation: str) -> nn.Sequential:
    """Linear layers with ``activation`` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class DenseEncoder(nn.Module):
    def __init__(self, hp: DenseHParams) -> None:
        super().__init__()
        pixels = hp.channels * hp.image_size**2
        self.net = mlp([pixels, *hp.hidden, hp.latent_dim], hp.activation)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.flatten(1))


class DenseDecoder(ImageDecoder):
    def __init__(self, hp: DenseHParams) -> None:
        super().__init__()
        self.shape = (hp.channels, hp.image_size, hp.image_size)
        pixels = hp.channels * hp.image_size**2
        self.net = mlp([hp.latent_dim, *reversed(hp.hidden), pixels], hp.activation)

    def logits(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code).unflatten(1, self.shape)


class DenseAutoEncoder(ImageAutoEncoder):
    def __init__(self, hp: DenseHParams) -> None:
        super().__init__()
        self.image_shape = (hp.channels, hp.image_size, hp.image_size)
        self.encoder = DenseEncoder(hp)
        self.decoder = DenseDecoder(hp)


def build(hp: DenseHParams) -> DenseAutoEncoder:
    return DenseAutoEncoder(hp)
