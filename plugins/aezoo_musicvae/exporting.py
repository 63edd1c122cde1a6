"""What a MusicVAE export is to other runtimes: the parts traced, and the manifest's ``decoding``
section (tokens to notes, and notes to MIDI exactly as :func:`aezoo_musicvae.midi.write_melody`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from aezoo.model import ExportPart, TensorSpec
from aezoo_musicvae import midi
from aezoo_musicvae.model import U_HIGH, U_LOW, gumbel
from aezoo_musicvae.representation import (
    FIRST_NOTE_CLASS,
    MAX_PITCH,
    MIN_PITCH,
    NO_EVENT,
    NOTE_OFF,
    NUM_CLASSES,
    STEPS_PER_BAR,
    STEPS_PER_QUARTER,
)

if TYPE_CHECKING:
    from aezoo_musicvae.model import MusicVAE

#: How to draw the decoder's ``noise`` input (the rule :func:`~aezoo_musicvae.model.gumbel` follows).
NOISE = {
    "kind": "gumbel",
    "u_low": U_LOW,
    "u_high": U_HIGH,
    "rule": "noise = -log(-log(u)), u uniform in [u_low, u_high], strictly inside (0, 1) (u = 0 would give "
    "-inf, and NaN at temperature 0; the decoder clamps noise to the range this rule gives); zeros decode "
    "the argmax",
}
#: How to choose the decoder's ``temperature`` input.
TEMPERATURE = {
    "kind": "constant",
    "value": 1.0,
    "min": 0.0,
    "note": "1 samples the model's distribution, lower is more conservative, 0 is the argmax",
}
#: How decoded tokens become notes (:func:`aezoo_musicvae.representation.events_to_notes`).
RULE = (
    f"a class c >= {FIRST_NOTE_CLASS} ends the sounding note (if any) and starts MIDI pitch {MIN_PITCH} + "
    f"(c - {FIRST_NOTE_CLASS}); {NOTE_OFF} ends the sounding note (silence follows); {NO_EVENT} changes "
    "nothing (the note or the silence goes on); a note still sounding after the last step ends there"
)


def export_decoding(model: MusicVAE) -> dict[str, Any]:
    """The manifest's ``decoding`` section for melodies."""
    return {
        "kind": "melody",
        "output": "tokens",
        "steps": model.steps,
        "bars": model.hp.bars,
        "steps_per_bar": STEPS_PER_BAR,
        "steps_per_quarter": STEPS_PER_QUARTER,
        "time_signature": [4, 4],
        "classes": NUM_CLASSES,
        "events": {
            "hold": NO_EVENT,
            "note_off": NOTE_OFF,
            "first_note_on": FIRST_NOTE_CLASS,
            "lowest_pitch": MIN_PITCH,
            "highest_pitch": MAX_PITCH,
        },
        "rule": RULE,
        "midi": {
            "tempo_qpm": midi.QPM,
            "velocity": midi.VELOCITY,
            "program": midi.PROGRAM,
            "ticks_per_quarter": midi.RESOLUTION,
            "seconds_per_step": midi.SECONDS_PER_STEP,
            "track_name": midi.TRACK_NAME,
        },
    }


def export_parts(model: MusicVAE) -> dict[str, ExportPart]:
    """The encoder (tokens → z_mean, z_sigma) and the sampling decoder (z, temperature, noise →
    tokens, logits), described for other runtimes."""
    steps, bars = model.steps, model.hp.bars
    tokens_doc = (
        f"melody events, int64 [batch, {steps}] ({bars} bars of 16 sixteenth-note steps, 4/4): "
        "0 = no event (hold), 1 = note off, 2 + (pitch − 21) = note on of MIDI pitch 21–108"
    )

    def decoder_example(n: int) -> tuple[torch.Tensor, ...]:
        z = torch.randn(n, model.latent_size)
        return z, torch.rand(n) * 1.5, gumbel((n, steps, NUM_CLASSES))

    def decoder_real(inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        n, device = inputs.shape[0], inputs.device
        return (
            model.encode(inputs),
            torch.ones(n, device=device),
            torch.zeros(n, steps, NUM_CLASSES, device=device),
        )

    def decisions(
        args: tuple[torch.Tensor, ...], outputs: tuple[torch.Tensor, ...]
    ) -> dict[str, torch.Tensor]:
        _, temperature, noise = args
        return {"tokens": outputs[1] + temperature.reshape(-1, 1, 1) * noise}

    return {
        "encoder": ExportPart(
            model.encoder,
            [TensorSpec("tokens", tokens_doc, (0, NUM_CLASSES - 1))],
            [
                TensorSpec("z_mean", "mean μ of the posterior q(z|x), float32 [batch, z]"),
                TensorSpec(
                    "z_sigma",
                    "standard deviation σ of q(z|x) (softplus of a dense layer, as MusicVAE; not a "
                    "log-variance), float32 [batch, z]: sample z = z_mean + z_sigma · ε, ε ~ N(0, I)",
                ),
            ],
            lambda n: (model.example_batch(n)["tokens"].cpu(),),
            lambda inputs: (inputs,),
        ),
        "decoder": ExportPart(
            model.decoder,
            [
                TensorSpec("z", "latent vector, float32 [batch, z]; z ~ N(0, I) for new melodies"),
                TensorSpec(
                    "temperature",
                    "softmax temperature per melody (≥ 0), float32 [batch]; 0 (or zero noise) is the argmax",
                    sampling=TEMPERATURE,
                ),
                TensorSpec(
                    "noise",
                    f"standard Gumbel noise, float32 [batch, {steps}, 90]: -log(-log(u)), u uniform in "
                    f"[{U_LOW:g}, {U_HIGH:.7f}] (strictly inside (0, 1)); token = argmax(logits + "
                    "temperature · noise); zeros decode the argmax",
                    sampling=NOISE,
                ),
            ],
            [
                TensorSpec("tokens", tokens_doc.replace("melody events", "decoded melody events"), (0, 89)),
                TensorSpec(
                    "logits",
                    f"unnormalised log-probabilities of each step's 90 classes, float32 [batch, {steps}, 90], "
                    "given the tokens chosen before it",
                ),
            ],
            decoder_example,
            decoder_real,
            decisions=decisions,
            # Logits after up to 256 recurrent steps of a trained model round differently in
            # onnxruntime by about 1e-5 (1.5e-5 seen on the 2-bar benchmark model).
            atol=1e-4,
        ),
    }
