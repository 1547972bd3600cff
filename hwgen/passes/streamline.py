"""Streamlining: replace each FloatActivation (acc -> float ops -> quantizer) by a Threshold.

Instead of rewriting the float map from one channel's integer accumulator to its output level
algebraically (an algebraic BatchNorm differs from the reference by an ulp, and an ulp flips a
rounding tie), we evaluate the original float ops with the reference's engine and read off where
each output level starts. That is exact only if the map is monotone per channel:
  * small accumulator ranges: evaluate every reachable value, which proves monotonicity for any ops;
  * wide ranges: the ops themselves must prove it (hwgen.passes.monotone: a chain of ops from
    MONOTONE_OPS, each monotone in its one non-constant operand, values far from float32
    overflow), else a HwgenError; then bisection, all channels and levels at once, and a spot
    check (ends, every threshold +-1, random points) as a second line of defence.
The result is exact by construction over the whole reachable range.
"""
from __future__ import annotations

import numpy as np

from ..errors import HwgenError
from ..ir import FloatActivation, Graph, Threshold
from ..ir.float_segment import scale_then_segment
from ..ir.types import Bipolar, IntType, signed_bits_for
from ..lowering import lowering_of
from .monotone import MONOTONE_OPS, monotone_obstacle

DENSE_LIMIT = 1 << 22  # evaluate every value when channels * range is at most this

def _prove_monotone(op: FloatActivation, lo: np.ndarray, hi: np.ndarray, span: int) -> None:
    """HwgenError unless op's float ops are provably monotone per channel: on a wide range the
    bisection and spot check only sample the map, and miss a narrow dip."""
    if op.segment is None:
        return
    m = float((np.maximum(np.abs(lo), np.abs(hi)) * np.abs(op.scale.astype(np.float64))).max())
    found = monotone_obstacle(op.segment, m)
    if found is None:
        return
    node, why = found
    name, kind = (node.name, node.op_type) if node is not None else (op.name, "Quant")
    what = f"{kind} '{name}' {why}" if node is not None else why
    raise HwgenError(
        f"hwgen cannot prove the float ops between the accumulator and quantizer '{op.name}' monotone: {what}. "
        f"The accumulator spans up to {span} values in each of {len(lo)} channels ({span * len(lo)} in all), more "
        f"than the {DENSE_LIMIT} hwgen evaluates one by one (which would prove any ops), so the thresholds must "
        f"come from ops it proves monotone: a chain of {', '.join(MONOTONE_OPS)} with constant operands "
        f"(x / c, not c / x). Quantize "
        f"before '{name}', replace it by such ops, or narrow the accumulator (fewer inputs per output, "
        f"narrower weights or inputs) to at most {DENSE_LIMIT} values over all channels",
        node=name, op=kind)


def _levels(op: FloatActivation, acc: np.ndarray) -> np.ndarray:
    """Output level index (0 .. L) of the float map at integer accumulator values acc[M, C]."""
    q = op.quantizer.to_int(scale_then_segment(op.scale, op.segment, acc, op.segment_shape))
    out_type = op.quantizer.out_type
    return (q + 1) // 2 if out_type == Bipolar else q - out_type.min


def _bisect(op, lo, hi, n_levels, decreasing):
    """T[c, k] for every channel and level k (1..L) by vectorised bisection on [lo, hi+1]."""
    channels = len(lo)
    k = np.arange(1, n_levels)[:, None]  # [L, 1]
    left = np.broadcast_to(lo, (n_levels - 1, channels)).copy()
    right = np.broadcast_to(hi + 1, (n_levels - 1, channels)).copy()
    # increasing: smallest a with level(a) >= k; decreasing: smallest a with level(a) < k
    while np.any(left < right):
        mid = (left + right) // 2
        lev = _levels(op, np.minimum(mid, hi))
        hit = np.where(decreasing, lev < k, lev >= k) | (mid > hi)
        right = np.where(hit, mid, right)
        left = np.where(hit, left, mid + 1)
    first = left.T  # [C, L]
    return np.where(decreasing[:, None], first - 1, first)


def thresholds_for(op: FloatActivation, lo: np.ndarray, hi: np.ndarray):
    """(thresholds [C, L], decreasing [C]) reproducing op on every acc in [lo, hi]."""
    out_type = op.quantizer.out_type
    n_levels = 2 if out_type == Bipolar else out_type.max - out_type.min + 1
    ends = _levels(op, np.stack([lo, hi]))
    decreasing = ends[1] < ends[0]
    span = int((hi - lo).max()) + 1
    if span * len(lo) <= DENSE_LIMIT:
        grid = lo[None, :] + np.arange(span)[:, None]  # [span, C]
        valid = grid <= hi[None, :]
        grid = np.minimum(grid, hi[None, :])
        lev = _levels(op, grid)
        k = np.arange(1, n_levels)
        up = (lev[:, :, None] >= k) & valid[:, :, None]  # [span, C, L]
        first_up = np.where(up.any(0), lo[:, None] + up.argmax(0), hi[:, None] + 1)
        rev = up[::-1]
        last_up = np.where(rev.any(0), lo[:, None] + (span - 1 - rev.argmax(0)), lo[:, None] - 1)
        t = np.where(decreasing[:, None], last_up, first_up)
        check_acc, check_lev = grid, lev
    else:
        _prove_monotone(op, lo, hi, span)
        t = _bisect(op, lo, hi, n_levels, decreasing)
        rng = np.random.default_rng(0)
        probes = [lo, hi] + [np.clip(t[:, j] + d, lo, hi) for j in range(t.shape[1]) for d in (-1, 0, 1)]
        probes += [rng.integers(lo, hi + 1) for _ in range(64)]
        check_acc = np.stack(probes)
        check_lev = _levels(op, check_acc)
    a = check_acc[..., None]
    got = np.where(decreasing, (a <= t).sum(-1), (a >= t).sum(-1))
    if not np.array_equal(got, check_lev):
        c = int(np.argwhere(got != check_lev)[0][1])
        raise HwgenError(
            f"the float ops between the accumulator and quantizer '{op.name}' are not monotone in "
            f"channel {c} ({', '.join(op.onnx_nodes) or 'scale only'}); they cannot become thresholds",
            node=op.name, op="Quant")
    return t.astype(np.int64), decreasing


def streamline(graph: Graph) -> Graph:
    """Turn every MatVec/Conv (or GlobalSumPool) -> FloatActivation pair into ... -> Threshold."""
    for op in list(graph.ops):
        if not isinstance(op, FloatActivation):
            continue
        src = graph.producer(op.inputs[0])
        rng = lowering_of(src).output_range(src) if src is not None else None
        if rng is None:
            raise HwgenError("an activation quantizer must follow a MatMul/Gemm/Conv or a global average "
                             "pool", node=op.name, op="Quant")
        lo, hi = rng
        t, decreasing = thresholds_for(op, lo, hi)
        out_type = op.quantizer.out_type
        th = Threshold(
            name=op.name, inputs=op.inputs, outputs=op.outputs, thresholds=t, decreasing=decreasing,
            in_type=IntType(signed_bits_for(int(lo.min()), int(hi.max())), signed=True),
            out_type=out_type, out_base=-1 if out_type == Bipolar else out_type.min,
            out_scale=op.quantizer.scale)
        graph.replace(op, [th])
    graph.validate()
    return graph
