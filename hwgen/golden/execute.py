"""NumPy execution of the IR: the bit-exact reference for the RTL.

Each op's semantics live in its lowering (hwgen.lowering); this module only walks the graph.
Integers are int64 values (Bipolar as -1/+1); spatial tensors are [B, H, W, C] (NHWC, as on
the wire). Every Dot op checks that its accumulator stays inside the declared width, so a
sizing bug shows up here before it shows up in hardware.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Op
from ..lowering import lowering_of
from .numeric import AccumulatorOverflow

__all__ = ["AccumulatorOverflow", "execute", "run", "run_core", "run_op", "run_ops"]


def run_op(op: Op, x: np.ndarray, *more: np.ndarray) -> np.ndarray:
    return lowering_of(op).golden(op, x, *more)


def run_ops(ops: list[Op], values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run `ops` in order on `values` (tensor name -> batch), adding each result; returns values."""
    for op in ops:
        values[op.outputs[0]] = run_op(op, *[values[t] for t in op.inputs])
    return values


def execute(graph: Graph, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run a batch (first axis) through the graph; returns every tensor by name."""
    return run_ops(graph.ops, {graph.input: np.asarray(x, dtype=np.float32)})


def run_core(graph: Graph, ints: np.ndarray) -> dict[str, np.ndarray]:
    """Run only the hardware part: integer inputs (the Head's output) -> every core tensor.

    This is what an RTL bench compares against: it can drive any integer vector, also ones
    no float input would produce (accumulator extremes).
    """
    return run_ops(graph.core, {graph.head.outputs[0]: np.asarray(ints, dtype=np.int64)})


def run(graph: Graph, x: np.ndarray) -> np.ndarray:
    return execute(graph, x)[graph.output]
