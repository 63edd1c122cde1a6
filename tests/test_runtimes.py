"""Every built-in architecture's exported parts (smoke size) in four runtimes: onnxruntime, onnx's
reference evaluator, and two that share no code with onnxruntime, OpenVINO and tract, through the
parity code `aezoo verify` uses, at its batch sizes.

KNOWN_FAILURES is the table of what does not work: each entry must still fail, the way it says
(a runtime that starts passing fails the test until the entry is removed); everything else must
pass within the part's tolerance."""

from __future__ import annotations

import os

import numpy as np
import onnx
import onnx.helper
import onnx.numpy_helper
import pytest

from aezoo.onnx import validation
from aezoo.onnx.parity import validate_part
from aezoo.onnx.verify import VERIFY_BATCHES, verify
from aezoo.testing import _support

ARCHITECTURES = ("dense", "conv", "denoising", "superres", "vae", "aae", "musicvae")
PARTS = ("encoder", "decoder")
RUNTIMES = validation.RUNTIMES

#: (architecture, part, runtime) -> (the batch sizes that fail, text every failure note has, reason)
KNOWN_FAILURES = {
    ("musicvae", "encoder", "tract"): (
        (3,),
        "Scan",
        "tract 0.23.9 turns the encoder's bidirectional ONNX LSTM into Scan and runs it at batch 1 "
        'only: at batch 3 `Evaluating #14 "node_lstm__2" Scan; Setting body inputs; Clashing '
        "resolution for expression. batch=3 != 1` (binding the batch first fails too: declutter of "
        "Scan, 'Remove a non-1 axis')",
    ),
}


def runtime_or_skip(runtime: str) -> None:
    """openvino and tract are optional packages (the `test` extra has them): missing ones fail
    under CI, else skip."""
    if runtime not in validation.OPTIONAL_RUNTIMES:
        return
    try:
        validation.require(runtime)
    except validation.MissingRuntime as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def exports():
    """Each architecture at smoke size, built and exported once (shared with the conformance
    kit's checks when they run in the same session: `aezoo.testing._support.exported` caches)."""
    cache = {}

    def get(name: str):
        if name not in cache:
            model = _support.build(name, None).eval()  # the same seed and hyperparameters export_of builds
            cache[name] = (model, _support.export_of(name, None))
        return cache[name]

    return get


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize("part_name", PARTS)
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_part_runs_in_runtime(architecture, part_name, runtime, exports):
    runtime_or_skip(runtime)
    model, folder = exports(architecture)
    part = model.export_parts()[part_name]
    reports = validate_part(
        part, folder / f"{part_name}.onnx", part.tolerance(), None, runtime, VERIFY_BATCHES
    )
    table = validation.describe(reports, part_name, part.tolerance())
    known = KNOWN_FAILURES.get((architecture, part_name, runtime))
    if known is None:
        assert all(r.passed for r in reports), f"{architecture} {part_name} in {runtime}:\n{table}"
        return
    batches, text, reason = known
    failing = {int(r.case.rsplit(" ", 1)[1]) for r in reports if not r.passed}
    if not failing:
        pytest.fail(f"{architecture} {part_name} now passes in {runtime}: remove it from KNOWN_FAILURES")
    assert failing == set(batches), f"expected failures at batches {batches}, got:\n{table}"
    for report in reports:
        if not report.passed:
            notes = " ".join(o.note for o in report.outputs)
            assert text in notes and validation.runtime_label(runtime) in notes, table
    pytest.xfail(reason)


def test_known_failures_name_real_combinations():
    for architecture, part, runtime in KNOWN_FAILURES:
        assert architecture in ARCHITECTURES and part in PARTS and runtime in RUNTIMES


def test_a_missing_runtime_package_is_one_line_naming_the_extra(monkeypatch, tmp_path):
    import sys

    for runtime in validation.OPTIONAL_RUNTIMES:
        monkeypatch.setitem(sys.modules, runtime, None)  # import raises ImportError
        with pytest.raises(validation.MissingRuntime) as caught:
            verify(tmp_path, runtime=runtime)
        message = str(caught.value)
        assert "\n" not in message and f"pip install 'aezoo[{runtime}]'" in message


def frobnicate_model(path):
    """A model with an operator no runtime knows."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 2])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 2])
    node = onnx.helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example", name="frob")
    graph = onnx.helper.make_graph([node], "g", [x], [y])
    opsets = [onnx.helper.make_opsetid("", 18), onnx.helper.make_opsetid("com.example", 1)]
    onnx.save(onnx.helper.make_model(graph, opset_imports=opsets, ir_version=10), path)
    return path


@pytest.mark.parametrize(
    ("runtime", "operator"),
    [("openvino", "operator com.example.Frobnicate"), ("tract", "operator Frobnicate (node 'frob')")],
)
def test_a_model_the_runtime_cannot_run_names_runtime_version_and_operator(runtime, operator, tmp_path):
    runtime_or_skip(runtime)
    path = frobnicate_model(tmp_path / "frob.onnx")
    with pytest.raises(validation.RuntimeFailure) as caught:
        validation.session(path, runtime)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{runtime} {validation.runtime_version(runtime)}, {operator}: "), message


def test_openvino_computes_in_f32(tmp_path):
    """OpenVINO's CPU plugin computes in bf16 by default on processors with bf16 units
    (differences up to 1e-2): session() asks for f32 (the compiled model says so on any CPU),
    which agrees with onnxruntime to ~1e-6."""
    runtime_or_skip("openvino")
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["batch", 64])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["batch", 64])
    weight = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32)
    init = onnx.numpy_helper.from_array(weight, "w")
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("MatMul", ["x", "w"], ["y"])], "g", [x], [y], [init]
    )
    path = tmp_path / "matmul.onnx"
    onnx.save(
        onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)], ir_version=10), path
    )
    feeds = {"x": np.random.default_rng(1).standard_normal((3, 64)).astype(np.float32)}
    run = validation.session(path, "openvino")
    import openvino

    assert run.backend.get_property("INFERENCE_PRECISION_HINT") == openvino.Type.f32
    got = run(feeds)[0]
    want = validation.session(path, "onnxruntime")(feeds)[0]
    assert np.max(np.abs(got - want)) < 1e-4
