"""Convolution unit: a SlidingWindowUnit feeding a MatVecUnit (FINN's SWG + MVAU).

    i (NHWC pixels, WSIMD elements per beat) -> SlidingWindowUnit -> im2col patches in (kh, kw, c)
      order, WSIMD elements per beat -> [WidthConverter WSIMD -> SIMD] -> MatVecUnit -> o

Pipelined to a clock, the window registers its output and its enable (`registered_read`, a skid
register inside) and the MatVec's input ready is a flip-flop (a registered enable or credits), so
the gather between them is the only logic on a ready path inside the unit (with a skid buffer
between the window and the gather instead, CNV-W1A1's Conv_2 once had output skid -> MatVec enable
-> gather ready -> window fire -> its counters' clock enables, 13.2 ns, on one path).

SIMD is the MatVec's (any divisor of the patch length kh*kw*Cin); WSIMD, the window unit's, must
divide Cin and defaults to gcd(SIMD, Cin). A window unit emits one WSIMD beat per cycle, so a
patch takes at least kh*kw*Cin/WSIMD cycles: with SIMD = kh*kw*Cin and PE = Cout the MatVec is
fully parallel (constant weights, one patch per beat) and the window unit sets the pace.

Output stream: per output pixel (raster order) its Cout accumulators in beats of PE, each
`acc_bits` wide two's complement (the same format as MatVecUnit's output, one vector per pixel).

Element types: the MatVec sees the window's element type: the input type, or INT2 (-1/0/+1) for
a Bipolar input with zero padding, which the MatVec multiplies as integers (Bipolar weights then
select +-x). Bipolar x Bipolar without padding keeps XNOR-popcount.

Groups > 1 (depthwise when groups == C): the MatVec is dense over the whole kh*kw*Cin patch with
zero weights outside each output channel's group. Cost: the patch is Cin/groups times longer than
the grouped dot product, so a folded layer takes groups times the cycles of a true vector unit
(FINN's VVAU) and its weight ROM is groups times larger (mostly zeros); a fully parallel layer
(PE = Cout, SIMD = Cin) has constant weights, where the zeros vanish and only the adders remain.
Bipolar weights become INT2 for the dense matrix (0 is not a Bipolar value).

Cycles per image (steady state) = Ho*Wo*(Cout/PE)*(kh*kw*Cin/SIMD), at least the window unit's
Ho*Wo*kh*kw*Cin/WSIMD and the input's H*W*Cin/WSIMD; plus the line-buffer fill (`fill_cycles`)
before the first patch.
"""
from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.types import BipolarType
from .matvec import MatVecUnit
from .sliding_window import SlidingWindowUnit
from .width_converter import WidthConverter
from .window_util import INT2


def dense_weights(weights: np.ndarray, groups: int, in_channels: int) -> np.ndarray:
    """[Cout, kh, kw, Cin/groups] grouped weights -> [Cout, kh*kw*Cin] in patch (kh, kw, c) order."""
    w = np.asarray(weights, dtype=np.int64)
    cout, kh, kw, cg = w.shape
    if groups == 1:
        return w.reshape(cout, -1)
    if cg * groups != in_channels or cout % groups:
        raise ValueError(f"{groups} groups do not fit {in_channels} input and {cout} output channels")
    dense = np.zeros((cout, kh, kw, in_channels), dtype=np.int64)
    per_group = cout // groups
    for o in range(cout):
        g = o // per_group
        dense[o, :, :, g * cg:(g + 1) * cg] = w[o]
    return dense.reshape(cout, -1)


class ConvUnit(wiring.Component):
    def __init__(self, *, weights: np.ndarray, in_shape, kernel, in_type, w_type, acc_bits: int,
                 stride=(1, 1), pads=(0, 0, 0, 0), groups: int = 1, pe: int = 1, simd: int = 1,
                 window_simd: int | None = None, rows: int | None = None, arith: str = "dsp", pipeline=None,
                 registered_read: bool = False):
        weights = np.asarray(weights, dtype=np.int64)
        if weights.ndim != 4:
            raise ValueError("weights must be [out_channels, kh, kw, in_channels/groups]")
        self.in_shape = tuple(int(v) for v in in_shape)
        self.kernel = tuple(int(v) for v in kernel)
        if weights.shape[1:3] != self.kernel:
            raise ValueError(f"weights {weights.shape} do not match kernel {kernel}")
        self.groups = int(groups)
        self.weights = weights
        self.Cout = weights.shape[0]
        self.in_type, self.acc_bits = in_type, int(acc_bits)
        self.w_type = w_type
        C = self.in_shape[2]
        wsimd = math.gcd(int(simd), C) if window_simd is None else int(window_simd)
        self.swg = SlidingWindowUnit(in_shape=self.in_shape, kernel=self.kernel, stride=stride, pads=pads,
                                     in_type=in_type, simd=wsimd, rows=rows, registered_read=registered_read)
        self.dense = dense_weights(weights, self.groups, C)
        mv_w_type = INT2 if (self.groups > 1 and isinstance(w_type, BipolarType)) else w_type
        self.mv = MatVecUnit(weights=self.dense, in_type=self.swg.out_type, w_type=mv_w_type,
                             acc_bits=acc_bits, pe=pe, simd=simd, arith=arith,
                             pipeline=pipeline)
        self.pe, self.simd, self.window_simd = int(pe), int(simd), wsimd
        self.gather = None
        if wsimd != self.simd:
            self.gather = WidthConverter(element_bits=self.swg.out_bits, in_elems=wsimd, out_elems=self.simd)
        super().__init__({
            "i": In(stream.Signature(wsimd * in_type.wire_bits)),
            "o": Out(stream.Signature(self.pe * self.acc_bits)),
        })

    @classmethod
    def from_op(cls, op, *, pe: int | None = None, simd: int | None = None, window_simd: int | None = None,
                rows: int | None = None, arith: str = "dsp", pipeline=None, registered_read: bool = False):
        """From an IR Conv (pe/simd default to the op's folding; simd divides kh*kw*Cin)."""
        return cls(weights=op.weights, in_shape=op.in_shape, kernel=op.kernel, stride=op.stride, pads=op.pads,
                   groups=op.groups, in_type=op.in_type, w_type=op.w_type, acc_bits=op.acc_type.bits,
                   pe=op.pe if pe is None else pe, simd=op.simd if simd is None else simd,
                   window_simd=window_simd, rows=rows, arith=arith, pipeline=pipeline,
                   registered_read=registered_read)

    # -- facts for the report -------------------------------------------------------------
    @property
    def rom_style(self) -> str | None:
        """The weight ROM's style (the inner MatVecUnit's; hwgen.rtl.util.rom_memory)."""
        return self.mv.rom_style

    @rom_style.setter
    def rom_style(self, style: str | None) -> None:
        self.mv.rom_style = style

    def choose_rom_chunks(self, target: str) -> None:
        self.mv.choose_rom_chunks(target)

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (*self.swg.out_shape, self.Cout)

    @property
    def pixels(self) -> int:
        return self.swg.Ho * self.swg.Wo

    @property
    def folded(self) -> bool:
        return self.mv.folded

    @property
    def cycles(self) -> int:
        return max(self.pixels * self.mv.cycles, self.swg.cycles)

    @property
    def fill_cycles(self) -> int:
        return self.swg.fill_cycles

    @property
    def between(self) -> list:
        """The plumbing between the window and the MatVec: [gather]."""
        return [self.gather] if self.gather is not None else []

    @property
    def latency(self) -> int:
        """First input beat to first output beat, no stalls: fill, one patch, the pipelines."""
        between = sum(u.latency for u in self.between)
        return self.swg.fill_cycles + self.swg.latency + self.swg.patch_beats + between + self.mv.latency

    @property
    def rom_bits(self) -> int:
        return self.mv.rom_bits

    @property
    def buffer_bits(self) -> int:
        return self.swg.buffer_bits + self.mv.buffer_bits

    @property
    def weights_nonzero(self) -> int:
        return int((self.weights != 0).sum())

    def elaborate(self, platform):
        m = Module()
        m.submodules.swg = self.swg
        m.submodules.mv = self.mv
        wiring.connect(m, wiring.flipped(self.i), self.swg.i)
        if self.gather is None:
            wiring.connect(m, self.swg.o, self.mv.i)
        else:
            m.submodules.gather = self.gather
            wiring.connect(m, self.swg.o, self.gather.i)
            wiring.connect(m, self.gather.o, self.mv.i)
        wiring.connect(m, self.mv.o, wiring.flipped(self.o))
        return m
