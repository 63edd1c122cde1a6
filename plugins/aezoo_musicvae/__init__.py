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


#: The melody datasets in 2-bar windows (``(name, description, loader, argument)``); each also
#: comes as ``NAME-4bar``, ``NAME-8bar`` and ``NAME-16bar`` (``midi-16bar:PATH``), split alike.
MELODY_DATASETS = (
    (
        "bach-chorales",
        "Soprano lines of the Bach chorales in music21's corpus (4/4), 2-bar windows, split by chorale",
        "aezoo_musicvae.corpus:load_bach_chorales",
        "",
    ),
    (
        "folk-tunes",
        "Folk and fiddle tunes in music21's corpus (Ryan's, O'Neill's, Nottingham; 4/4 and 2/2, "
        "repeats written out, ABC 2.1 accidentals), 2-bar windows, split by tune",
        "aezoo_musicvae.corpus:load_folk_tunes",
        "",
    ),
    (
        "melodies",
        "bach-chorales and folk-tunes together, 2-bar windows, each split by piece as on its own; extra "
        "splits val-/test-bach-chorales and val-/test-folk-tunes",
        "aezoo_musicvae.melodies:load_melodies",
        "",
    ),
    (
        "midi",
        "Melodies of a folder of MIDI files (4/4, every non-drum instrument), 2-bar windows, split by file",
        "aezoo_musicvae.datasets:load_midi_folder",
        "PATH",
    ),
)
#: The longer windows every melody dataset also comes in.
LONGER_BARS = (4, 8, 16)


@aezoo.hookimpl
def aezoo_register_datasets(register):
    for name, description, loader, argument in MELODY_DATASETS:
        register(aezoo.Dataset(name=name, description=description, loader=loader, argument=argument))
        for bars in LONGER_BARS:
            spec = f"{name}:PATH" if argument else name
            register(
                aezoo.Dataset(
                    name=f"{name}-{bars}bar",
                    description=f"As {spec}, in {bars}-bar windows",
                    loader=f"{loader}_{bars}bar",
                    argument=argument,
                )
            )
    register(
        aezoo.Dataset(
            name="melody-windows",
            description="Melody windows saved to an .npz file by aezoo_musicvae.windowfile (a parsed "
            "dataset's splits, carried where music21 or its corpus is not)",
            loader="aezoo_musicvae.windowfile:load_window_file",
            argument="PATH",
        )
    )


@aezoo.hookimpl
def aezoo_register_pretrained(register):
    register(aezoo.Pretrained.from_folder("musicvae:melody-2bar", PRETRAINED / "melody-2bar"))
