"""Constant matrix-vector products as one shared shift-and-add graph (fully parallel layers).

y_c = sum_j W[c, j] x_j with W constant: every weight is written in canonical signed digits, so
each output is a sum of terms +-(x_j << k). Many outputs share pairs of terms up to a common
shift and sign (x_a + (x_b << d) appears in several rows), so the graph is built by two-term
common-subexpression elimination, as in distributed-arithmetic CMVM solvers (da4ml, Hcub): while
some pair (a, b, d, relative sign) occurs in two or more rows, the most frequent one becomes a new
node t = a +- (b << d) and every occurrence is replaced by one term of t. What is left of each row
is summed by two-input adders, narrowest sum first among the shallowest terms. Which of several
equally frequent pairs goes first changes the result by a few percent, so the search runs a few
times with different tie-breaks and keeps the graph with the fewest adder bits.

Every node is one two-input add or subtract of exact width (the range of its linear combination of
the inputs, each input in its own range), a named signal, so synthesis keeps it a carry-chain adder. For a clock target the graph
is pipelined every `every` adder levels (`stages` register levels; operands from earlier levels
are delayed to match), all outputs leave at the same stage.

The graph is plain Python (build_graph), so the cost model counts its adders and registers without
elaborating; elaborate() turns it into Amaranth.
"""
from __future__ import annotations

import heapq
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Cat, Const, Signal, signed

from .util import csd_digits, signed_width_for

MAX_TERMS = 4_000  # digits in all rows above which the CSE search is skipped (compile time: the
MAX_ROW_TERMS = 160  # pair counts grow with the square of a row's terms); plain adder trees then
TRIALS = 8  # CSE runs with different tie-breaks; the graph with the fewest adder bits is kept
TRIAL_DIGITS = 4_000  # at most this many digits times runs (compile time)
GREEDY_SUM_TERMS = 32  # rows up to this many terms are summed narrowest-first, longer ones balanced


@dataclass
class Node:
    a: int
    sa: int  # value = (a << sa) +- (b << sb)
    b: int
    sb: int
    sub: bool  # a - b instead of a + b
    lo: int
    hi: int
    level: int

    @property
    def bits(self) -> int:
        return signed_width_for(self.lo, self.hi)

    @property
    def passthrough(self) -> int:
        """Low bits that need no adder: those of the unshifted operand when the other is shifted
        (a + (b << d) = Cat(a[:d], (a >> d) + b); also a - (b << d); and (a << d) + b)."""
        if self.sa == 0:
            return self.sb
        return 0 if self.sub else self.sa

    @property
    def carry_bits(self) -> int:
        return max(self.bits - self.passthrough, 1)


@dataclass
class AdderGraph:
    """Inputs are nodes 0..K-1 (ranges given); nodes K.. are two-input adds; outputs[c] is
    (node, shift, sign) for y_c = sign * (node << shift), or None for a zero row."""

    in_lo: list[int]
    in_hi: list[int]
    nodes: list[Node] = field(default_factory=list)
    outputs: list = field(default_factory=list)
    every: int = 0  # register every `every` adder levels (0: combinational)
    solver: str = "hwgen"  # who found the graph: "hwgen" (this module's CSE) or "da4ml" (hwgen.rtl.cmvm_da4ml)

    def __post_init__(self):
        # each node's value as a linear combination of the inputs: its exact range, even where an
        # input occurs twice ((x << 3) - x spans [0, 7 hi], not interval arithmetic's [-hi, 8 hi])
        self._coef = list(np.eye(self.K, dtype=np.int64))
        self._lo, self._hi = np.asarray(self.in_lo, dtype=np.int64), np.asarray(self.in_hi, dtype=np.int64)

    @property
    def K(self) -> int:
        return len(self.in_lo)

    def lo_hi(self, i: int) -> tuple[int, int]:
        if i < self.K:
            return self.in_lo[i], self.in_hi[i]
        n = self.nodes[i - self.K]
        return n.lo, n.hi

    def bits(self, i: int) -> int:
        return signed_width_for(*self.lo_hi(i))

    def level(self, i: int) -> int:
        return 0 if i < self.K else self.nodes[i - self.K].level

    def combine(self, a: int, sa: int, b: int, sb: int, sub: bool) -> tuple[Node, np.ndarray]:
        """The node (a << sa) +- (b << sb) and its coefficients, not yet added."""
        va, vb = self._coef[a] << sa, self._coef[b] << sb
        v = va - vb if sub else va + vb
        lo = int(np.where(v > 0, v * self._lo, v * self._hi).sum())
        hi = int(np.where(v > 0, v * self._hi, v * self._lo).sum())
        return Node(a, sa, b, sb, sub, lo, hi, max(self.level(a), self.level(b)) + 1), v

    def rank(self, a: int, sa: int, b: int, sb: int, sub: bool) -> tuple[int, int]:
        """(level, carry bits) of the node (a << sa) +- (b << sb), its range by interval arithmetic on
        the operands' exact ranges: cheap, and exact when they share no input (most row sums)."""
        alo, ahi = (v << sa for v in self.lo_hi(a))
        blo, bhi = (v << sb for v in self.lo_hi(b))
        lo, hi = (alo - bhi, ahi - blo) if sub else (alo + blo, ahi + bhi)
        return max(self.level(a), self.level(b)) + 1, Node(a, sa, b, sb, sub, lo, hi, 0).carry_bits

    def add(self, a: int, sa: int, b: int, sb: int, sub: bool) -> int:
        node, coef = self.combine(a, sa, b, sb, sub)
        self._coef.append(coef)
        self.nodes.append(node)
        return self.K + len(self.nodes) - 1

    # -- pipelining ---------------------------------------------------------------------------
    def ready_stage(self, i: int) -> int:
        """The register stage at which node i's value is available."""
        L = self.level(i)
        if not self.every or L == 0:
            return 0
        return L // self.every if L % self.every == 0 else (L - 1) // self.every

    def compute_stage(self, i: int) -> int:
        L = self.level(i)
        return 0 if not self.every or L == 0 else (L - 1) // self.every

    @property
    def stages(self) -> int:
        return max([self.ready_stage(o[0]) for o in self.outputs if o is not None] or [0])

    def registers(self) -> list[tuple[int, int]]:
        """(node, bits) of every pipeline register: node outputs at level multiples of `every`, and
        the delay registers that bring operands and outputs to the stage where they are used."""
        regs = []
        delays: dict[int, int] = defaultdict(int)  # node -> delay registers made so far (shared)
        def need(i: int, stage: int):
            d = stage - self.ready_stage(i)
            if d > delays[i]:
                regs.extend([(i, self.bits(i))] * (d - delays[i]))
                delays[i] = d
        for k, n in enumerate(self.nodes):
            i = self.K + k
            s = self.compute_stage(i)
            need(n.a, s)
            need(n.b, s)
            if self.every and n.level % self.every == 0:
                regs.append((i, n.bits))
        for o in self.outputs:
            if o is not None:
                need(o[0], self.stages)
        return regs

    def matrix(self) -> np.ndarray:
        """The constant matrix the graph computes, from its outputs' coefficients over the inputs."""
        rows = [np.zeros(self.K, dtype=np.int64) if o is None else o[2] * (self._coef[o[0]] << o[1])
                for o in self.outputs]
        return np.array(rows, dtype=np.int64).reshape(len(rows), self.K)

    def adders(self) -> list[int]:
        """Width of every adder (the bits a carry chain spans), the negation of an output whose
        last term is subtracted (y = -(node << shift)) included."""
        negations = [self.bits(o[0]) for o in self.outputs if o is not None and o[2] < 0]
        return [n.carry_bits for n in self.nodes] + negations

    # -- Amaranth ------------------------------------------------------------------------------
    def elaborate(self, m, xs: list, register, name: str = "cm") -> list:
        """The outputs y_c (Values) from input Values xs; `register(value, name)` makes one pipeline
        register (held while the unit stalls)."""
        avail: dict[int, dict[int, object]] = {}  # node -> {stage: value}
        for j, x in enumerate(xs):
            avail[j] = {0: x}

        def at(i: int, stage: int):
            vals = avail[i]
            s = max(vals)
            while s < stage:
                vals[s + 1] = register(vals[s], f"{name}_d{i}_{s + 1}")
                s += 1
            return vals[stage]

        for k, n in enumerate(self.nodes):
            i = self.K + k
            s = self.compute_stage(i)
            a, b = at(n.a, s), at(n.b, s)
            # keep: without it yosys's alumacc merges a chain of two-input sums into one
            # multi-operand $macc, which maccmap builds from LUT full adders (3:2 compressors:
            # two LUT4 per bit) instead of one carry chain per adder.
            sig = Signal(signed(n.bits), name=f"{name}_n{i}", attrs={"keep": 1})
            d = n.passthrough
            if d and n.sa == 0:  # the low d bits are a's: only the rest goes through an adder
                ae = _signed_ext(a, d)
                high = (ae >> d) - b if n.sub else (ae >> d) + b
                m.d.comb += sig.eq(Cat(ae[:d], high).as_signed())
            elif d:  # (a << d) + b: the low d bits are b's
                be = _signed_ext(b, d)
                m.d.comb += sig.eq(Cat(be[:d], a + (be >> d)).as_signed())
            else:
                a = a << n.sa if n.sa else a
                b = b << n.sb if n.sb else b
                m.d.comb += sig.eq(a - b if n.sub else a + b)
            avail[i] = {s: sig}
            if self.every and n.level % self.every == 0:
                avail[i][s + 1] = register(sig, f"{name}_r{i}")
                del avail[i][s]
        outs = []
        for c, o in enumerate(self.outputs):
            if o is None:
                outs.append(Const(0, 1))
                continue
            node, shift, sign = o
            v = at(node, self.stages)
            v = v << shift if shift else v
            outs.append(-v if sign < 0 else v)
        return outs


def _signed_ext(v, n: int):
    """v (signed or unsigned) as a signed value of at least n + 1 bits, the same value."""
    if v.shape().signed:
        return v if len(v) > n else Cat(v, v[-1].replicate(n + 1 - len(v))).as_signed()
    return Cat(v, Const(0, max(n + 1 - len(v), 1))).as_signed()


def build_graph(weights: np.ndarray, in_lo: int, in_hi: int, *, every: int = 0, cse: bool = True) -> AdderGraph:
    """The shift-and-add graph of y = W x for x_j in [in_lo, in_hi] (see the module docstring)."""
    W = np.asarray(weights, dtype=np.int64)
    C, K = W.shape
    rows = weight_digits(W)
    digits = sum(map(len, rows))
    search = cse and digits <= MAX_TERMS and max(map(len, rows), default=0) <= MAX_ROW_TERMS
    candidates = [own_graph(rows, K, in_lo, in_hi, every=every, trial=trial if search else None)
                  for trial in range(max(1, min(TRIALS, TRIAL_DIGITS // max(digits, 1))) if search else 1)]
    if search:
        from .cmvm_da4ml import METHODS, solve_graph
        for method in METHODS:
            other = solve_graph(W, in_lo, in_hi, every=every, method=method)
            if other is not None:
                candidates.append(other)
    best = min(candidates, key=lambda g: sum(g.adders()))  # the first of equals: ours before da4ml's
    if not np.array_equal(best.matrix(), W):
        raise AssertionError(f"the {best.solver} adder graph does not compute its {C}x{K} weight matrix")
    return best


def weight_digits(W: np.ndarray) -> list[list[tuple[int, int, int]]]:
    """Per row c, the terms (input j, shift k, sign) of W[c, j]'s canonical signed digits."""
    C, K = W.shape
    return [[(j, k, d) for j in range(K) if W[c, j] for k, d in csd_digits(int(W[c, j]))] for c in range(C)]


def own_graph(rows, K: int, in_lo: int, in_hi: int, *, every: int = 0, trial: int | None = 0) -> AdderGraph:
    """hwgen's graph for the rows' terms: CSE (trial 0 breaks ties by the pairs' order, trial t > 0
    at random from seed t: reproducible; None: no CSE), then the rows' sums."""
    g = AdderGraph([int(in_lo)] * K, [int(in_hi)] * K, every=every)
    left = [list(row) for row in rows]
    if trial is not None:
        _eliminate(g, left, random.Random(trial) if trial else None)
    g.outputs = [_sum_row(g, row) for row in left]
    return g


def _pair_key(t1, t2):
    """Canonical key of two terms, (node a, node b, shift of b minus shift of a, sign of b relative to
    a) with (a, shift a) <= (b, shift b); and the pair's (base shift, sign of a)."""
    (n1, s1, g1), (n2, s2, g2) = t1, t2
    if (n2, s2) < (n1, s1):
        (n1, s1, g1), (n2, s2, g2) = (n2, s2, g2), (n1, s1, g1)
    return (n1, n2, s2 - s1, g1 * g2), (min(s1, s2), g1)


def _row_keys(row) -> set:
    return {_pair_key(row[x], row[y])[0] for x in range(len(row)) for y in range(x + 1, len(row))}


def _eliminate(g: AdderGraph, rows: list[list[tuple[int, int, int]]], rng: random.Random | None = None) -> None:
    """Two-term CSE: replace the most frequent pair pattern (counted once per row it occurs in) until
    none occurs in two rows. Counts are kept incrementally (only rows holding the pattern change)
    and the most frequent is taken from a heap whose stale entries are skipped. Among equally
    frequent patterns the smallest key goes first, or with `rng` a random one (a fixed draw per
    pattern)."""
    draws: dict = {}

    def entry(key, n):
        if rng is None:
            return (-n, key)
        if key not in draws:
            draws[key] = rng.random()
        return (-n, draws[key], key)

    keys = [_row_keys(row) for row in rows]
    count: Counter = Counter()
    holders: dict = defaultdict(set)  # key -> rows holding it
    for r, ks in enumerate(keys):
        count.update(ks)
        for k in ks:
            holders[k].add(r)
    heap = [entry(k, n) for k, n in count.items() if n >= 2]
    heapq.heapify(heap)
    while heap:
        top = heapq.heappop(heap)
        neg, key = top[0], top[-1]
        if count.get(key, 0) != -neg:
            continue  # stale
        a, b, d, rel = key
        node = g.add(a, max(0, -d), b, max(0, d), rel < 0)
        for r in sorted(holders[key]):
            row = rows[r]
            used = [False] * len(row)
            out = []
            for x in range(len(row)):
                if used[x]:
                    continue
                for y in range(x + 1, len(row)):
                    if used[y]:
                        continue
                    k2, (base, sign) = _pair_key(row[x], row[y])
                    if k2 == key:
                        used[x] = used[y] = True
                        out.append((node, base, sign))
                        break
            rows[r] = out + [t for t, u in zip(row, used) if not u]
            new = _row_keys(rows[r])
            for k in keys[r] - new:
                count[k] -= 1
                holders[k].discard(r)
                if not count[k]:
                    del count[k], holders[k]
                elif count[k] >= 2:
                    heapq.heappush(heap, entry(k, count[k]))
            for k in new - keys[r]:
                count[k] += 1
                holders[k].add(r)
                if count[k] >= 2:
                    heapq.heappush(heap, entry(k, count[k]))
            keys[r] = new


def _pair_node(g: AdderGraph, t1, t2):
    """(a, sa, b, sb, sub, base shift, sign) of the add that sums two terms: sign * ((a << sa) +-
    (b << sb)) << base, subtracting rather than negating where the signs differ."""
    (n1, s1, g1), (n2, s2, g2) = t1, t2
    if g1 < 0 and g2 > 0:  # b - a
        (n1, s1, g1), (n2, s2, g2) = (n2, s2, g2), (n1, s1, g1)
    base = min(s1, s2)
    return n1, s1 - base, n2, s2 - base, g1 != g2, base, g1 if g1 == g2 else 1


def _sum_row(g: AdderGraph, terms: list[tuple[int, int, int]]):
    """Two-input adds over the row's terms -> (node, shift, sign) or None. Up to GREEDY_SUM_TERMS
    terms: the pair with the narrowest adder among the shallowest terms first (terms far apart in
    shift leave their low bits out of the carry chain); longer rows: a balanced tree by shift."""
    if not terms:
        return None
    terms = sorted(terms, key=lambda t: (t[1], g.level(t[0])))
    while len(terms) > GREEDY_SUM_TERMS:
        nxt = []
        for x in range(0, len(terms) - 1, 2):
            a, sa, b, sb, sub, base, sign = _pair_node(g, terms[x], terms[x + 1])
            nxt.append((g.add(a, sa, b, sb, sub), base, sign))
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    while len(terms) > 1:
        best = None
        for x in range(len(terms)):
            for y in range(x + 1, len(terms)):
                pair = _pair_node(g, terms[x], terms[y])
                rank = g.rank(*pair[:5])
                if best is None or rank < best[0]:
                    best = (rank, x, y, pair)
        _, x, y, (a, sa, b, sb, sub, base, sign) = best
        terms = [t for i, t in enumerate(terms) if i not in (x, y)] + [(g.add(a, sa, b, sb, sub), base, sign)]
    return terms[0]
