"""Hyperparameters of ``musicvae`` and MusicVAE's own configurations as presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from aezoo import HParams, hparam

#: MusicVAE's configurations (magenta/models/music_vae/configs.py) in this plugin's terms. A
#: preset replaces the defaults of these fields; a field you set to a non-default value wins.
PRESETS: dict[str, dict[str, Any]] = {
    "cat-mel_2bar_small": {
        "bars": 2, "decoder": "flat", "enc_rnn_size": (512,), "z_size": 256, "dec_rnn_size": (256, 256),
        "free_bits": 0.0, "max_beta": 0.2, "beta_rate": 0.99999, "sampling_schedule": "inverse_sigmoid",
        "sampling_rate": 1000.0,
    },
    "cat-mel_2bar_big": {
        "bars": 2, "decoder": "flat", "enc_rnn_size": (2048,), "z_size": 512,
        "dec_rnn_size": (2048, 2048, 2048), "free_bits": 0.0, "max_beta": 0.5, "beta_rate": 0.99999,
        "sampling_schedule": "inverse_sigmoid", "sampling_rate": 1000.0,
    },
    "hierdec-mel_16bar": {
        "bars": 16, "decoder": "hierarchical", "enc_rnn_size": (2048, 2048), "z_size": 512,
        "dec_rnn_size": (1024, 1024), "free_bits": 256.0, "max_beta": 0.2, "beta_rate": 0.0,
        "sampling_schedule": "constant", "sampling_rate": 0.0,
    },
    "flat-mel_16bar": {
        "bars": 16, "decoder": "flat", "enc_rnn_size": (2048, 2048), "z_size": 512,
        "dec_rnn_size": (2048, 2048, 2048), "free_bits": 256.0, "max_beta": 0.2, "beta_rate": 0.0,
        "sampling_schedule": "constant", "sampling_rate": 0.0,
    },
}  # fmt: skip


@dataclass(frozen=True)
class MusicVAEHParams(HParams):
    """Defaults are small (1.26 M parameters; a 2-bar model takes about 0.2 s per step of 64 on
    one CPU core); MusicVAE's sizes are the presets. The posterior scale is σ itself, as in
    MusicVAE: σ = softplus(dense(h)), z = μ + σ · ε, KL = Σ ½(μ² + σ² − 1) − log σ."""

    preset: str = hparam(
        "none",
        "Start from a MusicVAE configuration (fields set to non-default values still win).",
        choices=("none", *PRESETS),
    )
    bars: int = hparam(2, "Bars per window (16 steps each); the dataset's windows must match.", min=1, max=64)
    decoder: str = hparam(
        "flat",
        "flat: one LSTM over all steps; hierarchical: a conductor LSTM emits one embedding per bar, "
        "each starting a bottom LSTM for that bar.",
        choices=("flat", "hierarchical"),
    )
    enc_rnn_size: tuple[int, ...] = hparam((256,), "Bidirectional encoder LSTM: units per layer.", min=1)
    z_size: int = hparam(64, "Size of the latent vector z.", min=1, max=4096)
    dec_rnn_size: tuple[int, ...] = hparam(
        (256,), "Decoder LSTM units per layer (conductor and bottom LSTMs alike when hierarchical).", min=1
    )
    free_bits: float = hparam(
        0.0, "KL bits per sequence (summed over z) that cost nothing: loss uses max(KL − free, 0).", min=0.0
    )
    max_beta: float = hparam(0.2, "Largest weight of the KL term.", min=0.0, max=100.0)
    beta_rate: float = hparam(
        0.9995,
        "β annealing: β = max_beta · (1 − beta_rate^step) (MusicVAE: 0.99999 over 100k+ steps); 0: "
        "max_beta from step 1.",
        min=0.0,
        max=1.0,
    )
    sampling_schedule: str = hparam(
        "inverse_sigmoid",
        "Scheduled sampling: probability of feeding back a sampled token instead of the true one. "
        "constant: sampling_rate; exponential: 1 − sampling_rate^step; inverse_sigmoid: "
        "1 − k/(k + exp(step/k)) with k = sampling_rate.",
        choices=("constant", "exponential", "inverse_sigmoid"),
    )
    sampling_rate: float = hparam(
        500.0,
        "Parameter of the sampling schedule (MusicVAE's 2-bar models: inverse_sigmoid, 1000; 500 here "
        "reaches mostly sampled inputs within a few thousand steps).",
        min=0.0,
    )
    decay_rate: float = hparam(
        0.9999,
        "Learning rate per step: (lr − min_learning_rate) · decay_rate^step + min_learning_rate.",
        min=0.0,
        max=1.0,
    )
    min_learning_rate: float = hparam(1e-5, "Floor of the learning-rate decay.", min=0.0)
    grad_clip: float | None = hparam(
        1.0,
        "Clip the global gradient norm to this before every optimiser step (MusicVAE: 1); none "
        "leaves clipping to the trainer's --grad-clip.",
        min=1e-6,
    )
    augment_transpose: int = hparam(
        5, "Training-time transposition by a uniform −N…+N semitones (0: none).", min=0, max=24
    )

    def validate(self) -> None:
        if self.sampling_schedule in ("constant", "exponential") and self.sampling_rate > 1:
            raise self.invalid(
                "sampling_rate",
                f"must be at most 1 for the {self.sampling_schedule} schedule, got {self.sampling_rate}",
            )
        if self.sampling_schedule == "inverse_sigmoid" and self.sampling_rate < 1:
            raise self.invalid(
                "sampling_rate",
                f"must be at least 1 for the inverse_sigmoid schedule (it is k), got {self.sampling_rate}",
            )

    def resolved(self) -> MusicVAEHParams:
        """These hyperparameters with the preset applied (fields left at their defaults take the
        preset's values)."""
        if self.preset == "none":
            return self
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        values = {
            key: value for key, value in PRESETS[self.preset].items() if getattr(self, key) == defaults[key]
        }
        return dataclasses.replace(self, preset="none", **values)

    @property
    def steps(self) -> int:
        return self.bars * 16
