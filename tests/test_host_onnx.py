"""host_pre.onnx / host_post.onnx (hwgen.host_onnx): onnxruntime(host_pre) -> golden integer core ->
onnxruntime(host_post) equals Accelerator.predict bit for bit, and qonnx's execute_onnx within
float32 tolerance; host_pre's integers are the golden Head's output in stream order."""
from __future__ import annotations

import copy
import dataclasses
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from conftest import OWN_MODELS, SHARED, own_model, random_inputs, shared_model
from onnx import TensorProto, helper

import hwgen
from hwgen.builddir import MANIFEST
from hwgen.errors import HwgenError
from hwgen.frontend.reference import run_reference
from hwgen.golden import execute
from hwgen.host_onnx import CORE_IN, CORE_OUT, HOST_POST, HOST_PRE, host_post_model, host_pre_model
from hwgen.ir.float_segment import FloatSegment

N = 64


def _conv_tail_model(path) -> str:
    """quant -> conv -> (Add per channel -> Softmax over channels): a host tail on an NCHW map."""
    from onnx_builders import GraphBuilder

    rng = np.random.default_rng(0)
    b = GraphBuilder((2, 6, 6), name="convtail")
    b.op("Mul", b.const(np.float32(2.0)))
    b.quant(0.25, 3, signed=True)
    b.conv(rng.integers(-3, 4, (4, 2, 3, 3)), 2.0 ** rng.integers(-3, 0, size=4), bits=3)
    b.op("Add", b.const(rng.normal(size=(1, 4, 1, 1)).astype(np.float32)))
    b.op("Softmax", axis=1)
    return b.save(path)


# name -> (model path or builder, per-sample input shape, input kind)
MODELS = {
    "digits_mlp_w2a2": (own_model("w2a2"), (64,), "unit"),
    "TFC_2W2A": (shared_model("TFC_2W2A"), SHARED["TFC_2W2A"][1], "unit"),  # Reshape/Mul/Sub, opset 9
    "digits_cnn_w1a1": (os.path.join(OWN_MODELS, "digits_cnn_w1a1.onnx"), (1, 8, 8), "unit"),  # bipolar, NHWC
    "digits_cnn_w4a4": (os.path.join(OWN_MODELS, "digits_cnn_w4a4.onnx"), (1, 8, 8), "unit"),
    "UNSW_w2a2": (shared_model("UNSW_w2a2"), SHARED["UNSW_w2a2"][1], "bipolar"),  # bipolar output
    "conv_tail": (_conv_tail_model, (2, 6, 6), "normal"),
}


@pytest.fixture(scope="module")
def mlp_w2a2():
    return hwgen.compile(own_model("w2a2"), fold="full", target="ice40")


def _session(model: onnx.ModelProto | str, optimize: bool) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    data = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])


def _inputs(kind, shape, seed):
    if kind == "normal":
        return np.random.default_rng(seed).normal(size=(N, *shape)).astype(np.float32)
    return random_inputs(kind, shape, N, seed)


def _host_chain(acc, pre, post, x, optimize):
    """onnxruntime(pre) -> the golden core (predict_int) -> onnxruntime(post)."""
    g = acc.graph
    (ints,) = _session(pre, optimize).run([CORE_IN], {g.input: x})
    core_in = ints.reshape(len(x), *g.tensors[g.head.outputs[0]].shape)
    outs = acc.predict_int(core_in)
    (y,) = _session(post, optimize).run(None, {CORE_OUT: outs.reshape(len(x), -1)})
    return ints, y


@pytest.mark.parametrize("name", sorted(MODELS))
def test_host_models_reproduce_predict(name, tmp_path):
    src, shape, kind = MODELS[name]
    path = src(str(tmp_path / "m.onnx")) if callable(src) else src
    acc = hwgen.compile(path, fold="full", target="ice40")
    pre, post = host_pre_model(acc.graph), host_post_model(acc.graph)
    x = _inputs(kind, shape, seed=7)
    want = acc.predict(x)
    head = execute(acc.graph, x)[acc.graph.head.outputs[0]]
    for optimize in (False, True):
        ints, y = _host_chain(acc, pre, post, x, optimize)
        assert ints.dtype == np.int64 and ints.shape == (N, acc.plan.in_fmt.elements)
        np.testing.assert_array_equal(ints, head.reshape(N, -1))  # stream order: flattened NHWC
        assert y.dtype == np.float32 and y.shape == want.shape
        np.testing.assert_array_equal(y, want)
    ref = run_reference(path, x)
    np.testing.assert_allclose(y, ref.reshape(y.shape), rtol=1e-6, atol=1e-6)


def test_build_writes_host_models(tmp_path):
    acc = hwgen.compile(own_model("w2a2"), fold="auto", target_cycles=64, target="ice40")
    acc.write(tmp_path)
    assert {HOST_PRE, HOST_POST} <= set(json.loads((tmp_path / MANIFEST).read_text())["files"])
    for name in (HOST_PRE, HOST_POST):
        onnx.checker.check_model(onnx.load(str(tmp_path / name)))
    x = _inputs("unit", (64,), seed=8)
    _, y = _host_chain(acc, str(tmp_path / HOST_PRE), str(tmp_path / HOST_POST), x, optimize=False)
    np.testing.assert_array_equal(y, acc.predict(x))


@pytest.mark.parametrize("mode", ["ROUND", "HALF_EVEN", "CEIL", "FLOOR", "UP", "DOWN", "HALF_UP", "HALF_DOWN"])
@pytest.mark.parametrize("signed", [False, True])
def test_rounding_modes_match_the_quantizer(mlp_w2a2, mode, signed):
    """Every qonnx rounding mode on values at and beside the half-way points, clamped both ends."""
    g = copy.deepcopy(mlp_w2a2.graph)
    q = g.head.quantizer = dataclasses.replace(g.head.quantizer, rounding_mode=mode, signed=signed)
    x = (np.arange(-40 * 64, 40 * 64, dtype=np.float32) / np.float32(32 * 64) * np.float32(q.scale * 16))
    x = np.concatenate([x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))]).reshape(-1, 64)
    (ints,) = _session(host_pre_model(g), optimize=False).run([CORE_IN], {g.input: x})
    np.testing.assert_array_equal(ints, q.to_int(x))


def test_opset_9_model_gets_round():
    """TFC_2W2A is opset 9; ONNX Round (the quantizer's half-to-even) needs 11: unchanged ops, opset 11."""
    acc = hwgen.compile(shared_model("TFC_2W2A"), fold="full", target="ice40")
    pre = host_pre_model(acc.graph)
    assert [o.version for o in pre.opset_import if o.domain == ""] == [11]
    assert [n.op_type for n in pre.graph.node][:3] == ["Reshape", "Mul", "Sub"]
    assert "Round" in [n.op_type for n in pre.graph.node]


def test_opset_9_ops_that_changed_are_converted():
    """Unsqueeze / Squeeze / Flatten changed between opsets 9 and 11: onnx's converter rewrites them."""
    from hwgen.api import Accelerator

    acc = hwgen.compile(shared_model("TFC_2W2A"), fold="full", target="ice40")
    g = copy.deepcopy(acc.graph)
    x_name, two, one = g.input, "seg_two", "seg_one"
    nodes = [helper.make_node("Unsqueeze", [x_name], ["u"], axes=[1]),
             helper.make_node("Squeeze", ["u"], ["s"], axes=[1]),
             helper.make_node("Flatten", ["s"], ["f"], axis=1),
             helper.make_node("Mul", ["f", two], ["m"]),
             helper.make_node("Sub", ["m", one], ["pre_out"])]
    graph = helper.make_graph(nodes, "segment",
                              [helper.make_tensor_value_info(x_name, TensorProto.FLOAT, ["N", 1, 28, 28])],
                              [helper.make_tensor_value_info("pre_out", TensorProto.FLOAT, None)],
                              initializer=[onnx.numpy_helper.from_array(np.float32(2.0), two),
                                           onnx.numpy_helper.from_array(np.float32(1.0), one)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 8
    g.head.segment = FloatSegment(model.SerializeToString(), x_name, "pre_out")
    changed = Accelerator(g, acc.plan)
    pre = host_pre_model(g)
    assert [o.version for o in pre.opset_import if o.domain == ""] == [11]
    x = _inputs("unit", (1, 28, 28), seed=9)
    _, y = _host_chain(changed, pre, host_post_model(g), x, optimize=False)
    np.testing.assert_array_equal(y, changed.predict(x))


def test_non_standard_op_is_a_clear_error(mlp_w2a2):
    g = copy.deepcopy(mlp_w2a2.graph)
    tail = g.tail
    node = helper.make_node("Frobnicate", [tail.inputs[0]], [g.output], name="frob", domain="com.example")
    graph = helper.make_graph([node], "segment",
                              [helper.make_tensor_value_info(tail.inputs[0], TensorProto.FLOAT, ["N", 10])],
                              [helper.make_tensor_value_info(g.output, TensorProto.FLOAT, ["N", 10])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid("com.example", 1)])
    tail.segment = FloatSegment(model.SerializeToString(), tail.inputs[0], g.output)
    host_pre_model(g)  # the head is unaffected
    with pytest.raises(HwgenError, match=r"node 'frob' \(Frobnicate\): .*com\.example\.Frobnicate is not a standard"):
        host_post_model(g)
