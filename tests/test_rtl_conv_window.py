"""SlidingWindowUnit: im2col patches equal golden.numeric.windows on random images, with seeded
random valid/ready stalls; stride, padding, 1x1 kernels, 1 channel, Bipolar (INT2 padding taps)."""
import zlib

import numpy as np
import pytest

from hwgen.golden.numeric import windows
from hwgen.ir.types import Bipolar, IntType, from_wire
from hwgen.rtl.sliding_window import SlidingWindowUnit
from sim.amaranth_streams import pack_beats, run_stream
from sim.vectors import random_values


def unpack(payloads, dtype, per_beat):
    bits = dtype.wire_bits
    mask = (1 << bits) - 1
    flat = [(p >> (e * bits)) & mask for p in payloads for e in range(per_beat)]
    return from_wire(np.array(flat, dtype=np.int64), dtype)


CASES = [  # in_shape, kernel, stride, pads, dtype, simd
    ((5, 6, 2), (3, 3), (1, 1), (1, 1, 1, 1), IntType(4, True), 1),
    ((5, 5, 4), (3, 3), (2, 2), (1, 1, 1, 1), IntType(3, False), 2),
    ((6, 5, 2), (3, 2), (2, 1), (0, 1, 1, 0), IntType(4, True), 2),
    ((4, 4, 3), (1, 1), (1, 1), (0, 0, 0, 0), IntType(3, False), 3),
    ((5, 5, 2), (1, 1), (2, 2), (0, 0, 0, 0), IntType(4, True), 1),
    ((4, 5, 1), (3, 3), (1, 1), (0, 0, 0, 0), IntType(2, True), 1),
    ((4, 4, 4), (3, 3), (1, 1), (1, 1, 1, 1), Bipolar, 4),
    ((5, 4, 2), (3, 3), (2, 2), (0, 0, 0, 0), Bipolar, 1),
    ((2, 2, 2), (3, 3), (1, 1), (1, 1, 1, 1), IntType(3, True), 1),
    ((1, 4, 2), (3, 3), (1, 1), (1, 1, 1, 1), IntType(3, False), 2),
    ((6, 6, 2), (2, 2), (2, 2), (0, 0, 0, 0), IntType(4, False), 2),
]


def run_case(in_shape, kernel, stride, pads, dtype, simd, *, images=2, seed=0, p_valid=0.7, p_ready=0.7,
             pad_value=0, registered_read=False, rows=None):
    rng = np.random.default_rng(seed)
    x = random_values(dtype, (images, *in_shape), rng)
    dut = SlidingWindowUnit(in_shape=in_shape, kernel=kernel, stride=stride, pads=pads, in_type=dtype,
                            simd=simd, pad_value=pad_value, registered_read=registered_read, rows=rows)
    want = windows(x, kernel, stride, pads, pad_value)  # [B, Ho, Wo, kh, kw, C]
    n_out = want.size // simd
    # the line buffer's read data is never used where it meets a write of the same word (yosys
    # then need not emulate the collision: the memory is no_rw_check)
    out, cycles = run_stream(dut, pack_beats(x.reshape(images, -1), dtype, simd), n_out, seed=seed,
                             p_valid=p_valid, p_ready=p_ready, never=(dut.rw_collision,))
    got = unpack(out, dut.out_type, simd).reshape(want.shape)
    return dut, got, want, cycles


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}k{c[1]}s{c[2]}p{c[3]}{c[4]}x{c[5]}")
def test_patches_match_golden_with_stalls(case):
    dut, got, want, _ = run_case(*case, seed=zlib.crc32(str(case).encode()) % 1000)
    if dut.padded and case[4] is Bipolar:
        assert dut.out_type == IntType(2, True)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", [CASES[0], CASES[2], CASES[6], CASES[8]],
                         ids=lambda c: f"{c[0]}k{c[1]}s{c[2]}p{c[3]}{c[4]}x{c[5]}")
def test_registered_read_patches_with_stalls(case):
    """The output register after the read port (registered_read): same patches under stalls, one
    cycle more latency; padding taps (INT2 for Bipolar) go through the select before it."""
    dut, got, want, _ = run_case(*case, seed=zlib.crc32(str(case).encode()) % 1000, registered_read=True)
    assert dut.latency == 2
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", [
    ((3, 3, 80), (3, 3), (1, 1), (1, 1, 1, 1), Bipolar, 40),           # 80 INT2 bits: two pad copies
    ((4, 3, 48), (3, 3), (1, 1), (1, 1, 1, 1), IntType(3, True), 24),  # 72 bits, pad value 0
], ids=["bipolar80", "int3x24"])
def test_registered_read_wide_word_pad_copies(case):
    """A word wider than one pad select copy (rtl.util.SELECT_BITS_PER_COPY): each slice selects on
    its own registered copy of the padding bit, exact under stalls."""
    dut, got, want, _ = run_case(*case, seed=7, registered_read=True)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("rows", [None, "min", "extra"])
@pytest.mark.parametrize("p_valid,p_ready", [(1.0, 0.3), (0.3, 1.0), (1.0, 1.0), (0.6, 0.6)])
@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[2], CASES[7],
                                  ((9, 5, 2), (3, 3), (1, 1), (1, 1, 1, 1), IntType(4, True), 1)],
                         ids=lambda c: f"{c[0]}k{c[1]}s{c[2]}")
def test_line_buffer_read_never_meets_a_write(case, p_valid, p_ready, rows):
    """The line buffer is no_rw_check (yosys does not emulate a read of the word written in the same
    cycle): a read whose data goes out never meets a write of its word, also with the fewest rows
    the window allows and with the two extra rows the schedule may add, a fast writer and a slow
    reader and the reverse (run_case checks the rw_collision probe at every clock edge)."""
    (h, _, _), (kh, _), (sh, _) = case[0], case[1], case[2]
    r = {"min": min(kh, h), "extra": min(kh + sh - 1 + 2, h), None: None}[rows]  # extra: as the schedule adds
    for seed in range(3):
        _, got, want, _ = run_case(*case, seed=seed, images=3, p_valid=p_valid, p_ready=p_ready, rows=r,
                                   registered_read=bool(seed % 2))
        np.testing.assert_array_equal(got, want)


def test_maxpool_padding_value():
    dut, got, want, _ = run_case((4, 4, 2), (3, 3), (2, 2), (1, 1, 1, 1), IntType(4, True), 2, pad_value=-8)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[6]])
def test_throughput_without_stalls(case):
    images = 3
    dut, got, want, cycles = run_case(*case, images=images, p_valid=1.0, p_ready=1.0)
    np.testing.assert_array_equal(got, want)
    total = cycles[-1] + 1
    # steady state: one patch beat per cycle, plus the line-buffer fill once and small row-start waits
    assert total <= images * dut.cycles + dut.fill_cycles + images * dut.Ho * (dut.kw + 2) * dut.CF + 8, \
        (total, dut.cycles, dut.fill_cycles)


@pytest.mark.slow
def test_random_geometries():
    import random

    rng = random.Random(1)
    ran = 0
    while ran < 150:
        kh, kw = rng.randint(1, 4), rng.randint(1, 4)
        sh, sw = rng.randint(1, 3), rng.randint(1, 3)
        pads = tuple(rng.randint(0, k - 1) for k in (kh, kw, kh, kw))
        h = rng.randint(max(1, kh - pads[0] - pads[2]), 6)
        w = rng.randint(max(1, kw - pads[1] - pads[3]), 6)
        simd = rng.choice([1, 2])
        dtype = rng.choice([IntType(3, True), IntType(2, False), Bipolar])
        case = ((h, w, simd * rng.randint(1, 3)), (kh, kw), (sh, sw), pads, dtype, simd)
        dut, got, want, _ = run_case(*case, seed=ran, images=3, p_valid=rng.choice([0.3, 0.8, 1]),
                                     p_ready=rng.choice([0.3, 0.8, 1]))
        np.testing.assert_array_equal(got, want, err_msg=str(case))
        ran += 1


def test_tap_word_steps_match_the_patch_order():
    """can_read's distance register moves by tap_word_steps: each step's change of the tap's word
    (row * W*CF + column word) is the constant the unit says, for every tap of two images of 200
    random geometries (an enumeration of the patch order, not the unit's counters)."""
    import random

    rng = random.Random(3)
    for _ in range(200):
        kh, kw, sh, sw = (rng.randint(1, 4) for _ in range(4))
        pads = tuple(rng.randint(0, k - 1) for k in (kh, kw, kh, kw))
        h = rng.randint(max(1, kh - pads[0] - pads[2]), 7)
        w = rng.randint(max(1, kw - pads[1] - pads[3]), 7)
        simd = rng.choice([1, 2])
        c = simd * rng.randint(1, 3)
        dut = SlidingWindowUnit(in_shape=(h, w, c), kernel=(kh, kw), stride=(sh, sw), pads=pads,
                                in_type=IntType(3, True), simd=simd)
        dut._MustUse__silence = True  # only its facts are used: no "created but never used" warning
        if dut.identity:
            continue
        cf, wcf = dut.CF, w * dut.CF
        taps = []  # (step kind that reaches the next tap, word)
        for _image in range(2):
            for oh in range(dut.Ho):
                for ow in range(dut.Wo):
                    for ki in range(kh):
                        for j in range(kw * cf):
                            word = (oh * sh - pads[0] + ki) * wcf + (ow * sw - pads[1]) * cf + j
                            kind = (0 if j < kw * cf - 1 else 1 if ki < kh - 1 else 2 if ow < dut.Wo - 1
                                    else 3 if oh < dut.Ho - 1 else 4)
                            taps.append((kind, word))
        for (kind, word), (_, nxt) in zip(taps, taps[1:]):
            assert nxt - word == dut.tap_word_steps[kind], (h, w, c, kh, kw, sh, sw, pads, simd, kind)
