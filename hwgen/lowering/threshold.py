"""Threshold (multi-threshold activation): level = #{k : acc >= T[c, k]} (acc <= T for
decreasing channels), out = out_base + level, on a ThresholdUnit.

It has no folding of its own: it runs at the beat width of the stream feeding it (the PE of the
MatVec / conv before it) when its channels tile that beat, else one channel per beat.
"""
from __future__ import annotations

import numpy as np

from ..ir import Threshold
from ..ir.types import Bipolar
from ..rtl.threshold import ThresholdUnit
from ..rtl.timing import ThresholdModel
from .base import Lowering, register


@register
class ThresholdLowering(Lowering):
    op_type = Threshold
    unit_types = (ThresholdUnit,)
    fold_hint = "runs at the PE of the layer before it; give PE there instead"

    def golden(self, op: Threshold, acc):
        a = acc[..., None]
        up = (a >= op.thresholds).sum(-1)
        down = (a <= op.thresholds).sum(-1)
        level = np.where(op.decreasing, down, up)
        if op.out_type == Bipolar:
            return 2 * level - 1
        return op.out_base + level

    def reference_scale(self, op: Threshold, scales):
        return np.float32(op.out_scale)

    # -- planning ---------------------------------------------------------------------------
    def plan(self, op: Threshold, planner) -> None:
        from ..errors import HwgenError

        if planner.fmt is None:  # a graph that starts with an activation: all channels per beat
            planner.in_fmt = planner.fmt = planner.stream_format(op.in_type.bits, True, False, op.channels,
                                                                 op.channels)
        fmt = planner.fmt
        if fmt.elements % op.channels:
            raise HwgenError(f"{op.channels} channels do not tile a stream of {fmt.elements} elements",
                             node=op.name, op=op.kind)
        pe = fmt.per_beat if op.channels % fmt.per_beat == 0 else 1
        if pe != fmt.per_beat:
            planner.feed(op.name, planner.stream_format(fmt.element_bits, fmt.signed, fmt.bipolar, fmt.elements, pe))
        unit = ThresholdUnit(thresholds=op.thresholds, decreasing=op.decreasing, in_bits=fmt.element_bits,
                             out_type=op.out_type, out_base=op.out_base, pe=pe, registers=self.registers(planner.clock))
        planner.push(op.name, unit, op, fmt.elements // pe)
        planner.fmt = planner.format_of(op.out_type, fmt.elements, pe)

    @staticmethod
    def registers(clock) -> tuple[bool, bool]:
        """(ROM output / accumulator register, comparison-bit register) for the plan's clock: both on
        ECP5 (a DP16KD's clock-to-out alone is ~5.6 ns), the ROM output only on iCE40 (whose target
        clock is lower and whose logic cells are scarce); none without a clock target."""
        if clock is None or clock.mhz is None:
            return False, False
        return True, clock.target == "ecp5"

    # -- the unit ---------------------------------------------------------------------------
    def timing_models(self, unit: ThresholdUnit) -> list:
        return [ThresholdModel(unit.extra_stages)]

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        rows.append({
            "name": op.name, "op": "Threshold", "pe": u.pe, "simd": None, "cycles": stage.cycles,
            "channels": u.C, "levels": u.L + 1,
            "acc_bits": u.in_bits, "acc_bits_exact": None, "acc_bits_a2q": None,
            "acc_bits_datatype": None,
            "weight_bits": u.C * u.L * u.cmp_bits,
            "memory_bits": u.rom_bits,
            "weights_in": "rom" if u.folded else "constants",
            "style": u.style,
            "pipeline_stages": u.extra_stages,
            "estimate": self.cost(u, target),
        })

    def estimate(self, unit: ThresholdUnit, target: str):
        from ..cost import units

        return units.threshold(unit, target)
