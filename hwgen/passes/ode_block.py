"""Recognise dsODENet blocks: N consecutive residual steps h <- h + dt * f(h) whose copies of f
are identical (same weights, same thresholds, same shifts), as the export of a weight-shared
Neural ODE unrolls them. They fold into one ODEBlock that the hardware runs N times.

Copies that differ (e.g. per-step BatchNorm statistics, or an unrolled ResNet with its own
weights per step) stay unrolled, and the reason lands in graph.notes for `hwgen inspect`.
"""
from __future__ import annotations

import numpy as np

from ..ir import Add, Graph, ODEBlock, Op


def _step_ops(graph: Graph, add: Add) -> list[Op] | None:
    """The ops computing add's b input from its skip input h (a simple chain), then the add."""
    chain, t = [], add.inputs[1]
    while t != add.inputs[0]:
        op = graph.producer(t)
        if op is None or len(op.inputs) != 1 or op not in graph.ops:
            return None
        chain.append(op)
        t = op.inputs[0]
    return chain[::-1] + [add] if chain else None


def _same(a, b) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and np.array_equal(a, b)
    return a == b


IGNORED_FIELDS = {"name", "inputs", "outputs", "segment", "onnx_nodes"}


def difference(first: list[Op], other: list[Op]) -> str | None:
    """Why two steps are not copies of each other, or None when they are."""
    if [o.kind for o in first] != [o.kind for o in other]:
        return "the ops differ"
    for a, b in zip(first, other):
        for name in a.__dataclass_fields__:
            if name not in IGNORED_FIELDS and not _same(getattr(a, name), getattr(b, name)):
                return f"{b.name} has other {name} than {a.name}"
    return None


def recognise_ode_blocks(graph: Graph) -> Graph:
    steps = [(op, _step_ops(graph, op)) for op in graph.ops if isinstance(op, Add)]
    steps = [(add, ops) for add, ops in steps if ops is not None]
    i = 0
    while i < len(steps):
        run = [steps[i]]
        while i + len(run) < len(steps):
            add, ops = steps[i + len(run)]
            prev_add = run[-1][0]
            if ops[0].inputs[0] != prev_add.outputs[0]:
                break
            why = difference(run[0][1], ops)
            if why is not None:
                graph.notes.append(f"residual steps at {run[0][0].name} and {add.name} not folded into an "
                                   f"ODE block: {why} (per-step weights or BatchNorm statistics?)")
                break
            run.append(steps[i + len(run)])
        if len(run) >= 2:
            _fold(graph, run)
        i += len(run)
    return graph


def _fold(graph: Graph, run) -> None:
    first_add, body = run[0]
    last_add = run[-1][0]
    dt_shift = first_add.out_shift - first_add.b_shift
    block = ODEBlock(name=f"ODE_{first_add.name}", inputs=[body[0].inputs[0]], outputs=[last_add.outputs[0]],
                     body=body, steps=len(run), dt_shift=dt_shift, body_input=body[0].inputs[0],
                     body_output=first_add.outputs[0], state_type=first_add.out_type)
    members = [op for _, ops in run for op in ops]
    start = graph.ops.index(members[0])
    for op in members:
        graph.ops.remove(op)
    graph.ops.insert(start, block)
    graph.notes.append(f"{block.name}: {len(run)} weight-shared residual steps folded into one ODE block "
                       f"(dt = 2^-{dt_shift})")
