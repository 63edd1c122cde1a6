"""An adversarial autoencoder: reconstruction, then a discriminator between prior samples and
codes, then the encoder trained to fool it — three optimisers, alternating each step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from aezoo.image import ImageAutoEncoder
from aezoo.model import GaussianPrior, OptimizerConfig, Optimizers, Update, make_optimizer
from aezoo.nn import FlattenMLP, MLPImageDecoder, mlp
from aezoo_aae.hparams import AAEHParams


class AdversarialAutoEncoder(GaussianPrior, ImageAutoEncoder):
    def __init__(self, hp: AAEHParams) -> None:
        super().__init__()
        self.hp = hp
        self.latent_size = hp.latent_dim
        self.image_shape = (hp.channels, hp.image_size, hp.image_size)
        pixels = hp.channels * hp.image_size**2
        self.encoder = FlattenMLP([pixels, *hp.hidden, hp.latent_dim])
        self.decoder = MLPImageDecoder(hp.latent_dim, hp.hidden[::-1], self.image_shape)
        self.discriminator = mlp([hp.latent_dim, *hp.disc_hidden, 1], "relu")

    def configure_optimizers(self, config: OptimizerConfig) -> Optimizers:
        def scaled(factor: float) -> OptimizerConfig:
            return OptimizerConfig(config.name, config.lr * factor, config.weight_decay)

        autoencoder = [*self.encoder.parameters(), *self.decoder.parameters()]
        return {
            "autoencoder": make_optimizer(autoencoder, config),
            "discriminator": make_optimizer(self.discriminator.parameters(), scaled(self.hp.disc_lr_scale)),
            "generator": make_optimizer(self.encoder.parameters(), scaled(self.hp.gen_lr_scale)),
        }

    def discriminator_loss(self, codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Prior samples are real (1), codes fake (0): the loss and the discriminator's accuracy."""
        prior = torch.randn_like(codes)
        real, fake = self.discriminator(prior), self.discriminator(codes)
        loss = F.binary_cross_entropy_with_logits(
            real, torch.ones_like(real)
        ) + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake))
        accuracy = ((real > 0).float().mean() + (fake < 0).float().mean()) / 2
        return loss, accuracy

    def training_step(self, inputs: Any, targets: Any, step: int) -> Iterator[Update]:
        out = self.loss(inputs, targets, step)
        yield Update(out.loss, "autoencoder", out.logs)
        d_loss, d_acc = self.discriminator_loss(self.encoder(inputs).detach())
        yield Update(d_loss, "discriminator", {"d_loss": d_loss.detach(), "d_accuracy": d_acc})
        verdict = self.discriminator(self.encoder(inputs))
        g_loss = F.binary_cross_entropy_with_logits(verdict, torch.ones_like(verdict))
        yield Update(self.hp.adversarial_weight * g_loss, "generator", {"g_loss": g_loss.detach()})

    @torch.no_grad()
    def evaluate(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        metrics = super().evaluate(inputs, targets)
        codes = self.encoder(inputs)
        d_loss, d_acc = self.discriminator_loss(codes)
        metrics.update(
            d_loss=d_loss,
            d_accuracy=d_acc,
            code_mean_abs=codes.mean(0).abs().mean(),
            code_std=codes.std(0).mean(),
        )
        return metrics


def build(hp: AAEHParams) -> AdversarialAutoEncoder:
    return AdversarialAutoEncoder(hp)
