"""Requantizers: the solver is exact or refuses, the RequantUnit computes what the thresholds do,
and compiled models take the requantizer where the cost model says so (golden == qonnx is in
test_golden_vs_reference: the golden model evaluates the requantizer whenever an op has one)."""
import numpy as np
import pytest

from hwgen.ir.ops import Threshold
from hwgen.ir.types import IntType
from hwgen.lowering.threshold import requant_levels
from hwgen.passes.requantize import requantize_threshold, solve
from hwgen.rtl.requant import RequantUnit
from sim.amaranth_streams import pack_beats, run_stream


def _levels(acc, T, decreasing):
    a = np.asarray(acc)[:, None]
    return ((a <= T) if decreasing else (a >= T)).sum(1)


def _affine_thresholds(rng, L, lo, hi):
    """The integer thresholds of a uniform quantizer after acc * a + b (what streamlining makes)."""
    a = rng.uniform(0.5, 40) * L / (hi - lo)
    b = rng.uniform(-L / 2, L / 2)
    return np.ceil((np.arange(1, L + 1) - 0.5 - b) / a).astype(np.int64)


@pytest.mark.parametrize("L", [15, 255])
@pytest.mark.parametrize("decreasing", [False, True])
def test_solver_exact_on_every_accumulator(L, decreasing):
    rng = np.random.default_rng(L + decreasing)
    lo, hi = -2048, 2047
    acc = np.arange(lo, hi + 1)
    solved = 0
    for _ in range(25):
        T = _affine_thresholds(rng, L, lo, hi)
        if decreasing:
            T = -T[::-1]
        sol = solve(T, decreasing, lo, hi)
        assert sol is not None, "an affine staircase always has a requantizer"
        mul, add, shift, rounding = sol
        assert (mul < 0) == decreasing and rounding == "floor"
        np.testing.assert_array_equal(requant_levels(acc, mul, add, shift, L + 1, rounding), _levels(acc, T, decreasing))
        solved += 1
    assert solved == 25


def test_solver_never_wrong_on_irregular_thresholds():
    """Thresholds that are not a rounded affine staircase: the solver finds an exact requantizer or
    none; it never returns one that differs anywhere on the range."""
    rng = np.random.default_rng(7)
    lo, hi = -512, 511
    acc = np.arange(lo, hi + 1)
    refused = 0
    for _ in range(60):
        T = _affine_thresholds(rng, 15, lo, hi)
        T[rng.integers(15)] += rng.choice([-1, 1])  # one step moved by one
        T = np.sort(T)
        sol = solve(T, False, lo, hi)
        if sol is None:
            refused += 1
            continue
        np.testing.assert_array_equal(requant_levels(acc, *sol[:3], 16, sol[3]), _levels(acc, T, False))
    assert 0 < refused < 60


def test_solver_refuses_a_staircase_no_line_fits():
    # steps 1 apart, then 100 apart, then 1 apart: no single slope gives both
    T = np.array([0, 1, 2, 102, 202, 203, 204])
    assert solve(T, False, -1000, 1000) is None


def test_solver_uses_only_the_reachable_range():
    """Thresholds outside [lo, hi] only need to stay outside: the same irregular steps fit once the
    range excludes them."""
    T = np.array([-900, -899, 0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120])
    assert solve(T, False, -1000, 1000) is None
    mul, add, shift, rounding = solve(T, False, -5, 125)
    acc = np.arange(-5, 126)
    np.testing.assert_array_equal(requant_levels(acc, mul, add, shift, 16, rounding), _levels(acc, T, False))


def _threshold_op(T, dec, in_bits, out_type, out_base):
    return Threshold(name="q", inputs=["a"], outputs=["y"], thresholds=T, decreasing=dec,
                     in_type=IntType(in_bits, True), out_type=out_type, out_base=out_base)


def test_requantize_threshold_common_shift_and_refusals():
    rng = np.random.default_rng(3)
    in_bits = 10
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    T = np.stack([_affine_thresholds(rng, 15, lo, hi) for _ in range(6)])
    dec = np.array([False, True, False, False, True, False])
    T[dec] = -T[dec][:, ::-1]
    op = _threshold_op(T, dec, in_bits, IntType(4, False), 0)
    assert requantize_threshold(op)
    acc = np.arange(lo, hi + 1)
    for c in range(6):
        got = requant_levels(acc, op.requant_mul[c], op.requant_add[c], op.requant_shift, 16, op.requant_round)
        np.testing.assert_array_equal(got, _levels(acc, T[c], dec[c]))
    few = _threshold_op(T[:, :3], dec, in_bits, IntType(2, False), 0)
    assert not requantize_threshold(few) and few.requant_mul is None  # 2-bit: comparisons stay
    bad = _threshold_op(np.stack([T[0], np.array([0, 1, 2, 102, 202, 203, 204, 300, 301, 302, 400, 401, 402, 500, 501])]),
                        np.array([False, False]), in_bits, IntType(4, False), 0)
    assert not requantize_threshold(bad) and bad.requant_mul is None  # one channel without: none


def test_a_constant_channel_never_takes_a_multiplier_of_the_other_direction():
    """Found by the fuzzer: a channel whose level is 0 on its whole range (every threshold above it)
    accepts any requantizer that stays at 0 there; _share_common_pairs offered it a decreasing channel's
    negative multiplier, and the proof (steps clamped to the range, solved for mul > 0) could not tell
    the staircases apart: the requantizer gave 15 where the thresholds give 0."""
    lo, hi = np.array([-127, -381, -127]), np.array([508, 127, 508])
    dec = np.array([True, False, True])
    falling = [508, 508, 508, 486, 454, 422, 389, 357, 325, 292, 260, 228, 195, 163, 131]  # the fuzzed layer's
    T = np.array([falling, [128] * 15, falling])  # two channels share (mul, add): the pair offered to channel 1
    op = _threshold_op(T, dec, 11, IntType(4, False), 0)
    assert requantize_threshold(op, lo, hi)
    assert op.requant_mul[0] < 0 < op.requant_mul[1]
    for c in range(3):
        acc = np.arange(lo[c], hi[c] + 1)
        got = requant_levels(acc, op.requant_mul[c], op.requant_add[c], op.requant_shift, 16, op.requant_round)
        np.testing.assert_array_equal(got, _levels(acc, T[c], dec[c]), err_msg=f"channel {c}")


def _half_even_thresholds(rng, L, ratio_bits):
    """Steps of round-half-to-even(acc / 2^r + b) for an integer b (numpy's round, qonnx's ROUND): ties
    fall on integers and go to the even level, so the steps alternate (33, 96, 161, 224 for r = 6)."""
    acc = np.arange(-(L + 4) << ratio_bits, (L + 4) << ratio_bits)
    b = int(rng.integers(-3, 4))
    level = np.round(acc / (1 << ratio_bits)) + b
    return np.array([acc[np.argmax(level >= k)] for k in range(1, L + 1)], dtype=np.int64)


def test_solver_half_even_ties():
    """A power-of-two scale ratio with ROUND: no floor requantizer fits, the half_even one is exact."""
    rng = np.random.default_rng(11)
    for r, L, dec in [(6, 63, False), (3, 15, True), (1, 15, False), (5, 255, False)]:
        T = _half_even_thresholds(rng, L, r)
        if dec:
            T = -T[::-1]
        lo, hi = int(min(T.min(), -T.max())) - 50, int(max(T.max(), -T.min())) + 50
        assert solve(T, dec, lo, hi, roundings=("floor",)) is None
        mul, add, shift, rounding = solve(T, dec, lo, hi)
        assert rounding in ("half_even", "half_odd")
        acc = np.arange(lo, hi + 1)
        np.testing.assert_array_equal(requant_levels(acc, mul, add, shift, L + 1, rounding), _levels(acc, T, dec))


def _requant_case(C, in_bits, out_type, out_base, pe, *, arith, registers, seed, p_valid=1.0, p_ready=1.0,
                  half_even=False, levels=None, registered_enable=False):
    rng = np.random.default_rng(seed)
    lo, hi = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    L = (levels or (1 << out_type.bits)) - 1
    if half_even:
        T = np.stack([_half_even_thresholds(rng, L, int(rng.integers(2, in_bits - out_type.bits))) for _ in range(C)])
    else:
        T = np.stack([_affine_thresholds(rng, L, lo, hi) for _ in range(C)])
    dec = rng.random(C) < 0.4
    T[dec] = -T[dec][:, ::-1]
    op = _threshold_op(T, dec, in_bits, out_type, out_base)
    assert requantize_threshold(op)
    assert (op.requant_round != "floor") == half_even
    X = np.concatenate([rng.integers(lo, hi + 1, size=(40, C)), np.full((1, C), lo), np.full((1, C), hi),
                        np.clip(T[:, ::3].T, lo, hi), np.clip(T[:, ::3].T - 1, lo, hi)])
    level = np.stack([_levels(X[:, c], T[c], dec[c]) for c in range(C)], 1)
    dut = RequantUnit(mul=op.requant_mul, add=op.requant_add, shift=op.requant_shift, rounding=op.requant_round,
                      levels=L + 1, in_bits=in_bits,
                      out_type=out_type, out_base=out_base, pe=pe, arith=arith, registers=registers,
                      registered_enable=registered_enable)
    exp = pack_beats(out_base + level, out_type, pe)
    got, _ = run_stream(dut, pack_beats(X, IntType(in_bits, True), pe), len(exp), seed=seed,
                        p_valid=p_valid, p_ready=p_ready)
    return got, exp


@pytest.mark.parametrize("arith", ["lut", "dsp"])
@pytest.mark.parametrize("C,in_bits,out_type,out_base,pe", [
    (4, 10, IntType(4, False), 0, 1),     # ROM of (mul, add), one lane
    (4, 10, IntType(4, True), -8, 2),     # ROM, two lanes, signed output
    (6, 12, IntType(4, False), 0, 6),     # constants
    (2, 14, IntType(8, False), 0, 1),     # 255 levels
])
def test_requant_unit_matches_thresholds(C, in_bits, out_type, out_base, pe, arith):
    got, exp = _requant_case(C, in_bits, out_type, out_base, pe, arith=arith, registers=(False, False),
                             seed=C * in_bits + pe)
    assert got == exp


def test_requant_unit_narrow_range():
    """A narrow-range 5-bit quantizer: 31 levels, L + 1 not a power of two: the clip compares against L."""
    got, exp = _requant_case(4, 11, IntType(5, True, True), -15, 2, arith="lut", registers=(True, True), seed=21,
                             levels=31)
    assert got == exp


@pytest.mark.parametrize("pe", [1, 3])
def test_requant_unit_half_even(pe):
    got, exp = _requant_case(3, 10, IntType(4, False), 0, pe, arith="dsp", registers=(False, True), seed=9,
                             p_valid=0.7, p_ready=0.6, half_even=True)
    assert got == exp


@pytest.mark.parametrize("registers,skid", [((True, False), False), ((True, True), False), ((True, True), True)])
@pytest.mark.parametrize("pe", [1, 4])
def test_requant_unit_stalls_and_pipeline(pe, registers, skid):
    got, exp = _requant_case(4, 11, IntType(4, False), 0, pe, arith="lut", registers=registers, seed=5,
                             p_valid=0.5, p_ready=0.5, registered_enable=skid)
    assert got == exp


def test_compiled_models_take_requantizers_where_cheaper():
    """4-bit activations on ECP5 become requantizers (a DSP block per lane instead of 15 stored
    thresholds); forcing thresholds keeps the comparators; 2-bit activations keep thresholds."""
    from conftest import own_model

    import hwgen

    acc = hwgen.compile(own_model("w4a4"), fold="auto", target_cycles=1024, target="ecp5")
    styles = {r["name"]: r["style"] for r in acc.plan.layers if r["op"] == "Threshold"}
    assert styles == {"Quant_4": "requant", "Quant_5": "requant"}
    assert all(op.requantizable for op in acc.graph.core if isinstance(op, Threshold))
    forced = hwgen.compile(own_model("w4a4"), fold="auto", target_cycles=1024, target="ecp5",
                           activation="thresholds")
    assert {r["style"] for r in forced.plan.layers if r["op"] == "Threshold"} <= {"compare", "lut"}
    x = np.random.default_rng(0).random((20, 64), dtype=np.float32)
    np.testing.assert_array_equal(acc.predict_int(x), forced.predict_int(x))
    w2 = hwgen.compile(own_model("w2a2"), fold="auto", target_cycles=1024, target="ecp5")
    assert not any(op.requantizable for op in w2.graph.core if isinstance(op, Threshold))


@pytest.mark.parametrize("rounding", ["floor", "half_even", "half_odd"])
@pytest.mark.parametrize("registers", [(False, False), (True, True)])
def test_requant_unit_power_of_two_lanes_on_every_accumulator(rounding, registers):
    """Constant 2^k multipliers take the shift path (carry from the low bits, no product); every
    9-bit accumulator against the golden formula, lanes covering k = 0 .. shift, adds below and above
    2^shift and negative, the tie offsets r = 2^shift - 1 (k = shift) and 2^shift - 1 - v 2^k, and two
    real multipliers beside them."""
    shift, in_bits, out_type = 4, 9, IntType(4, False)
    mul = np.array([1, 1, 2, 4, 16, 16, 8, 1, 3, 5], dtype=np.int64)
    add = np.array([7, 0, 23, -9, 15, 47, 5, -40, 8, -3], dtype=np.int64)
    dut = RequantUnit(mul=mul, add=add, shift=shift, rounding=rounding, levels=16, in_bits=in_bits,
                      out_type=out_type, out_base=0, pe=len(mul), arith="lut", registers=registers)
    assert [dut.shift_lane(p) for p in range(len(mul))] == [True] * 8 + [False] * 2
    acc = np.arange(-(1 << (in_bits - 1)), 1 << (in_bits - 1))
    X = np.repeat(acc[:, None], len(mul), 1)
    level = np.stack([requant_levels(acc, int(m), int(a), shift, 16, rounding) for m, a in zip(mul, add)], 1)
    exp = pack_beats(level, out_type, len(mul))
    got, _ = run_stream(dut, pack_beats(X, IntType(in_bits, True), len(mul)), len(exp), seed=3,
                        p_valid=0.8, p_ready=0.7)
    assert got == exp


@pytest.mark.parametrize("rounding", ["floor", "half_even"])
def test_requant_unit_with_reachable_ranges_drops_only_dead_clips(rounding):
    """Lanes told their accumulator range: clips no reachable value needs are left out (lane 0
    stays inside [0, L], lane 1 can only go below 0, lane 2 only above L, lane 3 both), and on every
    value in the range the unit still equals the golden formula."""
    shift, in_bits, out_type = 4, 10, IntType(4, False)
    mul = np.array([1, 1, 2, 3], dtype=np.int64)
    add = np.array([8, 8, 0, 5], dtype=np.int64)
    lo = np.array([0, -100, 0, -300], dtype=np.int64)
    hi = np.array([230, 200, 200, 300], dtype=np.int64)
    dut = RequantUnit(mul=mul, add=add, shift=shift, rounding=rounding, levels=16, in_bits=in_bits,
                      out_type=out_type, out_base=0, pe=4, arith="lut", acc_lo=lo, acc_hi=hi)
    reach = [dut.quotient_range(p) for p in range(4)]
    assert [(r[0] < 0, r[1] > 15) for r in reach] == [(False, False), (True, False), (False, True), (True, True)]
    rng = np.random.default_rng(7)
    X = np.stack([np.concatenate([[lo[c], hi[c]], rng.integers(lo[c], hi[c] + 1, 200)]) for c in range(4)], 1)
    level = np.stack([requant_levels(X[:, c], int(mul[c]), int(add[c]), shift, 16, rounding) for c in range(4)], 1)
    exp = pack_beats(level, out_type, 4)
    got, _ = run_stream(dut, pack_beats(X, IntType(in_bits, True), 4), len(exp), seed=1, p_valid=0.8, p_ready=0.8)
    assert got == exp


def test_requant_unit_dead_lanes_are_constants():
    """A lane whose reachable accumulators all give one level (a ReLU that never fires: the jet
    model's channel 14, range [-2040, 0] with ties to even at 2^6) is a constant: no adder or clip
    for it in the netlist, and the unit still equals the golden formula on every reachable value."""
    from amaranth.back import rtlil

    shift, in_bits, out_type = 6, 15, IntType(6, False)
    mul = np.array([1, 1, 1], dtype=np.int64)
    add = np.array([31, 31, 31], dtype=np.int64)
    lo = np.array([-2040, -3570, 4100], dtype=np.int64)
    hi = np.array([0, 6885, 7000], dtype=np.int64)
    dut = RequantUnit(mul=mul, add=add, shift=shift, rounding="half_even", levels=64, in_bits=in_bits,
                      out_type=out_type, out_base=0, pe=3, arith="lut", acc_lo=lo, acc_hi=hi)
    assert [dut.constant_level(p) for p in range(3)] == [0, None, 63]
    text = rtlil.convert(dut)
    assert "q1" in text and "q0" not in text and "q2" not in text  # only lane 1 builds a quotient
    rng = np.random.default_rng(5)
    X = np.stack([np.concatenate([[lo[c], hi[c], 32, -32], rng.integers(lo[c], hi[c] + 1, 100)]).clip(lo[c], hi[c])
                  for c in range(3)], 1)
    level = np.stack([requant_levels(X[:, c], 1, 31, shift, 64, "half_even") for c in range(3)], 1)
    exp = pack_beats(level, out_type, 3)
    got, _ = run_stream(dut, pack_beats(X, IntType(in_bits, True), 3), len(exp), seed=2, p_valid=0.8, p_ready=0.8)
    assert got == exp
