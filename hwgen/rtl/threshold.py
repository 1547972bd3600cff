"""Threshold unit: multi-threshold activation, PE channels per beat.

level[c] = #{k : acc >= T[c, k]} for increasing channels, #{k : acc <= T[c, k]} for decreasing
ones; the output element is (out_base + level) in `out_bits` two's complement / binary (for a
Bipolar output the level 0/1 itself is the wire bit). Input beats carry PE signed accumulators
of `in_bits` each; output beats carry PE elements of `out_bits`.

Comparisons run at max(in_bits + 1, width of the thresholds) bits, so thresholds one outside the
accumulator range (levels never reached) are exact. Thresholds are constants when PE = C and a
ROM (`Memory` with `init`, one word per channel group: PE x L thresholds and PE direction bits)
otherwise.

With many levels on a narrow accumulator (e.g. 255 thresholds on an 8-bit accumulator) the
comparators are replaced by a lookup table per lane (style "lut"): a ROM of 2^in_bits output
values per channel, addressed by the accumulator itself (and the channel group), read in the
same pipeline slot as the threshold ROM. "auto" picks whichever needs fewer bits (LUT only up
to 12-bit accumulators).

Pipeline with one enable (the output register empty or being read; with a skid register, a
flip-flop whose copies the registers take, rtl.util.unit_enable):
  stage 0  accept a beat, ROM address = channel group
  stage 1  registered accumulators + ROM data -> comparisons -> level
  stage 2  output register
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.types import BipolarType
from .util import (
    element,
    enable_for,
    group_rom,
    load_output_valid,
    load_register,
    pack_ints,
    pipeline_register,
    popcount,
    rom_memory,
    signed_width_for,
    unit_enable,
)


class ThresholdUnit(wiring.Component):
    never_stalled = False  # set by the planner when the output is never stalled (rtl.util.output_ready)
    rom_style: str | None = None  # the plan's ROM style ("bram" | "logic", hwgen.rtl.util.rom_memory); None: yosys decides

    def __init__(self, *, thresholds: np.ndarray, decreasing: np.ndarray, in_bits: int, out_type,
                 out_base: int, pe: int = 1, style: str = "auto", registers: tuple[bool, bool] = (False, False),
                 registered_enable: bool = False):
        T = np.asarray(thresholds, dtype=np.int64)
        if T.ndim != 2:
            raise ValueError("thresholds must be [channels, levels-1]")
        self.C, self.L = T.shape
        if pe < 1 or self.C % pe:
            raise ValueError(f"PE {pe} does not divide {self.C} channels")
        self.thresholds = T
        self.decreasing = np.asarray(decreasing, dtype=bool).reshape(self.C)
        self.in_bits = int(in_bits)
        self.out_type = out_type
        self.out_bits = out_type.wire_bits
        self.out_base = int(out_base)
        self.pe = int(pe)
        self.NF = self.C // self.pe
        if isinstance(out_type, BipolarType) and self.L != 1:
            raise ValueError(f"a Bipolar output needs exactly one threshold per channel, got {self.L}")
        lo = min(int(T.min()) if T.size else 0, -(1 << (self.in_bits - 1)))
        hi = max(int(T.max()) if T.size else 0, (1 << (self.in_bits - 1)) - 1)
        self.cmp_bits = max(self.in_bits + 1, signed_width_for(lo, hi))
        if style == "auto":
            lut_bits = (1 << self.in_bits) * self.out_bits
            style = "lut" if self.in_bits <= 12 and lut_bits <= self.L * self.cmp_bits else "compare"
        if style not in ("lut", "compare"):
            raise ValueError(f"style must be 'auto', 'lut' or 'compare', not {style!r}")
        self.style = style
        # pipeline registers for a clock target: (operands: the ROM / LUT read data and the
        # accumulators, compares: the comparison bits before they are counted)
        self.reg_operands, self.reg_compares = (bool(r) for r in registers)
        # a skid register behind the output and a flip-flop enable (rtl.util.unit_enable)
        self.registered_enable = bool(registered_enable)
        super().__init__({
            "i": In(stream.Signature(self.pe * self.in_bits)),
            "o": Out(stream.Signature(self.pe * self.out_bits)),
        })

    @property
    def folded(self) -> bool:
        return self.NF > 1

    def levels_of(self, acc: np.ndarray, channel: int) -> np.ndarray:
        T = self.thresholds[channel]
        a = np.asarray(acc)[..., None]
        return ((a <= T) if self.decreasing[channel] else (a >= T)).sum(-1)

    def lut_init(self, lane: int) -> list[int]:
        """Entry g * 2^in_bits + (acc mod 2^in_bits): output wire value of channel g*PE + lane."""
        n = 1 << self.in_bits
        accs = np.arange(n)
        accs = np.where(accs >= n // 2, accs - n, accs)  # two's complement index -> value
        words = []
        for g in range(self.NF):
            level = self.levels_of(accs, g * self.pe + lane)
            if isinstance(self.out_type, BipolarType):
                words.extend(int(v) for v in level)
            else:
                words.extend(int(v) & ((1 << self.out_bits) - 1) for v in self.out_base + level)
        return words

    @property
    def cycles(self) -> int:
        return self.NF

    @property
    def rom_bits(self) -> int:
        if self.style == "lut":
            return self.C * (1 << self.in_bits) * self.out_bits
        return self.C * (self.L * self.cmp_bits + 1) if self.folded else 0


    def rom_init(self) -> list[int]:
        """Word g: lane p's thresholds at [(p*L + k)*cmp_bits ...], then PE direction bits."""
        words = []
        tb = self.cmp_bits
        for g in range(self.NF):
            rows = self.thresholds[g * self.pe:(g + 1) * self.pe]
            word = pack_ints(rows.reshape(-1), tb)
            dec = pack_ints(self.decreasing[g * self.pe:(g + 1) * self.pe].astype(int), 1)
            words.append(word | (dec << (self.pe * self.L * tb)))
        return words

    @property
    def extra_stages(self) -> int:
        """Pipeline register levels beyond the base (accept, compare + count, output)."""
        if self.style == "lut":
            return int(self.reg_operands)
        return int(self.reg_operands and self.folded) + int(self.reg_compares)

    @property
    def latency(self) -> int:
        return 2 + self.extra_stages

    def _output(self, level):
        if isinstance(self.out_type, BipolarType):
            return level[:1]
        base = self.out_base & ((1 << self.out_bits) - 1)
        return level + base  # truncated to out_bits on assignment (mod 2^out_bits)

    def elaborate(self, platform):
        m = Module()
        PE, L, tb = self.pe, self.L, self.cmp_bits

        out_valid = Signal()
        out_data = Signal(PE * self.out_bits, reset_less=True)  # data: read only under out_valid
        go, en = unit_enable(m, self, out_valid, out_data, self.registered_enable)
        fire = Signal()
        m.d.comb += [self.i.ready.eq(go), fire.eq(self.i.valid & go)]

        if self.style == "lut":
            return self._elaborate_lut(m, go, en, fire, out_valid, out_data)

        if self.folded:
            # yosys decides BRAM vs logic for this ROM by itself; forcing block RAM made the
            # iCE40 demo need 38 of 30 BRAMs, so the choice (and its jumps in LUT counts
            # between accumulator widths, see bench/qor.py) stays with the tool
            rom_data = group_rom(m, width=PE * (L * tb + 1), words=self.rom_init(), step=self.i.valid, en=en,
                                 style=self.rom_style)

        v1 = pipeline_register(m, go, fire, "v1", control=True)
        x1 = pipeline_register(m, en, self.i.payload, "x1")
        rdata = rom_data if self.folded else None
        if self.reg_operands and self.folded:  # the ROM's output register (BRAM clock-to-out is slow)
            rdata = pipeline_register(m, en, rdata, "t_pipe")
            x1 = pipeline_register(m, en, x1, "x_pipe")
            v1 = pipeline_register(m, go, v1, "v_pipe", control=True)

        outs = []
        for p in range(PE):
            acc = Signal(signed(tb), name=f"acc{p}")
            m.d.comb += acc.eq(element(x1, p, self.in_bits, signed_=True))
            bits = []
            if self.folded:
                dec = rdata[PE * L * tb + p]
                for k in range(L):
                    t = rdata[(p * L + k) * tb:(p * L + k + 1) * tb].as_signed()
                    bits.append(Mux(dec, acc <= t, acc >= t))
            else:
                for k in range(L):
                    t = int(self.thresholds[p, k])
                    bits.append(acc <= t if self.decreasing[p] else acc >= t)
            if self.reg_compares:  # count registered comparison bits
                bits = [pipeline_register(m, en, b, f"cmp{p}_{k}") for k, b in enumerate(bits)]
            level = popcount(bits)
            o = Signal(self.out_bits, name=f"out{p}")
            m.d.comb += o.eq(self._output(level))
            outs.append(o)

        if self.reg_compares:
            v1 = pipeline_register(m, go, v1, "v_cmp", control=True)
        load_output_valid(m, self, go, en, out_valid, v1)
        load_register(m, en, out_data, Cat(*outs), when=v1)
        return m

    def _elaborate_lut(self, m, go, en, fire, out_valid, out_data):
        PE, n = self.pe, self.in_bits
        group = None
        if self.folded:
            group = Signal(range(self.NF))
            with m.If(fire):
                m.d.sync += group.eq(Mux(group == self.NF - 1, 0, group + 1))
        outs = []
        for p in range(PE):
            lut = rom_memory(shape=self.out_bits, depth=self.NF << n, init=self.lut_init(p), style=self.rom_style)
            m.submodules[f"lut{p}"] = lut
            rd = lut.read_port(domain="sync")
            addr = self.i.payload[p * n:(p + 1) * n]
            m.d.comb += [rd.addr.eq(Cat(addr, group) if group is not None else addr),
                         rd.en.eq(enable_for(en, self.out_bits))]
            outs.append(pipeline_register(m, en, rd.data, f"lut{p}_pipe") if self.reg_operands else rd.data)
        v1 = pipeline_register(m, go, fire, "v1", control=True)
        if self.reg_operands:
            v1 = pipeline_register(m, go, v1, "v_pipe", control=True)
        load_output_valid(m, self, go, en, out_valid, v1)
        load_register(m, en, out_data, Cat(*outs), when=v1)
        return m
