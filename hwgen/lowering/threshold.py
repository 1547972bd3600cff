"""Threshold (multi-threshold activation): level = #{k : acc >= T[c, k]} (acc <= T for
decreasing channels), out = out_base + level, on a ThresholdUnit; or, where the requantize pass
proved an integer requantizer equal to the thresholds on every reachable accumulator,
level = clip((acc * mul + add) >> shift, 0, L) on a RequantUnit. The plan takes the unit the cost
model finds cheaper on the target (ClockTarget.activation can force one); the golden model
computes the requantizer's formula whenever the op has one (the proof makes both the same, and
every golden-vs-qonnx test then checks the requantizer too).

It has no folding of its own: it runs at the beat width of the stream feeding it (the PE of the
MatVec / conv before it) when its channels tile that beat, else one channel per beat. One
exception: a dense layer that gives its whole output vector in one beat (PE = outputs, oriented
for latency by hwgen.passes.fold) would need one unit per channel, with constant thresholds on
carry chains (the KWS MLP's 256-lane Quant_6: ~29k LUT4). There the plan may serialise the
vector through a width converter to fewer lanes, when the cost model finds converter + narrower
unit cheaper and the few extra cycles stay within 1/SERIAL_LATENCY_SHARE of the II bound.
"""
from __future__ import annotations

import numpy as np

from ..ir import Threshold
from ..ir.types import Bipolar
from ..rtl.requant import RequantUnit, is_shift
from ..rtl.threshold import ThresholdUnit
from ..rtl.timing import ThresholdModel
from .base import Lowering, divisors, pipelined, register

SERIAL_LATENCY_SHARE = 16  # a serialised vector may add at most II bound / this many cycles of latency


def requant_levels(acc, mul, add, shift: int, levels: int, rounding: str = "floor", *, in_bits: int = 62):
    """The requantizer's level, channels last: v = acc * mul + add; clip(v >> shift, 0, levels - 1),
    or with ties to the even (odd) quotient (v + ((v >> shift) & 1)) >> shift ((v + (~(v >> shift) & 1))
    >> shift). Exact: int64 while it fits."""
    mul, add = np.asarray(mul, dtype=np.int64), np.asarray(add, dtype=np.int64)
    bits = in_bits + int(np.abs(mul).max()).bit_length() + 2
    big = bits > 62 or int(np.abs(add).max()).bit_length() > 60
    a = np.asarray(acc).astype(object if big else np.int64)
    v = a * mul.astype(a.dtype) + add.astype(a.dtype)
    if rounding == "half_even":
        v = v + ((v >> shift) & 1)
    elif rounding == "half_odd":
        v = v + (((v >> shift) & 1) ^ 1)
    return np.clip(v >> shift, 0, levels - 1).astype(np.int64)


@register
class ThresholdLowering(Lowering):
    op_type = Threshold
    unit_types = (ThresholdUnit, RequantUnit)
    fold_hint = "runs at the PE of the layer before it; give PE there instead"

    def golden(self, op: Threshold, acc):
        if op.requantizable:
            return op.out_base + requant_levels(acc, op.requant_mul, op.requant_add, op.requant_shift,
                                                op.levels, op.requant_round, in_bits=op.in_type.bits)
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
        if fmt.per_beat == fmt.elements == op.channels > 1:
            pe = self.serial_pe(op, fmt, planner)
        if pe != fmt.per_beat:
            planner.feed(op.name, planner.stream_format(fmt.element_bits, fmt.signed, fmt.bipolar, fmt.elements, pe))
        unit = self.choose_unit(op, fmt.element_bits, pe, planner.clock)
        planner.push(op.name, unit, op, fmt.elements // pe)
        planner.fmt = planner.format_of(op.out_type, fmt.elements, pe)

    def serial_pe(self, op: Threshold, fmt, planner) -> int:
        """Lanes for a whole vector given in one beat (module doc): the cheapest of the unit at PE
        = channels and, for every PE that adds at most bound / SERIAL_LATENCY_SHARE cycles, a width
        converter to PE plus the unit at PE."""
        from ..rtl.width_converter import WidthConverter
        from .base import lowering_of_unit

        target = planner.clock.target if planner.clock is not None else "ecp5"

        def score(unit) -> float:  # a candidate only: the plan builds the chosen one again
            unit._MustUse__silence = True
            return lowering_of_unit(unit).estimate(unit, target).score()
        best = (score(self.choose_unit(op, fmt.element_bits, op.channels, planner.clock)), op.channels)
        for pe in divisors(op.channels):
            if pe == op.channels or op.channels // pe > planner.bound // SERIAL_LATENCY_SHARE:
                continue
            conv = WidthConverter(element_bits=fmt.element_bits, in_elems=op.channels, out_elems=pe)
            best = min(best, (score(conv) + score(self.choose_unit(op, fmt.element_bits, pe, planner.clock)), pe))
        return best[1]

    def choose_unit(self, op: Threshold, in_bits: int, pe: int, clock):
        """The ThresholdUnit, or the RequantUnit when the op has a proved requantizer and it costs less
        on the target (LUTs + carry cells; a DSP block or a BRAM counts as 64 of them)."""
        thresholds = ThresholdUnit(thresholds=op.thresholds, decreasing=op.decreasing, in_bits=in_bits,
                                   out_type=op.out_type, out_base=op.out_base, pe=pe,
                                   registers=self.registers(clock), registered_enable=pipelined(clock))
        mode = getattr(clock, "activation", "auto")
        if not op.requantizable or mode == "thresholds":
            return thresholds
        thresholds._MustUse__silence = True
        target = clock.target if clock is not None else "ecp5"
        ariths = [clock.arith] if clock is not None and clock.arith != "auto" else ["dsp", "lut"]
        candidates = [RequantUnit(mul=op.requant_mul, add=op.requant_add, shift=op.requant_shift,
                                  rounding=op.requant_round, levels=op.levels, in_bits=in_bits,
                                  out_type=op.out_type, out_base=op.out_base, pe=pe, arith=arith,
                                  registers=self.requant_registers(clock, op, pe),
                                  acc_lo=op.requant_lo, acc_hi=op.requant_hi,
                                  registered_enable=pipelined(clock))
                      for arith in ariths]
        if mode != "requant":
            candidates.append(thresholds)

        best = min(candidates, key=lambda unit: self.estimate(unit, target).score())
        for unit in candidates:  # the others are never elaborated
            unit._MustUse__silence = True
        return best

    @staticmethod
    def requant_registers(clock, op, pe: int) -> tuple[bool, bool]:
        """(operands, product) registers of a RequantUnit for the plan's clock: both when pipelining
        (a ROM / DSP block's clock-to-out and the product's carry chain each take most of a cycle);
        none when every lane's multiplier is a constant power of two (no product to register)."""
        if not pipelined(clock):
            return False, False
        mul = np.asarray(op.requant_mul).reshape(-1)
        if pe == len(mul) and all(is_shift(c, op.requant_shift) for c in mul):
            return False, False
        return True, True

    @staticmethod
    def registers(clock) -> tuple[bool, bool]:
        """(ROM output / accumulator register, comparison-bit register) for the plan's clock: both on
        ECP5 (a DP16KD's clock-to-out alone is ~5.6 ns), the ROM output only on iCE40 (whose target
        clock is lower and whose logic cells are scarce); none without a clock target."""
        if not pipelined(clock):
            return False, False
        return True, clock.target == "ecp5"

    # -- the unit ---------------------------------------------------------------------------
    def timing_models(self, unit: ThresholdUnit) -> list:
        return [ThresholdModel(unit.extra_stages, unit.registered_enable)]

    def cuts_ready_path(self, unit, target: str) -> bool:
        return unit.registered_enable

    def always_ready(self, unit) -> bool:
        return True  # input ready = the enable, one beat per cycle (both units, every folding)

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        if isinstance(u, RequantUnit):
            rows.append({
                "name": op.name, "op": "Threshold", "pe": u.pe, "simd": None, "cycles": stage.cycles,
                "channels": u.C, "levels": u.L + 1,
                "acc_bits": u.in_bits, "acc_bits_exact": None, "acc_bits_a2q": None, "acc_bits_datatype": None,
                "weight_bits": u.C * (u.mul_bits + u.add_bits),
                "memory_bits": u.rom_bits,
                "weights_in": "rom" if u.folded else "constants",
                "style": "requant", "requant": {"mul_bits": u.mul_bits, "add_bits": u.add_bits, "shift": u.shift},
                "arithmetic": u.arith,
                "pipeline_stages": u.extra_stages,
                "estimate": self.cost(u, target),
            })
            return
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

    def estimate(self, unit, target: str):
        from ..cost import units

        return units.requant(unit, target) if isinstance(unit, RequantUnit) else units.threshold(unit, target)
