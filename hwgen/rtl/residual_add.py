"""Residual add unit: out = clamp(rounding_shift((a << a_shift) + (b << b_shift), out_shift)).

Two input streams `a` and `b` carrying the same number of elements in beats of the same shape
(`elems` elements per beat; a in a_type, b in b_type wire bits), one output stream `o` of beats
of `elems` out_type elements. rounding_shift divides by 2^out_shift like
`golden.execute.rounding_shift`: ROUND / HALF_EVEN = round half to even, FLOOR = floor; clamp
saturates to out_type's [min, max] (narrow types included). Bipolar operands count -1/+1; a
Bipolar output is the wire bit of the clamped value as `ir.types.to_wire` makes it (> 0 -> 1).

A beat moves when both inputs are valid and the output register is empty or being read (ready
depends on the other input's valid, never the other way round). One register stage: latency 1,
one beat per cycle.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.types import BipolarType
from .util import signed_width_for
from .window_util import elements, value_of


class ResidualAddUnit(wiring.Component):
    def __init__(self, *, a_shift: int, b_shift: int, out_shift: int, a_type, b_type, out_type,
                 rounding_mode: str = "ROUND", elems: int = 1):
        self.a_shift, self.b_shift, self.out_shift = int(a_shift), int(b_shift), int(out_shift)
        if min(self.a_shift, self.b_shift, self.out_shift) < 0:
            raise ValueError("shifts must be >= 0")
        self.mode = rounding_mode.upper()
        if self.mode not in ("ROUND", "HALF_EVEN", "FLOOR"):
            raise NotImplementedError(f"rounding mode {rounding_mode} in a residual add")
        self.a_type, self.b_type, self.out_type = a_type, b_type, out_type
        self.elems = int(elems)
        lo = (a_type.min << self.a_shift) + (b_type.min << self.b_shift)
        hi = (a_type.max << self.a_shift) + (b_type.max << self.b_shift)
        self.sum_bits = signed_width_for(lo, hi)
        super().__init__({
            "a": In(stream.Signature(self.elems * a_type.wire_bits)),
            "b": In(stream.Signature(self.elems * b_type.wire_bits)),
            "o": Out(stream.Signature(self.elems * out_type.wire_bits)),
        })

    @classmethod
    def from_op(cls, op, *, elems: int = 1):
        return cls(a_shift=op.a_shift, b_shift=op.b_shift, out_shift=op.out_shift, a_type=op.a_type,
                   b_type=op.b_type, out_type=op.out_type, rounding_mode=op.rounding_mode, elems=elems)

    latency = 1
    rom_bits = 0
    buffer_bits = 0

    def cycles_for(self, elements_per_image: int) -> int:
        return elements_per_image // self.elems

    def _one(self, m, a, b, k):
        s = self.out_shift
        total = Signal(signed(self.sum_bits), name=f"total{k}")
        m.d.comb += total.eq((value_of(a, self.a_type) << self.a_shift) + (value_of(b, self.b_type) << self.b_shift))
        if s == 0:
            q = total
        else:
            floor = Signal(signed(max(self.sum_bits - s, 1)), name=f"floor{k}")
            rem = total.as_unsigned()[:s]
            m.d.comb += floor.eq(total >> s)
            if self.mode == "FLOOR":
                up = Const(0, 1)
            else:
                half = 1 << (s - 1)
                above = (rem > half) if s > 1 else Const(0, 1)  # one remainder bit is never above 1/2
                up = above | ((rem == half) & floor[0])
            q = Signal(signed(len(floor) + 1), name=f"rounded{k}")
            m.d.comb += q.eq(floor + up)
        lo, hi = self.out_type.min, self.out_type.max
        clamped = Mux(q < lo, lo, Mux(q > hi, hi, q))
        if isinstance(self.out_type, BipolarType):
            return clamped > 0
        return clamped[:self.out_type.wire_bits]

    def elaborate(self, platform):
        m = Module()
        E = self.elems
        outs = [self._one(m, a, b, k) for k, (a, b) in enumerate(zip(
            elements(self.a.payload, E, self.a_type.wire_bits), elements(self.b.payload, E, self.b_type.wire_bits)))]
        out_valid = Signal()
        out_data = Signal(E * self.out_type.wire_bits)
        go = Signal()
        m.d.comb += [
            go.eq(self.a.valid & self.b.valid & (~out_valid | self.o.ready)),
            self.a.ready.eq(go), self.b.ready.eq(go),
            self.o.valid.eq(out_valid), self.o.payload.eq(out_data),
        ]
        with m.If(self.o.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(go):
            m.d.sync += [out_valid.eq(1), out_data.eq(Cat(*outs))]
        return m
