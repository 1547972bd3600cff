"""Quantized biases: a Quant node on a constant bias (Brevitas bias_quant=Int32Bias, QKeras-style
exports converted by qonnx) imports like a float constant bias, bit-exact against qonnx's
execute_onnx; the Verilog builds and one model verifies in Icarus."""
import numpy as np
import onnx
import pytest
from onnx_builders import brevitas_bias_model, qkeras_mlp

import hwgen
from hwgen.check import check_model
from hwgen.cli import main
from hwgen.frontend import InputFormat
from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.ir import Conv, MatVec, Threshold

SHAPES = {"mlp": (16,), "cnn": (2, 5, 5)}
QKERAS_FORMAT = InputFormat(bits=6, scale=0.125)


@pytest.fixture(scope="module")
def brevitas_models(tmp_path_factory):
    pytest.importorskip("brevitas")
    d = tmp_path_factory.mktemp("bias")
    return {kind: brevitas_bias_model(d / f"{kind}.onnx", kind=kind, seed=3) for kind in SHAPES}


def _bias_quant_count(path) -> int:
    """Linear nodes whose bias input is the output of a Quant node."""
    g = onnx.load(path).graph
    quant_out = {n.output[0] for n in g.node if n.op_type == "Quant"}
    return sum(1 for n in g.node if n.op_type in ("Gemm", "Conv") and len(n.input) > 2 and n.input[2] in quant_out)


def _inputs(shape, n=400, seed=0):
    return np.random.default_rng(seed).normal(0, 1.5, size=(n, *shape)).astype(np.float32)


@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_brevitas_int32bias_is_bit_exact(brevitas_models, kind):
    path = brevitas_models[kind]
    assert _bias_quant_count(path) == {"mlp": 2, "cnn": 3}[kind]  # every layer's bias is a Quant node
    acc = hwgen.compile(path)
    assert {MatVec, Threshold} <= {type(op) for op in acc.graph.ops}
    if kind == "cnn":
        assert any(isinstance(op, Conv) for op in acc.graph.ops)
    x = _inputs(SHAPES[kind])
    y, ref = acc.predict(x), run_reference(path, x)
    assert np.array_equal(y, ref.reshape(y.shape))  # power-of-two scales: exact, outputs included
    match = compare_with_reference(acc.graph, path, x)
    assert all(v == 1.0 for v in match.values()), match
    r = check_model(path, x)
    assert r.ok and r.totals()["exact"] == sum(t.elements for t in r.tensors)


def test_brevitas_int32bias_verilog_and_icarus(brevitas_models, tmp_path):
    acc = hwgen.compile(brevitas_models["mlp"])
    report = acc.write(tmp_path / "mlp")
    assert (tmp_path / "mlp" / report["verilog"]).stat().st_size > 0
    r = acc.verify(sim="icarus", vectors=4, seed=1)
    assert r.ok and r.failed == 0 and r.passed == r.vectors > 0, r.summary()
    report = hwgen.compile(brevitas_models["cnn"], fold="auto", target_cycles=64).write(tmp_path / "cnn")
    assert (tmp_path / "cnn" / report["verilog"]).stat().st_size > 0


@pytest.mark.parametrize("seed", range(3))
def test_qkeras_style_quantized_bias_and_softmax(tmp_onnx, seed):
    """Float graph input (input format given), MatMul -> Add(Quant(bias)) -> Relu -> Quant -> ...
    -> MatMul -> Add(Quant(bias)) -> Softmax: runs end to end and equals the reference."""
    path = qkeras_mlp(tmp_onnx(f"qk{seed}.onnx"), seed=seed)
    acc = hwgen.compile(path, input_format=QKERAS_FORMAT)
    assert [op.kind for op in acc.graph.ops] == ["Head", "MatVec", "Threshold", "MatVec", "Threshold", "MatVec",
                                                 "Tail"]
    assert "Softmax" in acc.graph.tail.segment.op_types
    rng = np.random.default_rng(seed)  # inputs on the input grid: the reference does not quantize them
    x = (rng.integers(-32, 32, size=(500, 12)) * 0.125).astype(np.float32)
    y, ref = acc.predict(x), run_reference(path, x)
    assert np.array_equal(y, ref.reshape(y.shape))
    np.testing.assert_allclose(y.sum(1), 1.0, rtol=1e-5)


def test_qkeras_style_non_power_of_two_scales_only_float_effects(tmp_onnx):
    path = qkeras_mlp(tmp_onnx("qk.onnx"), seed=5, pow2=False)
    r = check_model(path, vectors=300, seed=2, input_format=QKERAS_FORMAT)
    assert r.ok, r.table()
    assert r.tensors[-1].kind == "output"


def test_qkeras_style_from_the_command_line(tmp_path, capsys):
    path = qkeras_mlp(tmp_path / "qk.onnx", seed=1)
    x = (np.random.default_rng(0).integers(-32, 32, size=(20, 12)) * 0.125).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    fmt = ["--input-bits", "6", "--input-scale", "0.125"]
    assert main(["run", path, "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"), *fmt]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), run_reference(path, x).reshape(20, -1))
    assert main(["compile", path, "-o", str(tmp_path / "build"), *fmt]) == 0
    assert main(["check", path, "--vectors", "50", *fmt]) == 0
    assert "0 mismatches" in capsys.readouterr().out


def test_gemm_bias_quant_on_the_last_layer_goes_to_the_tail(tmp_onnx):
    """A quantized bias on a layer without an activation quantizer ends in the host Tail."""
    path = qkeras_mlp(tmp_onnx("qk.onnx"), seed=2, softmax=False)
    acc = hwgen.compile(path, input_format=QKERAS_FORMAT)
    assert acc.graph.tail.segment.op_types == ["Add"]
    x = (np.random.default_rng(1).integers(-32, 32, size=(200, 12)) * 0.125).astype(np.float32)
    assert np.array_equal(acc.predict(x), run_reference(path, x))


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(SHAPES))
def test_brevitas_int32bias_float_scales_only_float_effects(tmp_path, kind):
    """Brevitas's default float scales: the reference's float32 sums differ in the last ulps;
    `check` finds no mismatch."""
    pytest.importorskip("brevitas")
    path = brevitas_bias_model(tmp_path / f"{kind}.onnx", kind=kind, seed=4, pow2=False)
    r = check_model(path, _inputs(SHAPES[kind], n=1000, seed=4))
    assert r.ok, r.table()
