"""A fully connected autoencoder with a Bernoulli (per-pixel BCE) likelihood."""

from __future__ import annotations

from aezoo.image import ImageAutoEncoder
from aezoo.nn import FlattenMLP, MLPImageDecoder
from aezoo_dense.hparams import DenseHParams


class DenseAutoEncoder(ImageAutoEncoder):
    def __init__(self, hp: DenseHParams) -> None:
        super().__init__()
        self.image_shape = (hp.channels, hp.image_size, hp.image_size)
        pixels = hp.channels * hp.image_size**2
        self.encoder = FlattenMLP([pixels, *hp.hidden, hp.latent_dim], hp.activation)
        self.decoder = MLPImageDecoder(hp.latent_dim, hp.hidden[::-1], self.image_shape, hp.activation)


def build(hp: DenseHParams) -> DenseAutoEncoder:
    return DenseAutoEncoder(hp)
