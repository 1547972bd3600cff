"""Integer building blocks the ops' golden semantics share (hwgen.lowering uses them).

Integers are int64 values (Bipolar as -1/+1); spatial tensors are [B, H, W, C] (NHWC, as on
the wire).
"""
from __future__ import annotations

import numpy as np


class AccumulatorOverflow(AssertionError):
    """An accumulator left its declared type: the sizing is wrong (a bug, never user error)."""


def check_acc(op, acc: np.ndarray) -> np.ndarray:
    """acc unchanged, after checking it stays inside op.acc_type (when sized)."""
    if op.acc_type is not None and acc.size:
        lo, hi = int(acc.min()), int(acc.max())
        if lo < op.acc_type.min or hi > op.acc_type.max:
            raise AccumulatorOverflow(
                f"{op.name}: accumulator value range [{lo}, {hi}] exceeds {op.acc_type}")
    return acc


EXACT_FLOAT64 = 1 << 53  # float64 holds every integer of magnitude below this


def int_einsum(subscripts: str, a: np.ndarray, b: np.ndarray, terms: int) -> np.ndarray:
    """np.einsum of two integer arrays with `terms` products per output element, exact, as int64.
    Through float64 (BLAS) when max|a| * max|b| * terms < 2^53: every partial sum is then an integer
    float64 holds exactly, in any summation order. numpy has no integer BLAS, and the int64 einsum is
    what made hwgen check of a 32x32 ResNet-18 take ~10 s per image."""
    amax = int(np.abs(a).max()) if a.size else 0
    bmax = int(np.abs(b).max()) if b.size else 0
    if amax * bmax * max(int(terms), 1) < EXACT_FLOAT64:
        out = np.einsum(subscripts, a.astype(np.float64), b.astype(np.float64), optimize=True)
        return out.astype(np.int64)
    return np.einsum(subscripts, a.astype(np.int64), b.astype(np.int64), optimize=True)


def windows(x: np.ndarray, kernel, stride, pads, fill: int) -> np.ndarray:
    """[B, H, W, C] -> [B, Ho, Wo, kh, kw, C] sliding windows, padded with `fill`."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, pads
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # [B, Ho', Wo', C, kh, kw]
    return v[:, ::sh, ::sw].transpose(0, 1, 2, 4, 5, 3)


def rounding_shift(v: np.ndarray, shift: int, mode: str) -> np.ndarray:
    """v / 2^shift rounded like qonnx's Quant (np.round = half to even for ROUND), in integers."""
    if shift == 0:
        return v
    mode = mode.upper()
    floor = v >> shift
    rem = v - (floor << shift)  # 0 .. 2^shift - 1
    half = 1 << (shift - 1)
    if mode in ("ROUND", "HALF_EVEN"):
        up = (rem > half) | ((rem == half) & (floor & 1 == 1))
    elif mode == "FLOOR":
        up = np.zeros_like(v, dtype=bool)
    else:
        raise NotImplementedError(f"rounding mode {mode} in a residual add")
    return floor + up
