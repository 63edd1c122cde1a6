"""Network building blocks for plugins: MLPs and stacks of convolution stages.

Public API for plugin authors (see ``__all__``). Each module here keeps its layers in one
``nn.Sequential`` called ``net`` (:func:`mlp` returns such a ``Sequential``), so a model built from
them has parameters named ``<attribute>.net.<index>.weight``; the layer order of a block never
changes between releases, so weights files keep loading.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from aezoo.image import ImageDecoder

__all__ = [
    "ACTIVATIONS",
    "ConvStack",
    "FlattenMLP",
    "MLPImageDecoder",
    "UpConvStack",
    "conv_block",
    "halved_sizes",
    "mlp",
]

#: Activation names accepted by :func:`mlp` (and offered as hyperparameter choices).
ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


def mlp(widths: Sequence[int], activation: str = "relu") -> nn.Sequential:
    """Linear layers ``widths[0] → widths[1] → …`` with ``activation`` between them (none after
    the last)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class FlattenMLP(nn.Module):
    """An :func:`mlp` over each example flattened: ``[N, ...]`` → ``[N, widths[-1]]``."""

    def __init__(self, widths: Sequence[int], activation: str = "relu") -> None:
        super().__init__()
        self.net = mlp(widths, activation)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


class MLPImageDecoder(ImageDecoder):
    """An :func:`mlp` from a code to ``C·H·W`` pixel logits, shaped ``[N, C, H, W]``."""

    def __init__(
        self, code_size: int, hidden: Sequence[int], shape: tuple[int, int, int], activation: str = "relu"
    ) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.net = mlp([code_size, *hidden, math.prod(shape)], activation)

    def logits(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code).unflatten(1, self.shape)


def halved_sizes(size: int, stages: int) -> list[int]:
    """Height (or width) before each stage and after the last when every stage halves it,
    rounding up: ``halved_sizes(28, 3) == [28, 14, 7, 4]``."""
    sizes = [size]
    for _ in range(stages):
        sizes.append(math.ceil(sizes[-1] / 2))
    return sizes


def conv_block(
    c_in: int, c_out: int, kernel_size: int = 3, *, stride: int = 1, batch_norm: bool = True
) -> list[nn.Module]:
    """A 'same'-padded convolution (no bias when batch-normalised), batch norm if asked, ReLU."""
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel_size, stride, kernel_size // 2, bias=not batch_norm)
    ]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.ReLU(inplace=True))
    return layers


def _check_stages(widths: Sequence[int], kernel_size: int) -> None:
    if not widths:
        raise ValueError("a conv stack needs at least one stage width")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")


class ConvStack(nn.Module):
    """Square images ``[N, channels, S, S]`` → vectors ``[N, code_size]``: one stage per width,
    each halving height and width (rounding up) with a stride-2 :func:`conv_block`
    (``downsample="stride"``) or a :func:`conv_block` then 2×2 max-pooling (``"maxpool"``); then
    the last feature map flattened and, unless ``code_size`` is None, a linear layer to it (with
    None the code is the flattened feature map, ``widths[-1]·s·s`` numbers)."""

    def __init__(
        self,
        channels: int,
        widths: Sequence[int],
        image_size: int,
        *,
        code_size: int | None = None,
        kernel_size: int = 3,
        downsample: str = "stride",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        _check_stages(widths, kernel_size)
        if downsample not in ("stride", "maxpool"):
            raise ValueError(f"downsample must be 'stride' or 'maxpool', got {downsample!r}")
        layers: list[nn.Module] = []
        c_in = channels
        for width in widths:
            if downsample == "stride":
                layers += conv_block(c_in, width, kernel_size, stride=2, batch_norm=batch_norm)
            else:
                layers += conv_block(c_in, width, kernel_size, batch_norm=batch_norm)
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            c_in = width
        layers.append(nn.Flatten())
        side = halved_sizes(image_size, len(widths))[-1]
        if code_size is not None:
            layers.append(nn.Linear(c_in * side * side, code_size))
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class UpConvStack(ImageDecoder):
    """The mirror of a :class:`ConvStack` with the same ``widths``: a code → pixel logits
    ``[N, channels, S, S]``. A linear layer and ReLU from ``code_size`` (None: the code is already
    the flattened ``widths[-1]·s·s`` feature map), then one stage per width, each doubling height
    and width back along :func:`halved_sizes` (a 3×3 stride-2 transposed convolution, batch norm
    if asked and ReLU for ``upsample="transpose"``; nearest upsampling then a :func:`conv_block`
    for ``"nearest"``) through ``widths`` reversed, then a convolution to ``channels``."""

    def __init__(
        self,
        channels: int,
        widths: Sequence[int],
        image_size: int,
        *,
        code_size: int | None = None,
        kernel_size: int = 3,
        upsample: str = "transpose",
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        _check_stages(widths, kernel_size)
        if upsample not in ("transpose", "nearest"):
            raise ValueError(f"upsample must be 'transpose' or 'nearest', got {upsample!r}")
        sizes = halved_sizes(image_size, len(widths))
        widths = list(widths)
        side, c = sizes[-1], widths[-1]
        layers: list[nn.Module] = []
        if code_size is not None:
            layers += [nn.Linear(code_size, c * side * side), nn.ReLU(inplace=True)]
        layers.append(nn.Unflatten(1, (c, side, side)))
        outs = [*widths[-2::-1], widths[0]]  # 128,64,32 → 64,32,32
        for i, c_out in enumerate(outs):
            target = sizes[-2 - i]
            if upsample == "transpose":
                extra = target - (2 * sizes[-1 - i] - 1)
                layers.append(
                    nn.ConvTranspose2d(c, c_out, 3, 2, 1, output_padding=extra, bias=not batch_norm)
                )
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(nn.ReLU(inplace=True))
            else:
                layers.append(nn.Upsample(size=(target, target), mode="nearest"))
                layers += conv_block(c, c_out, kernel_size, batch_norm=batch_norm)
            c = c_out
        layers.append(nn.Conv2d(c, channels, kernel_size, 1, kernel_size // 2))
        self.net = nn.Sequential(*layers)

    def logits(self, code: torch.Tensor) -> torch.Tensor:
        return self.net(code)
