"""ODEBlockUnit equals the golden ODEBlock (hwgen.lowering.ode_block) bit-exactly (random stalls), and the N-step unit
equals N chained runs of the single-step unit; also on the block the compiler recognises in a
dsODENet-style model."""
import copy
import zlib

import numpy as np
import pytest

from hwgen.golden import run_op
from hwgen.ir import Add, Conv, ODEBlock, Threshold
from hwgen.ir.types import IntType, from_wire
from hwgen.passes.accumulators import size_layer
from hwgen.rtl.ode_block import ODEBlockUnit
from sim.amaranth_streams import pack_beats, run_stream
from sim.vectors import random_values

I4, U3, I3 = IntType(4, True), IntType(3, False), IntType(3, True)


def unpack(payloads, dtype, per_beat):
    bits = dtype.wire_bits
    flat = [(p >> (e * bits)) & ((1 << bits) - 1) for p in payloads for e in range(per_beat)]
    return from_wire(np.array(flat, dtype=np.int64), dtype)


def _thresholds(rng, acc_type, channels, levels):
    t = np.sort(rng.integers(acc_type.min // 2, acc_type.max // 2 + 1, size=(channels, levels - 1)), axis=1)
    return t, rng.random(channels) < 0.25


def make_block(shape=(5, 5, 4), steps=3, shifts=(1, 0, 1), seed=0, folding=None):
    """h (INT4) -> depthwise 3x3 conv -> threshold (UINT3) -> pointwise conv -> threshold (INT4) -> Add."""
    rng = np.random.default_rng(seed)
    h, w, c = shape
    common = dict(input_scale=1.0, weight_scale=np.ones(c, np.float32))
    dw = Conv(name="dw", inputs=["h"], outputs=["a"], weights=rng.integers(-3, 4, (c, 3, 3, 1)), in_type=I4,
              w_type=I3, in_shape=shape, kernel=(3, 3), pads=(1, 1, 1, 1), groups=c, **common)
    size_layer(dw)
    t1, d1 = _thresholds(rng, dw.acc_type, c, 8)
    th1 = Threshold(name="t1", inputs=["a"], outputs=["b"], thresholds=t1, decreasing=d1, in_type=dw.acc_type,
                    out_type=U3, out_base=0)
    pw = Conv(name="pw", inputs=["b"], outputs=["c"], weights=rng.integers(-3, 4, (c, 1, 1, c)), in_type=U3,
              w_type=I3, in_shape=shape, kernel=(1, 1), **common)
    size_layer(pw)
    t2, d2 = _thresholds(rng, pw.acc_type, c, 16)
    th2 = Threshold(name="t2", inputs=["c"], outputs=["d"], thresholds=t2, decreasing=d2, in_type=pw.acc_type,
                    out_type=I4, out_base=-8)
    add = Add(name="add", inputs=["h", "d"], outputs=["h1"], a_shift=shifts[0], b_shift=shifts[1],
              out_shift=shifts[2], a_type=I4, b_type=I4, out_type=I4, out_scale=1.0)
    for op_ in (dw, pw):
        if folding and op_.name in folding:
            op_.pe, op_.simd = folding[op_.name]
    return ODEBlock(name="ode", inputs=["h"], outputs=["y"], body=[dw, th1, pw, th2, add], steps=steps,
                    dt_shift=shifts[2] - shifts[1], body_input="h", body_output="h1", state_type=I4)


def run_block(op, x, *, simd=None, seed=0, p_valid=0.7, p_ready=0.7):
    dut = ODEBlockUnit.from_op(op, simd=simd)
    out, cycles = run_stream(dut, pack_beats(x.reshape(len(x), -1), I4, dut.simd), x.size // dut.simd, seed=seed,
                             p_valid=p_valid, p_ready=p_ready)
    return dut, unpack(out, I4, dut.simd).reshape(x.shape), cycles


CASES = [  # shape, steps, shifts, folding {name: (pe, simd)}, buffer simd
    ((5, 5, 4), 3, (1, 0, 1), None, None),
    ((4, 5, 4), 2, (2, 0, 2), {"dw": (2, 2), "pw": (4, 4)}, 2),
    ((4, 4, 2), 1, (1, 0, 1), {"dw": (2, 18), "pw": (1, 2)}, 2),
    ((3, 4, 2), 4, (3, 0, 3), {"dw": (1, 1), "pw": (2, 1)}, 1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}N{c[1]}sh{c[2][0]}f{bool(c[3])}s{c[4]}")
def test_block_matches_golden_with_stalls(case):
    shape, steps, shifts, folding, simd = case
    seed = zlib.crc32(str(case).encode()) % 1000
    op = make_block(shape, steps, shifts, seed=seed, folding=folding)
    x = random_values(I4, (2, *shape), np.random.default_rng(seed))
    dut, got, _ = run_block(op, x, simd=simd, seed=seed)
    np.testing.assert_array_equal(got, run_op(op, x))


def test_n_steps_equal_n_chained_single_steps():
    op = make_block((4, 4, 4), 3, (1, 0, 1), seed=7, folding={"dw": (2, 2), "pw": (2, 2)})
    one = copy.copy(op)
    one.steps = 1
    x = random_values(I4, (2, 4, 4, 4), np.random.default_rng(7))
    _, got_n, _ = run_block(op, x, simd=2, seed=1)
    h = x
    for k in range(3):
        _, h, _ = run_block(one, h, simd=2, seed=10 + k)
    np.testing.assert_array_equal(got_n, h)
    np.testing.assert_array_equal(got_n, run_op(op, x))
    assert not np.array_equal(h, x)


def test_cycles_without_stalls():
    op = make_block((5, 5, 4), 2, (1, 0, 1), seed=3, folding={"dw": (4, 4), "pw": (4, 4)})
    images = 3
    x = random_values(I4, (images, 5, 5, 4), np.random.default_rng(3))
    dut, got, cycles = run_block(op, x, simd=4, p_valid=1.0, p_ready=1.0)
    np.testing.assert_array_equal(got, run_op(op, x))
    total = cycles[-1] + 1
    # steady state: N steps of the slowest body stage per image (the load hides behind the output)
    assert total <= images * dut.cycles + dut.latency, (total, dut.cycles, dut.latency)


def test_recognised_block_of_a_dsodenet(tmp_path):
    from onnx_builders import residual_cnn

    from hwgen.compiler import compile_model

    graph = compile_model(residual_cnn(str(tmp_path / "m.onnx"), seed=2, steps=3, dt=0.5))
    block = next(op for op in graph.core if isinstance(op, ODEBlock))
    assert [o.kind for o in block.body] == ["Conv", "Threshold", "Conv", "Threshold", "Add"]
    dw, pw = block.body[0], block.body[2]
    assert dw.depthwise and pw.kernel == (1, 1)
    dw.pe, dw.simd = dw.out_channels, dw.in_shape[2]  # fold so the bench stays short
    pw.pe, pw.simd = pw.out_channels, pw.in_shape[2]
    shape = dw.in_shape
    x = random_values(block.state_type, (2, *shape), np.random.default_rng(0))
    dut, got, _ = run_block(block, x, seed=4)
    np.testing.assert_array_equal(got, run_op(block, x))


@pytest.mark.slow
def test_random_blocks():
    """Tiny maps (down to 1x1), 1..4 steps, every folding, heavy stalls: the versioned in-place
    buffer never reads a word too early or overwrites one too soon."""
    import random

    from hwgen.rtl.util import divisors

    rng = random.Random(9)
    for it in range(40):
        h, w, c = rng.randint(1, 4), rng.randint(1, 4), rng.choice([1, 2, 4])
        steps = rng.randint(1, 4)
        shifts = rng.choice([(1, 0, 1), (2, 0, 2), (0, 0, 0), (1, 1, 2)])
        fold = {"dw": (rng.choice(divisors(c)), rng.choice(divisors(9 * c))),
                "pw": (rng.choice(divisors(c)), rng.choice(divisors(c)))}
        simd = rng.choice(divisors(c))
        op = make_block((h, w, c), steps, shifts, seed=it, folding=fold)
        x = random_values(I4, (3, h, w, c), np.random.default_rng(it))
        _, got, _ = run_block(op, x, simd=simd, seed=it, p_valid=rng.choice([0.2, 0.7, 1]),
                              p_ready=rng.choice([0.2, 0.7, 1]))
        np.testing.assert_array_equal(got, run_op(op, x), err_msg=f"{(h, w, c)} N{steps} {shifts} {fold} {simd}")
