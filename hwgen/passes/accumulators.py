"""Accumulator sizing: exact per-channel range, the A2Q L1 bound, the data-type bound.

Formulas (DESIGN.md; Colbert et al., arXiv 2301.13376): with N input bits, M weight bits,
K terms and 1_s = 1 for a signed input, phi(a) = log2(1 + 2^-a):
  A2Q:       beta  = log2(||q||_1) + N - 1_s,          P = ceil(beta + phi(beta) + 1)
  data type: alpha = log2(K) + N + M - 1 - 1_s,        P = ceil(alpha + phi(alpha) + 1)
The hardware uses the exact width; the bounds are reported so users see what A2Q training
guaranteed and what a type-only tool (e.g. a fixed 32-bit accumulator) would spend.
"""
from __future__ import annotations

import numpy as np

from ..errors import HwgenError
from ..ir import Dot, Graph, IntType
from ..ir.graph import TensorInfo
from ..ir.types import signed_bits_for


def input_range(op: Dot) -> tuple[int, int]:
    return op.in_type.min, op.in_type.max


def exact_range(op: Dot) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel [lo, hi] of the dot product over every input the input type allows.

    Zero padding only removes terms, and 0 lies inside every input range, so the extremes
    of a convolution are those of its full window."""
    x_min, x_max = input_range(op)
    w = op.dot_weights
    pos, neg = np.where(w > 0, w, 0), np.where(w < 0, w, 0)
    hi = pos.sum(1) * x_max + neg.sum(1) * x_min
    lo = pos.sum(1) * x_min + neg.sum(1) * x_max
    return lo.astype(np.int64), hi.astype(np.int64)


def _bits_for_magnitude(need: int) -> int:
    """Smallest P with 2^(P-1) - 1 >= need: the closed form ceil(x + phi(x) + 1) with
    x = log2(need), done in integers so exact powers of two cannot round the wrong way."""
    return max(int(need), 0).bit_length() + 1


def a2q_bits(l1_norm: int, input_bits: int, input_signed: bool) -> int:
    """Smallest accumulator width the A2Q L1-norm condition guarantees for one channel."""
    if l1_norm <= 0:
        return 1
    return _bits_for_magnitude(int(l1_norm) << (input_bits - int(input_signed)))


def a2q_max_l1(acc_bits: int, input_bits: int, input_signed: bool) -> float:
    """The L1 budget A2Q trains for: ||q||_1 <= (2^(P-1) - 1) * 2^(1_s - N)."""
    return (2 ** (acc_bits - 1) - 1) * 2.0 ** (int(input_signed) - input_bits)


def datatype_bits(terms: int, input_bits: int, weight_bits: int, input_signed: bool) -> int:
    """Worst case over any weights of the given types (what a type-only tool must assume)."""
    shift = input_bits + weight_bits - 1 - int(input_signed)
    if shift < 0:
        return _bits_for_magnitude((terms + 1) // 2)
    return _bits_for_magnitude(int(terms) << shift)


def exact_bits(lo: int, hi: int) -> int:
    return signed_bits_for(lo, hi)


ACC_POLICIES = ("exact", "a2q", "datatype", "fixed32")


def size_layer(op: Dot, policy: str = "exact") -> dict[str, int]:
    """Fill op.acc_bounds (all three) and op.acc_type (the width `policy` picks) for one layer.

    Every policy is safe (each bound is >= the exact width); they differ only in hardware cost.
    """
    lo, hi = exact_range(op)
    per_channel = [exact_bits(a, b) for a, b in zip(lo, hi)]
    l1 = np.abs(op.dot_weights).sum(1)
    n, signed = op.in_type.bits, op.in_type.signed
    bounds = {
        "exact": max(per_channel),
        "a2q": max(a2q_bits(int(v), n, signed) for v in l1),
        "datatype": datatype_bits(op.in_features, n, op.w_type.bits, signed),
    }
    bits = 32 if policy == "fixed32" else bounds[policy]
    op.acc_type = IntType(max(bits, bounds["exact"]), signed=True)
    op.acc_bounds = bounds
    return bounds


def size_accumulators(graph: Graph, acc_bits_limit: int | None = None, policy: str = "exact") -> Graph:
    """Size every MatVec; with a user limit, refuse any layer that provably needs more."""
    if policy not in ACC_POLICIES:
        raise HwgenError(f"unknown accumulator policy '{policy}' (choose from {', '.join(ACC_POLICIES)})")
    for op in graph.core:
        if not isinstance(op, Dot):
            continue
        size_layer(op, policy)
        out = op.outputs[0]  # the accumulator tensor now has its real type
        graph.tensors[out] = TensorInfo(graph.tensors[out].shape, op.acc_type)
        if acc_bits_limit is not None and op.acc_bounds["exact"] > acc_bits_limit:
            lo, hi = exact_range(op)
            need = np.array([exact_bits(a, b) for a, b in zip(lo, hi)])
            worst = int(np.argmax(need))
            raise HwgenError(
                f"layer '{op.name}' needs a {int(need[worst])}-bit accumulator (output channel "
                f"{worst}: range [{lo[worst]}, {hi[worst]}]), more than --acc-bits {acc_bits_limit}; "
                f"{int((need > acc_bits_limit).sum())} of {len(need)} channels exceed it. Retrain with "
                "A2Q (Int8AccumulatorAwareWeightQuant) for this width or raise the limit")
    return graph
