"""Requantizer unit: a Threshold activation as one multiply-add per lane, PE channels per beat.

    v = acc * mul[c] + add[c]
    level = clip(v >> shift, 0, L)                           rounding "floor"
    level = clip((v + ((v >> shift) & 1)) >> shift, 0, L)    rounding "half_even"
    level = clip((v + (~(v >> shift) & 1)) >> shift, 0, L)   rounding "half_odd"
    out = out_base + level

(hwgen.passes.requantize proved it equal to the thresholds on every accumulator value the layer
can produce; `>>` is an arithmetic shift, floor division by 2^shift.) Input beats carry PE signed
accumulators of `in_bits` each; output beats carry PE elements of `out_bits`.

mul and add are constants when PE = C; otherwise a ROM word per channel group holds PE (mul, add)
pairs. The product is written as `*` ("dsp": synthesis may map it to a DSP block) or as shifts
and adds (constant mul: canonical signed digits; ROM mul: one partial product per bit, "lut").

Pipeline with one global enable (en = output register empty or being read), like ThresholdUnit:
  stage 0  accept a beat, ROM address = channel group
  stage 1  registered accumulators + ROM data -> product -> + add -> shift -> clip -> + out_base
  stage 2  output register
`registers` = (operands, product) adds a register after the ROM read / input register and one
after the product (one cycle of latency each, none of II).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .util import (
    at_least,
    const_product,
    element,
    group_rom,
    load_output_valid,
    load_register,
    lut_product,
    pack_ints,
    pipeline_register,
    signed_width_for,
    unit_enable,
)


def is_shift(mul: int, shift: int) -> bool:
    """A constant multiplier 2^k with k <= shift: the lane needs no product, only a shift."""
    mul = int(mul)
    return 0 < mul <= 1 << int(shift) and not mul & (mul - 1)


class RequantUnit(wiring.Component):
    never_stalled = False  # set by the planner when the output is never stalled (rtl.util.output_ready)
    rom_style: str | None = None  # the plan's ROM style ("bram" | "logic", hwgen.rtl.util.rom_memory); None: yosys decides

    def __init__(self, *, mul: np.ndarray, add: np.ndarray, shift: int, levels: int, in_bits: int, out_type,
                 rounding: str = "floor",
                 out_base: int, pe: int = 1, arith: str = "dsp", registers: tuple[bool, bool] = (False, False),
                 acc_lo: np.ndarray | None = None, acc_hi: np.ndarray | None = None,
                 registered_enable: bool = False):
        self.mul = np.asarray(mul, dtype=np.int64).reshape(-1)
        self.add = np.asarray(add, dtype=np.int64).reshape(-1)
        self.C = len(self.mul)
        if pe < 1 or self.C % pe:
            raise ValueError(f"PE {pe} does not divide {self.C} channels")
        if arith not in ("lut", "dsp"):
            raise ValueError(f"arith must be 'lut' or 'dsp', not {arith!r}")
        if rounding not in ("floor", "half_even", "half_odd"):
            raise ValueError(f"rounding must be 'floor', 'half_even' or 'half_odd', not {rounding!r}")
        self.shift, self.L, self.rounding = int(shift), int(levels) - 1, rounding
        self.in_bits, self.out_type, self.out_bits = int(in_bits), out_type, out_type.wire_bits
        self.out_base, self.pe, self.arith = int(out_base), int(pe), arith
        self.NF = self.C // self.pe
        self.mul_bits = signed_width_for(int(self.mul.min()), int(self.mul.max()))
        self.add_bits = signed_width_for(int(self.add.min()), int(self.add.max()))
        self.reg_operands, self.reg_product = (bool(r) for r in registers)
        # a skid register behind the output and a flip-flop enable (rtl.util.unit_enable)
        self.registered_enable = bool(registered_enable)
        # the accumulator range per channel that can reach the unit (None: the whole input type)
        self.acc_lo = None if acc_lo is None else np.asarray(acc_lo, dtype=np.int64).reshape(-1)
        self.acc_hi = None if acc_hi is None else np.asarray(acc_hi, dtype=np.int64).reshape(-1)
        super().__init__({
            "i": In(stream.Signature(self.pe * self.in_bits)),
            "o": Out(stream.Signature(self.pe * self.out_bits)),
        })

    # -- facts for the plan ---------------------------------------------------------------
    @property
    def folded(self) -> bool:
        return self.NF > 1

    @property
    def cycles(self) -> int:
        return self.NF

    @property
    def word_bits(self) -> int:
        return self.pe * (self.mul_bits + self.add_bits)

    @property
    def rom_bits(self) -> int:
        return self.C * (self.mul_bits + self.add_bits) if self.folded else 0

    @property
    def product_bits(self) -> int:
        return self.in_bits + self.mul_bits

    @property
    def extra_stages(self) -> int:
        return int(self.reg_operands) + int(self.reg_product)

    @property
    def latency(self) -> int:
        return 2 + self.extra_stages

    def rom_init(self) -> list[int]:
        """Word g: lane p's mul at [p*(mb+ab), +mb), its add right above."""
        mb, ab = self.mul_bits, self.add_bits
        words = []
        for g in range(self.NF):
            sl = slice(g * self.pe, (g + 1) * self.pe)
            pairs = [v for m, a in zip(self.mul[sl], self.add[sl]) for v in (pack_ints([m], mb) | (pack_ints([a], ab) << mb),)]
            words.append(pack_ints(pairs, mb + ab))
        return words

    # -- structure ------------------------------------------------------------------------
    def quotient_range(self, p: int) -> tuple[int, int] | None:
        """(lo, hi) of lane p's quotient plus rounding increment over the accumulators that can reach
        it (constant lanes with a known range only; None: unknown)."""
        if self.folded or self.acc_lo is None or self.acc_hi is None:
            return None
        m, a = int(self.mul[p]), int(self.add[p])
        ends = [(int(v) * m + a) >> self.shift for v in (self.acc_lo[p], self.acc_hi[p])]
        return min(ends), max(ends) + (self.rounding != "floor")

    def level(self, acc: int, p: int) -> int:
        """Lane p's level for one accumulator value (the module docstring's formula)."""
        v = int(acc) * int(self.mul[p]) + int(self.add[p])
        if self.rounding == "half_even":
            v += (v >> self.shift) & 1
        elif self.rounding == "half_odd":
            v += ((v >> self.shift) & 1) ^ 1
        return min(max(v >> self.shift, 0), self.L)

    def constant_level(self, p: int) -> int | None:
        """Lane p's level when every accumulator that can reach it gives the same one (a dead
        channel, e.g. a ReLU that never fires), else None. The level is monotone in the
        accumulator, so its two ends decide."""
        if self.folded or self.acc_lo is None or self.acc_hi is None:
            return None
        lo, hi = self.level(self.acc_lo[p], p), self.level(self.acc_hi[p], p)
        return lo if lo == hi else None

    def _clip(self, q, inc, p: int):
        """clip(q + inc, 0, L) for a quotient q and a 0/1 increment, without the bound lane p's
        reachable accumulators never cross. When L + 1 is a power of two 2^b (every full-range
        quantizer) the bounds are tests of q's sign and high bits (LUTs, no comparator) and the
        increment is b bits wide: q + inc > L exactly when q >= L (q = L with inc saturates), and
        q + inc <= 0 whenever q < 0."""
        L = self.L
        b = L.bit_length()
        reach = self.quotient_range(p)
        low_clip = reach is None or reach[0] < 0
        high_clip = reach is None or reach[1] > L
        if (L + 1) & L or len(q) <= b:  # not 2^b - 1: plain comparisons
            level = q + inc
            v = Mux(level > L, L, level) if high_clip else level
            return Mux(level < 0, 0, v) if low_clip else v
        high = q[b:-1].any() if len(q) > b + 1 else Const(0, 1)
        low = (q[:b] + inc)[:b]
        v = Mux(high | (q[:b].all() & inc), L, low) if high_clip else low
        return Mux(q[-1], 0, v) if low_clip else v

    def _product(self, acc, mul):
        if isinstance(mul, int):
            if self.arith == "lut":
                return const_product(acc, mul)
            return acc * Const(mul, signed(self.mul_bits))
        return lut_product(acc, mul) if self.arith == "lut" else acc * mul

    def elaborate(self, platform):
        m = Module()
        PE, mb, ab = self.pe, self.mul_bits, self.add_bits

        out_valid = Signal()
        out_data = Signal(PE * self.out_bits, reset_less=True)  # data: read only under out_valid
        go, en = unit_enable(m, self, out_valid, out_data, self.registered_enable)
        fire = Signal()
        m.d.comb += [self.i.ready.eq(go), fire.eq(self.i.valid & go)]
        if self.folded:
            rom_data = group_rom(m, width=self.word_bits, words=self.rom_init(), step=self.i.valid, en=en,
                                 style=self.rom_style)

        v1 = pipeline_register(m, go, fire, "v1", control=True)
        x1 = pipeline_register(m, en, self.i.payload, "x1")
        rdata = rom_data if self.folded else None
        if self.reg_operands:
            x1 = pipeline_register(m, en, x1, "x_pipe")
            v1 = pipeline_register(m, go, v1, "v_pipe", control=True)
            if rdata is not None:
                rdata = pipeline_register(m, en, rdata, "ma_pipe")

        prods, adds = [], []
        for p in range(PE):
            acc = element(x1, p, self.in_bits, signed_=True)
            if self.folded:
                base = p * (mb + ab)
                mul = rdata[base:base + mb].as_signed()
                add = rdata[base + mb:base + mb + ab].as_signed()
            else:
                mul, add = int(self.mul[p]), Const(int(self.add[p]), signed(ab))
            if self.shift_lane(p):  # no product: _pow2_quotient works on the accumulator itself
                prod = acc
            else:
                prod = Signal(signed(self.product_bits + 1), name=f"prod{p}")
                m.d.comb += prod.eq(self._product(acc, mul))
            if self.reg_product:
                prod = pipeline_register(m, en, prod, f"prod{p}_pipe")
                if self.folded:
                    add = pipeline_register(m, en, add, f"add{p}_pipe")
            prods.append(prod)
            adds.append(add)
        if self.reg_product:
            v1 = pipeline_register(m, go, v1, "v_prod", control=True)

        outs = []
        for p in range(PE):
            level = self.constant_level(p)
            if level is not None:  # a dead channel (e.g. a ReLU that never fires): no logic at all
                outs.append(Const((self.out_base + level) & ((1 << self.out_bits) - 1), self.out_bits))
                continue
            if self.shift_lane(p):
                q = self._pow2_quotient(m, prods[p], int(self.mul[p]).bit_length() - 1, int(self.add[p]), p,
                                        self.quotient_range(p))
                inc = Const(0, 1)
            else:
                q, inc = self._quotient(m, prods[p], adds[p], p)
            clipped = self._clip(q, inc, p)
            o = Signal(self.out_bits, name=f"out{p}")
            base = self.out_base & ((1 << self.out_bits) - 1)
            m.d.comb += o.eq(clipped + base)  # truncated to out_bits (mod 2^out_bits)
            outs.append(o)
        load_output_valid(m, self, go, en, out_valid, v1)
        load_register(m, en, out_data, Cat(*outs), when=v1)
        return m

    def shift_lane(self, p: int) -> bool:
        """Lane p's multiplier is a constant 2^k with k <= shift (a shift, not a product)."""
        return not self.folded and is_shift(self.mul[p], self.shift)

    def _quotient(self, m, prod, add, p):
        """(v >> shift, rounding increment) for v = prod + add."""
        ab = self.add_bits
        total = Signal(signed(max(len(prod), ab, self.shift + 1) + 2), name=f"sum{p}")
        m.d.comb += total.eq(prod + add)
        q = Signal(signed(max(len(total) - self.shift, 1)), name=f"q{p}")
        m.d.comb += q.eq(total >> self.shift)
        inc = Const(0, 1)
        if self.rounding != "floor":
            # (v + t) >> s with t = bit s of v (half_even) or its inverse (half_odd) is the quotient
            # plus one exactly when t = 1 and the low s bits are all ones: a narrow increment
            # instead of a second full-width add
            tie = total[self.shift] if self.rounding == "half_even" else ~total[self.shift]
            inc = Signal(name=f"inc{p}")
            m.d.comb += inc.eq(tie & total[:self.shift].all())
        return q, inc

    def _pow2_quotient(self, m, acc, k, add, p, reach=None):
        """The rounded quotient of (acc 2^k + add) >> shift for a constant power-of-two multiplier,
        without the full-width add: with s' = shift - k, acc = H 2^s' + v and add = A 2^shift + r,
        it is (acc >> s') + A + c, where the carry c (from v 2^k + r reaching 2^shift, or a tie
        rounded up) depends only on acc's low s' + 1 bits: a few LUTs and one carry-in instead of
        a shift-wide adder and a second increment."""
        sp = self.shift - k
        A, r = add >> self.shift, add & ((1 << self.shift) - 1)
        c = Signal(name=f"round{p}")
        if sp == 0:  # v = 0: v 2^k + r = r < 2^shift never carries; the low bits are r's
            if self.rounding != "floor" and r == (1 << self.shift) - 1:
                m.d.comb += c.eq(acc[0] ^ (A & 1) ^ (1 if self.rounding == "half_odd" else 0))
            else:
                m.d.comb += c.eq(0)
        else:
            v = acc[:sp]
            need = -(-((1 << self.shift) - r) // (1 << k))  # smallest v with v 2^k + r >= 2^shift
            carry = at_least(v, need)
            m.d.comb += c.eq(carry)
            full = (1 << self.shift) - 1 - r  # v 2^k + r == 2^shift - 1: the low bits all ones
            if self.rounding != "floor" and full % (1 << k) == 0 and full >> k < (1 << sp):
                # the bit above the low ones is bit s' of acc plus A's low bit (no carry there)
                tie = acc[sp] ^ (A & 1) ^ (1 if self.rounding == "half_odd" else 0)
                m.d.comb += c.eq(carry | ((v == full >> k) & tie))
        high = acc >> sp
        width = len(high) + 2 + max(abs(A), 1).bit_length()
        if reach is not None:  # only as wide as the reachable quotients (and their sign)
            width = min(width, signed_width_for(min(reach[0], 0), max(reach[1], 0)))
        q = Signal(signed(width), name=f"q{p}")
        if A:
            base = Signal(signed(len(q)), name=f"qa{p}", attrs={"keep": 1})
            m.d.comb += base.eq(high + A)
            m.d.comb += q.eq(base + c)
        else:
            m.d.comb += q.eq(high + c)
        return q
