"""Requantize: find, for each multi-threshold activation, an integer affine requantizer that
gives the same level on every accumulator value the layer can produce, or prove there is none.

    v = acc * mul + add
    level = clip(v >> shift, 0, L)                             rounding "floor"
    level = clip((v + ((v >> shift) & 1)) >> shift, 0, L)      rounding "half_even"
    level = clip((v + (~(v >> shift) & 1)) >> shift, 0, L)     rounding "half_odd"

(`>>` an arithmetic shift: floor division.) "half_even" is round-half-to-even of v / 2^shift when
`add` carries the half: what a quantizer with ROUND (numpy's round) gives when its boundaries fall
on integers, e.g. a power-of-two scale ratio: its steps alternate (33, 96, 161, 224 for a ratio of
64) and no floor line fits them. "half_odd" sends ties to the odd quotient: the same rounding
followed by an odd integer offset (a zero point or a level shift folded into `add`).

A uniform quantizer after a per-channel affine map (scale, bias, BatchNorm) is such a staircase up
to the float rounding of its thresholds; where the integer thresholds are not exactly affine (the
rounding of real boundaries) a larger `shift` still fits them when the steps allow it. With
L = 15 or 255 levels a requantizer is one multiply-add per lane instead of L comparisons against
L stored thresholds; the plan picks whichever costs less per layer (hwgen.lowering.threshold).

Exactness, per channel, over the accumulator range [lo, hi] of the activation's input type:
level(acc) = #{k : acc >= t_k} where t_k = ceil((P_k - add) / mul) is the requantizer's k-th step,
P_k = k 2^shift (floor), k 2^shift - [k even] (half_even: v = k 2^shift - 1 reaches level k exactly
when the quotient k - 1 is odd) or k 2^shift - [k odd] (half_odd). Two staircases agree on [lo, hi] iff their steps agree after clamping to [lo, hi + 1]
(a step at or below lo is always taken, one above hi never). `solve` derives (mul, add) from
that condition and `_proved` recomputes the steps as the proof (the golden model's formula is
hwgen.lowering.threshold.requant_levels); decreasing channels
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


def _positions(L: int, shift: int, rounding: str) -> np.ndarray:
    """P_k, k = 1..L: level >= k  <=>  v >= P_k."""
    k = np.arange(1, L + 1, dtype=np.int64)
    P = k << shift
    if rounding == "half_even":
        return P - (k % 2 == 0)
    if rounding == "half_odd":
        return P - (k % 2 == 1)
    return P


def _offset(P: np.ndarray, mul: int, low: list, high: list) -> int:
    """The smallest add with every step t_k = ceil((P_k - add) / mul) in [low_k, high_k], for a
    multiplier that meets the pairwise condition: add >= P_k - mul high_k for all k."""
    upper = [int(P[k]) - mul * high[k] for k in range(len(P)) if high[k] is not None]
    lower = [int(P[j]) - mul * (low[j] - 1) for j in range(len(P)) if low[j] is not None]
    return max(upper) if upper else min(lower) - 1


def _solve_floor(T: np.ndarray, lo: int, hi: int, max_shift: int) -> tuple[int, int, int] | None:
    """(mul > 0, add, shift), smallest shift, for rounding "floor": with P_k = k 2^shift an add exists
    iff for all k, j: (k - j) 2^shift < mul (high_k - low_j + 1), i.e. the slope mul / 2^shift lies
    in _slopes' interval (whatever the shift)."""
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
        return mul, _offset(_positions(len(T), shift, "floor"), mul, low, high), shift
    return None


def _solve_ties(T: np.ndarray, lo: int, hi: int, max_shift: int, rounding: str) -> tuple[int, int, int] | None:
    """The same for rounding "half_even" / "half_odd", shift by shift: an add exists iff for all k, j:
    P_k - P_j < mul (high_k - low_j + 1); the smallest mul meeting the c > 0 pairs is the only
    candidate (larger ones only break the c < 0 pairs)."""
    low, high = _bounds(T, lo, hi)
    L = len(T)
    K = np.array([k for k in range(L) if high[k] is not None], dtype=np.int64)
    J = np.array([j for j in range(L) if low[j] is not None], dtype=np.int64)
    if not len(K) or not len(J):  # every step on one side of the range: a constant level, any slope
        return 1, _offset(_positions(L, 1, rounding), 1, low, high), 1
    c = (np.array([high[k] for k in K], dtype=np.int64)[:, None]
         - np.array([low[j] for j in J], dtype=np.int64)[None, :] + 1)
    pos = c > 0
    for shift in range(1, max_shift + 1):
        P = _positions(L, shift, rounding)
        d = P[K][:, None] - P[J][None, :]
        mul = max(1, int((d[pos] // c[pos] + 1).max())) if pos.any() else 1
        if mul > (1 << 40) or (d >= mul * c).any():
            continue
        return mul, _offset(P, mul, low, high), shift
    return None


SOLVERS = {"floor": _solve_floor,
           "half_even": lambda *a: _solve_ties(*a, rounding="half_even"),
           "half_odd": lambda *a: _solve_ties(*a, rounding="half_odd")}
ROUNDINGS = tuple(SOLVERS)


def _steps(mul: int, add: int, shift: int, L: int, rounding: str) -> list[int]:
    """t_k = ceil((P_k - add) / mul), k = 1..L (mul > 0)."""
    return [-((add - int(p)) // mul) for p in _positions(L, shift, rounding)]


def _proved(T: np.ndarray, mul: int, add: int, shift: int, lo: int, hi: int, rounding: str) -> bool:
    """The requantizer's steps equal the thresholds after clamping to [lo, hi + 1]."""
    clamp = lambda v: min(max(int(v), lo), hi + 1)
    return [clamp(t) for t in _steps(mul, add, shift, len(T), rounding)] == [clamp(t) for t in T]


def _increasing(T, decreasing: bool, lo: int, hi: int):
    """acc <= T  <=>  -acc >= -T: a decreasing channel is solved on -acc, ascending."""
    T = np.asarray(T, dtype=np.int64)
    return (np.sort(-T), -hi, -lo) if decreasing else (np.sort(T), lo, hi)


def solve(T: np.ndarray, decreasing: bool, lo: int, hi: int, roundings=ROUNDINGS,
          max_shift: int = MAX_SHIFT):
    """(mul, add, shift, rounding) with the smallest shift reproducing one channel's thresholds on
    [lo, hi] (the roundings tried in order), proved; None when none fits up to max_shift."""
    Tn, lo_n, hi_n = _increasing(T, decreasing, lo, hi)
    for rounding in roundings:
        sol = SOLVERS[rounding](Tn, lo_n, hi_n, max_shift)
        if sol is None:
            continue
        if not _proved(Tn, *sol, lo_n, hi_n, rounding):
            raise AssertionError(f"requantizer {sol} ({rounding}) does not reproduce the thresholds it was solved for")
        mul, add, shift = sol
        return (-mul if decreasing else mul), add, shift, rounding
    return None


def requantize_threshold(op: Threshold, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> bool:
    """Attach a proved requantizer to `op` (one shift and one rounding for all channels), exact for
    accumulators in the per-channel range [lo, hi] (default: the input type's); False when a channel
    has none."""
    if isinstance(op.out_type, BipolarType) or op.levels < MIN_LEVELS:
        return False
    C = op.channels
    lo = np.full(C, op.in_type.min, np.int64) if lo is None else np.broadcast_to(lo, (C,))
    hi = np.full(C, op.in_type.max, np.int64) if hi is None else np.broadcast_to(hi, (C,))
    args = [(op.thresholds[c], bool(op.decreasing[c]), int(lo[c]), int(hi[c])) for c in range(C)]
    sols = [solve(*a) for a in args]
    if any(s is None for s in sols):
        return False
    rounding = "floor"
    if any(s[3] != "floor" for s in sols):  # one rounding per layer: the first tie mode every channel takes
        for rounding in ROUNDINGS[1:]:
            again = [s if s[3] == rounding else solve(*a, roundings=(rounding,)) for s, a in zip(sols, args)]
            if all(s is not None for s in again):
                sols = again
                break
        else:
            return False
    shift = max(s[2] for s in sols)
    mul, add = [], []
    for m, a, s, _ in sols:
        # a solution at shift s is one at shift s' = s + k: v' = v 2^k + delta with 0 <= delta < 2^k keeps
        # every floor step; delta = 2^k - 1 also keeps the ties (P_k - 1 maps to P'_k - 1)
        k = shift - s
        mul.append(m << k)
        add.append((a << k) + ((1 << k) - 1 if rounding != "floor" else 0))
    mul, add = np.array(mul, dtype=np.int64), np.array(add, dtype=np.int64)

    def proved(c: int, m: int, a: int) -> bool:
        T, dec, l, h = args[c]
        if m == 0 or (m < 0) != dec:  # the proof runs in the channel's own direction: a multiplier of the
            return False  # other sign is a staircase the other way, which its clamped steps cannot tell apart
        Tn, lo_n, hi_n = _increasing(T, dec, l, h)
        return _proved(Tn, -m if dec else m, a, shift, lo_n, hi_n, rounding)

    for c in range(C):  # the proof, once more at the common shift
        if not proved(c, int(mul[c]), int(add[c])):
            return False  # (never seen: the rescaling above is exact; refuse rather than guess)
    _share_common_pairs(mul, add, proved)
    op.requant_mul, op.requant_add, op.requant_shift, op.requant_round = mul, add, shift, rounding
    op.requant_lo, op.requant_hi = np.array(lo, dtype=np.int64), np.array(hi, dtype=np.int64)
    return True


def _share_common_pairs(mul: np.ndarray, add: np.ndarray, proved, candidates: int = 4) -> None:
    """A channel whose reachable range is narrow (or empty) accepts many (mul, add); the solver's
    pick can then be an odd one (mul 32 where every other channel has 1), which widens that lane's
    datapath. Give such a channel one of the layer's most common pairs with no larger |mul| when
    it is proved for it too (in place)."""
    pairs, counts = np.unique(np.stack([mul, add], 1), axis=0, return_counts=True)
    common = [tuple(int(v) for v in pairs[i]) for i in np.argsort(-counts, kind="stable")[:candidates]]
    for c in range(len(mul)):
        for m, a in sorted(common, key=lambda ma: abs(ma[0])):
            if (m, a) == (int(mul[c]), int(add[c])) or abs(m) >= abs(int(mul[c])):
                break
            if proved(c, m, a):
                mul[c], add[c] = m, a
                break


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
