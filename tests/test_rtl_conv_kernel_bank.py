"""KernelBankConvUnit equals the golden KernelBankConv (hwgen.lowering.kernel_bank) (and the plain binary conv) bit-exactly,
with seeded random stalls: padding 0/1, stride 2, folded (index ROM) and fully parallel (wired
indices), and at equal throughput with a ConvUnit."""
import zlib

import numpy as np
import pytest

from hwgen.golden import run_op
from hwgen.ir import Conv, KernelBankConv
from hwgen.ir.types import Bipolar, IntType, from_wire
from hwgen.passes.accumulators import size_layer
from hwgen.passes.kernel_bank import codebook_of
from hwgen.rtl.conv import ConvUnit
from hwgen.rtl.kernel_bank import KernelBankConvUnit
from sim.amaranth_streams import pack_beats, run_stream


def unpack(payloads, bits, per_beat):
    flat = [(p >> (e * bits)) & ((1 << bits) - 1) for p in payloads for e in range(per_beat)]
    return from_wire(np.array(flat, dtype=np.int64), IntType(bits, True))


def make_bank(in_shape, cout, patterns, stride, pads, seed):
    rng = np.random.default_rng(seed)
    book = rng.choice([-1, 1], size=(patterns, 3, 3))
    cin = in_shape[2]
    w = book[rng.integers(0, patterns, size=(cout, cin))].transpose(0, 2, 3, 1)  # [out, 3, 3, in]
    plain = Conv(name="c", inputs=["x"], outputs=["y"], weights=w, in_type=Bipolar, w_type=Bipolar,
                 input_scale=1.0, weight_scale=np.ones(cout, np.float32), in_shape=in_shape, kernel=(3, 3),
                 stride=stride, pads=pads)
    size_layer(plain)
    book_, index, tau = codebook_of(plain)
    fields = {k: getattr(plain, k) for k in plain.__dataclass_fields__}
    return plain, KernelBankConv(**fields, codebook=book_, indices=index, tau=tau)


def run_bank(op, *, pe, simd, images=2, seed=0, p_valid=0.7, p_ready=0.7):
    x = np.random.default_rng(seed + 1).choice([-1, 1], size=(images, *op.in_shape))
    want = run_op(op, x)
    dut = KernelBankConvUnit.from_op(op, pe=pe, simd=simd)
    out, cycles = run_stream(dut, pack_beats(x.reshape(images, -1), Bipolar, simd), want.size // pe, seed=seed,
                             p_valid=p_valid, p_ready=p_ready, never=(dut.rw_collision, dut.swg.rw_collision))
    return dut, x, unpack(out, op.acc_type.bits, pe).reshape(want.shape), want, cycles


CASES = [  # in_shape, cout, patterns, stride, pads, pe, simd
    ((5, 5, 4), 8, 6, (1, 1), (1, 1, 1, 1), 2, 2),
    ((5, 5, 4), 8, 6, (1, 1), (0, 0, 0, 0), 4, 1),
    ((6, 6, 3), 6, 4, (2, 2), (1, 1, 1, 1), 3, 3),
    ((4, 4, 1), 4, 3, (1, 1), (1, 1, 1, 1), 1, 1),
    ((4, 5, 2), 8, 16, (1, 1), (1, 1, 1, 1), 8, 2),  # fully parallel stage 2: wired indices
    ((4, 4, 6), 16, 5, (1, 1), (1, 0, 0, 1), 4, 3),
]


def _id(c):
    return f"{c[0]}o{c[1]}n{c[2]}s{c[3][0]}p{sum(c[4])}pe{c[5]}simd{c[6]}"


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_bank_matches_golden_with_stalls(case):
    *geom, pe, simd = case
    seed = zlib.crc32(_id(case).encode()) % 1000
    plain, op = make_bank(*geom, seed=seed)
    dut, x, got, want, _ = run_bank(op, pe=pe, simd=simd, seed=seed)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, run_op(plain, x))  # the bank is the same layer
    assert dut.index_bits == op.out_channels * op.in_shape[2] * op.tau
    assert dut.rom_bits == (0 if not dut.folded else dut.index_bits)


def test_extreme_responses():
    """All-equal windows hit every codeword's extremes (+-9 without padding, fewer at borders)."""
    plain, op = make_bank((4, 4, 2), 4, 4, (1, 1), (1, 1, 1, 1), seed=3)
    x = np.stack([np.ones((4, 4, 2), int), -np.ones((4, 4, 2), int)])
    dut = KernelBankConvUnit.from_op(op, pe=2, simd=1)
    want = run_op(op, x)
    out, _ = run_stream(dut, pack_beats(x.reshape(2, -1), Bipolar, 1), want.size // 2, p_valid=0.8, p_ready=0.8)
    np.testing.assert_array_equal(unpack(out, op.acc_type.bits, 2).reshape(want.shape), want)


def test_equal_throughput_with_conv_unit():
    """NF = Cout/PE >= 9: the bank and a ConvUnit with the same PE and patch SIMD 9*SIMD both take
    Ho*Wo*NF*Cin/SIMD cycles per image (measured, no stalls)."""
    plain, op = make_bank((4, 4, 4), 18, 6, (1, 1), (1, 1, 1, 1), seed=4)
    pe, simd, images = 2, 2, 2
    dut, x, got, want, cyc_bank = run_bank(op, pe=pe, simd=simd, images=images, p_valid=1.0, p_ready=1.0)
    np.testing.assert_array_equal(got, want)
    cu = ConvUnit.from_op(plain, pe=pe, simd=9 * simd, window_simd=simd)
    out, cyc_conv = run_stream(cu, pack_beats(x.reshape(images, -1), Bipolar, simd), want.size // pe)
    np.testing.assert_array_equal(unpack(out, plain.acc_type.bits, pe).reshape(want.shape), want)
    assert dut.cycles == cu.cycles == 16 * 9 * 2
    for c in (cyc_bank, cyc_conv):
        assert c[-1] + 1 <= images * dut.cycles + dut.latency + 8, (c[-1], dut.cycles)


@pytest.mark.slow
def test_random_banks():
    import random

    from hwgen.rtl.util import divisors

    rng = random.Random(5)
    for it in range(60):
        pads = rng.choice([(0, 0, 0, 0), (1, 1, 1, 1), (1, 0, 1, 0), (0, 1, 0, 1)])
        stride = rng.choice([(1, 1), (2, 2), (1, 2)])
        shape = (rng.randint(3, 5), rng.randint(3, 5), rng.randint(1, 4))
        cout = rng.randint(2, 8)
        plain, op = make_bank(shape, cout, rng.randint(2, 12), stride, pads, seed=it)
        pe, simd = rng.choice(divisors(cout)), rng.choice(divisors(shape[2]))
        dut, x, got, want, _ = run_bank(op, pe=pe, simd=simd, seed=it, p_valid=rng.choice([0.5, 1]),
                                        p_ready=rng.choice([0.5, 1]))
        np.testing.assert_array_equal(got, want, err_msg=f"{shape} {cout} {stride} {pads} pe{pe} simd{simd}")
