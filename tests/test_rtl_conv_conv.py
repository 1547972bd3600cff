"""ConvUnit (SlidingWindowUnit -> MatVecUnit) equals the golden Conv (hwgen.lowering.conv) bit-exactly on random images,
with seeded random valid/ready stalls: stride 2, padding 0/1, 1x1 kernels, 1 channel, depthwise and
grouped, Bipolar (XNOR and INT2-padded), signed and unsigned inputs, folded and fully parallel."""
import zlib

import numpy as np
import pytest

from hwgen.golden import run_op
from hwgen.ir import Conv
from hwgen.ir.types import Bipolar, IntType, from_wire
from hwgen.passes.accumulators import size_layer
from hwgen.rtl.conv import ConvUnit
from sim.amaranth_streams import pack_beats, run_stream
from sim.vectors import random_values


def unpack(payloads, dtype, per_beat):
    bits = dtype.wire_bits
    mask = (1 << bits) - 1
    flat = [(p >> (e * bits)) & mask for p in payloads for e in range(per_beat)]
    return from_wire(np.array(flat, dtype=np.int64), dtype)


def make_conv(in_shape, cout, kernel, stride, pads, groups, in_type, w_type, seed=0, name="conv"):
    rng = np.random.default_rng(seed)
    w = random_values(w_type, (cout, *kernel, in_shape[2] // groups), rng)
    op = Conv(name=name, inputs=["x"], outputs=["y"], weights=w, in_type=in_type, w_type=w_type,
              input_scale=1.0, weight_scale=np.ones(cout, np.float32), in_shape=in_shape, kernel=kernel,
              stride=stride, pads=pads, groups=groups)
    size_layer(op)
    return op


def run_conv(op, *, pe, simd, images=2, seed=0, p_valid=0.7, p_ready=0.7, x=None, registered_read=False):
    rng = np.random.default_rng(seed + 1)
    if x is None:
        x = random_values(op.in_type, (images, *op.in_shape), rng)
    want = run_op(op, x)
    dut = ConvUnit.from_op(op, pe=pe, simd=simd, registered_read=registered_read)
    acc_t = IntType(op.acc_type.bits, True)
    out, cycles = run_stream(dut, pack_beats(x.reshape(len(x), -1), op.in_type, dut.window_simd), want.size // pe,
                             seed=seed, p_valid=p_valid, p_ready=p_ready,
                             never=(dut.swg.rw_collision, dut.mv.rw_collision))  # no_rw_check memories
    return dut, unpack(out, acc_t, pe).reshape(want.shape), want, cycles


I4, U3, I3, I2 = IntType(4, True), IntType(3, False), IntType(3, True), IntType(2, True)
CASES = [  # in_shape, cout, kernel, stride, pads, groups, in_type, w_type, pe, simd
    ((5, 5, 2), 3, (3, 3), (1, 1), (1, 1, 1, 1), 1, I4, I3, 1, 1),
    ((5, 5, 2), 4, (3, 3), (2, 2), (1, 1, 1, 1), 1, U3, I3, 2, 2),
    ((6, 5, 2), 2, (3, 3), (2, 2), (0, 0, 0, 0), 1, U3, I4, 2, 1),
    ((4, 4, 3), 4, (1, 1), (1, 1), (0, 0, 0, 0), 1, I4, I3, 2, 3),
    ((5, 5, 2), 2, (1, 1), (2, 2), (0, 0, 0, 0), 1, U3, I3, 1, 2),
    ((4, 5, 1), 2, (3, 3), (1, 1), (1, 1, 1, 1), 1, I3, I3, 1, 1),
    ((4, 4, 4), 4, (3, 3), (1, 1), (1, 1, 1, 1), 4, I4, I3, 2, 2),  # depthwise
    ((4, 4, 4), 6, (3, 3), (2, 2), (1, 1, 1, 1), 2, U3, I3, 3, 2),  # grouped
    ((4, 4, 2), 3, (3, 3), (1, 1), (0, 0, 0, 0), 1, Bipolar, Bipolar, 3, 2),  # XNOR
    ((4, 4, 2), 3, (3, 3), (1, 1), (1, 1, 1, 1), 1, Bipolar, Bipolar, 1, 2),  # INT2 taps
    ((4, 4, 3), 3, (3, 3), (2, 2), (1, 1, 1, 1), 3, Bipolar, Bipolar, 3, 3),  # depthwise binary
    ((4, 4, 2), 3, (3, 3), (1, 1), (1, 1, 1, 1), 1, Bipolar, I3, 3, 1),
    ((4, 4, 2), 2, (2, 2), (1, 1), (1, 0, 0, 1), 1, I2, Bipolar, 1, 1),
]


def _id(c):
    return f"{c[0]}o{c[1]}k{c[2][0]}s{c[3][0]}p{sum(c[4])}g{c[5]}{c[6]}x{c[7]}pe{c[8]}simd{c[9]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_conv_matches_golden_with_stalls(case):
    *geom, pe, simd = case
    seed = zlib.crc32(_id(case).encode()) % 1000
    op = make_conv(*geom, seed=seed)
    dut, got, want, _ = run_conv(op, pe=pe, simd=simd, seed=seed)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("groups,in_type,w_type", [(1, I4, I3), (3, I4, I3), (1, Bipolar, Bipolar),
                                                   (3, Bipolar, Bipolar)])
def test_fully_parallel_constants(groups, in_type, w_type):
    """SIMD = kh*kw*Cin, PE = Cout: constant weights (zeros of the dense depthwise matrix vanish)."""
    op = make_conv((4, 4, 3), 3, (3, 3), (1, 1), (1, 1, 1, 1), groups, in_type, w_type, seed=5 + groups)
    dut, got, want, _ = run_conv(op, pe=3, simd=27, seed=5)
    assert not dut.folded and dut.rom_bits == 0 and dut.window_simd == 3
    np.testing.assert_array_equal(got, want)


def test_window_simd_narrower_than_matvec_simd():
    op = make_conv((4, 4, 4), 2, (3, 3), (2, 2), (1, 1, 1, 1), 1, U3, I3, seed=11)
    dut, got, want, _ = run_conv(op, pe=1, simd=6, seed=11)  # window beats of gcd(6, 4) = 2
    assert dut.window_simd == 2
    np.testing.assert_array_equal(got, want)


CUT_CASES = [  # a gather (SIMD > window SIMD) behind the window
    ((4, 4, 4), 2, (3, 3), (2, 2), (1, 1, 1, 1), 1, U3, I3, 1, 6),
    ((5, 5, 2), 4, (3, 3), (1, 1), (1, 1, 1, 1), 1, I4, I3, 2, 6),
    ((4, 4, 2), 3, (3, 3), (1, 1), (0, 0, 0, 0), 1, Bipolar, Bipolar, 3, 6),  # XNOR
    ((4, 4, 3), 3, (3, 3), (1, 1), (1, 1, 1, 1), 1, I4, I3, 3, 27),  # fully parallel
]


@pytest.mark.parametrize("case", CUT_CASES, ids=_id)
def test_registered_window_before_a_gather(case):
    """The window's registered read and enable (the plan's, pipelining to a clock) in front of a
    gather: the same outputs under stalls, its cycle in the latency the timing model uses, no
    throughput lost."""
    *geom, pe, simd = case
    seed = zlib.crc32(_id(case).encode()) % 1000
    op = make_conv(*geom, seed=seed)
    dut, got, want, _ = run_conv(op, pe=pe, simd=simd, seed=seed, registered_read=True)
    assert dut.gather is not None and dut.swg.registered_read
    np.testing.assert_array_equal(got, want)
    plain, _, _, plain_cycles = run_conv(op, pe=pe, simd=simd, images=3, p_valid=1.0, p_ready=1.0)
    cut, got, want, cycles = run_conv(op, pe=pe, simd=simd, images=3, p_valid=1.0, p_ready=1.0,
                                      registered_read=True)
    np.testing.assert_array_equal(got, want)
    assert cut.latency == plain.latency + 1
    assert cycles == [c + 1 for c in plain_cycles]  # every output one cycle later, none further apart


def test_accumulator_extremes():
    """Inputs that drive every output channel to its exact maximum and minimum (no padding)."""
    op = make_conv((3, 3, 2), 2, (3, 3), (1, 1), (0, 0, 0, 0), 1, I4, I4, seed=9)
    xs = []
    for w in op.weights:
        xs.append(np.where(w > 0, I4.max, I4.min).reshape(3, 3, 2))
        xs.append(np.where(w > 0, I4.min, I4.max).reshape(3, 3, 2))
    x = np.array(xs)
    dut, got, want, _ = run_conv(op, pe=1, simd=1, x=x)
    np.testing.assert_array_equal(got, want)
    lo, hi = op.acc_type.min, op.acc_type.max
    assert want.max() > hi // 2 and want.min() < lo // 2


@pytest.mark.parametrize("case", [CASES[1], CASES[6]], ids=_id)
def test_cycles_without_stalls(case):
    *geom, pe, simd = case
    op = make_conv(*geom, seed=1)
    images = 3
    dut, got, want, cycles = run_conv(op, pe=pe, simd=simd, images=images, p_valid=1.0, p_ready=1.0)
    np.testing.assert_array_equal(got, want)
    h, w, c = op.in_shape
    ho, wo, _ = op.out_shape
    assert dut.cycles == ho * wo * (op.out_channels // pe) * (op.kernel[0] * op.kernel[1] * c // simd)
    total = cycles[-1] + 1
    assert cycles[0] <= dut.latency + 2, (cycles[0], dut.latency)
    assert total <= images * dut.cycles + dut.latency + 8, (total, dut.cycles, dut.latency)


def test_verilog_emission_is_deterministic():
    from amaranth.back import verilog

    op = make_conv((6, 6, 4), 4, (3, 3), (1, 1), (1, 1, 1, 1), 4, I4, I3, seed=1)
    texts = []
    for _ in range(2):
        dut = ConvUnit.from_op(op, pe=2, simd=4)
        texts.append(verilog.convert(dut, name="conv", emit_src=False,
                                     ports=[dut.i.payload, dut.i.valid, dut.i.ready,
                                            dut.o.payload, dut.o.valid, dut.o.ready]))
    assert texts[0] == texts[1] and "module conv" in texts[0]


@pytest.mark.slow
def test_random_layers():
    import random

    from hwgen.rtl.util import divisors

    rng = random.Random(3)
    for it in range(120):
        kh, kw = rng.randint(1, 3), rng.randint(1, 3)
        stride = (rng.randint(1, 2), rng.randint(1, 2))
        pads = tuple(rng.randint(0, k - 1) for k in (kh, kw, kh, kw))
        h = rng.randint(max(1, kh - pads[0] - pads[2]), 5)
        w = rng.randint(max(1, kw - pads[1] - pads[3]), 5)
        c = rng.randint(1, 4)
        groups = rng.choice(divisors(c))
        cout = groups * rng.randint(1, 2)
        in_t, w_t = rng.choice([(I4, I3), (U3, I4), (Bipolar, Bipolar), (Bipolar, I3), (I2, Bipolar)])
        pe, simd = rng.choice(divisors(cout)), rng.choice(divisors(kh * kw * c))
        op = make_conv((h, w, c), cout, (kh, kw), stride, pads, groups, in_t, w_t, seed=it)
        dut, got, want, _ = run_conv(op, pe=pe, simd=simd, seed=it, p_valid=rng.choice([0.4, 1]),
                                     p_ready=rng.choice([0.4, 1]))
        np.testing.assert_array_equal(got, want, err_msg=f"{(h, w, c)} {op.kernel} {stride} {pads} g{groups} "
                                                         f"{in_t} {w_t} pe{pe} simd{simd}")
