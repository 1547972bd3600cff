"""NumPy execution of the IR: the bit-exact reference for the RTL.

Integers are int64 values (Bipolar as -1/+1). Every MatVec checks that its accumulator stays
inside the declared width, so a sizing bug shows up here before it shows up in hardware.
"""
from __future__ import annotations

import numpy as np

from ..ir import FloatActivation, Graph, Head, MatVec, Op, Tail, Threshold
from ..ir.float_segment import scale_then_segment
from ..ir.types import Bipolar


class AccumulatorOverflow(AssertionError):
    """An accumulator left its declared type: the sizing is wrong (a bug, never user error)."""


def matvec(op: MatVec, x: np.ndarray) -> np.ndarray:
    acc = x.astype(np.int64) @ op.weights.T
    if op.acc_type is not None and acc.size:
        lo, hi = int(acc.min()), int(acc.max())
        if lo < op.acc_type.min or hi > op.acc_type.max:
            raise AccumulatorOverflow(
                f"{op.name}: accumulator value range [{lo}, {hi}] exceeds {op.acc_type}")
    return acc


def threshold(op: Threshold, acc: np.ndarray) -> np.ndarray:
    a = acc[..., None]
    up = (a >= op.thresholds).sum(-1)
    down = (a <= op.thresholds).sum(-1)
    level = np.where(op.decreasing, down, up)
    if op.out_type == Bipolar:
        return 2 * level - 1
    return op.out_base + level


def run_op(op: Op, x: np.ndarray) -> np.ndarray:
    if isinstance(op, Head):
        y = x if op.segment is None else op.segment.run(x)
        return op.quantizer.to_int(y).reshape(len(x), -1)
    if isinstance(op, MatVec):
        return matvec(op, x)
    if isinstance(op, Threshold):
        return threshold(op, x)
    if isinstance(op, FloatActivation):
        return op.quantizer.to_int(scale_then_segment(op.scale, op.segment, x))
    if isinstance(op, Tail):
        return scale_then_segment(op.scale, op.segment, x)
    raise NotImplementedError(f"golden model has no reference for {op.kind}")


def execute(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run a batch (first axis) through the graph; returns every tensor by name."""
    x = np.asarray(x, dtype=np.float32)
    values = {graph.input: x}
    for op in graph.ops:
        values[op.outputs[0]] = run_op(op, values[op.inputs[0]])
    return values


def run_core(graph: Graph, ints: np.ndarray) -> dict[str, np.ndarray]:
    """Run only the hardware part: integer inputs (the Head's output) -> every core tensor.

    This is what an RTL bench compares against: it can drive any integer vector, also ones
    no float input would produce (accumulator extremes).
    """
    values = {graph.head.outputs[0]: np.asarray(ints, dtype=np.int64)}
    for op in graph.core:
        values[op.outputs[0]] = run_op(op, values[op.inputs[0]])
    return values


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    return execute(graph, x)[graph.output]
