from __future__ import annotations

from dataclasses import dataclass

from aezoo import HParamError, HParams, hparam


@dataclass(frozen=True)
class VAEHParams(HParams):
    """The encoder gives the posterior's mean and *log-variance*: sampling uses
    z = z_mean + exp(0.5 · z_log_var) · ε and the KL term is
    -½ Σ (1 + z_log_var − z_mean² − exp(z_log_var)), the same quantity in both places."""

    network: str = hparam("conv", "Encoder and decoder networks.", choices=("conv", "dense"))
    latent_dim: int = hparam(16, "Size of z (2 for the lesson's pictures).", min=1, max=4096)
    widths: tuple[int, ...] = hparam((32, 64), "conv: channels of each stride-2 stage.", min=1)
    hidden: tuple[int, ...] = hparam((512,), "dense: widths of the hidden layers.", min=1)
    beta: float = hparam(1.0, "Weight of the KL term (β-VAE); 1 is the ELBO.", min=0.0, max=1000.0)
    kl_warmup_steps: int = hparam(0, "Steps over which the KL weight rises linearly from 0 to beta.", min=0)
    reconstruction: str = hparam(
        "bce",
        "bce: Bernoulli likelihood (summed per image); mse: squared error summed per image.",
        choices=("bce", "mse"),
    )
    binarize: bool = hparam(
        False,
        "Binarise pixels by sampling Bernoulli(pixel) each batch (needed for NLL in nats on binarised MNIST).",
    )
    image_size: int = hparam(28, "Height and width of the images.", min=4, max=4096)
    channels: int = hparam(1, "Image channels.", min=1, max=16)

    def validate(self) -> None:
        if self.network == "conv" and self.image_size < 2 ** len(self.widths):
            raise HParamError(
                (self.architecture, self.noun),
                "widths",
                f"has {len(self.widths)} stages, too many for {self.image_size}-pixel images "
                f"(at most {self.image_size.bit_length() - 1})",
            )
