"""A variational autoencoder (Kingma & Welling, 2014) with the reparameterisation trick."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aezoo.data import Batch
from aezoo.image import ImageAutoEncoder, image_rows
from aezoo.model import ExportPart, GaussianPrior, LossOutput, TensorSpec
from aezoo.nn import ConvStack, FlattenMLP, MLPImageDecoder, UpConvStack
from aezoo_vae.hparams import VAEHParams


class GaussianEncoder(nn.Module):
    """Image → (z_mean, z_log_var)."""

    def __init__(self, body: nn.Module, latent_dim: int) -> None:
        super().__init__()
        self.body = body
        self.latent_dim = latent_dim

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_mean, z_log_var = self.body(images).chunk(2, dim=1)
        return z_mean, z_log_var


def kl_divergence(z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per example, with q's variance given as its logarithm."""
    return -0.5 * (1 + z_log_var - z_mean.pow(2) - z_log_var.exp()).sum(1)


class VAE(GaussianPrior, ImageAutoEncoder):
    def __init__(self, hp: VAEHParams) -> None:
        super().__init__()
        self.hp = hp
        self.latent_size = hp.latent_dim
        self.image_shape = (hp.channels, hp.image_size, hp.image_size)
        pixels = hp.channels * hp.image_size**2
        if hp.network == "conv":
            body = ConvStack(hp.channels, hp.widths, hp.image_size, code_size=2 * hp.latent_dim)
            self.encoder = GaussianEncoder(body, hp.latent_dim)
            self.decoder = UpConvStack(hp.channels, hp.widths, hp.image_size, code_size=hp.latent_dim)
        else:
            self.encoder = GaussianEncoder(FlattenMLP([pixels, *hp.hidden, 2 * hp.latent_dim]), hp.latent_dim)
            self.decoder = MLPImageDecoder(hp.latent_dim, hp.hidden[::-1], self.image_shape)

    # -- data ----------------------------------------------------------------------------------

    def prepare_batch(self, batch: Batch, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        images = self.images_in(batch)
        self.check_images(images)
        if self.hp.binarize:
            images = torch.bernoulli(images)
        return images, images

    # -- inference -----------------------------------------------------------------------------

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """The posterior mean."""
        return self.encoder(inputs)[0]

    def reparameterize(self, z_mean: torch.Tensor, z_log_var: torch.Tensor) -> torch.Tensor:
        return z_mean + torch.exp(0.5 * z_log_var) * torch.randn_like(z_mean)

    # -- training ------------------------------------------------------------------------------

    def kl_weight(self, step: int | None) -> float:
        if step is None or self.hp.kl_warmup_steps == 0:
            return self.hp.beta
        return self.hp.beta * min(1.0, step / self.hp.kl_warmup_steps)

    def reconstruction_error(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Per image, summed over pixels: -log p(x|z) for bce; squared error for mse."""
        if self.hp.reconstruction == "bce":
            return F.binary_cross_entropy_with_logits(logits, targets, reduction="none").flatten(1).sum(1)
        return (torch.sigmoid(logits) - targets).pow(2).flatten(1).sum(1)

    def loss(self, inputs: Any, targets: Any, step: int | None = None) -> LossOutput:
        z_mean, z_log_var = self.encoder(inputs)
        z = self.reparameterize(z_mean, z_log_var)
        rec = self.reconstruction_error(self.decoder.logits(z), targets)
        kl = kl_divergence(z_mean, z_log_var)
        loss = (rec + self.kl_weight(step) * kl).mean()
        logs = {
            "reconstruction": rec.mean().detach(),
            "kl": kl.mean().detach(),
            "neg_elbo": (rec + kl).mean().detach(),
        }
        return LossOutput(loss, logs)

    @torch.no_grad()
    def evaluate(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        metrics = super().evaluate(inputs, targets)
        z_mean, z_log_var = self.encoder(inputs)
        probs = self.decoder(z_mean)
        pixels = probs[0].numel()
        mse = (probs - targets).pow(2).flatten(1).mean(1)
        metrics["bce"] = F.binary_cross_entropy(probs, targets)
        metrics["mse"] = mse.mean()
        # The lesson's metric: MSE per pixel × pixels + KL, on the posterior mean.
        metrics["mse_x784_plus_kl"] = (mse * pixels + kl_divergence(z_mean, z_log_var)).mean()
        return metrics

    @torch.no_grad()
    def log_likelihood(
        self, inputs: torch.Tensor, targets: torch.Tensor, samples: int, chunk: int = 250
    ) -> torch.Tensor:
        """log p(x) per example, importance-sampled with q(z|x) as proposal (the IWAE bound with
        ``samples`` samples, which tightens to log p(x) as ``samples`` grows)."""
        from aezoo.errors import AezooError

        if self.hp.reconstruction != "bce" or not self.hp.binarize:
            raise AezooError(
                "log-likelihood in nats needs a Bernoulli model of binarised data: train with "
                "--set binarize=true (and reconstruction=bce)"
            )
        z_mean, z_log_var = self.encoder(inputs)
        std = torch.exp(0.5 * z_log_var)
        log_weights = []
        for start in range(0, samples, chunk):
            k = min(chunk, samples - start)
            eps = torch.randn(k, *z_mean.shape, device=z_mean.device)
            z = z_mean + std * eps  # [k, B, D]
            logits = self.decoder.logits(z.flatten(0, 1))
            target = targets.unsqueeze(0).expand(k, *targets.shape).flatten(0, 1)
            log_px_z = -F.binary_cross_entropy_with_logits(logits, target, reduction="none").flatten(1).sum(1)
            log_pz = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(-1)
            log_qz = (-0.5 * eps.pow(2) - 0.5 * math.log(2 * math.pi) - 0.5 * z_log_var).sum(-1)
            log_weights.append(log_px_z.view(k, -1) + log_pz - log_qz)
        return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(samples)

    # -- export and pictures ---------------------------------------------------------------------

    def export_parts(self) -> dict[str, ExportPart]:
        parts = super().export_parts()
        parts["encoder"].outputs = [
            TensorSpec("z_mean", "mean of the posterior q(z|x), float32 [batch, latent]"),
            TensorSpec(
                "z_log_var", "log-variance of q(z|x): σ = exp(0.5 · z_log_var); sample z = z_mean + σ · ε"
            ),
        ]
        parts["decoder"].inputs = [TensorSpec("z", "a latent vector; z ~ N(0, I) draws new images")]
        return parts

    @torch.no_grad()
    def pictures(self, inputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        pictures = super().pictures(inputs, targets)
        generator = torch.Generator(device=self.device).manual_seed(0)
        samples = self.sample(32, generator=generator)
        pictures["samples"] = image_rows([samples[:16], samples[16:32]])
        return pictures


def build(hp: VAEHParams) -> VAE:
    return VAE(hp)
