"""Denoising: a conv autoencoder trained to map corrupted images to clean ones."""

from __future__ import annotations

from typing import Any

import torch

from aezoo.data import Batch
from aezoo.image import ImageAutoEncoder, image_rows
from aezoo.nn import ConvStack, UpConvStack
from aezoo_denoising.hparams import DenoisingHParams


def psnr(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """Mean PSNR in dB over the batch, for values in [0, 1]."""
    mse = ((images - reference) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return (10 * torch.log10(1.0 / mse)).mean()


class DenoisingAutoEncoder(ImageAutoEncoder):
    """Conv stages down to a code and mirrored stages up (:mod:`aezoo.nn`), noisy in, clean out."""

    def __init__(self, hp: DenoisingHParams) -> None:
        super().__init__()
        self.hp = hp
        self.image_shape = (hp.channels, hp.image_size, hp.image_size)
        common = {"code_size": hp.latent_dim, "kernel_size": hp.kernel_size, "batch_norm": hp.batch_norm}
        self.encoder = ConvStack(hp.channels, hp.widths, hp.image_size, downsample=hp.downsample, **common)
        self.decoder = UpConvStack(hp.channels, hp.widths, hp.image_size, upsample=hp.upsample, **common)

    def corrupt(self, clean: torch.Tensor) -> torch.Tensor:
        """The hyperparameters' noise, drawn from the global generator (seeded in evaluation)."""
        if self.hp.noise == "gaussian":
            noise = torch.randn_like(clean) * self.hp.noise_level + self.hp.noise_mean
            return (clean + noise).clamp(0, 1)
        flip = torch.rand_like(clean) < self.hp.noise_level
        salt = torch.rand_like(clean) < 0.5
        return torch.where(flip, salt.to(clean.dtype), clean)

    def prepare_batch(self, batch: Batch, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        clean = self.images_in(batch)
        self.check_images(clean)
        return self.corrupt(clean), clean

    @torch.no_grad()
    def evaluate(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        metrics = super().evaluate(inputs, targets)
        metrics["psnr_noisy"] = psnr(inputs, targets)
        metrics["psnr_denoised"] = psnr(self(inputs), targets)
        return metrics

    @torch.no_grad()
    def pictures(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        """``reconstructions``: noisy over denoised over clean."""
        n = min(self.pictured_examples, len(inputs))
        return {"reconstructions": image_rows([inputs[:n], self(inputs[:n]), targets[:n]])}


def build(hp: DenoisingHParams) -> DenoisingAutoEncoder:
    return DenoisingAutoEncoder(hp)
