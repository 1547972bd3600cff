"""Requantize: find, for each multi-threshold activation, an integer affine requantizer that
gives the same level on every accumulator value the layer can produce, or prove there is none.

    level = clip((acc * mul + add) >> shift, 0, L)        (arithmetic shift: floor division)

A uniform quantizer after a per-channel affine map (scale, bias, BatchNorm) is such a staircase up
to the float rounding of its thresholds; where the integer thresholds are not exactly affine (the
rounding of real boundaries) a larger `shift` still fits them when the steps allow it. With
L = 15 or 255 levels a requantizer is one multiply-add per lane instead of L comparisons against
L stored thresholds; the plan picks whichever costs less per layer (hwgen.lowering.threshold).

Exactness, per channel, over the accumulator range [lo, hi] of the activation's input type:
level(acc) = #{k : acc >= t_k} where t_k = ceil((k * 2^shift - add) / mul) is the requantizer's
k-th step. Two staircases agree on [lo, hi] iff their steps agree after clamping to [lo, hi + 1]
(a step at or below lo is always taken, one above hi never). `solve` derives (mul, add) from
that condition and `requantizer_levels` recomputes the steps as the proof; decreasing channels
(acc <= T) are solved on -acc and get a negative multiplier.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..ir import Graph
from ..ir.ops import Threshold
from ..ir.types import BipolarType

MIN_LEVELS = 16  # activations of >= 4 bits: below that L comparisons are as cheap as a multiply
MAX_SHIFT = 24


def _bounds(T: np.ndarray, lo: int, hi: int) -> tuple[list, list]:
    """Per step k, the interval its position may take and still give the same levels on [lo, hi]
    (None: unbounded on that side)."""
    low, high = [], []
    for t in (int(v) for v in T):
        if t <= lo:
            low.append(None), high.append(lo)
        elif t > hi:
            low.append(hi + 1), high.append(None)
        else:
            low.append(t), high.append(t)
    return low, high


def _slopes(low: list, high: list) -> tuple[Fraction, Fraction | None] | None:
    """The open interval of slopes mul / 2^shift for which an offset exists: for all steps k, j,
    (k - j) < slope * (high_k - low_j + 1); None when it is empty."""
    L = len(low)
    K = np.array([k for k in range(L) if high[k] is not None], dtype=np.int64)
    J = np.array([j for j in range(L) if low[j] is not None], dtype=np.int64)
    if not len(K) or not len(J):
        return Fraction(0), None
    d = K[:, None] - J[None, :]
    c = np.array([high[k] for k in K], dtype=np.int64)[:, None] - np.array([low[j] for j in J], dtype=np.int64)[None, :] + 1
    if ((c == 0) & (d >= 0)).any():
        return None
    lo_s, hi_s = Fraction(0), None
    # float64 finds the extreme ratio exactly: |d| <= 2^8 and |c| <= 2^42 keep distinct ratios apart
    pos, neg = c > 0, c < 0
    if pos.any():
        i = np.argmax(np.where(pos, d / np.where(pos, c, 1), -np.inf))
        lo_s = max(lo_s, Fraction(int(d.flat[i]), int(c.flat[i])))
    if neg.any():
        i = np.argmin(np.where(neg, d / np.where(neg, c, -1), np.inf))
        hi_s = Fraction(int(d.flat[i]), int(c.flat[i]))
    if hi_s is not None and hi_s <= lo_s:
        return None
    return lo_s, hi_s


def _solve_increasing(T: np.ndarray, lo: int, hi: int, max_shift: int) -> tuple[int, int, int] | None:
    """(mul > 0, add, shift), the smallest shift, whose steps t_k = ceil((k 2^shift - add) / mul)
    (k = 1..L) land in their intervals (see _bounds), or None. Such an add exists iff for all k, j:
    (k - j) 2^shift < mul (high_k - low_j + 1): the slope mul / 2^shift lies in _slopes' interval."""
    low, high = _bounds(T, lo, hi)
    interval = _slopes(low, high)
    if interval is None:
        return None
    lo_s, hi_s = interval
    for shift in range(max_shift + 1):
        step = 1 << shift
        mul = max(1, math.floor(lo_s * step) + 1)
        if hi_s is not None and mul >= hi_s * step:
            continue
        upper = [(k + 1) * step - mul * high[k] for k in range(len(T)) if high[k] is not None]
        lower = [(j + 1) * step - mul * (low[j] - 1) for j in range(len(T)) if low[j] is not None]
        add = max(upper) if upper else min(lower) - 1
        return mul, add, shift
    return None


def requantizer_levels(acc: np.ndarray, mul: int, add: int, shift: int, levels: int) -> np.ndarray:
    """The requantizer's level for integer accumulators `acc` (exact: Python-int arithmetic)."""
    acc = np.asarray(acc, dtype=object)
    return np.clip((acc * int(mul) + int(add)) >> int(shift), 0, levels - 1).astype(np.int64)


def _steps(mul: int, add: int, shift: int, L: int) -> list[int]:
    """t_k = ceil((k 2^shift - add) / mul), k = 1..L (mul > 0)."""
    return [-((add - (k << shift)) // mul) for k in range(1, L + 1)]


def _proved(T: np.ndarray, mul: int, add: int, shift: int, lo: int, hi: int) -> bool:
    """The requantizer's steps equal the thresholds after clamping to [lo, hi + 1]."""
    clamp = lambda v: min(max(int(v), lo), hi + 1)
    return [clamp(t) for t in _steps(mul, add, shift, len(T))] == [clamp(t) for t in T]


def solve(T: np.ndarray, decreasing: bool, lo: int, hi: int, max_shift: int = MAX_SHIFT):
    """(mul, add, shift) with the smallest shift reproducing one channel's thresholds on [lo, hi],
    proved; None when no shift up to max_shift fits."""
    T = np.asarray(T, dtype=np.int64)
    if decreasing:  # acc <= T  <=>  -acc >= -T: solve on -acc, ascending
        Tn, lo_n, hi_n = np.sort(-T), -hi, -lo
    else:
        Tn, lo_n, hi_n = np.sort(T), lo, hi
    sol = _solve_increasing(Tn, lo_n, hi_n, max_shift)
    if sol is None:
        return None
    mul, add, shift = sol
    if not _proved(Tn, mul, add, shift, lo_n, hi_n):
        raise AssertionError(f"requantizer {sol} does not reproduce the thresholds it was solved for")
    return (-mul if decreasing else mul), add, shift


def requantize_threshold(op: Threshold, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> bool:
    """Attach a proved requantizer to `op` (one shift for all channels), exact for accumulators in
    the per-channel range [lo, hi] (default: the input type's); False when a channel has none."""
    if isinstance(op.out_type, BipolarType) or op.levels < MIN_LEVELS:
        return False
    C = op.channels
    lo = np.full(C, op.in_type.min, np.int64) if lo is None else np.broadcast_to(lo, (C,))
    hi = np.full(C, op.in_type.max, np.int64) if hi is None else np.broadcast_to(hi, (C,))
    sols = []
    for c in range(C):
        sol = solve(op.thresholds[c], bool(op.decreasing[c]), int(lo[c]), int(hi[c]))
        if sol is None:
            return False
        sols.append(sol)
    shift = max(s for _, _, s in sols)
    # a solution at shift s is one at s' > s: (mul, add) * 2^(s' - s)
    mul = np.array([m << (shift - s) for m, _, s in sols], dtype=np.int64)
    add = np.array([a << (shift - s) for _, a, s in sols], dtype=np.int64)
    for c in range(C):  # the proof, once more at the common shift
        T, m, a = op.thresholds[c], int(mul[c]), int(add[c])
        l, h = int(lo[c]), int(hi[c])
        Tn, mn, lo_n, hi_n = (np.sort(-T), -m, -h, -l) if op.decreasing[c] else (np.sort(T), m, l, h)
        assert _proved(Tn, mn, a, shift, lo_n, hi_n), f"{op.name}: requantizer of channel {c} not exact"
    op.requant_mul, op.requant_add, op.requant_shift = mul, add, shift
    return True


def requantize(graph: Graph) -> Graph:
    """Give every multi-threshold activation of >= 4 bits its proved requantizer where one exists
    (the thresholds stay: the plan chooses the cheaper unit per layer). The range it must hold on is
    the per-channel range of the op feeding it (its lowering's output_range), else its input type's."""
    from ..lowering import lowering_of, walk

    ops = [op for op, _ in walk(graph.core)]
    producer = {t: op for op in ops for t in op.outputs}
    for op in ops:
        if isinstance(op, Threshold):
            src = producer.get(op.inputs[0])
            rng = lowering_of(src).output_range(src) if src is not None else None
            if rng is None or len(rng[0]) != op.channels:
                rng = (None, None)
            requantize_threshold(op, *rng)
    return graph
