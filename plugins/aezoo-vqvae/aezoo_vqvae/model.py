"""A VQ-VAE (van den Oord et al., 2017, "Neural Discrete Representation Learning") for images.

The encoder maps an image to a grid of vectors (28×28 → 7×7 with two stride-2 stages) and gives,
for each cell, the index of the nearest code vector of the :class:`~aezoo_vqvae.codebook.Codebook`:
an integer code grid ``[N, 7, 7]``. The decoder looks the indices up and upsamples them back to
pixel logits. Training passes the decoder's gradient straight through the quantisation to the
encoder (the straight-through estimator) and adds the commitment loss β‖z_e − sg(e)‖²; the
codebook follows the encoder outputs by exponential moving averages (see ``codebook.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aezoo.image import ImageAutoEncoder, ImageDecoder
from aezoo.model import ExportPart, LossOutput, TensorSpec, Update
from aezoo.nn import UpConvStack, conv_block, halved_sizes
from aezoo_vqvae.codebook import Codebook
from aezoo_vqvae.hparams import VQVAEHParams


class VQEncoder(nn.Module):
    """Images ``[N, C, S, S]`` → code indices ``[N, s, s]`` (int64), ``s`` = S halved per stage."""

    def __init__(self, hp: VQVAEHParams, codebook: Codebook) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = hp.channels
        for width in hp.widths:
            layers += conv_block(c_in, width, stride=2, batch_norm=hp.batch_norm)
            c_in = width
        layers.append(nn.Conv2d(c_in, hp.code_dim, 1))
        self.net = nn.Sequential(*layers)
        self.codebook = codebook

    def vectors(self, images: torch.Tensor) -> torch.Tensor:
        """The encoder outputs z_e before quantisation: ``[N, D, s, s]``."""
        return self.net(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.codebook.nearest(self.vectors(images))


class VQDecoder(ImageDecoder):
    """Code indices ``[N, s, s]`` → pixel logits: each index looked up in the codebook, then the
    mirror of the encoder's stages (:class:`aezoo.nn.UpConvStack`)."""

    def __init__(self, hp: VQVAEHParams, codebook: Codebook) -> None:
        super().__init__()
        self.codebook = codebook
        self.stem = nn.Sequential(*conv_block(hp.code_dim, hp.widths[-1], batch_norm=hp.batch_norm))
        self.up = UpConvStack(hp.channels, hp.widths, hp.image_size, batch_norm=hp.batch_norm)

    def logits_of_vectors(self, vectors: torch.Tensor) -> torch.Tensor:
        """Pixel logits of a grid of code vectors ``[N, D, s, s]``."""
        return self.up.logits(self.stem(vectors).flatten(1))

    def logits(self, code: torch.Tensor) -> torch.Tensor:
        return self.logits_of_vectors(self.codebook.lookup(code))


class VQVAE(ImageAutoEncoder):
    """Images to a grid of integer codes and back. Its code is ``encode(images)``: int64 indices."""

    encoder: VQEncoder
    decoder: VQDecoder

    def __init__(self, hp: VQVAEHParams) -> None:
        super().__init__()
        self.image_shape = (hp.channels, hp.image_size, hp.image_size)
        self.grid = halved_sizes(hp.image_size, len(hp.widths))[-1]
        codebook = Codebook(hp.codes, hp.code_dim)  # one module, shared: the weights file holds it once
        self.encoder = VQEncoder(hp, codebook)
        self.decoder = VQDecoder(hp, codebook)

    @property
    def codebook(self) -> Codebook:
        return self.encoder.codebook

    # -- training ------------------------------------------------------------------------------

    def quantize(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(z_e, indices, z_q)``: encoder outputs, their nearest codes' indices and vectors."""
        z_e = self.encoder.vectors(inputs)
        with torch.no_grad():
            indices = self.codebook.nearest(z_e)
        return z_e, indices, self.codebook.lookup(indices)

    def _loss_and_codes(
        self, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[LossOutput, tuple[torch.Tensor, torch.Tensor]]:
        """The loss, and what the codebook's EMA step needs: the detached z_e and its indices."""
        z_e, indices, z_q = self.quantize(inputs)
        straight_through = z_e + (z_q - z_e).detach()  # forward: z_q; backward: the identity to z_e
        logits = self.decoder.logits_of_vectors(straight_through)
        bce = F.binary_cross_entropy_with_logits(logits, targets)
        # As in the paper both terms are sums over an image; divided by its pixels, the loss reads
        # as BCE per pixel plus β · (commitment summed over the code grid) / pixels.
        commitment = F.mse_loss(z_e, z_q) * z_e[0].numel() / targets[0].numel()
        usage = torch.bincount(indices.flatten(), minlength=self.codebook.codes).float()
        probabilities = usage / usage.sum()
        perplexity = torch.exp(-(probabilities * torch.log(probabilities.clamp_min(1e-12))).sum())
        logs = {"bce": bce.detach(), "commitment": commitment.detach(), "perplexity": perplexity}
        if not self.training:
            logs["mse"] = F.mse_loss(torch.sigmoid(logits), targets)
        loss = bce + self.hparams.commitment * commitment
        return LossOutput(loss, logs), (z_e.detach(), indices)

    def loss(self, inputs: Any, targets: Any, step: int | None = None) -> LossOutput:
        return self._loss_and_codes(inputs, targets)[0]

    def training_step(self, inputs: Any, targets: Any, step: int) -> Iterator[Update]:
        """One Adam step of encoder and decoder, then one EMA step of the codebook."""
        out, (z_e, indices) = self._loss_and_codes(inputs, targets)
        yield Update(out.loss, "model", out.logs)
        self.codebook.update(z_e, indices, self.hparams.decay, self.hparams.restart_below)

    # -- export --------------------------------------------------------------------------------

    def export_parts(self) -> dict[str, ExportPart]:
        """The encoder gives int64 indices chosen from scores (minus the squared distance to each
        code, so validation can tell a near-tie from a mismatch); the decoder takes them."""
        parts = super().export_parts()
        k, s = self.codebook.codes, self.grid
        indices = TensorSpec(
            "codes",
            f"code indices, int64 [batch, {s}, {s}]: for each cell of the {s}×{s} grid, which of the {k} "
            "code vectors of the codebook",
            (0, k - 1),
            classes=k,
        )
        parts["encoder"].outputs = [indices]
        parts["encoder"].decisions = lambda args, outputs: {
            "codes": self.encoder.codebook.scores(self.encoder.vectors(*args))
        }

        def decoder_example(n: int) -> tuple[torch.Tensor, ...]:
            return (torch.randint(0, k, (n, s, s), device=self.device),)

        parts["decoder"].inputs = [indices]
        parts["decoder"].example = decoder_example
        return parts


def build(hp: VQVAEHParams) -> VQVAE:
    return VQVAE(hp)


__all__ = ["VQVAE", "VQDecoder", "VQEncoder", "build"]
