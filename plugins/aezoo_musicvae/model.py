"""MusicVAE for melodies (Roberts et al., ICML 2018): a bidirectional LSTM encoder and a flat or
hierarchical autoregressive LSTM decoder over the 90 melody classes."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from aezoo.data import Batch
from aezoo.errors import AezooError
from aezoo.model import (
    AutoEncoder,
    ExportPart,
    GaussianPrior,
    LossOutput,
    OptimizerConfig,
    make_optimizer,
)
from aezoo_musicvae.hparams import MusicVAEHParams
from aezoo_musicvae.lstm import LSTMStack, State
from aezoo_musicvae.representation import FIRST_NOTE_CLASS, NUM_CLASSES, STEPS_PER_BAR

#: Chooses the token fed back at a step from that step's logits: ``choose(step, logits) -> [batch]``.
Chooser = Callable[[int, torch.Tensor], torch.Tensor]


def _small_dense(inputs: int, outputs: int) -> nn.Linear:
    """A dense layer initialised as MusicVAE's (weights N(0, 0.001²), zero bias)."""
    layer = nn.Linear(inputs, outputs)
    nn.init.normal_(layer.weight, std=0.001)
    nn.init.zeros_(layer.bias)
    return layer


#: Gumbel noise is -log(-log(u)) with u drawn uniformly in [U_LOW, U_HIGH], strictly inside (0, 1):
#: u = 0 would give -inf (and NaN at temperature 0). The decoder clamps its noise input to the range
#: these give, so another runtime's u = 0 cannot turn into NaN either.
U_LOW = 1e-10
U_HIGH = 1.0 - 1e-7
NOISE_LOW = -math.log(-math.log(U_LOW))
NOISE_HIGH = -math.log(-math.log(U_HIGH))


def gumbel(
    shape: tuple[int, ...], generator: torch.Generator | None = None, device: Any = None
) -> torch.Tensor:
    """Standard Gumbel noise: argmax(logits + τ · noise) samples softmax(logits / τ)."""
    u = torch.rand(shape, generator=generator, device=device).clamp_(U_LOW, U_HIGH)
    return -torch.log(-torch.log(u))


def kl_divergence(z_mean: torch.Tensor, z_sigma: torch.Tensor) -> torch.Tensor:
    """KL(N(z_mean, z_sigma²) ‖ N(0, I)) per example in nats, the scale given as σ itself."""
    return (0.5 * (z_mean.pow(2) + z_sigma.pow(2) - 1) - torch.log(z_sigma)).sum(1)


class MelodyEncoder(nn.Module):
    """Token ids ``int64 [batch, steps]`` → ``(z_mean, z_sigma)``: stacked bidirectional LSTMs over
    the one-hot sequence; the last layer's final forward and backward outputs go through two
    dense layers, σ through softplus (MusicVAE's ``BidirectionalLstmEncoder``)."""

    def __init__(self, sizes: tuple[int, ...], z_size: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList()
        previous = NUM_CLASSES
        for units in sizes:
            self.layers.append(nn.LSTM(previous, units, batch_first=True, bidirectional=True))
            previous = 2 * units
        self.mu = _small_dense(previous, z_size)
        self.sigma = _small_dense(previous, z_size)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.one_hot(tokens, NUM_CLASSES).float()
        h = x
        for layer in self.layers:
            x, (h, _) = layer(x)
        final = torch.cat([h[0], h[1]], dim=1)  # last layer: forward's last step, backward's first
        return self.mu(final), F.softplus(self.sigma(final))


class _Decoder(nn.Module):
    """What flat and hierarchical decoders share: the output layer and the free-running call."""

    steps: int
    output: nn.Linear

    def teacher_forced(self, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Logits ``[batch, steps, 90]`` with the true previous token fed at every step."""
        raise NotImplementedError

    def loop(self, z: torch.Tensor, choose: Chooser) -> tuple[torch.Tensor, torch.Tensor]:
        """Run step by step, feeding back ``choose(step, logits)``: ``(tokens, logits)``."""
        raise NotImplementedError

    def forward(
        self, z: torch.Tensor, temperature: torch.Tensor | None = None, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode ``z`` ``[batch, z]`` autoregressively: ``(tokens int64 [batch, steps], logits
        [batch, steps, 90])``. Each token is ``argmax(logits + temperature · noise)`` with Gumbel
        ``noise`` ``[batch, steps, 90]`` (a sample of softmax(logits / temperature)); no noise, or
        zeros, or temperature 0, is the argmax."""
        if noise is None:
            return self.loop(z, lambda step, logits: logits.argmax(-1))
        scale = torch.ones_like(z[:, 0]) if temperature is None else temperature
        scale = scale.reshape(-1, 1)
        noise = noise.clamp(NOISE_LOW, NOISE_HIGH)  # u = 0 elsewhere gives -inf, and NaN at τ = 0
        return self.loop(z, lambda step, logits: (logits + scale * noise[:, step]).argmax(-1))

    @staticmethod
    def _previous(targets: torch.Tensor) -> torch.Tensor:
        """One-hot previous tokens: zeros at step 0, then the targets shifted right by one."""
        onehot = F.one_hot(targets, NUM_CLASSES).float()
        return F.pad(onehot, (0, 0, 1, 0))[:, :-1]


class FlatDecoder(_Decoder):
    """One LSTM over all steps (MusicVAE's ``CategoricalLstmDecoder``): its initial state is
    tanh(dense(z)), and z is concatenated to every step's input (the previous token, one-hot)."""

    def __init__(self, steps: int, sizes: tuple[int, ...], z_size: int) -> None:
        super().__init__()
        self.steps = steps
        self.rnn = LSTMStack(NUM_CLASSES + z_size, sizes)
        self.initial = _small_dense(z_size, self.rnn.state_size)
        self.output = nn.Linear(sizes[-1], NUM_CLASSES)

    def _state(self, z: torch.Tensor) -> State:
        return self.rnn.state_from(torch.tanh(self.initial(z)))

    def teacher_forced(self, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        previous = self._previous(targets)
        inputs = torch.cat([previous, z.unsqueeze(1).expand(-1, previous.shape[1], -1)], dim=2)
        out, _ = self.rnn(inputs, self._state(z))
        return self.output(out)

    def loop(self, z: torch.Tensor, choose: Chooser) -> tuple[torch.Tensor, torch.Tensor]:
        state = self._state(z)
        previous = torch.zeros(z.shape[0], NUM_CLASSES, dtype=z.dtype, device=z.device)
        tokens, logits = [], []
        for step in range(self.steps):
            out, state = self.rnn.step(torch.cat([previous, z], dim=1), state)
            step_logits = self.output(out)
            token = choose(step, step_logits)
            previous = F.one_hot(token, NUM_CLASSES).to(z.dtype)
            tokens.append(token)
            logits.append(step_logits)
        return torch.stack(tokens, 1), torch.stack(logits, 1)


class HierarchicalDecoder(_Decoder):
    """MusicVAE's ``HierarchicalLstmDecoder`` with one conductor level: a conductor LSTM, its state
    tanh(dense(z)) and no inputs, emits one embedding per bar; each embedding sets the bottom
    LSTM's state (tanh dense, so the state resets every bar) and is concatenated to its inputs.
    The previous token carries over bar lines."""

    def __init__(self, bars: int, sizes: tuple[int, ...], z_size: int) -> None:
        super().__init__()
        self.bars = bars
        self.steps = bars * STEPS_PER_BAR
        self.conductor = LSTMStack(0, sizes)
        self.conductor_initial = _small_dense(z_size, self.conductor.state_size)
        embedding = sizes[-1]
        self.rnn = LSTMStack(NUM_CLASSES + embedding, sizes)
        self.initial = _small_dense(embedding, self.rnn.state_size)
        self.output = nn.Linear(sizes[-1], NUM_CLASSES)

    def embeddings(self, z: torch.Tensor) -> list[torch.Tensor]:
        """One embedding ``[batch, units]`` per bar."""
        state = self.conductor.state_from(torch.tanh(self.conductor_initial(z)))
        out = []
        for _ in range(self.bars):
            embedding, state = self.conductor.step(None, state)
            out.append(embedding)
        return out

    def teacher_forced(self, z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        batch = z.shape[0]
        embedding = torch.stack(self.embeddings(z), 1).flatten(0, 1)  # [batch · bars, units]
        previous = self._previous(targets).reshape(batch * self.bars, STEPS_PER_BAR, NUM_CLASSES)
        inputs = torch.cat([previous, embedding.unsqueeze(1).expand(-1, STEPS_PER_BAR, -1)], dim=2)
        out, _ = self.rnn(inputs, self.rnn.state_from(torch.tanh(self.initial(embedding))))
        return self.output(out).reshape(batch, self.steps, NUM_CLASSES)

    def loop(self, z: torch.Tensor, choose: Chooser) -> tuple[torch.Tensor, torch.Tensor]:
        previous = torch.zeros(z.shape[0], NUM_CLASSES, dtype=z.dtype, device=z.device)
        tokens, logits = [], []
        for bar, embedding in enumerate(self.embeddings(z)):
            state = self.rnn.state_from(torch.tanh(self.initial(embedding)))
            for position in range(STEPS_PER_BAR):
                out, state = self.rnn.step(torch.cat([previous, embedding], dim=1), state)
                step_logits = self.output(out)
                token = choose(bar * STEPS_PER_BAR + position, step_logits)
                previous = F.one_hot(token, NUM_CLASSES).to(z.dtype)
                tokens.append(token)
                logits.append(step_logits)
        return torch.stack(tokens, 1), torch.stack(logits, 1)


def sampling_probability(schedule: str, rate: float, step: int | None) -> float:
    """Probability of feeding back a sampled token instead of the true one at ``step`` (0 in
    evaluation, ``step`` None: validation loss and teacher-forced accuracy use the true tokens)."""
    if step is None:
        return 0.0
    if schedule == "constant":
        return rate
    if schedule == "exponential":
        return 1.0 - rate**step
    if step / rate > 700:  # inverse_sigmoid; exp() would overflow
        return 1.0
    return 1.0 - rate / (rate + math.exp(step / rate))


def note_accuracy(tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per window ``[batch]``: the fraction of the target's note onsets (classes ≥ 2) that
    ``tokens`` reproduce, step and pitch; 1 for a window without onsets (nothing to miss)."""
    onsets = targets >= FIRST_NOTE_CLASS
    hits = (onsets & (tokens == targets)).sum(1)
    count = onsets.sum(1)
    return torch.where(count > 0, hits / count.clamp_min(1), torch.ones_like(hits, dtype=torch.float))


def kl_weight(max_beta: float, beta_rate: float, step: int | None) -> float:
    """β at ``step``: max_beta · (1 − beta_rate^step); max_beta in evaluation."""
    if step is None:
        return max_beta
    return max_beta * (1.0 - beta_rate**step)


def transpose(tokens: torch.Tensor, semitones: int) -> torch.Tensor:
    """Each row's notes moved by a uniform −``semitones``…+``semitones`` (global torch generator);
    a row that would leave 21–108 stays as it is."""
    batch = tokens.shape[0]
    shift = torch.randint(-semitones, semitones + 1, (batch,), device=tokens.device)
    pitched = tokens >= FIRST_NOTE_CLASS
    low = torch.where(pitched, tokens, NUM_CLASSES).amin(1)
    high = torch.where(pitched, tokens, -1).amax(1)
    fits = (low + shift >= FIRST_NOTE_CLASS) & (high + shift <= NUM_CLASSES - 1)
    shift = torch.where(fits, shift, torch.zeros_like(shift))
    return tokens + pitched.long() * shift.unsqueeze(1)


class MusicVAE(GaussianPrior, AutoEncoder):
    """A sequence VAE over melody windows: ``encode`` gives ``z_mean``; ``decode`` the argmax
    melody; ``sample`` draws z ~ N(0, I) and samples each step at a softmax temperature."""

    #: ``aezoo reconstruct RUN FILES`` writes the reconstructions as files (MIDI) too.
    writes_reconstructions = True
    pictured_examples = 8
    #: ``save_outputs`` draws the piano roll of at most this many melodies (all get a MIDI file).
    pianoroll_melodies = 64

    def __init__(self, hp: MusicVAEHParams) -> None:
        super().__init__()
        self.hp = hp.resolved()
        r = self.hp
        self.latent_size = r.z_size
        self.steps = r.steps
        self.encoder = MelodyEncoder(r.enc_rnn_size, r.z_size)
        if r.decoder == "flat":
            self.decoder: _Decoder = FlatDecoder(r.steps, r.dec_rnn_size, r.z_size)
        else:
            self.decoder = HierarchicalDecoder(r.bars, r.dec_rnn_size, r.z_size)

    # -- data ----------------------------------------------------------------------------------

    def prepare_batch(self, batch: Batch, *, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = batch.get("tokens")
        if tokens is None:
            raise AezooError(
                f"musicvae reads melody windows (batch key 'tokens'), got {sorted(batch)}; train it on "
                "bach-chorales or midi:PATH"
            )
        self.check_tokens(tokens)
        tokens = tokens.long()
        if train and self.hp.augment_transpose:
            tokens = transpose(tokens, self.hp.augment_transpose)
        return tokens, tokens

    def check_tokens(self, tokens: torch.Tensor) -> None:
        """A window of the wrong length or with values outside 0…89 is a user error."""
        if tokens.ndim != 2 or tokens.shape[1] != self.steps:
            got = f"{tokens.shape[1]}-step" if tokens.ndim == 2 else f"shape {list(tokens.shape)}"
            bars = tokens.shape[1] // STEPS_PER_BAR if tokens.ndim == 2 else "?"
            bars_now = self.hp.bars
            if bars_now == 2:
                hint = "train on bach-chorales or midi:PATH"
            elif bars_now in (4, 8, 16):
                hint = f"train on folk-tunes-{bars_now}bar, bach-chorales-{bars_now}bar or midi-{bars_now}bar:PATH"
            else:
                hint = "use a dataset of such windows"
            raise AezooError(
                f"this musicvae reads {self.hp.bars}-bar windows ({self.steps} steps), got {got} windows; "
                f"{hint}, or build the model with --set bars={bars}"
            )
        integers = tokens.dtype in (torch.int64, torch.int32)
        if not integers or (tokens.numel() and not 0 <= int(tokens.min()) <= int(tokens.max()) < NUM_CLASSES):
            raise AezooError(f"melody tokens must be integers in 0…{NUM_CLASSES - 1}")

    def example_batch(self, batch_size: int, generator: torch.Generator | None = None) -> Batch:
        shape = (batch_size, self.steps)
        return {"tokens": torch.randint(0, NUM_CLASSES, shape, generator=generator, device=self.device)}

    # -- inference -----------------------------------------------------------------------------

    def encode(self, inputs: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``z_mean``."""
        return self.encoder(inputs.long())[0]

    def decode(self, code: torch.Tensor) -> torch.Tensor:
        """The argmax melody ``int64 [batch, steps]``."""
        return self.decoder(code)[0]

    @torch.no_grad()
    def sample(
        self, n: int, *, temperature: float = 1.0, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n`` melodies from z ~ N(0, I), each step sampled from softmax(logits / temperature)."""
        z = torch.randn(n, self.latent_size, generator=generator, device=self.device)
        noise = gumbel((n, self.steps, NUM_CLASSES), generator, self.device)
        return self.decoder(z, torch.full((n,), float(temperature), device=self.device), noise)[0]

    # -- training ------------------------------------------------------------------------------

    def loss(self, inputs: torch.Tensor, targets: torch.Tensor, step: int | None = None) -> LossOutput:
        hp = self.hp
        z_mean, z_sigma = self.encoder(inputs)
        z = z_mean + z_sigma * torch.randn_like(z_mean)
        probability = (
            sampling_probability(hp.sampling_schedule, hp.sampling_rate, step) if self.training else 0.0
        )
        if probability > 0:

            def choose(position: int, logits: torch.Tensor) -> torch.Tensor:
                sampled = (logits.detach() + gumbel(logits.shape, device=logits.device)).argmax(-1)
                use = torch.rand(sampled.shape, device=sampled.device) < probability
                return torch.where(use, sampled, targets[:, position])

            logits = self.decoder.loop(z, choose)[1]
        else:
            logits = self.decoder.teacher_forced(z, targets)
        reconstruction = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none").sum(1)
        kl = kl_divergence(z_mean, z_sigma)
        kl_cost = (kl - hp.free_bits * math.log(2.0)).clamp_min(0)
        beta = kl_weight(hp.max_beta, hp.beta_rate, step)
        loss = reconstruction.mean() + beta * kl_cost.mean()
        logs = {
            "reconstruction": reconstruction.mean().detach(),
            "kl": kl.mean().detach(),
            "kl_bits": (kl.mean() / math.log(2.0)).detach(),
            "accuracy": (logits.detach().argmax(-1) == targets).float().mean(),
        }
        if step is not None:
            logs["beta"] = torch.tensor(beta)
            logs["sampling_probability"] = torch.tensor(probability)
        return LossOutput(loss, logs)

    @torch.no_grad()
    def evaluate(self, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms, and reconstruction accuracy from ``z_mean``, teacher-forced and sampled
        (argmax tokens fed back): per step (``accuracy``, ``sampled_accuracy``, as MusicVAE
        reports) and per note (``note_accuracy``, ``sampled_note_accuracy``: see
        :func:`note_accuracy`). Holds are half the steps of a folk tune and three quarters of a
        chorale's, so a decoder that writes only holds scores that much per step, and 0 per note."""
        out = self.loss(inputs, targets, None)
        z_mean = self.encode(inputs)
        teacher = self.decoder.teacher_forced(z_mean, targets).argmax(-1)
        sampled = self.decode(z_mean)
        return {
            "loss": out.loss,
            "reconstruction": out.logs["reconstruction"],
            "kl": out.logs["kl"],
            "kl_bits": out.logs["kl_bits"],
            "accuracy": (teacher == targets).float().mean(),
            "sampled_accuracy": (sampled == targets).float().mean(),
            "note_accuracy": note_accuracy(teacher, targets).mean(),
            "sampled_note_accuracy": note_accuracy(sampled, targets).mean(),
        }

    def configure_optimizers(self, config: OptimizerConfig) -> dict[str, Any]:
        """The configured optimiser (Adam by default) with MusicVAE's exponential learning-rate
        decay, and the gradient clipped to ``grad_clip`` before every step."""
        hp = self.hp
        optimizer = make_optimizer(self.parameters(), config)
        if hp.grad_clip is not None:
            params = [p for p in self.parameters() if p.requires_grad]
            limit = hp.grad_clip

            def clip(opt: Any, args: Any, kwargs: Any) -> None:
                nn.utils.clip_grad_norm_(params, limit)

            optimizer.register_step_pre_hook(clip)
        lr, floor, decay = config.lr, min(hp.min_learning_rate, config.lr), hp.decay_rate
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: ((lr - floor) * decay**step + floor) / lr
        )
        return {"model": (optimizer, schedule)}

    # -- export --------------------------------------------------------------------------------

    def export_parts(self) -> dict[str, ExportPart]:
        from aezoo_musicvae.exporting import export_parts

        return export_parts(self)

    def export_decoding(self) -> dict[str, Any]:
        from aezoo_musicvae.exporting import export_decoding

        return export_decoding(self)

    # -- files and pictures ----------------------------------------------------------------------

    def read_examples(self, paths: list[str], **options: Any) -> Batch:
        """The first ``bars``-bar window with notes of each MIDI file (its first non-drum
        instrument that has one; highest note wins where notes overlap)."""
        from aezoo_musicvae.midi import UnusableMidi, read_notes
        from aezoo_musicvae.representation import windows

        rows = []
        for path in paths:
            if not Path(path).is_file():
                raise AezooError(f"{path} does not exist; give a MIDI file (.mid)")
            try:
                instruments = read_notes(path)
            except UnusableMidi as exc:
                raise AezooError(f"{path} is unusable: {exc}; give a 4/4 MIDI file with a melody") from None
            found = next((w[0] for notes in instruments if len(w := windows(notes, self.hp.bars))), None)
            if found is None:
                raise AezooError(
                    f"{path} holds no {self.hp.bars}-bar melody (notes in {self.hp.bars} consecutive bars "
                    "without a bar of silence)"
                )
            rows.append(torch.from_numpy(found))
        return {"tokens": torch.stack(rows).to(self.device)}

    def save_outputs(self, outputs: torch.Tensor, path: str | os.PathLike[str]) -> list[Path]:
        """One MIDI file per melody (``STEM-1.mid``, ...) and ``STEM-pianoroll.png`` of the first
        ``pianoroll_melodies``; ``path`` a folder (existing, or written with a trailing slash)
        means ``FOLDER/melody-1.mid``, ..."""
        from aezoo_musicvae.midi import write_melody
        from aezoo_musicvae.pianoroll import piano_rolls, save_png

        stem = Path(path)
        if stem.is_dir() or str(path).endswith(("/", os.sep)):
            stem = stem / "melody"
        elif stem.suffix.lower() in (".mid", ".midi", ".png"):
            stem = stem.with_suffix("")
        tokens = outputs.detach().cpu().numpy()
        width = len(str(len(tokens)))
        written = [
            write_melody(row, stem.with_name(f"{stem.name}-{i + 1:0{width}d}.mid"))
            for i, row in enumerate(tokens)
        ]
        roll = piano_rolls([[row] for row in tokens[: self.pianoroll_melodies]])
        written.append(save_png(roll, stem.with_name(f"{stem.name}-pianoroll.png")))
        return written

    @torch.no_grad()
    def pictures(self, inputs: torch.Tensor, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """``reconstructions``: piano rolls of originals (blue) over their argmax reconstructions
        (orange), up to 8."""
        from aezoo_musicvae.pianoroll import piano_rolls

        n = min(self.pictured_examples, len(inputs))
        recon = self(inputs[:n]).cpu().numpy()
        originals = targets[:n].cpu().numpy()
        return {"reconstructions": piano_rolls([[originals[i], recon[i]] for i in range(n)])}


def build(hp: MusicVAEHParams) -> MusicVAE:
    return MusicVAE(hp)
