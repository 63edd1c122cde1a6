"""A convolutional autoencoder: stride-2 (or max-pool) stages down, mirrored stages up."""

from __future__ import annotations

import math

import torch
from torch import nn

from aezoo.image import ImageAutoEncoder, ImageDecoder
from aezoo_conv.hparams import ConvHParams


def stage_sizes(hp: ConvHParams) -> list[int]:
    """Spatial size before each stage and after the last: 28 → 14 → 7 → 4."""
    sizes = [hp.image_size]
    for _ in hp.widths:
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def conv_block(c_in: int, c_out: int, hp: ConvHParams, stride: int = 1) -> list[nn.Module]:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, hp.kernel_size, stride, hp.kernel_size // 2, bias=not hp.batch_norm)
    ]
    if hp.batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return layers


class ConvEncoder(nn.Module):
    def __init__(self, hp: ConvHParams) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = hp.channels
        for width in hp.widths:
            if hp.downsample == "stride":
                layers += conv_block(c_in, width, hp, stride=2)
            else:
                layers += conv_block(c_in, width, hp)
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c_in = width
        layers.append(nn.Flatten())
        side = stage_sizes(hp)[-1]
        if hp.latent_dim is not None:
            layers.append(nn.Linear(c_in * side * side, hp.latent_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class ConvDecoder(ImageDecoder):
    def __init__(self, hp: ConvHParams) -> None:
        super().__init__()
        sizes = stage_sizes(hp)
        widths = list(hp.widths)
        side, c = sizes[-1], widths[-1]
        layers: list[nn.Module] = []
        if hp.latent_dim is not None:
            layers += [nn.Linear(hp.latent_dim, c * side * side), nn.ReLU(inplace=True)]
        layers.append(nn.Unflatten(1, (c, side, side)))
        outs = [*widths[-2::-1], widths[0]]  # 128,64,32 → 64,32,32
        for i, c_out in enumerate(outs):
            target = sizes[-2 - i]
            if hp.upsample == "transpose":
                extra = target - (2 * sizes[-1 - i] - 1)
                layers.append(
                    nn.ConvTranspose2d(c, c_out, 3, 2, 1, output_padding=extra, bias=not hp.batch_norm)
                )
                if hp.batch_norm:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(nn.ReLU(inplace=True))
            else:
                layers.append(nn.Upsample(size=(target, target), mode="nearest"))
                layers += conv_block(c, c_out, hp)
            c = c_out
        layers.append(nn.Conv2d(c, hp.channels, hp.kernel_size, 1, hp.kernel_size // 2))
        self.net = nn.Sequential(*layers)

    def logits(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)


class ConvAutoEncoder(ImageAutoEncoder):
    def __init__(self, hp: ConvHParams) -> None:
        super().__init__()
        self.image_shape = (hp.channels, hp.image_size, hp.image_size)
        self.encoder = ConvEncoder(hp)
        self.decoder = ConvDecoder(hp)


def build(hp: ConvHParams) -> ConvAutoEncoder:
    return ConvAutoEncoder(hp)
