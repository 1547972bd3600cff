"""Add (residual): out = clamp(round((a << a_shift) + (b << b_shift), out_shift)).

In hardware an Add only exists as the join of a residual step h + f(h) with f a chain of layers:
unrolled, a ResidualBlock (fork, skip FIFO, f's units, ResidualAddUnit); inside an ODE block, the
block's own adder. The schedule finds the step (`residual_body`) and asks `plan_step`.
"""
from __future__ import annotations

import numpy as np

from ..errors import HwgenError
from ..golden.numeric import rounding_shift
from ..ir import Add
from ..rtl.residual_block import ResidualBlock
from ..rtl.timing import ResidualModel
from .base import Lowering, lowering_of_unit, register


def residual_body(add: Add, core: list) -> tuple[str, list] | None:
    """(skip tensor, body ops) when add = Add(h, chain(h)) with a simple chain of core ops."""
    produced = {t: op for op in core for t in op.outputs}
    for skip, other in ((add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])):
        chain, t = [], other
        while t != skip:
            op = produced.get(t)
            if op is None or len(op.inputs) != 1:
                break
            chain.append(op)
            t = op.inputs[0]
        else:
            if chain:
                return skip, chain[::-1]
    return None


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

    def branches(self, op: Add, core: list) -> tuple[str, list]:
        found = residual_body(op, core)
        if found is None:
            raise HwgenError("this residual add is not h + f(h) with f a chain of layers; only such residual "
                             "steps (unrolled, or folded into an ODE block) are supported in hardware",
                             node=op.name, op=op.kind)
        return found

    def plan(self, op: Add, planner) -> None:
        raise HwgenError("residual add without a branch", node=op.name, op=op.kind)

    def plan_step(self, add: Add, skip: str, body: list, planner) -> None:
        """The unrolled step: the body planned as a sub-chain, joined with the skip path."""
        fmt = planner.fmt
        if fmt is None:
            raise HwgenError("a residual Add cannot be the first layer", node=add.name, op=add.kind)
        skip_port = "a" if add.inputs[0] == skip else "b"
        skip_type = add.a_type if skip_port == "a" else add.b_type
        body_type = add.b_type if skip_port == "a" else add.a_type
        if skip_type.wire_bits != fmt.element_bits:
            raise HwgenError(f"the skip path is {fmt.element_bits} bits, the Add takes {skip_type}", node=add.name)
        sub = planner.sub()
        for op in body:
            sub.add(op)
        if sub.fmt.elements != fmt.elements or sub.fmt.element_bits != body_type.wire_bits:
            raise HwgenError(f"the residual branch gives {sub.fmt.elements} x {sub.fmt.element_bits} bit, the "
                             f"skip path {fmt.elements} elements of {body_type}", node=add.name)
        sub.feed(add.name, planner.stream_format(sub.fmt.element_bits, sub.fmt.signed, sub.fmt.bipolar,
                                                 fmt.elements, fmt.per_beat))
        sub.close()
        out_fmt = planner.format_of(add.out_type, fmt.elements, fmt.per_beat)
        unit = ResidualBlock(add=add, skip_port=skip_port, stages=sub.stages, in_fmt=fmt, out_fmt=out_fmt,
                             fifo_slack=planner.fifo_slack)
        planner.push(add.name, unit, add, unit.cycles)
        planner.fmt = out_fmt

    def timing_models(self, unit: ResidualBlock) -> list:
        body = [m for st in unit.stages for m in lowering_of_unit(st.unit).timing_models(st.unit)]
        return [ResidualModel(unit.skip.depth, body)]

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        rows.append({"name": op.name, "op": "Add", "pe": None, "simd": u.in_fmt.per_beat, "cycles": stage.cycles,
                     "acc_bits": u.add.sum_bits, "skip_fifo_depth": u.skip.depth,
                     "memory_bits": u.skip.memory_bits, "residual_body": [s.op.name for s in u.stages if s.op],
                     "estimate": self.own_cost(u, [s.unit for s in u.stages], target)})
        for st in u.stages:
            lowering_of_unit(st.unit).report_rows(st, rows, plumbing, target)

    def estimate(self, unit: ResidualBlock, target: str):
        from ..cost import units

        return units.residual_block(unit, target)
