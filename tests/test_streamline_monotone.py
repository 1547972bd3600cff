"""Streamlining proves the float map monotone before bisecting a wide accumulator range (issue 14):
a narrow dip that the bisection and its spot check never sample is refused, not compiled wrong."""
import numpy as np
import onnx
import pytest
from onnx_builders import GraphBuilder
from test_golden_vs_reference import _check
from test_streamline import _assert_pass_exact

from hwgen.errors import HwgenError
from hwgen.frontend import import_onnx
from hwgen.frontend.trunc import ROUNDING_MODES, TruncSpec
from hwgen.golden import execute, run_op
from hwgen.ir import FloatActivation, Threshold
from hwgen.ir.float_segment import make_segment
from hwgen.passes import streamline as streamline_module
from hwgen.passes.accumulators import exact_range
from hwgen.passes.monotone import MONOTONE_OPS, monotone_obstacle
from hwgen.passes.streamline import DENSE_LIMIT, streamline

node = onnx.helper.make_node


def _dip_model(path, *, inputs, w_bits, channels=8, seed=0):
    """8-bit input (scale 1) -> MatMul -> Add(-a) -> Abs -> Clip(0, 4) -> 3-bit quant: level 4 on the
    whole accumulator range but for a dip 7 values wide around acc = a (per channel), at 3/10 of the
    range (away from the bisection's midpoints at 1/2, 1/4, ...). Returns (path, a)."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-(2 ** (w_bits - 1)), 2 ** (w_bits - 1), size=(channels, inputs))
    lo, hi = 255 * np.where(w < 0, w, 0).sum(1), 255 * np.where(w > 0, w, 0).sum(1)
    a = lo + (hi - lo) * 3 // 10 + 1
    b = GraphBuilder(inputs)
    b.quant(1.0, 8, signed=False)
    b.linear(w, 1.0, bits=w_bits)
    b.op("Add", b.const(-a))
    b.op("Abs")
    b.op("Clip", b.const(0.0), b.const(4.0))
    b.quant(1.0, 3, signed=False)
    b.linear(np.ones((2, channels)), 1.0)
    return b.save(path), a


def _activation(graph):
    fa = next(op for op in graph.ops if isinstance(op, FloatActivation))
    lo, hi = exact_range(graph.producer(fa.inputs[0]))
    return fa, lo, hi


def _refusal(fa, node_name, op_type, why, span, channels, limit=DENSE_LIMIT):
    return (f"node '{node_name}' ({op_type}): hwgen cannot prove the float ops between the accumulator and "
            f"quantizer '{fa.name}' monotone: {op_type} '{node_name}' {why}. The accumulator spans up to {span} "
            f"values in each of {channels} channels ({span * channels} in all), more than the {limit} hwgen "
            f"evaluates one by one (which would prove any ops), so the thresholds must come from ops it proves "
            f"monotone: a chain of "
            f"{', '.join(MONOTONE_OPS)} with constant operands (x / c, not c / x). Quantize before "
            f"'{node_name}', replace it by such ops, or narrow the accumulator (fewer inputs per output, "
            f"narrower weights or inputs) to at most {limit} values over all channels")


# --- end to end: a dip is refused on both paths --------------------------------------------------------
def test_wide_accumulator_with_a_dip_is_refused_naming_the_node(tmp_onnx):
    path, _ = _dip_model(tmp_onnx(), inputs=64, w_bits=8)
    graph = import_onnx(path)
    fa, lo, hi = _activation(graph)
    span = int((hi - lo).max()) + 1
    assert span * len(lo) > DENSE_LIMIT  # the bisection path, without any monkeypatching
    abs_node = next(n for n in fa.onnx_nodes if n.startswith("Abs"))
    with pytest.raises(HwgenError) as info:
        streamline(graph)
    assert (info.value.node, info.value.op) == (abs_node, "Abs")
    assert str(info.value) == _refusal(fa, abs_node, "Abs", "is not one of the ops hwgen proves monotone", span, 8)


def test_the_dip_evades_the_spot_check(tmp_onnx, monkeypatch):
    """Why the proof exists: without it the wide path compiles the dip model, and wrongly."""
    path, a = _dip_model(tmp_onnx(), inputs=64, w_bits=8)
    graph = import_onnx(path)
    fa, lo, hi = _activation(graph)
    monkeypatch.setattr(streamline_module, "_prove_monotone", lambda *args: None)
    th = next(op for op in streamline(graph).ops if isinstance(op, Threshold))
    acc = np.stack([lo, a, hi])
    assert run_op(fa, acc).tolist() == [[4] * 8, [0] * 8, [4] * 8]
    assert run_op(th, acc).tolist() == [[4] * 8, [4] * 8, [4] * 8]


def test_narrow_accumulator_with_a_dip_is_refused_on_both_paths(tmp_onnx, monkeypatch):
    path, a = _dip_model(tmp_onnx(), inputs=8, w_bits=3)
    graph = import_onnx(path)
    fa, lo, hi = _activation(graph)
    span = int((hi - lo).max()) + 1
    assert span * len(lo) <= DENSE_LIMIT
    first = a - 3 - lo  # the dip's first value, counted from each channel's lo: the dense check reports
    channel = int(np.argmin(first))  # the channel whose dip it meets first
    with pytest.raises(HwgenError) as info:
        streamline(import_onnx(path))
    assert str(info.value) == (
        f"node '{fa.name}' (Quant): the float ops between the accumulator and quantizer '{fa.name}' are not "
        f"monotone in channel {channel} ({', '.join(fa.onnx_nodes)}); they cannot become thresholds")
    monkeypatch.setattr(streamline_module, "DENSE_LIMIT", 1)
    abs_node = next(n for n in fa.onnx_nodes if n.startswith("Abs"))
    with pytest.raises(HwgenError) as info:
        streamline(graph)
    assert str(info.value) == _refusal(fa, abs_node, "Abs", "is not one of the ops hwgen proves monotone", span, 8,
                                       limit=1)


# --- end to end: a wide, provably monotone map compiles and matches qonnx ---------------------------
def _wide_monotone_mlp(path, *, seed=0, inputs=64, channels=16, n=2000):
    """8-bit input (scale 2^-8) -> MatMul (8-bit weights, power-of-two scales) -> BN (statistics of the
    accumulators on random inputs, some negative gammas) -> Relu -> Mul c -> Add c -> 4-bit quant ->
    linear. Power-of-two scales keep qonnx's float32 accumulators exact, so golden == reference."""
    rng = np.random.default_rng(seed)
    w = rng.integers(-128, 128, size=(channels, inputs))
    ws = 2.0 ** rng.integers(-8, -5, size=channels)
    x = rng.integers(0, 256, size=(n, inputs)) / 256.0
    acc = x @ (w * ws[:, None]).T
    gamma = rng.uniform(0.5, 2.0, channels) * np.where(np.arange(channels) % 3 == 0, -1, 1)
    b = GraphBuilder(inputs, name="wide")
    b.quant(2.0 ** -8, 8, signed=False)
    b.linear(w, ws, bits=8)
    b.batchnorm(gamma, rng.uniform(0.0, 0.5, channels), acc.mean(0), acc.var(0))
    b.op("Relu")
    b.op("Mul", b.const(rng.uniform(0.5, 1.5, channels)))
    b.op("Add", b.const(0.125))
    b.quant(0.25, 4, signed=False)
    b.linear(rng.integers(-3, 4, (4, channels)), 0.25, bits=3, bias=rng.normal(size=4))
    return b.save(path)


def test_wide_monotone_model_compiles_and_matches_qonnx(tmp_onnx, monkeypatch):
    path = _wide_monotone_mlp(tmp_onnx())
    fa, lo, hi = _activation(import_onnx(path))
    assert (int((hi - lo).max()) + 1) * len(lo) > DENSE_LIMIT
    proved, prove = [], streamline_module._prove_monotone
    monkeypatch.setattr(streamline_module, "_prove_monotone", lambda op, *args: proved.append(op.name) or
                        prove(op, *args))
    checked, lowered = _assert_pass_exact(path)
    th = next(op for op in lowered.ops if isinstance(op, Threshold))
    assert checked == 1 and proved == [fa.name]
    assert th.decreasing.tolist() == (np.arange(16) % 3 == 0).tolist()
    x = (np.random.default_rng(1).integers(0, 256, size=(500, 64)) / 256.0).astype(np.float32)
    _check(path, x)
    levels = execute(lowered, x)[th.outputs[0]]
    assert len(np.unique(levels)) == 16  # the inputs reach every level: the comparison sees the steps


# --- the proof itself, on hand-built segments ---------------------------------------------------------
def _segment(nodes, consts, out):
    return make_segment(nodes, {k: np.asarray(v, np.float32) for k, v in consts.items()}, "x", (4,), out, 13)


FORK = "(a fork: two paths from the accumulator that meet again can make any shape)"


def _obstacle(nodes, consts, out, m=1000.0):
    found = monotone_obstacle(_segment(nodes, consts, out), m)
    return None if found is None else (found[0].name, found[0].op_type, found[1])


CHAIN = [
    node("Add", ["x", "c_add"], ["t1"], name="add"),
    node("Mul", ["c_mul", "t1"], ["t2"], name="mul"),  # either operand order
    node("Div", ["t2", "c_div"], ["t3"], name="div"),  # x / c
    node("BatchNormalization", ["t3", "g", "beta", "mean", "var"], ["t4"], name="bn"),
    node("Sub", ["c_sub", "t4"], ["t5"], name="sub"),  # c - x: decreasing, still monotone
    node("Relu", ["t5"], ["t6"], name="relu"),
    node("Clip", ["t6", "c_lo", "c_hi"], ["t7"], name="clip"),
    node("Max", ["t7", "c_max"], ["t8"], name="max"),
    node("Min", ["c_min", "t8"], ["t9"], name="min"),
    node("LeakyRelu", ["t9"], ["t10"], name="leaky", alpha=0.1),
    node("Neg", ["t10"], ["t11"], name="neg"),
    node("Round", ["t11"], ["t12"], name="round"),
    node("Floor", ["t12"], ["t13"], name="floor"),
    node("Identity", ["t13"], ["y"], name="id"),
]
CONSTS = {"c_add": [0.5, -1, 2, 0], "c_mul": [1.5, -2, 0.25, 0], "c_div": [3, -0.5, 7, 1], "g": [1, -2, 0.5, -1],
          "beta": [0, 1, -1, 2], "mean": [0.1, 0, 3, -2], "var": [1, 4, 0.5, 2], "c_sub": 1.0, "c_lo": -3.0,
          "c_hi": 40.0, "c_max": [-1, -2, -3, -4], "c_min": [30, 20, 10, 5]}


def test_a_chain_of_whitelisted_ops_is_proved_and_is_monotone():
    assert _obstacle(CHAIN, CONSTS, "y") is None
    seg = _segment(CHAIN, CONSTS, "y")  # and onnxruntime agrees on a dense grid, per channel
    x = np.linspace(-1000, 1000, 200001, dtype=np.float32)
    y = seg.run(np.repeat(x[:, None], 4, 1))
    steps = np.diff(y, axis=0)
    assert np.all((steps >= 0).all(0) | (steps <= 0).all(0))
    assert len(np.unique(y[:, 0])) > 10  # not trivially constant


def test_x_over_c_is_proved_c_over_x_is_not():
    assert _obstacle([node("Div", ["x", "c"], ["y"], name="d")], {"c": [2, -3, 0.5, 1]}, "y") is None
    assert _obstacle([node("Div", ["c", "x"], ["y"], name="d")], {"c": 1.0}, "y") == \
        ("d", "Div", "divides a constant by the value (c / x is not monotone across 0)")
    assert _obstacle([node("Div", ["x", "c"], ["y"], name="d")], {"c": [1, 0, 1, 1]}, "y") == \
        ("d", "Div", "divides by zero")


def test_a_fork_is_not_proved():
    """x + relu(x) is monotone, but two paths that meet again prove nothing in general."""
    nodes = [node("Relu", ["x"], ["r"], name="relu"), node("Add", ["x", "r"], ["y"], name="add")]
    assert _obstacle(nodes, {}, "y") == ("add", "Add", f"shares its input 'x' with Relu 'relu' {FORK}")
    nodes = [node("Relu", ["x"], ["r"], name="relu"), node("Neg", ["r"], ["n"], name="neg"),
             node("Add", ["r", "n"], ["y"], name="add")]
    assert _obstacle(nodes, {}, "y") == ("add", "Add", f"shares its input 'r' with Neg 'neg' {FORK}")


@pytest.mark.parametrize("nodes, consts, expected", [
    ([node("Mul", ["x", "x"], ["y"], name="sq")], {}, ("sq", "Mul", "takes 'x' more than once (like x * x)")),
    ([node("Abs", ["x"], ["y"], name="abs")], {}, ("abs", "Abs", "is not one of the ops hwgen proves monotone")),
    ([node("Sigmoid", ["x"], ["y"], name="sig")], {},
     ("sig", "Sigmoid", "is not one of the ops hwgen proves monotone")),
    ([node("Pow", ["x", "c"], ["y"], name="pow")], {"c": 2.0},
     ("pow", "Pow", "is not one of the ops hwgen proves monotone")),
    ([node("LeakyRelu", ["x"], ["y"], name="lr", alpha=-0.5)], {}, ("lr", "LeakyRelu", "has alpha -0.5 < 0")),
    ([node("Mul", ["x", "c"], ["y"], name="mul")], {"c": np.inf},
     ("mul", "Mul", "has a constant that is not finite")),
    ([node("Mul", ["x", "c"], ["t"], name="big"), node("Mul", ["t", "z"], ["y"], name="zero")],
     {"c": 1e34, "z": 0.0},
     ("big", "Mul", "may overflow float32 (values up to 1e+37; inf * 0 is NaN, which no threshold reproduces)")),
    ([node("Clip", ["c", "x"], ["y"], name="clip")], {"c": 1.0},
     ("clip", "Clip", "takes 'x' as a parameter, not as its data input")),
])
def test_unprovable_ops_are_named(nodes, consts, expected):
    assert _obstacle(nodes, consts, "y") == expected


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_trunc_rounding_segments_are_proved(mode):
    """The importer's float form of a Trunc: for rounding away from / toward zero it is
    Sign(x) * g(Abs(x)), a fork, proved by its own rule (g nondecreasing, g(0) >= 0)."""
    spec = TruncSpec(name="t", version=2, shift=3, rounding_mode=mode, lo=-128, hi=127, scale=1.0, out_scale=0.5)
    inits = {}
    seg = make_segment(spec.segment_nodes("x", "y", inits, "T"), inits, "x", (4,), "y", 13)
    assert monotone_obstacle(seg, 1e4) is None
    v = np.arange(-2000, 2001)
    y = seg.run(np.repeat((v * np.float32(2.0 ** -3)).astype(np.float32)[:, None], 4, 1))[:, 0]
    assert np.array_equal(y, spec.apply(v) * np.float32(0.5))  # what the proved segment computes


def test_sign_times_magnitude_below_zero_is_not_proved():
    """sign(x) * (|x| - 1) dips around 0: the Sign / Abs rule needs g(0) >= 0."""
    nodes = [node("Sign", ["x"], ["s"], name="sign"), node("Abs", ["x"], ["a"], name="abs"),
             node("Sub", ["a", "one"], ["g"], name="sub"), node("Mul", ["s", "g"], ["y"], name="join")]
    assert _obstacle(nodes, {"one": 1.0}, "y") == ("abs", "Abs", f"shares its input 'x' with Sign 'sign' {FORK}")
    assert _obstacle(nodes, {"one": -1.0}, "y") is None  # sign(x) * (|x| + 1): a step up at 0, monotone
