"""The command line: happy paths and every user error as one line with exit code 2."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from conftest import shared_model
from onnx import TensorProto, helper, numpy_helper
from onnx_builders import GraphBuilder

from hwgen.frontend.reference import run_reference


def hwgen(*args):
    return subprocess.run([sys.executable, "-m", "hwgen", *map(str, args)], capture_output=True, text=True)


def assert_user_error(res, *fragments):
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_help_lists_commands():
    res = hwgen("--help")
    assert res.returncode == 0
    for cmd in ("inspect", "run"):
        assert cmd in res.stdout


def test_inspect_json_has_three_accumulator_widths(tmp_path):
    out = tmp_path / "layers.json"
    res = hwgen("inspect", shared_model("TFC_2W2A"), "--json", out)
    assert res.returncode == 0, res.stderr
    assert "acc A2Q" in res.stdout
    layers = json.loads(out.read_text())["layers"]
    assert [l["name"] for l in layers] == ["MatMul_0", "MatMul_1", "MatMul_2", "MatMul_3"]
    first = layers[0]
    assert (first["macs"], first["weight_bits"]) == (784 * 64, 784 * 64 * 2)
    assert (first["acc_bits_exact"], first["acc_bits_a2q"], first["acc_bits_datatype"]) == (10, 11, 13)


def test_run_matches_qonnx(tmp_path):
    x = np.random.default_rng(7).random((50, 1, 28, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    res = hwgen("run", shared_model("TFC_1W1A"), "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert res.returncode == 0, res.stderr
    y = np.load(tmp_path / "y.npy")
    assert np.array_equal(y, run_reference(shared_model("TFC_1W1A"), x))


def test_not_an_onnx_file(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a protobuf\n" * 20)
    assert_user_error(hwgen("inspect", bad), "not a readable ONNX file")


def test_truncated_file(tmp_path):
    data = open(shared_model("TFC_2W2A"), "rb").read()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 3])
    assert_user_error(hwgen("inspect", cut), "cut.onnx")


def test_missing_file(tmp_path):
    assert_user_error(hwgen("inspect", tmp_path / "nope.onnx"), "no such file")


def test_float_model_without_quantizers(tmp_path):
    w = numpy_helper.from_array(np.ones((4, 3), np.float32), "W")
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"], name="fc")], "float",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w])
    path = tmp_path / "float.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    assert_user_error(hwgen("inspect", path), "--input-bits")
    assert_user_error(hwgen("inspect", path, "--input-bits", 4, "--input-scale", 0.5), "MatMul_0", "not quantized")


def test_unsupported_op_names_node_and_op(tmp_path):
    b = GraphBuilder(8)
    b.quant(0.25, 3, signed=False)
    b.linear(np.ones((4, 8)), 0.5)
    b.op("Sin")
    b.quant(0.5, 2, signed=False)
    assert_user_error(hwgen("inspect", b.save(tmp_path / "sin.onnx")), "Sin_", "(Sin)", "not supported")


def test_wrong_input_shape(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((3, 783), np.float32))
    res = hwgen("run", shared_model("TFC_2W2A"), "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy")
    assert_user_error(res, "does not match the model input", "[batch, 1, 28, 28]")


def test_model_without_input_quantizer_needs_input_format(tmp_path):
    """A QKeras-style graph: quantized weights, float input. With an explicit format the
    golden model equals the reference on inputs that lie on that grid."""
    rng = np.random.default_rng(0)
    b = GraphBuilder(10)
    b.linear(rng.integers(-7, 8, (6, 10)), 0.125)
    b.op("Relu")
    b.quant(0.25, 4, signed=False)
    b.linear(rng.integers(-7, 8, (3, 6)), 0.5, bias=rng.normal(size=3))
    path = b.save(tmp_path / "noinq.onnx")
    assert_user_error(hwgen("inspect", path), "--input-bits N --input-scale S")
    x = (rng.integers(-8, 8, (64, 10)) * 0.5).astype(np.float32)  # 4-bit signed grid, step 0.5
    np.save(tmp_path / "x.npy", x)
    res = hwgen("run", path, "--input", tmp_path / "x.npy", "--output", tmp_path / "y.npy",
                "--input-bits", 4, "--input-scale", 0.5)
    assert res.returncode == 0, res.stderr
    assert np.array_equal(np.load(tmp_path / "y.npy"), run_reference(str(path), x))


def test_acc_bits_contract_names_layer_and_channel():
    assert_user_error(hwgen("inspect", shared_model("TFC_2W2A"), "--acc-bits", 9),
                      "MatMul_0", "output channel", "10-bit accumulator")
