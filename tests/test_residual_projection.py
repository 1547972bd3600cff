"""Residual blocks with a projection shortcut, Add(f(h), g(h)) (ResNet-18's layer2.0-4.0: beside the
body f, the skip path g is a 1x1 stride-2 conv + BatchNorm + quantizer): the importer takes both chains
(g first, up to the Add), golden == qonnx reference, the fork shapes it refuses (each error names the
node), the plan (g's units inside the ResidualBlock ahead of the skip FIFO, which holds g's whole output
map; behind f instead where g looks further ahead), the cost of g's units, the block's timing model in
lockstep with its RTL under random stalls, and the whole accelerator bit-exact in Icarus and Verilator
with the report's II and latency confirmed by the bench.

The model (onnx_builders.projection_cnn): 2x8x8 input, stem conv 2 -> 4 channels, a projection block
4 -> 8 channels at stride 2 (4x4 output), global average pool, linear 8 -> 3. About 2 minutes in the
default suite (Icarus benches 8-30 s each); the Verilator bench is slow (about 85 s, its build)."""
import re

import numpy as np
import pytest
from onnx_builders import GraphBuilder, projection_cnn

import hwgen
from hwgen.compiler import compile_model
from hwgen.cost import units as cost_units
from hwgen.errors import HwgenError
from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.golden import run
from hwgen.ir import Add, Conv
from hwgen.lowering import lowering_of_unit
from hwgen.lowering.residual import residual_body
from hwgen.passes.fold import foldable
from hwgen.rtl.residual_block import ResidualBlock

FOLD = 256  # auto folding target: a few hundred cycles per image keeps the benches short
# a body of 1x1 convs beside a 7x7 skip conv, folded to about 1024 cycles: the skip FIFO goes behind the body
FIFO_BEHIND_BODY = {"body_kernel": 1, "skip_kernel": 7, "c": 8}


def _inputs(n, seed=2):
    return np.random.default_rng(seed).uniform(0, 1, (n, 2, 8, 8)).astype(np.float32)


def _convs(graph):
    """(stem, body conv 1, body conv 2, skip conv) by the graph's structure."""
    convs = [op for op in graph.core if isinstance(op, Conv)]
    stem = next(op for op in convs if op.in_shape[2] == 2)
    body2 = next(op for op in convs if op.in_shape == (4, 4, 8))
    body1 = graph.producer(graph.producer(body2.inputs[0]).inputs[0])
    skip = next(op for op in convs if op not in (stem, body1, body2))
    return stem, body1, body2, skip


def _block(acc):
    return next(st for st in acc.plan.stages if isinstance(st.unit, ResidualBlock))


# -- import and golden ----------------------------------------------------------------------------
@pytest.mark.parametrize("kw,shifts", [
    ({}, (0, 0, 0)),  # one scale along the block (bnn_pynq's shared QuantReLU)
    ({"skip_first": True}, (0, 0, 0)),  # Add(g, f)
    ({"scales": (0.25, 0.5, 0.5)}, (1, 0, 1)),  # power-of-two alignment: skip 2^-1, body 2^-2, sum 2^-1
    ({"skip_kernel": 3}, (0, 0, 0)),  # a 3x3 stride-2 skip conv
], ids=["shared_scale", "skip_first", "pow2_shifts", "skip3x3"])
def test_projection_block_imports_both_chains_and_matches_qonnx(tmp_onnx, kw, shifts):
    path = projection_cnn(tmp_onnx(), seed=3, **kw)
    graph = compile_model(path)
    adds = [op for op in graph.core if isinstance(op, Add)]
    assert len(adds) == 1
    add = adds[0]
    stem, body1, body2, skip = _convs(graph)
    h = graph.consumers(stem.outputs[0])[0].outputs[0]  # the stem's quantized output: the fork
    assert skip.inputs == body1.inputs == [h]
    assert skip.kernel == (kw.get("skip_kernel", 1),) * 2 and skip.stride == (2, 2)
    step = residual_body(add, graph.core)
    assert step.fork == h
    assert [op.name for op in step.skip] == [skip.name, graph.consumers(skip.outputs[0])[0].name]
    assert [op.kind for op in step.body] == ["Conv", "Threshold", "Conv", "Threshold"]
    assert step.body[0] is body1 and step.body[2] is body2
    assert add.inputs[0] == step.skip_tensor  # the importer puts the skip first
    assert (add.a_shift, add.b_shift, add.out_shift) == shifts
    order = [op.name for op in graph.core]  # g, then f, then the Add
    assert order.index(step.skip[-1].name) < order.index(body1.name) < order.index(add.name)
    assert any(f"residual Add '{add.name}' has a projection shortcut" in n for n in graph.notes), graph.notes
    x = _inputs(300)
    match = compare_with_reference(graph, path, x)
    assert all(v == 1.0 for v in match.values()), match
    np.testing.assert_array_equal(run(graph, x), run_reference(path, x))


def test_the_skip_convs_fold_like_any_layer(tmp_onnx):
    path = projection_cnn(tmp_onnx(), seed=3)
    graph = compile_model(path)
    _, body1, body2, skip = _convs(graph)
    names = [op.name for op, parent in foldable(graph)]
    assert skip.name in names and body1.name in names and body2.name in names
    acc = hwgen.compile(path, fold={skip.name: {"pe": 2, "simd": 4}})
    folded = next(op for op in acc.graph.core if op.name == skip.name)
    assert (folded.pe, folded.simd) == (2, 4)
    row = next(r for r in acc.plan.layers if r["name"] == skip.name)
    assert (row["pe"], row["simd"], row["cycles"]) == (2, 4, 4 * 4 * (8 // 2) * (4 // 4))


# -- fork shapes hwgen refuses --------------------------------------------------------------------
def _stem(b, rng):
    b.quant(2.0 ** -3, 3, signed=False)
    return _cbq(b, rng, 2, 4, 3, 1)


def _cbq(b, rng, ci, co, k, stride, quant=True):
    b.conv(rng.integers(-3, 4, (co, ci, k, k)), 0.25, bits=3, stride=stride, pad=k // 2)
    b.batchnorm(rng.uniform(0.3, 1, co), rng.normal(size=co), rng.normal(size=co), rng.uniform(1, 4, co))
    if not quant:
        return b.cur
    b.op("Relu")
    return b.quant(0.25, 3, signed=False)


def _head(b, rng):
    b.op("Relu")
    b.quant(0.25, 3, signed=False)
    b.op("GlobalAveragePool")
    b.op("Flatten", axis=1)
    b.linear(rng.integers(-3, 4, (3, 8)), 0.25, bits=3)


def _refused(path):
    with pytest.raises(HwgenError) as e:
        compile_model(path)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_unquantized_skip_path_is_refused(tmp_onnx):
    """g = conv -> BatchNorm straight into the Add: the Add needs two quantized tensors."""
    rng = np.random.default_rng(0)
    b = GraphBuilder((2, 8, 8))
    h = _stem(b, rng)
    _cbq(b, rng, 4, 8, 3, 2)
    f = _cbq(b, rng, 8, 8, 3, 1)
    b.cur = h
    _cbq(b, rng, 4, 8, 1, 2, quant=False)
    b.op("Add", f)
    _head(b, rng)
    msg = _refused(b.save(tmp_onnx()))
    assert re.match(r"node 'Add_\d+' \(Add\): the path Conv_\d+ \.\.\. BatchNormalization_\d+ from '\S+' reaches "
                    r"this residual Add from BatchNormalization 'BatchNormalization_\d+', not from an activation "
                    r"quantizer: hwgen adds two quantized tensors; quantize both paths' outputs", msg), msg


def test_fork_inside_a_path_is_refused(tmp_onnx):
    """A body with an identity residual of its own inside the projection block: not a chain."""
    rng = np.random.default_rng(1)
    b = GraphBuilder((2, 8, 8))
    h = _stem(b, rng)
    q1 = _cbq(b, rng, 4, 8, 3, 2)
    _cbq(b, rng, 8, 8, 3, 1)
    b.op("Add", q1)
    b.op("Relu")
    f = b.quant(0.25, 3, signed=False)
    b.cur = h
    _cbq(b, rng, 4, 8, 1, 2)
    b.op("Add", f)
    _head(b, rng)
    msg = _refused(b.save(tmp_onnx()))
    assert re.match(r"node 'Quant_\d+' \(Quant\): tensor '\S+' feeds several nodes \(Conv_\d+ \(Conv\), Conv_\d+ "
                    r"\(Conv\)\) and '\S+' of Quant 'Quant_\d+' on one path feeds Conv_\d+ \(Conv\), Add_\d+ \(Add\): "
                    r"hwgen compiles one data path with residual blocks Add\(f\(h\), g\(h\)\)", msg), msg


def test_three_way_fork_is_refused(tmp_onnx):
    rng = np.random.default_rng(2)
    b = GraphBuilder((2, 8, 8))
    h = _stem(b, rng)
    outs = []
    for _ in range(3):
        b.cur = h
        outs.append(_cbq(b, rng, 4, 8, 1, 2))
    b.op("Add", outs[0])
    b.op("Add", outs[1])
    _head(b, rng)
    msg = _refused(b.save(tmp_onnx()))
    assert re.match(r"tensor '\S+' feeds several nodes \(Conv_\d+ \(Conv\), Conv_\d+ \(Conv\), Conv_\d+ \(Conv\)\); "
                    r"hwgen compiles one data path with residual blocks Add\(f\(h\), g\(h\)\)", msg), msg


# -- the plan -------------------------------------------------------------------------------------
def test_plan_puts_the_skip_units_ahead_of_the_skip_fifo(tmp_onnx):
    path = projection_cnn(tmp_onnx(), seed=3, scales=(0.25, 0.5, 0.5))
    acc = hwgen.compile(path, fold="auto", target_cycles=FOLD)
    skip = _convs(acc.graph)[3]
    st = _block(acc)
    u = st.unit
    skip_ops = [s.op.name for s in u.skip_stages if s.op is not None]
    assert skip_ops == [skip.name, acc.graph.consumers(skip.outputs[0])[0].name]
    assert [s.op.kind for s in u.stages if s.op is not None] == ["Conv", "Threshold", "Conv", "Threshold"]
    assert u.out_fmt.elements == 4 * 4 * 8 and u.skip_fmt.elements == 4 * 4 * 8
    assert u.skip_fmt.per_beat == u.out_fmt.per_beat == u.add.elems
    assert u.out_fmt.per_beat == 2 and u.skip.depth == 64 + 2  # g's whole output map (64 beats) + the slack
    assert u.skip.width == u.skip_fmt.payload_bits == 3 * u.out_fmt.per_beat
    row = next(r for r in acc.plan.layers if r["name"] == st.op.name)
    assert row["residual_skip"] == skip_ops and row["skip_fifo_depth"] == u.skip.depth
    assert row["residual_body"] == [s.op.name for s in u.stages if s.op is not None]
    assert skip.name in [r["name"] for r in acc.plan.layers]
    assert st.cycles == max([u.in_fmt.beats, u.out_fmt.beats] + [s.cycles for s in u.stages + u.skip_stages])
    # the estimate: the FIFO, the add, and every unit of both paths; the Add's row is the block less them
    for target in ("ecp5", "ice40"):
        inner = [s.unit for s in u.stages + u.skip_stages]
        total = cost_units.fifo(u.skip, target) + cost_units.residual_add(u.add, target)
        for x in inner:
            total = total + lowering_of_unit(x).estimate(x, target)
        assert cost_units.residual_block(u, target).as_dict() == total.as_dict()
        own = lowering_of_unit(u).own_cost(u, inner, target)
        assert own == (cost_units.fifo(u.skip, target) + cost_units.residual_add(u.add, target)).as_dict()


def test_skip_path_looking_further_ahead_gets_the_fifo_behind_the_body(tmp_onnx):
    """g a 7x7 conv beside a body of 1x1 convs: with the FIFO behind g the fork would stall for good
    (f's outputs wait at the Add for g, which waits for rows f cannot take); the plan puts the FIFO behind
    f, which then runs ahead. (A 5x5 g no longer needs it since windows register their read data: the
    register is one more word f's window holds.)"""
    path = projection_cnn(tmp_onnx(), seed=3, **FIFO_BEHIND_BODY)
    acc = hwgen.compile(path, fold="auto", target_cycles=1024)
    _, body1, body2, skip = _convs(acc.graph)
    u = _block(acc).unit
    assert next(s.op.name for s in u.stages if s.op is not None) == skip.name  # g is the FIFO-less path
    assert [s.op.name for s in u.skip_stages if s.op is not None][::2] == [body1.name, body2.name]
    assert acc.plan.latency_cycles is not None


# -- timing model and RTL -------------------------------------------------------------------------
@pytest.mark.parametrize("kw,fold", [({}, 256), ({}, 64), (FIFO_BEHIND_BODY, 1024)],
                         ids=["fold256", "fold64", "fifo_behind_body"])
@pytest.mark.parametrize("seed", [0, 1])
def test_block_timing_model_in_lockstep(tmp_onnx, kw, fold, seed):
    from amaranth.hdl import Fragment
    from test_timing_lockstep import lockstep

    from hwgen.passes.fold import fold_graph
    from hwgen.rtl.top import plan

    stages, _, _ = plan(fold_graph(compile_model(projection_cnn(tmp_onnx(), seed=3, **kw)), ("auto", fold)))
    unit = next(st.unit for st in stages if isinstance(st.unit, ResidualBlock))
    for st in stages:  # only built, not simulated: mark them used
        if st.unit is not unit:
            Fragment.get(st.unit, None)
    ins, _, _ = lockstep(unit, 1500, 100 + seed)
    assert ins > unit.in_fmt.beats  # more than one whole inference went in


def _skip_bound(path):
    """Every layer fully parallel but the 3x3 skip conv at PE = SIMD = 1 (16 pixels x 8 outputs x 36
    taps = 4608 cycles): g sets the II."""
    stem, body1, body2, skip = _convs(compile_model(path))
    return {stem.name: {"pe": 4, "simd": 18}, body1.name: {"pe": 8, "simd": 36}, body2.name: {"pe": 8, "simd": 72},
            skip.name: {"pe": 1, "simd": 1}, "Gemm_0": {"pe": 3, "simd": 8}}


@pytest.mark.parametrize("kw,fold,ii,latency", [
    ({"scales": (0.25, 0.5, 0.5)}, FOLD, 576, 741),  # the stem's window (8x8 pixels x 9 taps) sets the II
    ({"skip_first": True, "skip_kernel": 3}, FOLD, 576, 741),
    (FIFO_BEHIND_BODY, 1024, 1744, 2047),
    ({"skip_kernel": 3}, _skip_bound, 4608, 4706),
], ids=["pow2_shifts", "skip3x3", "fifo_behind_body", "skip_bound"])
def test_projection_block_verifies_in_icarus(tmp_path, kw, fold, ii, latency):
    """Bit-exact with random stalls, and the bench measures the report's II and latency: 5-20 s each."""
    path = projection_cnn(tmp_path / "m.onnx", seed=3, **kw)
    if callable(fold):
        acc = hwgen.compile(path, fold=fold(path))
    else:
        acc = hwgen.compile(path, fold="auto", target_cycles=fold)
    assert (acc.plan.ii_cycles, acc.plan.latency_cycles) == (ii, latency)
    acc.write(tmp_path / "build")
    r = acc.verify(sim="icarus", vectors=3, seed=2)
    assert r.ok and r.failed == 0 and r.passed == r.vectors >= 5, r.summary()  # 3 random + the extremes
    assert r.ii_measured == acc.plan.ii_cycles and r.latency_measured == acc.plan.latency_cycles


@pytest.mark.slow
def test_projection_block_verifies_in_verilator(tmp_path):
    """About 85 s (the Verilator build)."""
    acc = hwgen.compile(projection_cnn(tmp_path / "m.onnx", seed=3, scales=(0.25, 0.5, 0.5)), fold="auto",
                        target_cycles=64)
    assert (acc.plan.ii_cycles, acc.plan.latency_cycles) == (576, 689)
    acc.write(tmp_path / "build")
    r = acc.verify(sim="verilator", vectors=3, seed=2, cxx_opt="-O0")
    assert r.ok and r.passed == r.vectors == 5, r.summary()
    assert r.ii_measured == acc.plan.ii_cycles and r.latency_measured == acc.plan.latency_cycles
