"""Streamed folder datasets (``--stream``): the batches, the runs and the resumes of in-memory ones,
bit for bit, and an unreadable file in one line naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from aezoo.data import DataOptions, describe_data, iterate
from aezoo.errors import AezooError
from aezoo.streaming import stream_batches
from tests.conftest import REPO

#: A tiny superres on a 12-image folder: 11 training images, 40 patches of them (5 steps of 8 per
#: epoch), 3 epochs, a checkpoint every 4 steps and at each epoch's end; one thread in every process
#: (the killed run's own and pytest's), for the same numbers.
TRAIN = ["train", "superres", "--set", "features=4", "--set", "depth=1", "--batch-size", "8", "--threads", "1",
         "--limit-train", "40", "--max-steps", "15", "--save-every", "4", "--no-test", "--no-progress"]  # fmt: skip


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """12 small PNG photos of different sizes (random pixels)."""
    from PIL import Image

    path = tmp_path / "photos"
    path.mkdir()
    for i in range(12):
        pixels = np.random.default_rng(i).integers(0, 255, (66 + i, 80 - i, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path / f"im{i:02d}.png")
    return path


def _load(folder: Path, stream: bool):
    from aezoo_images.folder import load_folder

    return load_folder(DataOptions(root=folder, stream=stream), str(folder))


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    return {name: load_file(run / name) for name in ("last.safetensors", "model.safetensors")}


def _same(a: dict[str, dict[str, torch.Tensor]], b: dict[str, dict[str, torch.Tensor]]) -> bool:
    return a.keys() == b.keys() and all(
        a[f].keys() == b[f].keys() and all(torch.equal(a[f][k], b[f][k]) for k in a[f]) for f in a
    )


def _metrics(run: Path) -> list[str]:
    return [line.split('"time_s"')[0] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_streamed_folder_serves_the_in_memory_batches_while_workers_read_ahead(folder):
    memory, streamed = _load(folder, stream=False), _load(folder, stream=True)
    assert describe_data(streamed) == describe_data(memory)  # same sizes, same fingerprint
    order = torch.randperm(len(memory.train), generator=torch.Generator().manual_seed(1))
    got: dict[str, list] = {}
    for name, batches in (
        ("memory", iterate(memory.train, 24, order, start=2)),
        ("streamed", stream_batches(streamed.train, 24, order, 2, workers=2, seed=0)),
    ):
        torch.manual_seed(7)  # the crops come from the global generator, between the model's draws
        got[name] = [(batch["image"], torch.rand(3)) for batch in batches]
    assert len(got["memory"]) == len(got["streamed"]) == len(range(48, len(order), 24))
    for (want, noise), (image, noise_after) in zip(got["memory"], got["streamed"], strict=True):
        assert image.shape[1:] == (3, 64, 64) and torch.equal(image, want) and torch.equal(noise, noise_after)
    for split in ("val", "all"):
        indices = torch.tensor([len(memory.split(split)) - 1])
        assert torch.equal(
            streamed.split(split).batch(indices)["image"], memory.split(split).batch(indices)["image"]
        )


def test_a_streamed_run_is_the_in_memory_run_and_resumes_after_a_kill_bit_for_bit(cli, folder, tmp_path):
    dataset = ["--dataset", f"images:{folder}"]
    assert cli(*TRAIN, *dataset, "--out", tmp_path / "memory")[0] == 0
    assert cli(*TRAIN, *dataset, "--stream", "--data-workers", "2", "--out", tmp_path / "streamed")[0] == 0
    memory = _weights(tmp_path / "memory")
    assert _same(_weights(tmp_path / "streamed"), memory)
    assert _metrics(tmp_path / "streamed") == _metrics(tmp_path / "memory")

    killed = tmp_path / "killed"  # SIGKILLed just after its second checkpoint (step 5: mid-epoch 1)
    env = {**os.environ, "AEZOO_CRASH_AT": "committed:2", "PYTHONUNBUFFERED": "1"}
    env.pop("AEZOO_PLUGINS", None)
    result = subprocess.run(
        [sys.executable, "-m", "aezoo", *TRAIN, *dataset, "--stream", "--out", str(killed)],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert result.returncode == -9, result.stderr
    assert len(_metrics(killed)) < len(_metrics(tmp_path / "memory"))
    code, _, err = cli("train", "--resume", killed, "--data-workers", "0", "--no-progress")  # read here now
    assert code == 0 and "resuming" in err
    assert json.loads((killed / "config.json").read_text())["trainer"]["data_workers"] == 0
    assert _same(_weights(killed), memory)
    assert _metrics(killed) == _metrics(tmp_path / "memory")


def test_an_unreadable_image_in_a_streamed_folder_is_one_line_naming_it(cli, folder, tmp_path):
    data = (folder / "im03.png").read_bytes()
    (folder / "im03.png").write_bytes(data[: len(data) // 2])  # its header reads; its pixels do not
    streamed = _load(folder, stream=True)  # headers only: it loads
    for workers in (0, 2):  # read in a worker or in this process: the same error
        with pytest.raises(AezooError, match=r"im03\.png is not an image PIL can read") as caught:
            list(stream_batches(streamed.train, 8, torch.arange(len(streamed.train)), workers=workers))
        assert len(str(caught.value).splitlines()) == 1
    for stream in (["--stream"], []):  # a run says so in one line, streamed or not
        code, _, err = cli(*TRAIN, "--dataset", f"images:{folder}", *stream, "--out", tmp_path / "run")
        lines = err.strip().splitlines()
        assert code == 2 and "Traceback" not in err
        assert lines[-1].startswith("aezoo: error: ") and "im03.png is not an image PIL can read" in lines[-1]


# -- midi:PATH ---------------------------------------------------------------------------------------


@pytest.fixture
def midi_folder(tmp_path: Path) -> Path:
    """7 songs (two of them the same tune, so windows repeat across splits), a waltz and a broken file."""
    from tests.test_musicvae import midi_file, scale_melody

    path = tmp_path / "midi"
    (path / "more").mkdir(parents=True)
    for i in range(7):
        midi_file(path / ("more" if i % 2 else ".") / f"song{i}.mid", scale_melody(i % 6, bars=3 + i % 3))
    midi_file(path / "waltz.mid", scale_melody(), time_signature=(3, 4))
    (path / "broken.mid").write_bytes(b"not a midi file")
    return path


def _load_midi(folder: Path, cache: Path, stream: bool):
    from aezoo_musicvae.datasets import load_midi_folder

    return load_midi_folder(DataOptions(root=folder, cache=cache, stream=stream), str(folder))


def test_a_streamed_midi_folder_holds_the_in_memory_windows_and_parses_once(
    midi_folder, tmp_path, monkeypatch
):
    from aezoo_musicvae import datasets

    memory = _load_midi(midi_folder, tmp_path / "cache", stream=False)
    streamed = _load_midi(midi_folder, tmp_path / "cache", stream=True)
    assert describe_data(streamed) == describe_data(memory)  # info, sizes and fingerprint
    assert streamed.info["files_dropped"] == {"not in 4/4": 1, "not a readable MIDI file": 1}
    assert sum(streamed.info["duplicates_removed"].values()) > 0
    for name in ("train", "val", "test"):
        everything = torch.arange(len(memory.split(name)))
        want = memory.split(name).batch(everything)["tokens"]
        got = streamed.split(name).batch(everything.flip(0))["tokens"].flip(0)
        assert want.dtype == got.dtype == torch.int64 and torch.equal(got, want)

    def no_parsing(*args, **kwargs):
        raise AssertionError("the folder was parsed again")

    monkeypatch.setattr(datasets, "scan_midi_folder", no_parsing)
    monkeypatch.setattr("aezoo_musicvae.streamed.scan_midi_folder", no_parsing)
    again = _load_midi(midi_folder, tmp_path / "cache", stream=True)
    assert describe_data(again) == describe_data(memory)
    (midi_folder / "song0.mid").write_bytes((midi_folder / "song2.mid").read_bytes())  # changed: parsed again
    with pytest.raises(AssertionError, match="parsed again"):
        _load_midi(midi_folder, tmp_path / "cache", stream=True)


def test_a_streamed_midi_run_is_the_in_memory_run_bit_for_bit(midi_folder, tmp_path, monkeypatch):
    import aezoo
    from aezoo.trainer import TrainConfig

    monkeypatch.setenv("AEZOO_CACHE", str(tmp_path / "cache"))
    small = {"enc_rnn_size": (16,), "z_size": 8, "dec_rnn_size": (16,)}
    runs = {}
    for stream in (False, True):
        config = TrainConfig(
            max_steps=4, batch_size=4, device="cpu", threads=1, stream=stream, data_workers=1
        )
        out = tmp_path / f"stream-{stream}"
        aezoo.train("musicvae", f"midi:{midi_folder}", hparams=small, config=config, out=out, progress=False)
        runs[stream] = out
    assert _same(_weights(runs[True]), _weights(runs[False]))
    assert _metrics(runs[True]) == _metrics(runs[False])


def test_the_superres_recipe_streamed_reads_the_data_it_was_trained_on(mnist_dir):
    from aezoo.plugins import load_data
    from aezoo.recipes import read_recipe

    if not (mnist_dir / "sr" / "train").is_dir():
        pytest.skip("T91 is not in $AEZOO_DATA/sr/train")
    recipe = read_recipe(REPO / "plugins" / "aezoo_superres" / "pretrained" / "t91-x2" / "recipe.toml")
    recorded = recipe.provenance["dataset_info"]
    found = describe_data(load_data(recipe.dataset, stream=True))
    assert (found["sizes"], found["fingerprint"]) == (recorded["sizes"], recorded["fingerprint"])
