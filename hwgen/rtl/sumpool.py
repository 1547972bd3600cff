"""Global sum pool unit: out[c] = sum over the H x W pixels of channel c (GlobalAveragePool
imports as this; the 1/(H*W) lives in the next layer's scale).

Input stream: NHWC pixels in beats of SIMD elements (CF = C/SIMD beats per pixel). Output stream:
the C sums, in beats of SIMD elements of `out_type` (op.out_type: its bits, signed or not), CF
beats per image, after the image's last pixel. Bipolar inputs count -1/+1.

One accumulator word per channel group in a CF-word shift register (the arriving beat's group is
always at the head); sums are `out_bits` wide and wrap like a register of that width (the final
sum fits out_type by construction). Cycles per image = H*W*CF (one input beat per cycle).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .window_util import elements, value_of


class GlobalSumPoolUnit(wiring.Component):
    def __init__(self, *, in_shape, in_type, out_type, simd: int = 1):
        self.H, self.W, self.C = (int(v) for v in in_shape)
        self.simd = int(simd)
        if self.simd < 1 or self.C % self.simd:
            raise ValueError(f"SIMD {simd} does not divide {self.C} channels")
        self.CF = self.C // self.simd
        self.in_type, self.out_type = in_type, out_type
        self.in_bits, self.out_bits = in_type.wire_bits, out_type.wire_bits
        super().__init__({
            "i": In(stream.Signature(self.simd * self.in_bits)),
            "o": Out(stream.Signature(self.simd * self.out_bits)),
        })

    @classmethod
    def from_op(cls, op, *, simd: int = 1):
        return cls(in_shape=op.in_shape, in_type=op.in_type, out_type=op.out_type, simd=simd)

    @property
    def cycles(self) -> int:
        return self.H * self.W * self.CF

    latency = 1

    @property
    def buffer_bits(self) -> int:
        return self.C * self.out_bits

    rom_bits = 0

    def elaborate(self, platform):
        m = Module()
        CF, S, ob = self.CF, self.simd, self.out_bits
        P = self.H * self.W
        cf = Signal(range(CF), name="cf")
        pix = Signal(range(P), name="pix")
        first, last = pix == 0, pix == P - 1
        regs = [Signal(S * ob, name=f"sum{k}") for k in range(CF)]
        xs = [value_of(e, self.in_type) for e in elements(self.i.payload, S, self.in_bits)]
        heads = elements(regs[0], S, ob)
        new = Signal(S * ob, name="new")
        m.d.comb += new.eq(Cat(*[(Mux(first, 0, h.as_signed()) + x)[:ob] for h, x in zip(heads, xs)]))

        out_valid = Signal()
        out_data = Signal(S * ob)
        fire = Signal()
        m.d.comb += [
            self.i.ready.eq(~last | ~out_valid | self.o.ready),
            fire.eq(self.i.valid & self.i.ready),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out_data),
        ]
        with m.If(self.o.ready):
            m.d.sync += out_valid.eq(0)
        with m.If(fire):
            m.d.sync += [regs[k].eq(regs[k + 1]) for k in range(CF - 1)]
            m.d.sync += regs[-1].eq(new)
            with m.If(last):
                m.d.sync += [out_valid.eq(1), out_data.eq(new)]
            with m.If(cf == CF - 1):
                m.d.sync += [cf.eq(0), pix.eq(Mux(last, 0, pix + 1))]
            with m.Else():
                m.d.sync += cf.eq(cf + 1)
        return m
