"""Checks that apply to models with a capability (:mod:`aezoo.testing.capabilities`): sampling,
likelihoods, files, upscaling, integer codes, step-by-step decoders, and each data kind's
``decoding`` section."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from aezoo.model import AutoEncoder, ExportPart, TensorSpec
from aezoo.testing import _support
from aezoo.testing.capabilities import (
    AUTOREGRESSIVE,
    FILES,
    IMAGE_DATA,
    INTEGER_CODES,
    LIKELIHOOD,
    MELODY_DATA,
    PRIOR,
    UPSCALER,
    requires,
    upscale_factor,
)

#: The files of each data kind that ``read_examples`` reads back (others: every file written).
READABLE_FILES = {"image": (".png",), "melody": (".mid", ".midi")}
#: Files hold 8 bits per value: a float read back is within one level of what was written.
FILE_ATOL = 1 / 255 + 1e-6


@requires(PRIOR)
def check_sample_shapes_and_range(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """``sample(n)`` gives ``n`` rows shaped like ``forward``'s, finite and inside the decoder
    output's declared range, at any temperature; the same generator seed gives the same samples."""
    model = _support.build(architecture, hparams).eval()
    inputs, _ = _support.inputs(model, 2)
    spec, _ = _decoded_output(model)
    with torch.no_grad():
        reference = _support.first(model(inputs))
        drawn = [
            _support.first(
                model.sample(5, temperature=t, generator=torch.Generator(model.device).manual_seed(s))
            )
            for t, s in ((1.0, 0), (1.0, 0), (1.0, 1), (0.5, 0))
        ]
    for samples in drawn:
        assert samples.shape == (5, *reference.shape[1:]), (
            f"sample(5) gives shape {tuple(samples.shape)}; forward() gives rows of {tuple(reference.shape[1:])}"
        )
        assert samples.dtype == reference.dtype, (
            f"sample() gives {samples.dtype}, forward() {reference.dtype}"
        )
        if samples.is_floating_point():
            assert torch.isfinite(samples).all(), "sample() gives values that are not finite"
        if spec.range is not None:
            lo, hi = spec.range
            assert lo <= float(samples.min()) and float(samples.max()) <= hi, (
                f"samples range over [{float(samples.min()):.4g}, {float(samples.max()):.4g}], outside the "
                f"decoder output {spec.name!r}'s declared range {spec.range}"
            )
    assert torch.equal(drawn[0], drawn[1]), "sample() with two generators of one seed gives different samples"
    assert not torch.equal(drawn[0], drawn[2]), "sample() ignores its generator: seeds 0 and 1 give the same"


@requires(LIKELIHOOD)
def check_log_likelihood(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """``log_likelihood`` gives one finite number per example, and on average over a fixed batch
    it is no lower with 64 importance samples than with 1 (the bound tightens with samples). The
    model first takes 10 steps on that batch: at initialisation it hardly uses its code, so the
    gain is below the estimates' noise."""
    model = _support.build(architecture, hparams)
    inputs, targets = _support.inputs(model, 8, seed=3)
    _support.train_steps(model, inputs, targets, steps=10, lr=1e-2)
    model.eval()
    torch.manual_seed(0)
    with torch.no_grad():
        ones = [model.log_likelihood(inputs, targets, 1) for _ in range(16)]  # type: ignore[attr-defined]
        many = model.log_likelihood(inputs, targets, 64)  # type: ignore[attr-defined]
    for samples, value in ((1, ones[0]), (64, many)):
        assert tuple(value.shape) == (8,), f"log_likelihood of 8 examples has shape {tuple(value.shape)}"
        assert torch.isfinite(value).all(), f"log_likelihood with {samples} samples is not finite: {value}"
    one = float(torch.stack(ones).mean())
    assert float(many.mean()) >= one, (
        f"log_likelihood averages {float(many.mean()):.4f} nats with 64 samples, lower than {one:.4f} with 1"
    )


@requires(FILES)
def check_files_round_trip(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Data written by ``save_outputs`` is read back by ``read_examples`` (then ``prepare_batch``)
    as the same examples: every row, its shape, floats within one 8-bit level; written and read a
    second time, nothing changes at all."""
    model = _support.build(architecture, hparams).eval()
    _, targets = _support.inputs(model, 3, seed=6)
    with tempfile.TemporaryDirectory() as tmp:
        once = _write_and_read(model, targets, Path(tmp) / "once")
        twice = _write_and_read(model, once, Path(tmp) / "twice")
    assert once.shape == targets.shape, (
        f"{len(targets)} examples of shape {tuple(targets.shape)} were read back as {tuple(once.shape)}"
    )
    if targets.is_floating_point():
        diff = float((once - targets).abs().max())
        assert diff <= FILE_ATOL, f"values read back differ by {diff:.4g} from those written"
    assert torch.equal(once, twice), "written and read a second time, the examples change"


@requires(UPSCALER)
def check_upscales_by_a_whole_factor(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """The output is the input enlarged by one whole factor on every spatial axis, the shape of its
    target, at each example size; a ``scale`` in the image ``decoding`` section is that factor."""
    model = _support.build(architecture, hparams).eval()
    factor = upscale_factor(model)
    assert factor is not None
    for n in (1, 3):
        inputs, targets = _support.inputs(model, n)
        with torch.no_grad():
            out = _support.first(model(inputs))
        want = (*inputs.shape[:2], *(s * factor for s in inputs.shape[2:]))
        assert tuple(out.shape) == want == tuple(targets.shape), (
            f"input {tuple(inputs.shape)} gives {tuple(out.shape)}; ×{factor} is {want}"
        )
    decoding = model.export_decoding() or {}
    if "scale" in decoding:
        assert decoding["scale"] == factor, (
            f"decoding says scale {decoding['scale']}, the model upscales ×{factor}"
        )


@requires(INTEGER_CODES)
def check_integer_codes(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """``encode`` gives integer codes inside the decoder's declared indices (``TensorSpec.classes``
    or ``range``), of the dtype the decoder takes; the decoder turns the lowest and the highest
    index everywhere into finite outputs."""
    model = _support.build(architecture, hparams).eval()
    decoder = model.export_parts()["decoder"]
    spec = decoder.inputs[0]
    classes = getattr(spec, "classes", None)
    bounds = (0, classes - 1) if classes else spec.range
    assert bounds is not None, (
        f"the decoder's integer input {spec.name!r} declares neither classes nor a range: runtimes "
        "cannot draw a valid code"
    )
    lo, hi = bounds
    inputs, _ = _support.inputs(model, 3)
    with torch.no_grad():
        code = _support.first(model.encode(inputs))
        args = decoder.example(3)
    assert code.dtype == args[0].dtype, f"encode() gives {code.dtype}, the decoder takes {args[0].dtype}"
    assert lo <= int(code.min()) and int(code.max()) <= hi, (
        f"codes range over {int(code.min())}…{int(code.max())}, outside {lo}…{hi}"
    )
    for value in (lo, hi):
        with torch.no_grad():
            outs = _support.tensors(decoder.module(torch.full_like(args[0], int(value)), *args[1:]))
        for out_spec, out in zip(decoder.outputs, outs, strict=True):
            if out.is_floating_point():
                assert torch.isfinite(out).all(), f"code {int(value)} decodes to {out_spec.name!r} not finite"


@requires(AUTOREGRESSIVE)
def check_decisions_match_outputs(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """Each integer output the decoder chooses step by step is the argmax of the scores its
    ``ExportPart.decisions`` names (what export validation judges near-ties by)."""
    model = _support.build(architecture, hparams).eval()
    part = model.export_parts()["decoder"]
    assert part.decisions is not None
    torch.manual_seed(0)
    with torch.no_grad():
        args = part.example(3)
        outs = _support.tensors(part.module(*args))
        scores = part.decisions(args, outs)
    names = [spec.name for spec in part.outputs]
    assert scores, "decisions() names no output"
    for name, score in scores.items():
        assert name in names, f"decisions() names {name!r}; the decoder outputs {names}"
        chosen = outs[names.index(name)]
        assert not chosen.is_floating_point(), f"decisions() names {name!r}, a float output"
        assert torch.equal(chosen, score.argmax(-1)), f"{name!r} is not the argmax of its decisions() scores"


@requires(IMAGE_DATA)
def check_image_decoding_matches_outputs(architecture: str, hparams: Mapping[str, Any] | None = None) -> None:
    """The image ``decoding`` section describes the decoder's output: NCHW, its channels, values
    inside its range."""
    model = _support.build(architecture, hparams).eval()
    spec, out = _decoded_output(model)
    decoding = model.export_decoding() or {}
    assert out.ndim == 4 and decoding["layout"] == "NCHW", (
        f"{spec.name!r} has shape {tuple(out.shape)}, not NCHW"
    )
    assert out.shape[1] == decoding["channels"], (
        f"decoding says {decoding['channels']} channels, {spec.name!r} has {out.shape[1]}"
    )
    lo, hi = decoding["range"]
    assert lo <= float(out.min()) and float(out.max()) <= hi, f"{spec.name!r} leaves the range {lo}…{hi}"
    if spec.range is not None:
        assert list(spec.range) == [lo, hi], f"decoding's range {[lo, hi]} is not the output's {spec.range}"


@requires(MELODY_DATA)
def check_melody_decoding_matches_outputs(
    architecture: str, hparams: Mapping[str, Any] | None = None
) -> None:
    """The melody ``decoding`` section describes the decoder's tokens: one per step, every class a
    hold, a note off or the note on of one pitch in its range."""
    model = _support.build(architecture, hparams).eval()
    spec, tokens = _decoded_output(model)
    decoding = model.export_decoding() or {}
    steps, classes, events = decoding["steps"], decoding["classes"], decoding["events"]
    assert tokens.ndim == 2 and tokens.shape[1] == steps, f"{spec.name!r} has shape {tuple(tokens.shape)}"
    assert not tokens.is_floating_point(), f"{spec.name!r} is {tokens.dtype}, not integer tokens"
    assert int(tokens.min()) >= 0 and int(tokens.max()) < classes, f"tokens leave 0…{classes - 1}"
    if "bars" in decoding:
        assert decoding["bars"] * decoding["steps_per_bar"] == steps, "bars × steps_per_bar is not steps"
    pitches = events["highest_pitch"] - events["lowest_pitch"] + 1
    assert events["first_note_on"] + pitches == classes, (
        f"{classes} classes, but note ons from {events['first_note_on']} for {pitches} pitches"
    )
    assert {events["hold"], events["note_off"]}.isdisjoint(range(events["first_note_on"], classes))


def _decoded_output(model: AutoEncoder) -> tuple[TensorSpec, torch.Tensor]:
    """The decoder output a person sees or hears (``decoding["output"]``, else the first), with
    its value on the decoder's example of 2."""
    part: ExportPart = model.export_parts()["decoder"]
    names = [spec.name for spec in part.outputs]
    wanted = (model.export_decoding() or {}).get("output", names[0])
    assert wanted in names, f"decoding names output {wanted!r}; the decoder has {names}"
    torch.manual_seed(0)
    with torch.no_grad():
        outs = _support.tensors(part.module(*part.example(2)))
    return part.outputs[names.index(wanted)], outs[names.index(wanted)]


def _write_and_read(model: AutoEncoder, examples: torch.Tensor, folder: Path) -> torch.Tensor:
    """Each example saved on its own with ``save_outputs``, the files of its data kind read back
    together with ``read_examples``, then prepared as targets."""
    folder.mkdir()
    kind = (model.export_decoding() or {}).get("kind")
    readable = READABLE_FILES.get(kind)
    paths = []
    for i in range(len(examples)):
        written = [Path(p) for p in model.save_outputs(examples[i : i + 1], folder / f"example-{i}")]
        assert written and all(p.is_file() for p in written), f"save_outputs() reported {written}"
        ours = [p for p in written if readable is None or p.suffix.lower() in readable]
        assert len(ours) == 1, f"one example was saved as {[p.name for p in written]}"
        paths += ours
    batch = model.read_examples([str(p) for p in paths])
    _, targets = model.prepare_batch(batch, train=False)
    return targets
