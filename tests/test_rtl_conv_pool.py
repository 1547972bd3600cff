"""MaxPoolUnit and GlobalSumPoolUnit equal the golden model bit-exactly on random NHWC images,
with seeded random valid/ready stalls (signed, unsigned, Bipolar; stride, padding, SIMD)."""
import zlib

import numpy as np
import pytest

from hwgen.golden import run_op
from hwgen.ir import GlobalSumPool, MaxPool
from hwgen.ir.types import Bipolar, IntType, from_wire, smallest_type
from hwgen.rtl.maxpool import MaxPoolUnit
from hwgen.rtl.sumpool import GlobalSumPoolUnit
from sim.amaranth_streams import pack_beats, run_stream
from sim.vectors import random_values


def unpack(payloads, dtype, per_beat):
    bits = dtype.wire_bits
    mask = (1 << bits) - 1
    flat = [(p >> (e * bits)) & mask for p in payloads for e in range(per_beat)]
    return from_wire(np.array(flat, dtype=np.int64), dtype)


I4, U3 = IntType(4, True), IntType(3, False)
MAX_CASES = [  # in_shape, kernel, stride, pads, dtype, simd
    ((6, 6, 2), (2, 2), (2, 2), (0, 0, 0, 0), I4, 1),
    ((6, 6, 4), (2, 2), (2, 2), (0, 0, 0, 0), U3, 2),
    ((5, 5, 2), (3, 3), (2, 2), (1, 1, 1, 1), I4, 2),
    ((5, 4, 3), (3, 3), (1, 1), (1, 1, 1, 1), U3, 1),
    ((4, 4, 2), (2, 2), (1, 1), (0, 0, 1, 1), I4, 2),
    ((5, 5, 1), (3, 3), (3, 3), (0, 0, 1, 1), IntType(8, True), 1),
    ((4, 4, 4), (2, 2), (2, 2), (0, 0, 0, 0), Bipolar, 2),
    ((4, 4, 2), (3, 3), (1, 1), (1, 1, 1, 1), Bipolar, 1),
    ((3, 3, 2), (1, 1), (1, 1), (0, 0, 0, 0), I4, 1),
]


def _mid(c):
    return f"{c[0]}k{c[1][0]}s{c[2][0]}p{sum(c[3])}{c[4]}x{c[5]}"


@pytest.mark.parametrize("case", MAX_CASES, ids=_mid)
def test_maxpool_matches_golden_with_stalls(case):
    in_shape, kernel, stride, pads, dtype, simd = case
    seed = zlib.crc32(_mid(case).encode()) % 1000
    rng = np.random.default_rng(seed)
    op = MaxPool(name="mp", inputs=["x"], outputs=["y"], in_shape=in_shape, kernel=kernel, stride=stride,
                 pads=pads, dtype=dtype)
    x = random_values(dtype, (2, *in_shape), rng)
    want = run_op(op, x)
    assert want.shape[1:] == op.out_shape
    dut = MaxPoolUnit.from_op(op, simd=simd)
    out, cycles = run_stream(dut, pack_beats(x.reshape(2, -1), dtype, simd), want.size // simd, seed=seed,
                             p_valid=0.7, p_ready=0.6)
    np.testing.assert_array_equal(unpack(out, dtype, simd).reshape(want.shape), want)


def test_maxpool_cycles_without_stalls():
    op = MaxPool(name="mp", inputs=["x"], outputs=["y"], in_shape=(8, 8, 4), kernel=(2, 2), stride=(2, 2),
                 dtype=U3)
    x = random_values(U3, (3, 8, 8, 4), np.random.default_rng(0))
    dut = MaxPoolUnit.from_op(op, simd=2)
    want = run_op(op, x)
    out, cycles = run_stream(dut, pack_beats(x.reshape(3, -1), U3, 2), want.size // 2)
    np.testing.assert_array_equal(unpack(out, U3, 2).reshape(want.shape), want)
    assert dut.cycles == 4 * 4 * 4 * 2
    assert cycles[-1] + 1 <= 3 * dut.cycles + dut.latency + 4 * 3, (cycles[-1], dut.cycles, dut.latency)


SUM_CASES = [  # in_shape, in_type, simd
    ((4, 4, 4), I4, 2), ((3, 5, 3), U3, 1), ((4, 4, 6), Bipolar, 3), ((1, 1, 2), I4, 2), ((6, 6, 1), U3, 1),
]


@pytest.mark.parametrize("case", SUM_CASES, ids=lambda c: f"{c[0]}{c[1]}x{c[2]}")
def test_global_sum_pool_matches_golden_with_stalls(case):
    in_shape, in_type, simd = case
    h, w, c = in_shape
    out_type = smallest_type(h * w * in_type.min, h * w * in_type.max)
    op = GlobalSumPool(name="gsp", inputs=["x"], outputs=["y"], in_shape=in_shape, in_type=in_type,
                       out_type=out_type)
    seed = zlib.crc32(str(case).encode()) % 1000
    rng = np.random.default_rng(seed)
    x = random_values(in_type, (3, *in_shape), rng)
    x[0] = in_type.max  # the extremes of the output type
    x[1] = in_type.min
    want = run_op(op, x)
    dut = GlobalSumPoolUnit.from_op(op, simd=simd)
    out, _ = run_stream(dut, pack_beats(x.reshape(3, -1), in_type, simd), want.size // simd, seed=seed,
                        p_valid=0.7, p_ready=0.5)
    np.testing.assert_array_equal(unpack(out, out_type, simd).reshape(want.shape), want)
