"""musicvae: the melody representation, the datasets, MIDI files, training terms, export, the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import aezoo
from aezoo.data import DataOptions
from aezoo.errors import AezooError
from aezoo_musicvae import abcfiles, corpus, datasets, melodies
from aezoo_musicvae import model as mv
from aezoo_musicvae import representation as rep
from aezoo_musicvae.midi import SECONDS_PER_STEP, read_notes, write_melody
from aezoo_musicvae.representation import Note
from tests.test_cli import aezoo as cli

SMALL = {"enc_rnn_size": (16,), "z_size": 8, "dec_rnn_size": (16,)}
#: One thread: the step-by-step decoder runs thousands of tiny ops, which OpenMP's thread handoffs
#: slow down many times over on a busy 2-core machine.
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def c(pitch: int) -> int:
    return rep.pitch_to_class(pitch)


def midi_file(path, notes, *, drums=(), time_signature=(4, 4), qpm=100.0):
    """A MIDI file with one piano track of ``(pitch, start_step, end_step)`` and optional drums."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*time_signature, 0.0))
    step = 60.0 / qpm / 4
    for program, is_drum, items in ((0, False, notes), (0, True, drums)):
        if items:
            inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
            inst.notes += [pretty_midi.Note(90, p, s * step, e * step) for p, s, e in items]
            pm.instruments.append(inst)
    pm.write(str(path))
    return path


def scale_melody(offset: int = 0, bars: int = 3) -> list[tuple[int, int, int]]:
    """Quarter notes walking up and down from C4 (+offset), ``bars`` bars long."""
    pitches = [60, 62, 64, 65, 67, 65, 64, 62] * bars
    return [(p + offset, 4 * i, 4 * i + 3) for i, p in enumerate(pitches[: 4 * bars])]


# -- representation --------------------------------------------------------------------------------


def test_classes_cover_the_piano_and_decode_to_notes():
    assert (rep.pitch_to_class(21), rep.pitch_to_class(108), rep.NUM_CLASSES) == (2, 89, 90)
    assert rep.class_to_pitch(2 + 39) == 60
    events = [0, 0, c(60), 0, 0, 1, c(62), c(64), 0, 1, 1, 0]
    notes = rep.events_to_notes(events)
    assert notes == [Note(2, 5, 60), Note(6, 7, 62), Note(7, 9, 64)]  # leading holds are silence
    assert rep.notes_to_events(notes, 12).tolist() == [0, 0, c(60), 0, 0, 1, c(62), c(64), 0, 1, 0, 0]
    assert rep.events_to_notes([c(70), 0, 0]) == [Note(0, 3, 70)]  # sounds to the end


def test_monophonic_extraction_highest_wins():
    chord = [Note(0, 4, 60), Note(0, 4, 67), Note(0, 4, 64)]
    assert rep.monophonic(chord) == [Note(0, 4, 67)]
    lower_under_higher = [Note(0, 8, 72), Note(2, 6, 60)]
    assert rep.monophonic(lower_under_higher) == [Note(0, 8, 72)]
    higher_cuts_lower = [Note(0, 8, 60), Note(4, 6, 72)]
    assert rep.monophonic(higher_cuts_lower) == [Note(0, 4, 60), Note(4, 6, 72)]
    assert rep.monophonic([Note(3, 3, 60)]) == [Note(3, 4, 60)]  # at least one step


def test_a_bar_of_silence_ends_a_melody():
    notes = [Note(0, 4, 60), Note(19, 20, 62), Note(36, 40, 64)]  # gaps of 15 and 16 steps
    assert rep.split_at_silence(notes) == [[Note(0, 4, 60), Note(19, 20, 62)], [Note(36, 40, 64)]]


def test_windows_slide_by_one_bar_from_the_melodys_first_bar():
    notes = [Note(16 + 4 * i, 16 + 4 * i + 2, 60 + i) for i in range(12)]  # bars 1-3
    rows = rep.windows(notes, 2)
    assert rows.shape == (2, 32) and rows.dtype == np.int64
    assert rows[0, :3].tolist() == [c(60), 0, 1] and rows[1, 0] == c(64)
    assert rows[0, 16:].tolist() == rows[1, :16].tolist()
    assert rep.windows(notes, 4).shape == (0, 64)


def test_out_of_range_pitches_are_transposed_by_octaves_or_dropped_and_counted():
    notes = [Note(0, 4, 15), Note(4, 8, 60), Note(16, 20, 120), Note(20, 24, 62)]
    stats = rep.WindowStats()
    rows = rep.windows(notes, 1, stats=stats)
    assert rep.events_to_notes(rows[0])[0].pitch == 27 and rep.events_to_notes(rows[1])[0].pitch == 108
    assert (stats.windows, stats.kept, stats.notes_transposed, stats.windows_transposed) == (2, 2, 2, 2)
    dropped = rep.WindowStats()
    assert rep.windows(notes, 1, out_of_range="drop", stats=dropped).shape == (0, 16)
    assert dropped.to_dict()["dropped"] == {"pitch outside 21-108": 2}


def test_duplicate_windows_are_removed_in_order_and_across_sets():
    rows = np.array([[1, 2], [3, 4], [1, 2], [5, 6]])
    seen: set[bytes] = set()
    assert rep.unique_rows(rows, seen).tolist() == [[1, 2], [3, 4], [5, 6]]
    assert rep.unique_rows(np.array([[3, 4], [7, 8]]), seen).tolist() == [[7, 8]]


def test_transposition_augmentation_stays_in_range_and_moves_only_notes():
    tokens = torch.tensor([[c(60), 0, 1, c(64)], [c(21), 0, 0, 0], [0, 1, 0, 0]]).repeat(50, 1)
    torch.manual_seed(0)
    moved = mv.transpose(tokens, 5)
    shift = moved[:, 0] - tokens[:, 0]
    assert set(shift[0::3].tolist()) == set(range(-5, 6))  # all 11 shifts occur
    assert torch.equal(moved[0::3, 3] - tokens[0::3, 3], shift[0::3])
    assert (moved[1::3, 0] >= c(21)).all() and torch.equal(moved[:, 1:3], tokens[:, 1:3])
    assert torch.equal(moved[2::3], tokens[2::3])
    torch.manual_seed(0)
    assert torch.equal(mv.transpose(tokens, 5), moved)  # the global generator, seeded by the trainer


# -- datasets ---------------------------------------------------------------------------------------


def test_split_is_by_piece_and_held_out_windows_are_unseen():
    pieces = [np.full((3, 32), i % 5, dtype=np.int64) + np.arange(3)[:, None] * 10 for i in range(20)]
    splits, info = datasets.split_pieces(pieces, [f"p{i}" for i in range(20)], 2, seed=0)
    assert info["pieces"] == {"train": 16, "val": 2, "test": 2}
    rows = {name: {tuple(r) for r in s.tensors["tokens"].tolist()} for name, s in splits.items()}
    assert not rows["train"] & rows["test"] and not rows["train"] & rows["val"]
    assert sum(info["windows"].values()) == 15 and sum(info["duplicates_removed"].values()) == 45


@pytest.fixture(scope="session")
def corpus_subsets(tmp_path_factory):
    """``(cache root, chorale paths, folk paths)``: 12 chorales and 24 of Ryan's tunes, parsed once
    into a cache shared by the tests."""
    pytest.importorskip("music21")
    root = tmp_path_factory.mktemp("cache")
    chorales = corpus.chorale_paths()[:12]
    folk = [p for p in corpus.folk_paths() if p.parent.name == "ryansMammoth"][:24]
    corpus.chorale_melodies(root, chorales)
    corpus.folk_melodies(root, folk)
    return root, chorales, folk


def _no_parsing(*args, **kwargs):
    raise AssertionError("parsed again despite the cache")


def test_bach_chorales_parse_once_and_are_cached(corpus_subsets, tmp_path, monkeypatch):
    root, some, _ = corpus_subsets
    monkeypatch.setattr(corpus, "chorale_paths", lambda: some)
    monkeypatch.setattr(corpus, "_parse_score", _no_parsing)  # the fixture parsed them
    data = corpus.load_bach_chorales(DataOptions(root=tmp_path / "data", cache=root))
    cache = list((root / "bach-chorales").glob("*.npz"))
    assert len(cache) == 1
    with np.load(cache[0], allow_pickle=False) as stored:  # integers and strings, no pickle
        assert stored["notes"].dtype == np.int32
    tokens = data.train.batch(torch.arange(len(data.train)))["tokens"]
    assert tokens.shape[1] == 32 and int(tokens.min()) >= 0 and int(tokens.max()) < 90
    assert (
        data.info["bars"] == 2
        and sum(data.info["pieces"].values()) + sum(data.info["skipped_pieces"].values()) == 12
    )
    assert (
        corpus.load_bach_chorales_16bar(DataOptions(root=tmp_path / "data", cache=root)).info["steps"] == 256
    )


def test_a_new_cache_version_parses_again(corpus_subsets, tmp_path, monkeypatch):
    root, some, _ = corpus_subsets
    before = corpus._cache_file(root, "bach-chorales", "soprano", [p.name for p in some])
    assert before.exists()
    monkeypatch.setattr(corpus, "CACHE_VERSION", corpus.CACHE_VERSION + 1)
    assert corpus._cache_file(root, "bach-chorales", "soprano", [p.name for p in some]) != before


def test_chorale_pickups_end_bar_zero_so_bar_lines_align():
    pytest.importorskip("music21")
    path = next(p for p in corpus.chorale_paths() if p.name == "bwv101.7.mxl")
    notes = corpus.soprano_notes(path)
    assert notes[0].start == 12  # a one-beat pickup: the last beat of bar 0
    assert any(n.start == 16 for n in notes)  # the downbeat of bar 1


def test_folk_tunes_keep_common_and_cut_time_with_repeats_written_out(corpus_subsets, monkeypatch):
    root, _, some = corpus_subsets
    paths = corpus.folk_paths()
    assert {p.parent.name for p in paths} == set(corpus.FOLK_COLLECTIONS) and len(paths) > 1000
    monkeypatch.setattr(corpus, "folk_tunes", _no_parsing)  # the fixture parsed them
    names, _, skipped = corpus.folk_melodies(root, some)
    assert len(names) + sum(skipped.values()) >= 24 and len(names) >= 3
    assert set(skipped) <= {"not in 2/2 or 4/4", "no notes"} and all(
        n.startswith("ryansMammoth/") for n in names
    )
    assert len(list((root / "folk-tunes").glob("*.npz"))) == 1
    monkeypatch.undo()

    from music21 import stream

    # a tune with repeat marks reads longer than written: its repeats are expanded
    for path in some:
        score = abcfiles.read_abc_file(path)
        if isinstance(score, stream.Score) and any(
            b.direction for b in score.recurse().getElementsByClass("Repeat")
        ):
            try:
                notes = corpus.tune_notes(score)
            except ValueError:
                continue
            written = float(score.parts[0].highestTime if score.parts else score.highestTime) * 4
            assert notes[-1].end > written
            break
    else:
        pytest.fail("no tune with repeats among the first 24 of Ryan's collection")


# -- ABC accidentals --------------------------------------------------------------------------------

#: Two bars in C: a sharp, then F in another octave, then after the bar line a plain F; a flat
#: cancelled by a natural within its bar.
ABC_TUNE = "X:1\nT:Accidentals\nM:4/4\nL:1/4\nK:C\n^F G F f|F _B B =B|B4|\n"


def test_abc_2_1_accidentals_last_to_the_bar_line_in_every_octave():
    pytest.importorskip("music21")
    read = {
        v: abcfiles.note_pitches(abcfiles.read_abc(ABC_TUNE, v)) for v in (abcfiles.ABC_1_3, abcfiles.ABC_2_1)
    }
    assert [p for (p,) in read[abcfiles.ABC_2_1]] == [66, 67, 66, 78, 65, 70, 70, 71, 71]
    assert [p for (p,) in read[abcfiles.ABC_1_3]] == [66, 67, 65, 77, 65, 70, 71, 71, 71]
    assert abcfiles.changed_notes(read[abcfiles.ABC_1_3], read[abcfiles.ABC_2_1]) == 3
    from music21 import converter

    default = converter.parseData(ABC_TUNE, format="abc")  # what music21 does by default: 1.3
    assert abcfiles.note_pitches(default) == read[abcfiles.ABC_1_3]
    declared = converter.parseData("%abc-2.1\n" + ABC_TUNE, format="abc")
    assert abcfiles.note_pitches(declared) == read[abcfiles.ABC_2_1]


def test_accidental_changes_are_counted_per_tune_book(tmp_path):
    pytest.importorskip("music21")
    one, two = tmp_path / "bookA", tmp_path / "bookB"
    one.mkdir()
    two.mkdir()
    waltz = "X:2\nT:Waltz\nM:3/4\nL:1/4\nK:C\n^F G F|F f F|\n"  # one note changes; not in 4/4
    (one / "tunes.abc").write_text(ABC_TUNE + "\n" + waltz)
    (two / "plain.abc").write_text("X:1\nT:Plain\nM:2/2\nL:1/4\nK:G\nG A B c|d4|\n")
    (two / "broken.abc").write_bytes(b"\xff\xfe not utf-8")
    books = abcfiles.accidental_changes(sorted(tmp_path.rglob("*.abc")), corpus.FOLK_METERS)
    assert books["bookA"] == {
        "files": 1, "unreadable": 0, "tunes": 2, "notes": 15, "tunes_changed": 2, "notes_changed": 4,
        "tunes_in_meters": 1, "notes_in_meters": 9, "tunes_changed_in_meters": 1, "notes_changed_in_meters": 3,
    }  # fmt: skip
    assert books["bookB"]["files"] == 2 and books["bookB"]["unreadable"] == 1
    assert books["bookB"]["tunes"] == 1 and books["bookB"]["notes_changed"] == 0


def test_folk_tunes_are_read_the_abc_2_1_way(tmp_path):
    pytest.importorskip("music21")
    book = tmp_path / "book" / "tune.abc"
    book.parent.mkdir()
    book.write_text(ABC_TUNE)
    ((name, notes),) = corpus.folk_tunes(book)
    assert name == "book/tune.abc" and [n.pitch for n in notes][:4] == [66, 67, 66, 78]


# -- the combined melodies dataset ------------------------------------------------------------------


@pytest.fixture(scope="session")
def combined(corpus_subsets):
    root, chorales, folk = corpus_subsets
    sources = {
        "bach-chorales": corpus.chorale_melodies(root, chorales),
        "folk-tunes": corpus.folk_melodies(root, folk),
    }
    return melodies.combine_sources("melodies", sources, 2, seed=0)


def _rows(split) -> set[tuple[int, ...]]:
    return {tuple(r) for r in split.batch(torch.arange(len(split)))["tokens"].tolist()}


def test_melodies_split_each_source_as_on_its_own(combined, corpus_subsets, tmp_path, monkeypatch):
    root, chorales, folk = corpus_subsets
    monkeypatch.setattr(corpus, "chorale_paths", lambda: chorales)
    monkeypatch.setattr(corpus, "folk_paths", lambda: folk)
    monkeypatch.setattr(corpus, "_parse_score", _no_parsing)
    monkeypatch.setattr(corpus, "folk_tunes", _no_parsing)
    options = DataOptions(root=tmp_path, cache=root)
    alone = {
        "bach-chorales": corpus.load_bach_chorales(options),
        "folk-tunes": corpus.load_folk_tunes(options),
    }
    info = combined.info
    assert list(info["sources"]) == list(melodies.SOURCES)
    assert set(info["test_pieces"]) == {n for d in alone.values() for n in d.info["test_pieces"]}
    for name, data in alone.items():
        source = info["sources"][name]
        assert (
            source["pieces"] == data.info["pieces"]
            and source["skipped_pieces"] == data.info["skipped_pieces"]
        )
        for split in ("val", "test"):
            # the same pieces held out; fewer windows only where training has them (from the other source)
            extra = combined.split(f"{split}-{name}")
            assert _rows(extra) <= _rows(data.split(split)) and len(extra) == source["windows"][split]
    loaded = aezoo.plugins.registry().datasets["melodies"].load(options)
    assert loaded.info == info and set(loaded.extra) == set(combined.extra)
    assert torch.equal(
        loaded.test.batch(torch.arange(len(loaded.test)))["tokens"],
        combined.test.batch(torch.arange(len(combined.test)))["tokens"],
    )


def test_melodies_held_out_windows_are_unseen_and_each_kept_once(combined):
    train, val, test = _rows(combined.train), _rows(combined.val), _rows(combined.test)
    assert (
        len(train) == len(combined.train)
        and len(val) == len(combined.val)
        and len(test) == len(combined.test)
    )
    assert not train & val and not (train | val) & test
    assert set(combined.extra) == {f"{s}-{n}" for s in ("val", "test") for n in melodies.SOURCES}
    for name in melodies.SOURCES:
        assert not _rows(combined.split(f"val-{name}")) & train
        assert not _rows(combined.split(f"test-{name}")) & (train | val)
    assert _rows(combined.split("test-bach-chorales")) | _rows(combined.split("test-folk-tunes")) == test
    info = combined.info
    assert info["windows"] == {"train": len(train), "val": len(val), "test": len(test)}
    assert info["extra_splits"]["test-folk-tunes"] == len(combined.split("test-folk-tunes"))
    assert sum(s["windows"]["train"] for s in info["sources"].values()) == len(train)
    limited = combined.limited(4, 3)
    assert len(limited.split("test-folk-tunes")) == 3


def test_per_source_splits_report_note_accuracy(combined):
    from aezoo.evaluation import evaluate_split

    model = aezoo.create("musicvae", **SMALL)
    metrics = evaluate_split(model, combined.split("test-folk-tunes"), seed=2)
    assert {"accuracy", "sampled_accuracy", "note_accuracy", "sampled_note_accuracy"} <= set(metrics)


@pytest.fixture(scope="module")
def midi_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("midi")
    for i in range(4):
        midi_file(root / f"song{i}.mid", scale_melody(i, bars=4), drums=[(36, 0, 1), (38, 4, 5)])
    midi_file(root / "waltz.mid", scale_melody(), time_signature=(3, 4))
    midi_file(root / "drums.mid", [], drums=[(36, 0, 1)])
    (root / "broken.mid").write_bytes(b"not a midi file")
    (root / "notes.txt").write_text("ignored")
    return root


def test_midi_folder_keeps_melodies_and_says_why_the_rest_was_dropped(midi_folder, capsys):
    data = datasets.load_midi_folder(DataOptions(root=midi_folder), str(midi_folder))
    info = data.info
    assert info["files"] == 7 and info["files_kept"] == 4
    assert info["files_dropped"] == {"not in 4/4": 1, "only drums": 1, "not a readable MIDI file": 1}
    assert info["pieces"] == {"train": 2, "val": 1, "test": 1}
    summary = capsys.readouterr().err
    assert "7 MIDI files, 4 kept" in summary and "1 not in 4/4" in summary and "duplicates" in summary


def test_midi_folder_mistakes_are_one_clear_error(midi_folder, tmp_path):
    with pytest.raises(AezooError, match="no such folder"):
        datasets.load_midi_folder(DataOptions(root=tmp_path), str(tmp_path / "nope"))
    with pytest.raises(AezooError, match="holds no MIDI files"):
        datasets.load_midi_folder(DataOptions(root=tmp_path), str(tmp_path))
    midi_file(tmp_path / "one.mid", scale_melody())
    with pytest.raises(AezooError, match="at least 3 are needed"):
        datasets.load_midi_folder(DataOptions(root=tmp_path), str(tmp_path))


# -- MIDI files -------------------------------------------------------------------------------------


def test_written_midi_parses_back_to_exactly_the_decoded_notes(tmp_path):
    import mido
    import pretty_midi

    torch.manual_seed(0)
    model = aezoo.create("musicvae", **SMALL)
    melodies = model.sample(6, temperature=1.5, generator=torch.Generator().manual_seed(1))
    melodies[0] = torch.tensor([0, 0, c(60), 0, 1, c(108), c(21)] + [0] * 25)  # edges of the range
    for i, tokens in enumerate(melodies):
        want = rep.events_to_notes(tokens.tolist())
        path = write_melody(tokens.tolist(), tmp_path / f"m{i}.mid")
        pm = pretty_midi.PrettyMIDI(str(path))
        assert [ts.numerator for ts in pm.time_signature_changes] == [4]
        got = [(n.pitch, n.start, n.end) for n in pm.instruments[0].notes]
        assert got == [(n.pitch, n.start * SECONDS_PER_STEP, n.end * SECONDS_PER_STEP) for n in want]
        ticks = [m.time for m in mido.MidiFile(str(path)).tracks[-1] if m.type == "note_on"]
        assert all(t % 120 == 0 for t in ticks)  # every event on a sixteenth-note tick
        assert read_notes(path) == [want]


# -- training terms ---------------------------------------------------------------------------------


def test_sampling_schedules_and_beta_annealing():
    assert mv.sampling_probability("inverse_sigmoid", 1000, 0) == pytest.approx(1 / 1001)
    assert mv.sampling_probability("inverse_sigmoid", 1000, round(1000 * math.log(1000))) == pytest.approx(
        0.5, abs=1e-3
    )
    assert mv.sampling_probability("inverse_sigmoid", 1000, 10**7) == 1.0
    assert mv.sampling_probability("exponential", 0.99, 100) == pytest.approx(1 - 0.99**100)
    assert mv.sampling_probability("constant", 0.3, 5) == 0.3
    assert mv.sampling_probability("inverse_sigmoid", 1000, None) == 0.0  # evaluation: teacher forcing
    assert mv.kl_weight(0.2, 0.99999, 0) == 0.0
    assert mv.kl_weight(0.2, 0.99999, 100_000) == pytest.approx(0.2 * (1 - 0.99999**100_000))
    assert mv.kl_weight(0.2, 0.99999, None) == 0.2


@pytest.mark.parametrize("free_bits", [0.0, 3.0, 1e6])
def test_free_bits_make_kl_below_them_free(free_bits):
    torch.manual_seed(0)
    model = aezoo.create(
        "musicvae", **SMALL, free_bits=free_bits, max_beta=1.0, beta_rate=0.0, sampling_schedule="constant",
        sampling_rate=0.0,
    )  # fmt: skip
    tokens = model.example_batch(8, torch.Generator().manual_seed(0))["tokens"]
    with torch.no_grad():
        torch.manual_seed(1)
        out = model.loss(tokens, tokens, 10)
        torch.manual_seed(1)
        z_mean, z_sigma = model.encoder(tokens)
    kl = mv.kl_divergence(z_mean, z_sigma)
    expected = out.logs["reconstruction"] + (kl - free_bits * math.log(2)).clamp_min(0).mean()
    assert float(out.loss) == pytest.approx(float(expected), rel=1e-5)
    if free_bits == 1e6:
        assert float(out.loss) == pytest.approx(float(out.logs["reconstruction"]))


def test_kl_matches_torch_distributions_with_sigma_as_scale():
    mean, sigma = torch.randn(4, 6), torch.rand(4, 6) + 0.1
    q = torch.distributions.Normal(mean, sigma)
    p = torch.distributions.Normal(torch.zeros(6), torch.ones(6))
    torch.testing.assert_close(mv.kl_divergence(mean, sigma), torch.distributions.kl_divergence(q, p).sum(1))


def test_note_accuracy_counts_reproduced_onsets_per_window_not_holds():
    targets = torch.tensor([[2, 0, 0, 7, 0, 1], [0, 0, 0, 0, 0, 0], [9, 9, 0, 0, 0, 0]])
    tokens = torch.tensor([[2, 0, 0, 8, 0, 1], [5, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])
    # window 0: one of its two onsets (pitch 7 became 8); window 1 has none: nothing to miss;
    # window 2: writing only holds reproduces no note, though 4 of its 6 steps match
    torch.testing.assert_close(mv.note_accuracy(tokens, targets), torch.tensor([0.5, 1.0, 0.0]))
    model = aezoo.create("musicvae", **SMALL).eval()
    batch = model.example_batch(4, torch.Generator().manual_seed(0))["tokens"]
    metrics = model.evaluate(batch, batch)
    assert {"accuracy", "sampled_accuracy", "note_accuracy", "sampled_note_accuracy"} <= set(metrics)
    assert all(0.0 <= float(metrics[k]) <= 1.0 for k in ("note_accuracy", "sampled_note_accuracy"))


@pytest.mark.parametrize("decoder", ["flat", "hierarchical"])
def test_decoder_shapes_and_teacher_forcing_equals_feeding_the_truth(decoder):
    torch.manual_seed(0)
    model = aezoo.create("musicvae", **SMALL, decoder=decoder, bars=3).eval()
    tokens = model.example_batch(5, torch.Generator().manual_seed(0))["tokens"]
    z = model.encode(tokens)
    assert z.shape == (5, 8)
    with torch.no_grad():
        decoded, logits = model.decoder(z)
        forced = model.decoder.teacher_forced(z, tokens)
        fed = model.decoder.loop(z, lambda step, _: tokens[:, step])[1]
    assert decoded.shape == (5, 48) and decoded.dtype == torch.int64 and logits.shape == (5, 48, 90)
    torch.testing.assert_close(forced, fed, atol=1e-5, rtol=0)
    torch.testing.assert_close(decoded, logits.argmax(-1))


def test_hierarchical_bottom_state_resets_every_bar():
    torch.manual_seed(0)
    hier = aezoo.create("musicvae", **SMALL, decoder="hierarchical").eval()
    flat = aezoo.create("musicvae", **SMALL).eval()
    a = hier.example_batch(2, torch.Generator().manual_seed(0))["tokens"]
    b = a.clone()
    b[:, :15] = (b[:, :15] + 7) % 90  # change bar 0 except its last token
    z = torch.randn(2, 8)
    with torch.no_grad():
        for model, same in ((hier, True), (flat, False)):
            la, lb = model.decoder.teacher_forced(z, a), model.decoder.teacher_forced(z, b)
            assert torch.equal(la[:, 16:], lb[:, 16:]) is same


def test_optimizer_decays_the_learning_rate_and_clips_the_gradient():
    torch.manual_seed(0)
    model = aezoo.create("musicvae", **SMALL, decay_rate=0.9, min_learning_rate=1e-4, grad_clip=0.5)
    optimizer, schedule = model.configure_optimizers(aezoo.model.OptimizerConfig(lr=1e-2))["model"]
    tokens = model.example_batch(4)["tokens"]
    model.loss(tokens, tokens, 0).loss.backward()
    optimizer.step()
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert float(norm) == pytest.approx(0.5, rel=1e-4)
    for _ in range(3):
        schedule.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx((1e-2 - 1e-4) * 0.9**3 + 1e-4)


def test_preset_sets_musicvae_sizes_and_explicit_values_win():
    hp = aezoo.architecture("musicvae").make_hparams(preset="cat-mel_2bar_small", z_size=128).resolved()
    assert (hp.enc_rnn_size, hp.dec_rnn_size, hp.z_size, hp.sampling_rate) == (
        (512,),
        (256, 256),
        128,
        1000.0,
    )


def test_wrong_window_length_is_a_clear_error():
    model = aezoo.create("musicvae", **SMALL)
    with pytest.raises(AezooError, match=r"reads 2-bar windows \(32 steps\), got 256-step.*bars=16"):
        model.prepare_batch({"tokens": torch.zeros(2, 256, dtype=torch.long)}, train=False)
    with pytest.raises(AezooError, match="integers in 0…89"):
        model.prepare_batch({"tokens": torch.full((2, 32), 90)}, train=False)


# -- export -----------------------------------------------------------------------------------------


def test_export_on_real_melodies_tokens_identical_logits_within_1e4(midi_folder, tmp_path):
    torch.manual_seed(0)  # one bar keeps the unrolled decoder (and the test) short
    model = aezoo.create("musicvae", **SMALL, bars=1).eval()
    notes = [read_notes(path)[0] for path in sorted(midi_folder.glob("song*.mid"))]
    tokens = torch.from_numpy(np.concatenate([rep.windows(n, 1) for n in notes]))
    exported = aezoo.export(model, tmp_path / "export", real_inputs=tokens)
    assert len(tokens) == 16 and tokens[:, 0].ge(2).all()
    manifest = exported.manifest
    assert manifest["validation"]["passed"] and all(
        not c["near_ties"] for c in manifest["validation"]["cases"]
    )
    decoder = manifest["models"]["decoder"]
    assert [i["name"] for i in decoder["inputs"]] == ["z", "temperature", "noise"]
    assert [i["shape"] for i in decoder["inputs"]] == [["batch", 8], ["batch"], ["batch", 16, 90]]
    assert decoder["outputs"][0]["dtype"] == "int64" and "softplus" in json.dumps(
        manifest["models"]["encoder"]
    )
    z = exported.encoder(tokens.numpy())["z_mean"]
    n = len(z)
    for temperature, noise in (
        (0.0, np.zeros((n, 16, 90), np.float32)),
        (0.7, mv.gumbel((n, 16, 90)).numpy()),
    ):
        got = exported.decoder(z, np.full(n, temperature, np.float32), noise)
        with torch.no_grad():
            want_tokens, want_logits = model.decoder(
                torch.from_numpy(z), torch.full((n,), temperature), torch.from_numpy(noise)
            )
        np.testing.assert_array_equal(got["tokens"], want_tokens.numpy())
        np.testing.assert_allclose(got["logits"], want_logits.numpy(), atol=1e-4, rtol=0)
    # u = 0 gives -inf noise (and u = 1 +inf): the decoder clamps it, so temperature 0 is still the
    # argmax (no NaN) and a runtime that draws u = 0 picks what PyTorch picks
    argmax = exported.decoder(z, np.zeros(n, np.float32), np.zeros((n, 16, 90), np.float32))["tokens"]
    infinite = mv.gumbel((n, 16, 90)).numpy()
    infinite[:, :, ::7], infinite[:, :, 3::11] = -np.inf, np.inf
    cold = exported.decoder(z, np.zeros(n, np.float32), infinite)
    np.testing.assert_array_equal(cold["tokens"], argmax)
    assert np.isfinite(cold["logits"]).all()
    warm = exported.decoder(z, np.full(n, 0.7, np.float32), infinite)["tokens"]
    with torch.no_grad():
        want = model.decoder(torch.from_numpy(z), torch.full((n,), 0.7), torch.from_numpy(infinite))[0]
    np.testing.assert_array_equal(warm, want.numpy())
    # the manifest says how to draw each input and how tokens become notes and MIDI
    noise, temperature = decoder["inputs"][2]["sampling"], decoder["inputs"][1]["sampling"]
    assert noise["kind"] == "gumbel" and 0 < noise["u_low"] < noise["u_high"] < 1
    assert temperature == {**temperature, "kind": "constant", "value": 1.0, "min": 0.0}
    decoding = manifest["decoding"]
    assert decoding["kind"] == "melody" and decoding["output"] == "tokens"
    assert (decoding["steps"], decoding["bars"], decoding["steps_per_bar"]) == (16, 1, 16)
    assert decoding["midi"] == {
        "tempo_qpm": 120.0,
        "velocity": 80,
        "program": 0,
        "ticks_per_quarter": 480,
        "seconds_per_step": 0.125,
        "track_name": "aezoo musicvae melody",
    }
    events = decoding["events"]
    rng = np.random.default_rng(0)
    for row in rng.choice([0, 0, 0, 1, 2, 40, 89], size=(20, 16)):  # the rule, read off the manifest
        notes, sounding = [], None
        for step, c in enumerate(row):
            if c != events["hold"] and sounding is not None:
                notes.append(rep.Note(sounding[0], step, sounding[1]))
                sounding = None
            if c >= events["first_note_on"]:
                sounding = (step, events["lowest_pitch"] + c - events["first_note_on"])
        if sounding is not None:
            notes.append(rep.Note(sounding[0], len(row), sounding[1]))
        assert notes == rep.events_to_notes(row)


def test_decoder_variants_are_judged_by_their_choices(midi_folder, tmp_path, monkeypatch):
    """fp16 and int8 decoders are kept when their tokens agree with fp32's (logits after a flipped
    token are not compared); a decoder that chooses differently is refused and nothing is written."""
    from aezoo.onnx import exporter
    from aezoo.onnx.exporter import ValidationFailed

    torch.manual_seed(0)  # 64 units: SMALL's untrained scores tie everywhere (median margin 0.0015)
    sizes = {"enc_rnn_size": (64,), "z_size": 16, "dec_rnn_size": (64,)}
    model = aezoo.create("musicvae", **sizes, bars=1).eval()
    notes = [read_notes(path)[0] for path in sorted(midi_folder.glob("song*.mid"))]
    tokens = torch.from_numpy(np.concatenate([rep.windows(n, 1) for n in notes]))
    exported = aezoo.export(model, tmp_path / "export", real_inputs=tokens, dtype="fp16")
    models = exported.manifest["models"]
    assert models["decoder"]["atol"] == 1e-4 and models["encoder"]["atol"] == 1e-5
    cases = models["decoder.fp16"]["validation"]["cases"]
    choices = [c for c in cases if c["output"] == "tokens"]
    # two cases, each in onnxruntime and in half-precision arithmetic (onnx's reference evaluator)
    assert [c["runtime"] for c in choices] == ["onnxruntime"] * 2 + ["reference"] * 2
    assert all(c["identical_fraction"] >= 0.95 and c["passed"] for c in choices)
    assert all("first flipped choice" in c["compared"] for c in cases if c["output"] == "logits")
    # int8: how many of an untrained decoder's near-tied choices flip depends on the processor's int8
    # kernels (12.5 % here without VNNI); either way the gate keeps or refuses it by the same rule
    try:
        quantized = aezoo.export(model, tmp_path / "int8", real_inputs=tokens, quantize="int8")
    except ValidationFailed as exc:
        assert "chooses a different 'tokens' than the fp32 decoder" in str(exc) and "more than 5%" in str(exc)
        assert not (tmp_path / "int8").exists()
    else:
        cases = quantized.manifest["models"]["decoder.int8"]["validation"]["cases"]
        choices = [c for c in cases if c["output"] == "tokens"]
        assert len(choices) == 2 and all(c["identical_fraction"] >= 0.95 and c["passed"] for c in choices)

    torch.manual_seed(1)
    other = aezoo.create("musicvae", **sizes, bars=1).eval()
    aezoo.export(other, tmp_path / "other")
    real_make = exporter.make_variant

    def another_decoder(fp32_path, path, kind):  # a "variant" with other weights altogether
        real_make(tmp_path / "other" / "decoder.onnx", path, kind)

    monkeypatch.setattr(exporter, "make_variant", another_decoder)
    with pytest.raises(ValidationFailed, match=r"chooses a different 'tokens' than the fp32 decoder"):
        aezoo.export(model, tmp_path / "refused", real_inputs=tokens, dtype="fp16")
    assert not (tmp_path / "refused").exists()


def test_agreeing_prefix_ends_at_each_sequences_first_flip():
    from aezoo.onnx.variants import agreeing_prefix

    part = aezoo.create("musicvae", **SMALL, bars=1).export_parts()["decoder"]
    want = np.array([[1, 2, 3, 4], [1, 2, 3, 4]])
    got = np.array([[1, 2, 3, 4], [1, 9, 3, 4]])
    logits = np.zeros((2, 4, 90), np.float32)
    mask = agreeing_prefix(part, [want, logits], [got, logits])
    assert mask.tolist() == [[True] * 4, [True, True, False, False]]


def test_parity_check_reports_a_near_tie_flip_and_fails_a_real_mismatch():
    from aezoo.onnx.validation import compare

    scores = torch.zeros(2, 4, 3)
    scores[:, :, 0] = 1.0
    scores[1, 2, 2] = 1.0 - 1e-6  # a near-tie at example 1, step 2
    tokens = scores.argmax(-1)
    logits = scores.clone()
    onnx_tokens = tokens.numpy().copy()
    onnx_tokens[1, 2:] = [2, 1]  # flipped, then diverged
    onnx_logits = logits.numpy().copy()
    onnx_logits[1, 3] = 5.0  # after the flip: not compared
    report = compare(
        "case", ["tokens", "logits"], [tokens, logits], [onnx_tokens, onnx_logits], 1e-5, {"tokens": scores}
    )
    assert report.passed and [
        (t.example, t.position, t.torch_choice, t.onnx_choice) for t in report.near_ties
    ] == [(1, [2], 0, 2)]
    assert "near-tie at example 1, position [2]" in report.outputs[0].note
    onnx_tokens[1, 2] = 1  # scores 1 apart: a real mismatch
    report = compare(
        "case", ["tokens", "logits"], [tokens, logits], [onnx_tokens, onnx_logits], 1e-5, {"tokens": scores}
    )
    assert not report.passed and not report.near_ties and "first differs at [1, 2]" in report.outputs[0].note


# -- the command line -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(midi_folder, tmp_path_factory):
    from aezoo.trainer import TrainConfig

    config = TrainConfig(max_steps=2, batch_size=8, device="cpu", log_every=1)
    out = tmp_path_factory.mktemp("runs") / "musicvae"
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = aezoo.train(
            "musicvae", f"midi:{midi_folder}", hparams=SMALL, config=config, out=out, progress=False
        )
    finally:
        torch.set_num_threads(before)
    return run.path


def _notes(path):
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(str(path))
    return [
        Note(round(n.start / SECONDS_PER_STEP), round(n.end / SECONDS_PER_STEP), n.pitch)
        for n in pm.instruments[0].notes
    ]


def test_cli_sample_writes_midi_files_and_a_piano_roll(run, tmp_path):
    result = cli(
        "sample", str(run), "-n", "3", "--temperature", "0.5", "--out", str(tmp_path / "s"), env=ONE_THREAD
    )
    assert result.returncode == 0, result.stderr
    files = result.stdout.split()
    assert [f.rsplit("/", 1)[1] for f in files] == ["s-1.mid", "s-2.mid", "s-3.mid", "s-pianoroll.png"]
    want = aezoo.load(run).sample(3, temperature=0.5, generator=torch.Generator().manual_seed(0))
    for path, tokens in zip(files, want, strict=False):
        assert _notes(path) == rep.events_to_notes(tokens.tolist())
    into = tmp_path / "folder"
    into.mkdir()
    written = aezoo.load(run).save_outputs(want[:1], into)
    assert written == [into / "melody-1.mid", into / "melody-pianoroll.png"]


def test_cli_reconstruct_and_interpolate_your_midi_files(run, midi_folder, tmp_path):
    song = midi_folder / "song0.mid"
    result = cli("reconstruct", str(run), str(song), "-o", str(tmp_path / "mine.png"), env=ONE_THREAD)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0].endswith("mine.png") and (tmp_path / "mine-1.mid").exists()
    result = cli(
        "interpolate",
        str(run),
        str(song),
        str(midi_folder / "song3.mid"),
        "--steps",
        "4",
        "-o",
        str(tmp_path / "path"),
        env=ONE_THREAD,
    )
    assert result.returncode == 0, result.stderr
    assert len([f for f in result.stdout.split() if f.endswith(".mid")]) == 4
    result = cli("reconstruct", str(run), str(tmp_path / "missing.mid"), env=ONE_THREAD)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "missing.mid does not exist" in result.stderr


def test_your_midi_files_without_a_melody_are_one_clear_error(midi_folder, tmp_path):
    model = aezoo.create("musicvae", **SMALL)
    with pytest.raises(AezooError, match="is unusable: only drums"):
        model.read_examples([str(midi_folder / "drums.mid")])
    with pytest.raises(AezooError, match="is unusable: not in 4/4"):
        model.read_examples([str(midi_folder / "waltz.mid")])
    midi_file(tmp_path / "short.mid", [(60, 0, 4), (62, 40, 44)])  # notes a bar of silence apart
    with pytest.raises(AezooError, match="holds no 2-bar melody"):
        model.read_examples([str(tmp_path / "short.mid")])
    batch = model.read_examples([str(midi_folder / "song1.mid")])
    assert rep.events_to_notes(batch["tokens"][0].tolist())[0] == Note(0, 3, 61)
