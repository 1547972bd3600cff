"""da4ml's CMVM solver as a second source of shift-and-add graphs (hwgen.rtl.cmvm.AdderGraph).

da4ml 0.6 (Sun et al., "da4ml: distributed arithmetic for real-time neural networks on FPGAs")
solves y = W x by a cost-weighted two-term CSE after splitting W into two cascaded constant
matrices (W = W1 W2, both cheap in shift-adds). On larger matrices that split saves several per cent
of the adders our single-stage CSE builds (jet 64-32-32-5: 9.2k against 9.9k carry cells), so
build_graph asks both (da4ml with each of its two pair choices) and keeps the graph with the fewest
adder bits.

The solution is a list of ops on a buffer per stage: copy input j (times 2^inp_shift), or
buf[a] +- 2^shift * buf[b]; outputs buf[i] * 2^out_shift, possibly negated. Values there are
fixed-point; here each buffer entry becomes (node, exponent, sign) with value sign * node * 2^exponent
and node an integer AdderGraph node, so every add is (a << sa) +- (b << sb) with sa, sb >= 0 and a
subtract wherever the signs differ (a negated entry costs nothing until an output needs it).
The caller checks the graph's coefficients against W: an import that is not exact is refused.
"""
from __future__ import annotations

import numpy as np

from .cmvm import AdderGraph


def available() -> bool:
    try:
        from da4ml.cmvm import solve  # noqa: F401
    except ImportError:
        return False
    return True


METHODS = ("wmc", "mc")  # da4ml's pair choice: most common pair weighted by its adder cost, or not


def solve_graph(W: np.ndarray, in_lo: int, in_hi: int, *, every: int = 0, method: str = "wmc") -> AdderGraph | None:
    """The adder graph of da4ml's solution for y = W x, x_j in [in_lo, in_hi]; None when da4ml is not
    installed or its solution holds an op other than copies, adds and subtracts."""
    try:
        from da4ml.cmvm import solve
    except ImportError:
        return None
    W = np.asarray(W, dtype=np.int64)
    C, K = W.shape
    # da4ml computes x @ kernel and reads the kernel's memory row-major: a transposed view is wrong
    kernel = np.ascontiguousarray(W.T, dtype=np.float32)
    pipeline = solve(kernel, method0=method, qintervals=[(float(in_lo), float(in_hi), 1.0)] * K)
    g = AdderGraph([int(in_lo)] * K, [int(in_hi)] * K, every=every)
    entries = [(j, 0, 1) for j in range(K)]  # this stage's inputs: (node, exponent, sign)
    for stage in pipeline.solutions:
        buf = []
        for op in stage.ops:
            if op.opcode == -1:  # copy input id0 (None: an input that is always zero)
                entry = entries[op.id0]
                buf.append(None if entry is None else (entry[0], entry[1] + int(stage.inp_shifts[op.id0]), entry[2]))
            elif op.opcode in (0, 1):  # buf[id0] +- 2^data * buf[id1]
                if buf[op.id0] is None or buf[op.id1] is None:
                    return None
                n0, e0, s0 = buf[op.id0]
                n1, e1, s1 = buf[op.id1]
                e1 += int(op.data)
                s1 = -s1 if op.opcode == 1 else s1
                e = min(e0, e1)
                if s0 > 0:
                    buf.append((g.add(n0, e0 - e, n1, e1 - e, s1 < 0), e, 1))
                elif s1 > 0:  # -n0 + n1
                    buf.append((g.add(n1, e1 - e, n0, e0 - e, True), e, 1))
                else:  # -(n0 + n1)
                    buf.append((g.add(n0, e0 - e, n1, e1 - e, False), e, -1))
            else:
                return None
        entries = []
        for idx, shift, neg in zip(stage.out_idxs, stage.out_shifts, stage.out_negs):
            if idx < 0 or buf[idx] is None:
                entries.append(None)
                continue
            node, e, sign = buf[idx]
            entries.append((node, e + int(shift), -sign if neg else sign))
    if any(entry is not None and entry[1] < 0 for entry in entries):
        return None  # an output with a fractional step: not an integer graph
    g.outputs = entries
    g.solver = "da4ml"
    return g
