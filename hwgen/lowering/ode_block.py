"""ODEBlock (dsODENet): one step body h <- h + dt * f(h) with shared weights, run `steps` times,
on an ODEBlockUnit that keeps h in an on-chip state buffer. Its body's layers fold like top-level
ones (their cycles count `steps` times per inference); the block itself has no folding.
"""
from __future__ import annotations

import numpy as np

from ..errors import HwgenError
from ..ir import ODEBlock
from ..rtl.ode_block import ODEBlockUnit
from ..rtl.timing import ODEModel
from ..plan import Stage
from .base import Lowering, lowering_of_unit, register


def _unit(op: ODEBlock, clock=None) -> ODEBlockUnit:
    try:
        return ODEBlockUnit.from_op(op, clock=clock)
    except (ValueError, NotImplementedError) as e:
        raise HwgenError(str(e), node=op.name, op=op.kind) from None


@register
class ODEBlockLowering(Lowering):
    op_type = ODEBlock
    unit_types = (ODEBlockUnit,)

    fold_hint = "has no folding of its own; fold the layers of its body"

    def golden(self, op: ODEBlock, h):
        from ..golden import run_ops

        for _ in range(op.steps):
            h = run_ops(op.body, {op.body_input: h})[op.body_output]
        return h

    def children(self, op: ODEBlock) -> list:
        return list(op.body)

    def reference_scale(self, op: ODEBlock, scales):
        return np.float32(op.body[-1].out_scale)

    def bound(self, op: ODEBlock, planner) -> int:
        planner.units[op.name] = _unit(op, planner.clock)
        return planner.units[op.name].cycles

    def plan(self, op: ODEBlock, planner) -> None:
        unit = planner.units.get(op.name) or _unit(op, planner.clock)
        elements = unit.H * unit.W * unit.C
        # a whole feature map: the producer runs ahead while the block iterates on the last one
        planner.feed(op.name, planner.format_of(unit.state_type, elements, unit.simd), whole=True)
        planner.push(op.name, unit, op, unit.cycles)
        planner.fmt = planner.format_of(unit.state_type, elements, unit.simd)

    def timing_models(self, unit: ODEBlockUnit) -> list:
        inner = [m for _, u in unit.stages for m in lowering_of_unit(u).timing_models(u)]
        return [ODEModel(unit, inner)]

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        body_rows: list[dict] = []
        for name, inner in u.stages:
            iop = next((o for o in op.body if o.name == name), None)
            if iop is None:  # a width converter between body layers
                lowering_of_unit(inner).report_rows(Stage(f"{op.name}.{name}", inner), body_rows, plumbing, target)
                continue
            lowering_of_unit(inner).report_rows(Stage(name, inner, iop, u.stage_cycles[name]), body_rows, plumbing, target)
        state_bits = u.P * u.simd * u.sbits
        rows.append({"name": op.name, "op": "ODEBlock", "pe": None, "simd": u.simd, "cycles": stage.cycles,
                     "steps": u.steps, "dt_shift": op.dt_shift, "step_cycles": u.step_cycles,
                     "body": [o.name for o in op.body], "acc_bits": None,
                     "state_bits": state_bits, "rom_bits": u.rom_bits, "buffer_bits": u.buffer_bits,
                     # the body layers' memories are listed in their own rows
                     "memory_bits": state_bits,
                     "estimate": self.own_cost(u, [x for _, x in u.stages], target)})
        for r in body_rows:  # cycles are per pass; the body runs `steps` passes per inference
            r["block"] = op.name
            r["runs_per_inference"] = u.steps
        rows.extend(body_rows)

    def estimate(self, unit: ODEBlockUnit, target: str):
        from ..cost import units

        return units.ode_block(unit, target)

