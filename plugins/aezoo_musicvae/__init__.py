"""Built-in plugin: MusicVAE for melodies, with Bach chorale, folk tune, combined and MIDI-folder
datasets."""

from __future__ import annotations

from pathlib import Path

import aezoo
from aezoo_musicvae.hparams import MusicVAEHParams

PRETRAINED = Path(__file__).parent / "pretrained"


@aezoo.hookimpl
def aezoo_register_architectures(register):
    register(
        aezoo.Architecture(
            name="musicvae",
            description="MusicVAE for melodies: bidirectional LSTM encoder, flat or hierarchical LSTM decoder, MIDI in and out",
            hparams=MusicVAEHParams,
            builder="aezoo_musicvae.model:build",
            default_dataset="bach-chorales",
            smoke_hparams={"enc_rnn_size": (16,), "z_size": 8, "dec_rnn_size": (16,)},
        )
    )


@aezoo.hookimpl
def aezoo_register_datasets(register):
    register(
        aezoo.Dataset(
            name="bach-chorales",
            description="Soprano lines of the Bach chorales in music21's corpus (4/4), 2-bar windows, split by chorale",
            loader="aezoo_musicvae.corpus:load_bach_chorales",
        )
    )
    register(
        aezoo.Dataset(
            name="bach-chorales-16bar",
            description="As bach-chorales, in 16-bar windows",
            loader="aezoo_musicvae.corpus:load_bach_chorales_16bar",
        )
    )
    register(
        aezoo.Dataset(
            name="folk-tunes",
            description="Folk and fiddle tunes in music21's corpus (Ryan's, O'Neill's, Nottingham; 4/4 and 2/2, "
            "repeats written out, ABC 2.1 accidentals), 2-bar windows, split by tune",
            loader="aezoo_musicvae.corpus:load_folk_tunes",
        )
    )
    register(
        aezoo.Dataset(
            name="folk-tunes-16bar",
            description="As folk-tunes, in 16-bar windows",
            loader="aezoo_musicvae.corpus:load_folk_tunes_16bar",
        )
    )
    register(
        aezoo.Dataset(
            name="melodies",
            description="bach-chorales and folk-tunes together, 2-bar windows, each split by piece as on its "
            "own; extra splits val-/test-bach-chorales and val-/test-folk-tunes",
            loader="aezoo_musicvae.melodies:load_melodies",
        )
    )
    register(
        aezoo.Dataset(
            name="melodies-16bar",
            description="As melodies, in 16-bar windows",
            loader="aezoo_musicvae.melodies:load_melodies_16bar",
        )
    )
    register(
        aezoo.Dataset(
            name="midi",
            description="Melodies of a folder of MIDI files (4/4, every non-drum instrument), 2-bar windows, split by file",
            loader="aezoo_musicvae.datasets:load_midi_folder",
            argument="PATH",
        )
    )
    register(
        aezoo.Dataset(
            name="midi-16bar",
            description="As midi:PATH, in 16-bar windows",
            loader="aezoo_musicvae.datasets:load_midi_folder_16bar",
            argument="PATH",
        )
    )


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    register(aezoo.Pretrained.from_folder("musicvae:melody-2bar", PRETRAINED / "melody-2bar"))
