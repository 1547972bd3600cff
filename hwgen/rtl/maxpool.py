"""Max pool unit: k x k windows, stride s, padding, on an integer (or Bipolar) NHWC stream.

    i (NHWC pixels, SIMD elements per beat) -> SlidingWindowUnit(pad_value = type minimum)
      -> patches in (kh, kw, c) order -> running max per channel -> o (NHWC, SIMD per beat)

Padding taps carry the type's minimum (-1 for Bipolar), which never wins, as the golden model's
-inf fill (every window holds at least one real pixel since pads < kernel). The reduction keeps one
running-max word per channel group in a CF-word shift register (CF = C/SIMD): patch beats arrive
(tap, cf) with cf innermost, so the word at the head is always the running max of the beat's
channels; the last tap's result goes to the output register. Bipolar max is OR.

Output: Ho*Wo*CF beats per image, same element type and packing as the input.
Cycles per image = Ho*Wo*kh*kw*CF (one patch beat per cycle) plus the line-buffer fill.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.types import BipolarType
from .sliding_window import SlidingWindowUnit
from .window_util import TapReducerFacts, elements, elementwise_max, reduce_over_taps


class MaxPoolUnit(TapReducerFacts, wiring.Component):
    def __init__(self, *, in_shape, kernel, stride, dtype, pads=(0, 0, 0, 0), simd: int = 1,
                 rows: int | None = None, registered_read: bool = False):
        self.dtype = dtype
        self.bits = dtype.wire_bits
        pad_value = -1 if isinstance(dtype, BipolarType) else dtype.min
        self.swg = SlidingWindowUnit(in_shape=in_shape, kernel=kernel, stride=stride, pads=pads, in_type=dtype,
                                     simd=simd, pad_value=pad_value, rows=rows, registered_read=registered_read)
        self.simd, self.CF, self.C = self.swg.simd, self.swg.CF, self.swg.C
        self.taps = self.swg.kh * self.swg.kw
        super().__init__({
            "i": In(stream.Signature(self.simd * self.bits)),
            "o": Out(stream.Signature(self.simd * self.bits)),
        })

    @classmethod
    def from_op(cls, op, *, simd: int = 1, rows: int | None = None, registered_read: bool = False):
        return cls(in_shape=op.in_shape, kernel=op.kernel, stride=op.stride, pads=op.pads, dtype=op.dtype,
                   simd=simd, rows=rows, registered_read=registered_read)

    # -- facts for the report -------------------------------------------------------------
    @property
    def buffer_bits(self) -> int:
        return self.swg.buffer_bits + (self.CF if self.taps > 1 else 0) * self.simd * self.bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.swg = swg = self.swg
        CF, T, b, S = self.CF, self.taps, self.bits, self.simd
        wiring.connect(m, wiring.flipped(self.i), swg.i)
        src = swg.o

        # running maxima of the CF channel groups over the window's taps
        reduce_over_taps(m, src, self.o, groups=CF, taps=T, width=S * b, first_value=lambda x: x,
                         merge=lambda run, x: Cat(*elementwise_max(elements(run, S, b), elements(x, S, b),
                                                                   self.dtype)))
        return m
