"""Window sum pool unit: sums over kh x kw windows, stride s, no padding, on an integer (or
Bipolar) NHWC stream (AveragePool imports as this; the 1/(kh*kw) lives in the next scale).

    i (NHWC pixels, SIMD elements per beat) -> SlidingWindowUnit
      -> patches in (kh, kw, c) order -> running sum per channel -> o (NHWC, SIMD per beat)

The reduction is MaxPoolUnit's with an adder instead of a comparator: one running-sum word per
channel group in a CF-word shift register (CF = C/SIMD); patch beats arrive (tap, cf) with cf
innermost, so the word at the head is always the running sum of the beat's channels; the last
tap's sum goes to the output register. Sums are `out_bits` (out_type) wide and wrap like a register
of that width (every partial sum, like the final one, lies in [taps * min, taps * max], which
out_type holds). Bipolar elements count -1/+1.

Output: Ho*Wo*CF beats per image of SIMD elements of out_type.
Cycles per image = Ho*Wo*kh*kw*CF (one patch beat per cycle) plus the line-buffer fill.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .sliding_window import SlidingWindowUnit
from .window_util import TapReducerFacts, elements, reduce_over_taps, value_of


class SumPoolUnit(TapReducerFacts, wiring.Component):
    def __init__(self, *, in_shape, kernel, stride, in_type, out_type, simd: int = 1, rows: int | None = None,
                 registered_read: bool = False):
        self.in_type, self.out_type = in_type, out_type
        self.in_bits, self.out_bits = in_type.wire_bits, out_type.wire_bits
        self.swg = SlidingWindowUnit(in_shape=in_shape, kernel=kernel, stride=stride, in_type=in_type,
                                     simd=simd, rows=rows, registered_read=registered_read)
        self.simd, self.CF, self.C = self.swg.simd, self.swg.CF, self.swg.C
        self.taps = self.swg.kh * self.swg.kw
        super().__init__({
            "i": In(stream.Signature(self.simd * self.in_bits)),
            "o": Out(stream.Signature(self.simd * self.out_bits)),
        })

    @classmethod
    def from_op(cls, op, *, simd: int = 1, rows: int | None = None, registered_read: bool = False):
        return cls(in_shape=op.in_shape, kernel=op.kernel, stride=op.stride, in_type=op.in_type,
                   out_type=op.out_type, simd=simd, rows=rows, registered_read=registered_read)

    # -- facts for the report -------------------------------------------------------------
    @property
    def buffer_bits(self) -> int:
        return self.swg.buffer_bits + (self.CF if self.taps > 1 else 0) * self.simd * self.out_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.swg = swg = self.swg
        CF, T, S, ob = self.CF, self.taps, self.simd, self.out_bits
        wiring.connect(m, wiring.flipped(self.i), swg.i)
        src = swg.o

        # running sums of the CF channel groups over the window's taps (wrapping to ob bits: the
        # window sum fits them, and a partial sum's wrap cancels in two's complement)
        def lanes(values, name):
            sigs = [Signal(ob, name=f"{name}{e}") for e in range(S)]
            m.d.comb += [s.eq(v) for s, v in zip(sigs, values)]  # extended, or wrapped, to ob bits
            return Cat(*sigs)

        def extend(x):
            return lanes([value_of(e, self.in_type) for e in elements(x, S, self.in_bits)], "first")

        def add(run, x):
            return lanes([h.as_signed() + value_of(e, self.in_type)
                          for h, e in zip(elements(run, S, ob), elements(x, S, self.in_bits))], "sum")
        reduce_over_taps(m, src, self.o, groups=CF, taps=T, width=S * ob, first_value=extend, merge=add)
        return m
