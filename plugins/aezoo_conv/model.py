"""A convolutional autoencoder: stride-2 (or max-pool) stages down, mirrored stages up."""

from __future__ import annotations

from aezoo.image import ImageAutoEncoder
from aezoo.nn import ConvStack, UpConvStack
from aezoo_conv.hparams import ConvHParams


class ConvAutoEncoder(ImageAutoEncoder):
    def __init__(self, hp: ConvHParams) -> None:
        super().__init__()
        self.image_shape = (hp.channels, hp.image_size, hp.image_size)
        common = {"code_size": hp.latent_dim, "kernel_size": hp.kernel_size, "batch_norm": hp.batch_norm}
        self.encoder = ConvStack(hp.channels, hp.widths, hp.image_size, downsample=hp.downsample, **common)
        self.decoder = UpConvStack(hp.channels, hp.widths, hp.image_size, upsample=hp.upsample, **common)


def build(hp: ConvHParams) -> ConvAutoEncoder:
    return ConvAutoEncoder(hp)
