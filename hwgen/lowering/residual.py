"""Add (residual): out = clamp(round((a << a_shift) + (b << b_shift), out_shift)).

In hardware an Add only exists as the join of a residual step Add(f(h), g(h)), f (the body) and g
(the skip path) each a chain of layers from the fork tensor h, g empty for an identity shortcut
(h + f(h)) and e.g. a 1x1 stride-2 conv + quantizer for a ResNet projection shortcut: unrolled, a
ResidualBlock (fork, g's units, skip FIFO, f's units, ResidualAddUnit); an identity step inside an
ODE block is the block's own adder. The schedule finds the step (`residual_body`) and asks `plan_step`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import HwgenError
from ..golden.numeric import rounding_shift
from ..ir import Add
from ..rtl.residual_block import ResidualBlock
from ..rtl.timing import ResidualModel
from .base import Lowering, lowering_of_unit, register


@dataclass(frozen=True)
class ResidualStep:
    """Add(f(h), g(h)): the fork tensor h, the body chain f and the skip chain g (ops in stream
    order; g empty: the identity shortcut, the Add takes h itself)."""

    fork: str
    body: list
    skip: list

    def swapped(self) -> ResidualStep:
        return ResidualStep(self.fork, self.skip, self.body)

    @property
    def skip_tensor(self) -> str:
        """What the Add's skip input is: g's output, or h."""
        return self.skip[-1].outputs[0] if self.skip else self.fork


def _chain_back(t: str, produced: dict) -> tuple[list[str], list]:
    """The tensors from t back through single-input ops, and those ops (nearest first)."""
    tensors, ops = [t], []
    while True:
        op = produced.get(t)
        if op is None or len(op.inputs) != 1:
            return tensors, ops
        ops.append(op)
        t = op.inputs[0]
        tensors.append(t)


def residual_body(add: Add, core: list) -> ResidualStep | None:
    """The step when add = Add(f(h), g(h)) with f and g simple chains of core ops from their
    nearest common tensor h (at least f non-empty); the skip g is the shorter chain (the Add's first
    input on a tie). None when add's inputs share no such h."""
    produced = {t: op for op in core for t in op.outputs}
    (ta, oa), (tb, ob) = (_chain_back(t, produced) for t in add.inputs)
    seen = set(ta)
    fork = next((t for t in tb if t in seen), None)
    if fork is None:
        return None
    ga, gb = oa[:ta.index(fork)][::-1], ob[:tb.index(fork)][::-1]
    if not ga and not gb:
        return None
    skip, body = (ga, gb) if len(ga) <= len(gb) else (gb, ga)
    return ResidualStep(fork, body, skip)


@register
class AddLowering(Lowering):
    op_type = Add
    unit_types = (ResidualBlock,)
    joins_branches = True

    def golden(self, op: Add, a, b):
        total = (a.astype(np.int64) << op.a_shift) + (b.astype(np.int64) << op.b_shift)
        return np.clip(rounding_shift(total, op.out_shift, op.rounding_mode), op.out_type.min, op.out_type.max)

    def reference_scale(self, op: Add, scales):
        return np.float32(op.out_scale)

    def branches(self, op: Add, core: list) -> ResidualStep:
        found = residual_body(op, core)
        if found is None:
            raise HwgenError("this residual add is not Add(f(h), g(h)) with f and g chains of layers from one "
                             "tensor h (g may be empty: h + f(h)); only such residual steps (unrolled, or "
                             "identity steps folded into an ODE block) are supported in hardware",
                             node=op.name, op=op.kind)
        return found

    def plan(self, op: Add, planner) -> None:
        raise HwgenError("residual add without a branch", node=op.name, op=op.kind)

    def plan_step(self, add: Add, step: ResidualStep, planner) -> None:
        """The unrolled step: the body f and the skip chain g planned as sub-chains from the current
        stream (h), joined in beats of f's output (h's beats for an identity skip). The skip FIFO goes
        behind g; when g needs more of h than f does (the block would deadlock), behind f instead."""
        if planner.fmt is None:
            raise HwgenError("a residual Add cannot be the first layer", node=add.name, op=add.kind)
        unit = self._block(add, step, planner)
        if step.skip and _deadlocks(unit):
            planner.discard(unit)
            unit = self._block(add, step.swapped(), planner)
            if _deadlocks(unit):
                raise HwgenError(
                    "the residual block deadlocks with the skip FIFO behind either path: each path needs more "
                    "of the block input before some output than the other has buffered; hwgen supports "
                    "blocks where one path looks ahead no further than the other", node=add.name, op=add.kind)
        planner.push(add.name, unit, add, unit.cycles)
        planner.fmt = unit.out_fmt

    @staticmethod
    def _block(add: Add, step: ResidualStep, planner) -> ResidualBlock:
        """The ResidualBlock of `step`, its skip FIFO behind step.skip (which may be empty)."""
        fmt = planner.fmt
        skip_port = "a" if add.inputs[0] == step.skip_tensor else "b"
        skip_type = add.a_type if skip_port == "a" else add.b_type
        body_type = add.b_type if skip_port == "a" else add.a_type
        body = planner.sub()
        for op in step.body:
            body.add(op)
        if step.skip:
            skip = planner.sub()
            for op in step.skip:
                skip.add(op)
            elements, per_beat, skip_bits = body.fmt.elements, body.fmt.per_beat, skip.fmt.element_bits
            if skip.fmt.elements != elements:
                raise HwgenError(f"the residual path through {step.body[0].name} gives {elements} elements, the "
                                 f"one through {step.skip[0].name} {skip.fmt.elements}", node=add.name, op=add.kind)
        else:
            skip, elements, per_beat, skip_bits = None, fmt.elements, fmt.per_beat, fmt.element_bits
        if skip_type.wire_bits != skip_bits:
            raise HwgenError(f"the skip path is {skip_bits} bits, the Add takes {skip_type}", node=add.name)
        if body.fmt.elements != elements or body.fmt.element_bits != body_type.wire_bits:
            raise HwgenError(f"the residual branch gives {body.fmt.elements} x {body.fmt.element_bits} bit, the "
                             f"skip path {elements} elements of {body_type}", node=add.name)
        body.feed(add.name, planner.stream_format(body.fmt.element_bits, body.fmt.signed, body.fmt.bipolar,
                                                  elements, per_beat))
        body.close()
        skip_fmt = fmt
        if skip is not None:
            skip_fmt = planner.stream_format(skip_bits, skip.fmt.signed, skip.fmt.bipolar, elements, per_beat)
            skip.feed(f"{add.name}_skip", skip_fmt)
            skip.close()
        return ResidualBlock(add=add, skip_port=skip_port, stages=body.stages, in_fmt=fmt,
                             out_fmt=planner.format_of(add.out_type, elements, per_beat),
                             fifo_slack=planner.fifo_slack, skip_stages=skip.stages if skip else (),
                             skip_fmt=skip_fmt)

    def timing_models(self, unit: ResidualBlock) -> list:
        body = [m for st in unit.stages for m in lowering_of_unit(st.unit).timing_models(st.unit)]
        skip = [m for st in unit.skip_stages for m in lowering_of_unit(st.unit).timing_models(st.unit)]
        return [ResidualModel(unit.skip.depth, body, skip)]

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        inner = u.skip_stages + u.stages
        rows.append({"name": op.name, "op": "Add", "pe": None, "simd": u.out_fmt.per_beat, "cycles": stage.cycles,
                     "acc_bits": u.add.sum_bits, "skip_fifo_depth": u.skip.depth,
                     "memory_bits": u.skip.memory_bits, "residual_body": [s.op.name for s in u.stages if s.op],
                     "residual_skip": [s.op.name for s in u.skip_stages if s.op],
                     "estimate": self.own_cost(u, [s.unit for s in inner], target)})
        for st in inner:
            lowering_of_unit(st.unit).report_rows(st, rows, plumbing, target)

    def estimate(self, unit: ResidualBlock, target: str):
        from ..cost import units

        return units.residual_block(unit, target)


def _deadlocks(unit: ResidualBlock) -> bool:
    """Whether the block stalls for good on one inference alone (its timing model, input offered back
    to back, output always taken). The skip FIFO holds the skip path's whole output map, which covers
    that path running ahead of the body by any amount; but if it needs more of h than the body before
    some output, the body's output waits at the Add, the body stops taking h, and the fork with it."""
    from ..plan import Stage
    from ..rtl.timing import run

    beats_in, beats_out = unit.in_fmt.beats, unit.out_fmt.beats
    r = run([Stage(unit.add_op.name, unit, unit.add_op, unit.cycles)], beats_in, beats_out, 1,
            max_cycles=20 * (unit.cycles + beats_in + beats_out) + 10000)
    return not r.finished
