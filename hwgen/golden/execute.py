"""NumPy execution of the IR: the bit-exact reference for the RTL.

Integers are int64 values (Bipolar as -1/+1); spatial tensors are [B, H, W, C] (NHWC, as on
the wire). Every Dot op checks that its accumulator stays inside the declared width, so a
sizing bug shows up here before it shows up in hardware.
"""
from __future__ import annotations

import numpy as np

from ..ir import (Add, Conv, Dot, FloatActivation, GlobalSumPool, Graph, Head, KernelBankConv, MatVec, MaxPool,
                  ODEBlock, Op, Tail, Threshold)
from ..ir.float_segment import scale_then_segment
from ..ir.types import Bipolar


class AccumulatorOverflow(AssertionError):
    """An accumulator left its declared type: the sizing is wrong (a bug, never user error)."""


def _check_acc(op: Dot, acc: np.ndarray) -> np.ndarray:
    if op.acc_type is not None and acc.size:
        lo, hi = int(acc.min()), int(acc.max())
        if lo < op.acc_type.min or hi > op.acc_type.max:
            raise AccumulatorOverflow(
                f"{op.name}: accumulator value range [{lo}, {hi}] exceeds {op.acc_type}")
    return acc


def matvec(op: MatVec, x: np.ndarray) -> np.ndarray:
    return _check_acc(op, x.reshape(len(x), -1).astype(np.int64) @ op.weights.T)


def windows(x: np.ndarray, kernel, stride, pads, fill: int) -> np.ndarray:
    """[B, H, W, C] -> [B, Ho, Wo, kh, kw, C] sliding windows, padded with `fill`."""
    (kh, kw), (sh, sw), (pt, pl, pb, pr) = kernel, stride, pads
    x = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=fill)
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # [B, Ho', Wo', C, kh, kw]
    return v[:, ::sh, ::sw].transpose(0, 1, 2, 4, 5, 3)


def conv(op: Conv, x: np.ndarray) -> np.ndarray:
    p = windows(x.astype(np.int64), op.kernel, op.stride, op.pads, 0)  # zero padding, as ONNX
    b, ho, wo, kh, kw, c = p.shape
    g = op.groups
    p = p.reshape(b, ho, wo, kh, kw, g, c // g)
    w = op.weights.reshape(g, op.out_channels // g, kh, kw, c // g)
    acc = np.einsum("bhwijgc,goijc->bhwgo", p, w, optimize=True).reshape(b, ho, wo, op.out_channels)
    return _check_acc(op, acc)


def kernel_bank_conv(op: KernelBankConv, x: np.ndarray) -> np.ndarray:
    """The Sub-bit dataflow: stage 1 convolves every input channel's window with each of the
    2^tau codewords once; stage 2 lets each output channel gather the responses its indices
    name and accumulate them over input channels. Padding taps are 0 (masked in hardware)."""
    p = windows(x.astype(np.int64), op.kernel, op.stride, op.pads, 0)  # [B, Ho, Wo, 3, 3, Cin]
    responses = np.einsum("bhwijc,kij->bhwck", p, op.codebook, optimize=True)  # [B, Ho, Wo, Cin, 2^tau]
    cin = np.arange(op.indices.shape[1])
    gathered = responses[..., cin[None, :], op.indices]  # [B, Ho, Wo, Cout, Cin]
    return _check_acc(op, gathered.sum(-1))


def ode_block(op: ODEBlock, h: np.ndarray) -> np.ndarray:
    """N Euler steps of the shared body: h <- body(h)."""
    for _ in range(op.steps):
        env = {op.body_input: h}
        for inner in op.body:
            env[inner.outputs[0]] = run_op(inner, *[env[t] for t in inner.inputs])
        h = env[op.body_output]
    return h


def maxpool(op: MaxPool, x: np.ndarray) -> np.ndarray:
    fill = np.iinfo(np.int64).min
    return windows(x.astype(np.int64), op.kernel, op.stride, op.pads, fill).max(axis=(3, 4))


def threshold(op: Threshold, acc: np.ndarray) -> np.ndarray:
    a = acc[..., None]
    up = (a >= op.thresholds).sum(-1)
    down = (a <= op.thresholds).sum(-1)
    level = np.where(op.decreasing, down, up)
    if op.out_type == Bipolar:
        return 2 * level - 1
    return op.out_base + level


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


def residual_add(op: Add, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    total = (a.astype(np.int64) << op.a_shift) + (b.astype(np.int64) << op.b_shift)
    return np.clip(rounding_shift(total, op.out_shift, op.rounding_mode), op.out_type.min, op.out_type.max)


def head(op: Head, x: np.ndarray) -> np.ndarray:
    y = op.quantizer.to_int(x if op.segment is None else op.segment.run(x))
    if op.to_nhwc:
        return y.transpose(0, 2, 3, 1)
    return y.reshape(len(x), -1)


def tail(op: Tail, x: np.ndarray) -> np.ndarray:
    y = np.asarray(x, np.float32) * np.asarray(op.scale, np.float32)
    if op.nchw:
        y = y.transpose(0, 3, 1, 2)
    return y if op.segment is None else op.segment.run(y)


def run_op(op: Op, x: np.ndarray, *more: np.ndarray) -> np.ndarray:
    if isinstance(op, Add):
        return residual_add(op, x, more[0])
    if isinstance(op, Head):
        return head(op, x)
    if isinstance(op, MatVec):
        return matvec(op, x)
    if isinstance(op, KernelBankConv):
        return kernel_bank_conv(op, x)
    if isinstance(op, Conv):
        return conv(op, x)
    if isinstance(op, ODEBlock):
        return ode_block(op, x)
    if isinstance(op, Threshold):
        return threshold(op, x)
    if isinstance(op, MaxPool):
        return maxpool(op, x)
    if isinstance(op, GlobalSumPool):
        return x.astype(np.int64).sum(axis=(1, 2))
    if isinstance(op, FloatActivation):
        return op.quantizer.to_int(scale_then_segment(op.scale, op.segment, x, op.segment_shape))
    if isinstance(op, Tail):
        return tail(op, x)
    raise NotImplementedError(f"golden model has no reference for {op.kind}")


def execute(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run a batch (first axis) through the graph; returns every tensor by name."""
    x = np.asarray(x, dtype=np.float32)
    values = {graph.input: x}
    for op in graph.ops:
        values[op.outputs[0]] = run_op(op, *[values[t] for t in op.inputs])
    return values


def run_core(graph: Graph, ints: np.ndarray) -> dict[str, np.ndarray]:
    """Run only the hardware part: integer inputs (the Head's output) -> every core tensor.

    This is what an RTL bench compares against: it can drive any integer vector, also ones
    no float input would produce (accumulator extremes).
    """
    values = {graph.head.outputs[0]: np.asarray(ints, dtype=np.int64)}
    for op in graph.core:
        values[op.outputs[0]] = run_op(op, *[values[t] for t in op.inputs])
    return values


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    return execute(graph, x)[graph.output]
