"""Kernel-bank convolution unit (Sub-bit NNs, Wang et al. 2021): a binary kh x kw conv whose
(out, in) kernels are all drawn from a codebook of 2^tau patterns and stored as tau-bit indices.

    i (Bipolar NHWC pixels, SIMD channels per beat)
      -> SlidingWindowUnit: taps in (kh, kw, c) order, SIMD channels per beat (INT2 when padded)
      -> window: per input channel, gather its kh*kw taps (a CF-word shift register, CF = Cin/SIMD,
         one word per channel group holding the taps seen so far) -> one patch beat (kh*kw taps x
         SIMD channels) per group
      -> stage 1: all 2^tau codeword responses of the SIMD channels of the patch at once,
             r[c, k] = 2*popcount(xnor(a_c, K_k) & mask_c) - popcount(mask_c)
         (mask = 0 on padding taps; without padding popcount(mask) = kh*kw is a constant; each
         response is `resp_bits` = width of [-kh*kw, kh*kw])
      -> stage 2 (MatVec-like, folded by PE x SIMD): every output channel gathers, for each input
         channel, the response its index names and accumulates over the Cin/SIMD groups in an
         `acc_bits` register (op.acc_type.bits, exact)
      -> o: per output pixel, Cout accumulators in beats of PE (the ConvUnit format)

The codebook (2^tau x kh*kw bits) is hardwired into stage 1's XNOR pattern (all codewords are used
every cycle, so it is a parallel-read constant, not a sequential ROM). The indices (Cout x Cin x tau
bits) live in a ROM (`Memory` with `init`; word nf*SF + sf holds lanes p, channels j:
indices[nf*PE + p, sf*SIMD + j]) when stage 2 is folded, and are wiring (a plain selection, no
multiplexer) when PE = Cout and SIMD = Cin.

Stage 2's schedule is MatVecUnit's: output group nf = 0 .. NF-1 (NF = Cout/PE), inside it input
group sf = 0 .. SF-1 (SF = Cin/SIMD); during nf = 0 the patch beats come from the window and are
kept in a buffer (SF words of kh*kw*SIMD taps) that nf > 0 replays; stage 1 sits after the replay
multiplexer, so the buffer holds taps, not the 2^tau/kh*kw x wider responses (a 1280-bit-wide
response buffer took 80 iCE40 block RAMs at PE = SIMD = 8). One (nf, sf) step per cycle.

Cycles per output pixel = max(kh*kw*CF (window taps), NF*SF (gathers)); per image times Ho*Wo,
plus the line-buffer fill. The equivalent ConvUnit with the same PE and a patch SIMD of kh*kw*SIMD
takes NF*SF per pixel too: the bank matches it once NF >= kh*kw, and its per-cycle work is PE*SIMD
response selections plus 2^tau*SIMD window popcounts instead of PE*kh*kw*SIMD XNOR-popcount bits.
"""
from __future__ import annotations

import math

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.types import Bipolar
from .sliding_window import SlidingWindowUnit
from .util import (group_rom, balanced_sum, pack_ints, popcount, replay_schedule, replay_store, replicated_select,
                   select_by_slices, signed_width_for)


class KernelBankConvUnit(wiring.Component):
    rom_style: str | None = None  # the plan's ROM style ("bram" | "logic", hwgen.rtl.util.rom_memory); None: yosys decides

    def __init__(self, *, codebook: np.ndarray, indices: np.ndarray, tau: int, in_shape, acc_bits: int,
                 stride=(1, 1), pads=(0, 0, 0, 0), pe: int = 1, simd: int = 1, rows: int | None = None,
                 registered_read: bool = False):
        book = np.asarray(codebook, dtype=np.int64)
        idx = np.asarray(indices, dtype=np.int64)
        self.tau = int(tau)
        self.NK = 1 << self.tau
        if book.ndim != 3 or book.shape[0] != self.NK:
            raise ValueError(f"codebook must be [2^tau = {self.NK}, kh, kw], got {book.shape}")
        if not np.all(np.abs(book) == 1):
            raise ValueError("codebook entries must be -1/+1")
        self.codebook, self.indices = book, idx
        self.kernel = tuple(int(v) for v in book.shape[1:])
        self.T = self.kernel[0] * self.kernel[1]
        self.Cout, self.Cin = idx.shape
        if idx.min() < 0 or idx.max() >= self.NK:
            raise ValueError(f"indices must lie in [0, {self.NK})")
        if tuple(in_shape)[2] != self.Cin:
            raise ValueError(f"indices name {self.Cin} input channels, the input has {in_shape[2]}")
        if pe < 1 or self.Cout % pe:
            raise ValueError(f"PE {pe} does not divide {self.Cout} output channels")
        self.swg = SlidingWindowUnit(in_shape=in_shape, kernel=self.kernel, stride=stride, pads=pads,
                                     in_type=Bipolar, simd=simd, rows=rows, registered_read=registered_read)
        self.pe, self.simd, self.acc_bits = int(pe), int(simd), int(acc_bits)
        self.CF = self.swg.CF
        self.NF, self.SF = self.Cout // self.pe, self.CF
        self.tap_bits = self.swg.out_bits  # 1 (Bipolar) or 2 (INT2 with padding taps)
        self.resp_bits = signed_width_for(-self.T, self.T)
        super().__init__({
            "i": In(stream.Signature(self.simd)),
            "o": Out(stream.Signature(self.pe * self.acc_bits)),
        })
        # a probe for tests, no port: a write of the replay memory meets the read of its word
        self.rw_collision = Signal(name="rw_collision")

    @classmethod
    def from_op(cls, op, *, pe: int | None = None, simd: int | None = None, rows: int | None = None,
                registered_read: bool = False):
        """From an IR KernelBankConv (pe: output channels gathered per cycle, simd: input channels per
        beat and per gather; simd defaults to gcd(op.simd, Cin))."""
        cin = op.in_shape[2]
        return cls(codebook=op.codebook, indices=op.indices, tau=op.tau, in_shape=op.in_shape,
                   acc_bits=op.acc_type.bits, stride=op.stride, pads=op.pads,
                   pe=op.pe if pe is None else pe, simd=math.gcd(op.simd, cin) if simd is None else simd,
                   rows=rows, registered_read=registered_read)

    # -- facts for the report -------------------------------------------------------------
    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (*self.swg.out_shape, self.Cout)

    @property
    def folded(self) -> bool:
        return self.NF * self.SF > 1

    @property
    def cycles_per_pixel(self) -> int:
        return max(self.T * self.CF, self.NF * self.SF)

    @property
    def cycles(self) -> int:
        return max(self.swg.Ho * self.swg.Wo * self.cycles_per_pixel, self.swg.cycles)

    @property
    def fill_cycles(self) -> int:
        return self.swg.fill_cycles

    @property
    def latency(self) -> int:
        return self.swg.fill_cycles + self.swg.latency + self.swg.patch_beats + 1 + 3

    @property
    def index_bits(self) -> int:
        return self.Cout * self.Cin * self.tau

    @property
    def codebook_bits(self) -> int:
        return self.NK * self.T

    @property
    def rom_bits(self) -> int:
        return self.index_bits if self.folded else 0

    @property
    def buffer_bits(self) -> int:
        window = self.CF * (self.T - 1) * self.simd * self.tap_bits
        replay = self.SF * self.T * self.simd * self.tap_bits if self.NF > 1 else 0
        return self.swg.buffer_bits + window + replay

    def rom_init(self) -> list[int]:
        words = []
        for nf in range(self.NF):
            for sf in range(self.SF):
                block = self.indices[nf * self.pe:(nf + 1) * self.pe, sf * self.simd:(sf + 1) * self.simd]
                words.append(pack_ints(block.reshape(-1), self.tau))
        return words

    # -- stage 1: windows -> codeword responses -------------------------------------------
    def _responses(self, taps: list, channel: int):
        """taps[t] = the channel's wire element at tap t -> the 2^tau responses (signed values)."""
        T = self.T
        if self.tap_bits == 1:
            a = [tp[0] for tp in taps]
            mask = None
        else:  # INT2: +1 = 0b01, -1 = 0b11, padding 0 = 0b00
            a = [~tp[1] for tp in taps]
            mask = [tp[0] for tp in taps]
        flat = self.codebook.reshape(self.NK, T)
        npad = popcount(mask) if mask is not None else None
        out = []
        for k in range(self.NK):
            bits = [a[t] if flat[k, t] > 0 else ~a[t] for t in range(T)]
            if mask is not None:
                bits = [b & mk for b, mk in zip(bits, mask)]
            pc = Cat(Const(0, 1), popcount(bits), Const(0, 1)).as_signed()  # 2 * popcount
            out.append(pc - (npad if npad is not None else T))
        return out

    def elaborate(self, platform):
        m = Module()
        m.submodules.swg = swg = self.swg
        wiring.connect(m, wiring.flipped(self.i), swg.i)
        S, CF, T, tb, rb = self.simd, self.CF, self.T, self.tap_bits, self.resp_bits
        slot = S * tb

        # ---- stage 1 -------------------------------------------------------------------
        src = swg.o
        cf = Signal(range(CF), name="cf")
        tap = Signal(range(T), name="tap")
        last_tap = tap == T - 1
        regs = [Signal((T - 1) * slot, name=f"win{k}") for k in range(CF)] if T > 1 else []
        window = Cat(regs[0], src.payload) if regs else src.payload  # taps 0..T-1, slot t at t*slot

        # the patch (T taps x S channels) goes on; the responses are computed from it in stage 2, so
        # the replay buffer holds T*S tap bits per channel group instead of S*2^tau responses
        r_valid, r_ready = Signal(name="patch_valid"), Signal(name="patch_ready")
        r_data = Signal(T * slot, name="patch_data")
        fire1 = Signal()
        m.d.comb += [
            src.ready.eq(~last_tap | ~r_valid | r_ready),
            fire1.eq(src.valid & src.ready),
        ]
        with m.If(r_ready):
            m.d.sync += r_valid.eq(0)
        with m.If(fire1):
            if regs:
                pushed = Cat(regs[0][slot:], src.payload) if T > 2 else src.payload
                m.d.sync += [regs[k].eq(regs[k + 1]) for k in range(CF - 1)]
                m.d.sync += regs[-1].eq(pushed)
            with m.If(last_tap):
                m.d.sync += [r_valid.eq(1), r_data.eq(window)]
            with m.If(cf == CF - 1):
                m.d.sync += [cf.eq(0), tap.eq(Mux(last_tap, 0, tap + 1))]
            with m.Else():
                m.d.sync += cf.eq(cf + 1)

        # ---- stage 2: gather and accumulate (MatVecUnit's schedule) --------------------
        NF, SF, PE = self.NF, self.SF, self.pe
        en = Signal()
        out_valid = Signal()
        out_data = Signal(PE * self.acc_bits)
        m.d.comb += [
            en.eq(~out_valid | self.o.ready),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out_data),
        ]
        nf, sf, take_stream, step, fire0 = replay_schedule(m, NF=NF, SF=SF, en=en, valid=r_valid)
        m.d.comb += r_ready.eq(en & take_stream)

        width = T * slot
        x_stream = Signal(width)
        if NF > 1:
            replay = replay_store(m, taken=x_stream, valid=r_valid, take_stream=take_stream, sf=sf, SF=SF, en=en,
                                  name="replay", rw_collision=self.rw_collision)
            from_stream = replicated_select(m, en, take_stream, width, "from_stream")
            x = select_by_slices(from_stream, x_stream, replay)
        else:
            x = x_stream

        if self.folded:
            indices = group_rom(m, width=PE * S * self.tau, words=self.rom_init(), step=step,
                                en=en, style=self.rom_style, name="index_rom")

        v1, first1, last1 = Signal(), Signal(), Signal()
        with m.If(en):
            m.d.sync += [v1.eq(fire0), first1.eq(sf == 0), last1.eq(sf == SF - 1),
                         x_stream.eq(r_data)]

        # stage 1 proper: the 2^tau codeword responses of each of the S channels of the patch
        resp = [[r[:rb].as_signed() for r in self._responses([x[t * slot + j * tb:t * slot + (j + 1) * tb]
                                                              for t in range(T)], j)]
                for j in range(S)]

        dots = []
        for p in range(PE):
            terms = []
            for j in range(S):
                if self.folded:
                    sel = indices[(p * S + j) * self.tau:(p * S + j + 1) * self.tau]
                    terms.append(Array(resp[j])[sel])  # a mux (word_select's shift lints as WIDTHTRUNC)
                else:
                    terms.append(resp[j][int(self.indices[p, j])])
            dots.append(balanced_sum(terms))

        v2, first2, last2 = Signal(), Signal(), Signal()
        dot2 = [Signal(signed(self.acc_bits), name=f"dot{p}") for p in range(PE)]
        with m.If(en):
            m.d.sync += [v2.eq(v1), first2.eq(first1), last2.eq(last1)]
            m.d.sync += [d.eq(v) for d, v in zip(dot2, dots)]

        accs = [Signal(signed(self.acc_bits), name=f"acc{p}") for p in range(PE)]
        nxt = [Signal(signed(self.acc_bits), name=f"acc{p}_next") for p in range(PE)]
        for a, n_, d in zip(accs, nxt, dot2):
            m.d.comb += n_.eq(Mux(first2, 0, a) + d if SF > 1 else d)
        with m.If(en):
            m.d.sync += out_valid.eq(v2 & last2)
            with m.If(v2):
                if SF > 1:
                    m.d.sync += [a.eq(n_) for a, n_ in zip(accs, nxt)]
                with m.If(last2):
                    m.d.sync += out_data.eq(Cat(*nxt))
        return m
