"""The manifest's ``decoding`` section: what each kind of decoder output is and how to use it
(images, colour around a luminance model, melodies), held to the code that does it in Python."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import aezoo
from aezoo.errors import AezooError
from aezoo.onnx.manifest import minimum_onnxruntime
from aezoo.onnx.schema import check_manifest
from aezoo_superres import color
from tests.test_web import MANIFEST


def test_image_models_describe_their_output():
    model = aezoo.create("conv", widths=(8, 16), latent_dim=4)
    decoding = model.export_decoding()
    output = model.export_parts()["decoder"].outputs[0]
    assert decoding["kind"] == "image" and decoding["output"] == output.name == "image"
    assert (decoding["layout"], decoding["channels"], decoding["color"]) == ("NCHW", 1, "grey")
    assert decoding["range"] == [0.0, 1.0]


def test_a_luminance_superres_model_says_how_to_rebuild_colour():
    decoding = aezoo.create("superres", features=4, depth=1, scale=3).export_decoding()
    assert decoding["output"] == "high_res" and decoding["input"] == "low_res" and decoding["scale"] == 3
    assert decoding["color"] == "luminance" and decoding["color_rebuild"] is color.REBUILD
    rgb_model = aezoo.create("superres", features=4, depth=1, channels=3, loss="l1").export_decoding()
    assert rgb_model["color"] == "rgb" and "color_rebuild" not in rgb_model


def test_the_colour_rebuild_in_the_manifest_is_the_one_python_uses():
    """A runtime following the manifest's numbers gets what ``aezoo upscale`` computes."""
    rgb = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    forward, back = color.REBUILD["rgb_to_ycbcr"], color.REBUILD["ycbcr_to_rgb"]
    pixels = rgb.permute(0, 2, 3, 1).numpy()  # [..., 3]
    ycbcr = (np.array(forward["offset"]) + pixels @ np.array(forward["matrix"]).T) / 255
    want = color.rgb_to_ycbcr(rgb).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ycbcr, want, atol=1e-12)
    rgb_again = np.clip(
        (ycbcr * 255 - np.array(back["offset"])) @ np.array(back["matrix"]).T / 256 / 255, 0, 1
    )
    want_back = color.ycbcr_to_rgb(torch.from_numpy(want).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(rgb_again, want_back, atol=1e-12)
    np.testing.assert_allclose(rgb_again, pixels, atol=2e-3)  # and it is the inverse, within rounding
    # the chroma rule names torch's bicubic: a = -0.75, half-pixel centres
    assert "a = −0.75" in color.REBUILD["chroma"] and "align_corners=False" in color.REBUILD["chroma"]
    assert F.interpolate(
        torch.ones(1, 1, 2, 2), scale_factor=2, mode="bicubic", align_corners=False
    ).allclose(torch.ones(1, 1, 4, 4))


def _with(decoding: dict | None = None, sampling: dict | None = None) -> dict:
    manifest = copy.deepcopy(MANIFEST)
    if decoding is not None:
        manifest["decoding"] = decoding
    if sampling is not None:
        manifest["models"]["decoder"]["inputs"][0]["sampling"] = sampling
    return manifest


IMAGE = {
    "kind": "image",
    "output": "image",
    "layout": "NCHW",
    "channels": 1,
    "color": "grey",
    "range": [0, 1],
}
MELODY = aezoo.create("musicvae", enc_rnn_size=(8,), dec_rnn_size=(8,), z_size=4).export_decoding()


@pytest.mark.parametrize(
    ("decoding", "sampling", "at"),
    [
        ({**IMAGE, "channels": 0}, None, "decoding/channels"),
        ({**IMAGE, "color": "luminance"}, None, "decoding"),  # luminance without color_rebuild
        ({k: v for k, v in IMAGE.items() if k != "range"}, None, "decoding"),
        ({k: v for k, v in MELODY.items() if k != "midi"}, None, "decoding"),
        ({**MELODY, "midi": {**MELODY["midi"], "velocity": 200}}, None, "decoding/midi/velocity"),
        (
            {**MELODY, "events": {**MELODY["events"], "lowest_pitch": -1}},
            None,
            "decoding/events/lowest_pitch",
        ),
        ({"kind": "image"}, None, "decoding"),  # no output named
        (None, {"kind": "gumbel", "rule": "u"}, "models/decoder/inputs/0/sampling"),
        (
            None,
            {"kind": "gumbel", "u_low": 0, "u_high": 1, "rule": "u"},
            "models/decoder/inputs/0/sampling/u_low",
        ),
    ],
)
def test_the_schema_refuses_a_decoding_a_runtime_could_not_follow(decoding, sampling, at):
    with pytest.raises(AezooError, match=f"does not follow the manifest schema at {at}"):
        check_manifest(_with(decoding, sampling), "m.json")


def test_the_schema_takes_every_kind_it_defines_and_kinds_it_does_not_know():
    check_manifest(_with(IMAGE), "m.json")
    check_manifest(_with(MELODY), "m.json")
    check_manifest(_with({"kind": "point-cloud", "output": "points"}), "m.json")  # a plugin's own kind
    check_manifest(
        _with(sampling={"kind": "gumbel", "u_low": 1e-10, "u_high": 0.9999999, "rule": "u"}), "m.json"
    )


def test_minimum_onnxruntime_is_the_later_of_what_the_ir_and_the_opset_need():
    assert minimum_onnxruntime(10, 18) == "1.18"
    assert minimum_onnxruntime(9, 20) == "1.17"
    assert minimum_onnxruntime(9, 18) == "1.15"
    assert minimum_onnxruntime(42, 18) is None


def test_the_manifest_names_no_folder_of_the_exporting_machine(tmp_path):
    from aezoo.onnx.exporter import portable_dataset_name

    assert portable_dataset_name(f"images:{tmp_path}/sr/train", tmp_path) == "images:{data}/sr/train"
    assert portable_dataset_name("images:/home/someone/photos", tmp_path) == "images:…/photos"
    assert portable_dataset_name("mnist", tmp_path) == "mnist"
