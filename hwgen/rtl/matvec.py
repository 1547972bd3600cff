"""MatVec unit (FINN's MVAU idea): acc[c] = sum_k W[c, k] * x[k], folded by PE x SIMD.

Input stream: beats of SIMD elements (K/SIMD beats per vector). Output stream: beats of PE
accumulators (C/PE beats per vector), each `acc_bits` wide, two's complement.

Schedule: output group nf = 0 .. NF-1 (NF = C/PE), and inside it input beat sf = 0 .. SF-1
(SF = K/SIMD). During nf = 0 the input beats come from the stream and are written into a
buffer; for nf > 0 they are replayed from it. One (nf, sf) step per cycle, so a vector takes
NF*SF cycles in steady state.

Pipeline (one enable `en` = output register empty or being read, so `valid` never depends on
`ready`; the datapath registers take it from copies, one per 512 flip-flops, rtl.util.EnableCopies;
stage 2's valid / first / last reach the lanes as one copy per lane group, control_copies):
  stage 0  counters (nf, sf); read address to the weight ROM and the input buffer
  stage 1  x (stream register or buffer read data) and w (ROM read data) -> per-lane dot product
  stage 2  registered dot products -> accumulate; on sf = SF-1 the sums go to the output register
With a Pipeline (the plan's, for a clock target) `extra_stages` register levels sit inside stage 1:
the ROM / replay read data, the products, the adder tree every k levels; valid, first and last
travel alongside, so II is unchanged and latency grows by extra_stages. A stall-free Pipeline
(every plan to a clock) drops the enable from the datapath: the stages advance every cycle into an
output FIFO, and stage 0 steps only while a credit for a FIFO place is available (MatVecUnit.credits).

Arithmetic: both operands Bipolar -> XNOR-popcount (dot = 2*popcount(xnor) - SIMD). Otherwise
products (Bipolar x means +-w, Bipolar w means +-x). `arith` (the plan's choice) says where the
products go: "cse" (constant weights, integer x) builds all PE lanes as one shared shift-and-add
graph with common subexpressions eliminated (hwgen.rtl.cmvm), pipelined every `tree_every` adder
levels; "lut" writes them as shift-and-add (canonical signed digits of a constant weight, one
partial product per bit of a ROM weight), so synthesis never spends a DSP block on them; "dsp"
writes `*` and lets synthesis map it (to MULT18X18D / SB_MAC16 where it can). Weights are constants when NF = SF = 1
(zero weights vanish, sums are balanced trees) and a ROM (`Memory` with `init`) otherwise.
The accumulator register is exactly `acc_bits` wide (partial sums wrap modulo 2^acc_bits, the
final sum fits by construction of the sizing pass).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir.types import to_wire
from .cmvm import build_graph
from .fifo import StreamFIFO
from .util import (ROM_BITS_PER_FIRE_COPY, SELECT_BITS_PER_COPY, EnableCopies, StallFree, const_product, element,
                   enable_slices, group_rom, is_bipolar, kept_wire, lut_product, output_ready, pack_ints,
                   pipeline_register, pipelined_sum, replay_schedule, replay_store, replicated_register,
                   replicated_select, rom_bank_bits, rom_banks, select_by_slices, take_stream_next, tree_registers,
                   load_output_valid, unit_enable)


@dataclass(frozen=True)
class Pipeline:
    """Register levels inside a MatVec lane's dot product, chosen by the plan for its clock target:
    `operands` registers the ROM and replay-buffer read data (a BRAM's output register; the input
    word once per MatVecUnit.LANES_PER_OPERAND_COPY PE lanes), `products`
    registers every product, `tree_every` registers the adder tree's partial sums after every k
    levels (0: none). Each level adds one cycle of latency and none of II. `stall_free` lets the
    whole datapath advance every cycle without clock enables (rtl.util.StallFree) into an output
    FIFO, and admits a vector's words only against credits for their FIFO places
    (MatVecUnit.credits): its input ready is a flip-flop, so no ready path runs through the unit,
    and its outputs come 2 cycles later. (A skid register after the output register with a
    flip-flop enable, as Threshold units have, did that at no latency, but left the enable's nets
    to the clock enables: digits_a2q_64 at 46c4304, one copy -> 10.6 ns -> 512 clock enables,
    89.6 / 90.9 / 99.8 MHz on seeds 1-3; stall-free 111.5 / 100.2 / 106.7.)"""

    operands: bool = False
    products: bool = False
    tree_every: int = 0
    stall_free: bool = False


class MatVecUnit(wiring.Component):
    never_stalled = False  # set by the planner when the output is never stalled (rtl.util.output_ready)
    rom_style: str | None = None  # the plan's ROM style ("bram" | "logic", hwgen.rtl.util.rom_memory); None: yosys decides
    rom_chunk_depth: int = 0  # the plan's split of a registered block RAM ROM into one memory per cell:
    rom_lane_bits: int = 0    # words and bits of a cell (hwgen.cost.primitives.bram_cell_shape); 0: one memory

    def __init__(self, *, weights: np.ndarray, in_type, w_type, acc_bits: int, pe: int = 1,
                 simd: int = 1, arith: str = "dsp", pipeline: "Pipeline | None" = None):
        weights = np.asarray(weights, dtype=np.int64)
        if weights.ndim != 2:
            raise ValueError("weights must be [out_channels, in_features]")
        self.C, self.K = weights.shape
        if pe < 1 or self.C % pe:
            raise ValueError(f"PE {pe} does not divide {self.C} output channels")
        if simd < 1 or self.K % simd:
            raise ValueError(f"SIMD {simd} does not divide {self.K} inputs")
        self.weights = weights
        self.in_type, self.w_type = in_type, w_type
        self.acc_bits, self.pe, self.simd = int(acc_bits), int(pe), int(simd)
        self.NF, self.SF = self.C // pe, self.K // simd
        self.in_bits = in_type.wire_bits
        self.w_bits = w_type.wire_bits
        self.binary = is_bipolar(in_type) and is_bipolar(w_type)
        if arith not in ("lut", "dsp", "cse"):
            raise ValueError(f"arith must be 'lut', 'dsp' or 'cse', not {arith!r}")
        self.arith = arith
        self.pipeline = pipeline or Pipeline()
        self.graph = None
        if arith == "cse":
            if self.NF * self.SF > 1 or is_bipolar(in_type):
                raise ValueError("arith 'cse' needs constant weights (PE = C, SIMD = K) and an integer input")
            self.graph = build_graph(weights, in_type.min, in_type.max, every=self.pipeline.tree_every)
        super().__init__({
            "i": In(stream.Signature(self.simd * self.in_bits)),
            "o": Out(stream.Signature(self.pe * self.acc_bits)),
        })
        # a probe for tests, no port: a write of the replay memory meets the read of its word
        self.rw_collision = Signal(name="rw_collision")

    LANES_PER_OPERAND_COPY = 8  # PE lanes that one copy of the registered operand word feeds

    # -- facts for the report -------------------------------------------------------------
    @property
    def control_lanes_per_copy(self) -> int:
        """PE lanes whose accumulator and output register read one copy of stage 2's valid / first /
        last bits: about SELECT_BITS_PER_COPY accumulator bits per copy."""
        return max(1, SELECT_BITS_PER_COPY // self.acc_bits)

    @property
    def flag_bits(self) -> int:
        """Control bits that travel with the data: valid, and the step's first / last in its vector
        when SF > 1 (with SF = 1 every step is both: constants, no registers; as registers loaded
        with 1 they stayed, in toggle form in the lane copies: 6 LUT / 12 FF of the jet MLP's 148 /
        3,237)."""
        return 3 if self.SF > 1 else 1

    @property
    def control_copies(self) -> int:
        """Copies of stage 2's valid / first / last for the lanes (1: the registers themselves)."""
        group = self.control_lanes_per_copy
        return -(-self.pe // group) if self.pe > group else 1

    @property
    def banks_per_fire_copy(self) -> int:
        """Stall-free: neighbouring ROM banks that share one copy of the credit / take_stream
        flip-flops, about ROM_BITS_PER_FIRE_COPY bits of ROM (see _bank_fires)."""
        return max(1, ROM_BITS_PER_FIRE_COPY // rom_bank_bits(self.NF * self.SF))

    @property
    def fire_copies(self) -> int:
        """Stall-free and folded: copies of the credit / take_stream flip-flops (0 otherwise)."""
        if not (self.stall_free and self.folded):
            return 0
        banks = len(rom_banks(self.pe * self.simd * self.w_bits, self.rom_style, self.NF * self.SF))
        return -(-banks // self.banks_per_fire_copy)

    @property
    def operand_copies(self) -> int:
        """Copies of the operand register (Pipeline.operands) the PE lanes read, one per
        LANES_PER_OPERAND_COPY lanes. With one register, every term computed from x alone (the
        negation -x of a Bipolar weight or of a signed weight's sign row) is one cell that yosys
        shares among all lanes, and its output net spans the die: KWS W3A3's 256-lane Gemm_1 routed
        at 53.6 MHz on ECP5 with an 11.6 ns net from one such carry chain to lane 160."""
        if not self.pipeline.operands or self.graph is not None:
            return 1
        return -(-self.pe // self.LANES_PER_OPERAND_COPY)

    @property
    def folded(self) -> bool:
        return self.NF * self.SF > 1

    @property
    def stall_free(self) -> bool:
        """The datapath never stalls; credits for the output FIFO's places admit the input (Pipeline)."""
        return self.pipeline.stall_free

    @property
    def cuts_ready_path(self) -> bool:
        """The input ready is a register (the credits of a stall-free unit)."""
        return self.stall_free

    FIFO_LATENCY = 2  # StreamFIFO: a word written in cycle t is offered from t + 2

    @property
    def credits(self) -> int:
        """Output words a stall-free unit may have in its pipeline and FIFO at once: enough that
        it never waits on a credit while the consumer keeps up. A word's credit is held from the
        last input beat of its group (fire0) through the pipeline (`latency`), the FIFO and the
        release that a registered count sees one cycle later, and groups start every SF cycles;
        one more, so that a consumer that pauses now and then (a skid register refilling, a width
        converter splitting) does not cost the unit steps (CNV-W1A1 without it: II 20,602, not
        17,556)."""
        if not self.stall_free:
            return 0
        held = 3 + self.extra_stages + self.FIFO_LATENCY + 1
        return max(2, -(-held // self.SF) + 1)

    @property
    def cycles(self) -> int:
        return self.NF * self.SF

    @property
    def rom_bits(self) -> int:
        return self.C * self.K * self.w_bits if self.folded else 0

    @property
    def buffer_bits(self) -> int:
        return self.K * self.in_bits if self.NF > 1 else 0

    def _lane_terms(self) -> list[int]:
        """Terms of each lane's sum: SIMD products from the ROM; with constant weights, one per
        nonzero weight (every weight for a Bipolar input, every bit for XNOR-popcount)."""
        if self.folded or self.binary or is_bipolar(self.in_type):
            return [self.simd if self.folded else self.K] * self.pe
        return [int(n) for n in (self.weights != 0).sum(1)]

    @property
    def rom_levels(self) -> int:
        """One more register level when pipelining (Pipeline.operands) from a block RAM weight ROM:
        yosys's block RAM mapping has no output register, so the read data leave the cells 5.6 ns
        after the clock. The register is the cells' only load (one per depth chunk, rtl.util.group_rom,
        before the chunk mux), so the ECP5 flow makes it the cells' output register
        (hwgen.flows.bram_outreg); the input word it meets travels one more cycle with it."""
        return int(self.pipeline.operands and self.folded and self.rom_style == "bram")

    def choose_rom_chunks(self, target: str) -> None:
        """Split the registered block RAM weight ROM into one memory per cell of `target` (the
        planner calls this whenever it sets rom_style)."""
        from ..cost.primitives import bram_cell_shape

        if self.rom_levels:
            width = self.pe * self.simd * self.w_bits
            self.rom_lane_bits, self.rom_chunk_depth = bram_cell_shape(width, self.NF * self.SF, target)
        else:
            self.rom_lane_bits = self.rom_chunk_depth = 0

    @property
    def extra_stages(self) -> int:
        """Pipeline register levels inside the dot product (0 without a Pipeline)."""
        p = self.pipeline
        if self.graph is not None:
            return int(p.operands) + self.graph.stages
        products = p.products and not self.binary
        lanes = [(int(products) if n else 0) + tree_registers(n, p.tree_every) for n in self._lane_terms()]
        return int(p.operands) + self.rom_levels + max(lanes)

    @property
    def latency(self) -> int:
        """Pipeline registers between the last input beat and the output register (and, stall-free,
        the output FIFO's two cycles)."""
        return 3 + self.extra_stages + (self.FIFO_LATENCY if self.stall_free else 0)

    def rom_init(self) -> list[int]:
        """Word nf*SF + sf holds, lane p, element j: W[nf*PE + p, sf*SIMD + j] (wire bits)."""
        wire = to_wire(self.weights, self.w_type)
        words = []
        for nf in range(self.NF):
            for sf in range(self.SF):
                block = wire[nf * self.pe:(nf + 1) * self.pe, sf * self.simd:(sf + 1) * self.simd]
                words.append(pack_ints(block.reshape(-1), self.w_bits))
        return words

    # -- arithmetic -----------------------------------------------------------------------
    def _x_elements(self, x):
        if is_bipolar(self.in_type):
            return [x[j] for j in range(self.simd)]
        return [element(x, j, self.in_bits, signed_=self.in_type.signed) for j in range(self.simd)]

    def _dot_const(self, xs, wrow):
        """Dot product of stream elements with constant integer weights (-1/+1 for Bipolar)."""
        if self.binary:
            # per bit (not one wide XOR with a constant: Yosys splits that into a concatenation
            # of part-selects on both sides, which Icarus re-evaluates bit by bit, ~10x slower)
            pc = self._sum([(xs[j] if int(w) > 0 else ~xs[j]).as_unsigned() for j, w in enumerate(wrow)])
            return Cat(Const(0, 1), pc, Const(0, 1)).as_signed() - len(wrow)
        terms = []
        for x, w in zip(xs, wrow):
            w = int(w)
            if is_bipolar(self.in_type):
                terms.append(Mux(x, Const(w, signed(self.w_bits + 1)), Const(-w, signed(self.w_bits + 1))))
            elif w == 0:
                continue
            elif w == 1:
                terms.append(x)
            elif w == -1:
                terms.append(-x)
            else:
                terms.append(const_product(x, w) if self.arith == "lut" else x * w)
        return self._sum(self._products(terms)) if terms else Const(0, 1)

    def _dot_rom(self, xs, wword, lane):
        """Dot product of stream elements with weights read from the ROM (wire bits)."""
        base = lane * self.simd * self.w_bits
        wbits = [wword[base + j * self.w_bits: base + (j + 1) * self.w_bits] for j in range(self.simd)]
        if self.binary:
            xn = Signal(self.simd, name=f"xnor{lane}")
            self._m.d.comb += xn.eq(~(Cat(*xs) ^ wword[base:base + self.simd]))
            pc = self._sum([xn[j].as_unsigned() for j in range(self.simd)])
            return Cat(Const(0, 1), pc, Const(0, 1)).as_signed() - self.simd
        terms = []
        for x, w in zip(xs, wbits):
            if is_bipolar(self.w_type):
                terms.append(Mux(w, x, -x))
                continue
            wv = w.as_signed() if self.w_type.signed else w.as_unsigned()
            if is_bipolar(self.in_type):
                terms.append(Mux(x, wv, -wv))
            else:
                terms.append(lut_product(x, wv) if self.arith == "lut" else x * wv)
        return self._sum(self._products(terms))

    # -- pipelining inside the dot product --------------------------------------------------
    def _reg(self, value, name: str | None = None):
        """`value` one clock later (a pipeline register, held while the pipeline stalls, under its
        share of the enable copies)."""
        r = self._enables.register(value, name or f"pipe{self._lane}_{len(self._regs)}")
        self._regs.append(r)
        return r

    def _products(self, terms: list) -> list:
        if self.pipeline.products and not self.binary:
            self._lane_regs += 1
            return [self._reg(t) for t in terms]
        return terms

    def _sum(self, terms: list):
        every = self.pipeline.tree_every
        self._lane_regs += tree_registers(len(terms), every)
        # binary (popcount) sums stay mergeable: 1-bit terms are what LUT full adders are good at
        # the SIMD terms' partial sums are kept (util.kept_wire: one carry chain per adder, not LUT
        # full adders); binary popcounts stay mergeable (1-bit terms are what full adders are good at)
        wire = None if self.binary else kept_wire(self._m, f"sum{self._lane}_")
        return pipelined_sum(terms, self._reg, every, wire)

    # -- structure ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        NF, SF, PE, SIMD = self.NF, self.SF, self.pe, self.simd

        out_valid = Signal()
        out_data = Signal(PE * self.acc_bits, reset_less=True)  # data: read only under out_valid
        v2 = Signal()
        first2 = last2 = Const(1, 1)  # SF = 1: every step is its vector's first and last (flag_bits)
        if SF > 1:
            first2, last2 = Signal(name="first2"), Signal(name="last2")
        # `en`: the schedule (a step is taken under it); `adv`: the pipeline's control registers
        # advance; the datapath registers use copies of it (self._enables)
        if self.stall_free:  # en: a credit is available; the pipeline never stalls
            en = Signal(init=1, name="credit")
            adv = Const(1, 1)
            self._enables = StallFree(m)
        else:
            en, _ = unit_enable(m, self, out_valid, out_data, registered=False)
            adv = en
            self._enables = EnableCopies(m, output_ready(self), v2 & last2)

        # stage 0: schedule
        nf, sf, take_stream, step, fire0 = replay_schedule(m, NF=NF, SF=SF, en=en, valid=self.i.valid)
        m.d.comb += self.i.ready.eq(en & take_stream)
        if self.stall_free:
            credit_after = self._credits(m, en, fire0 & (sf == SF - 1), out_valid, out_data)
            step = self._bank_fires(m, credit_after, nf, sf)

        # input buffer for replay (only when there is more than one output group)
        x_stream = Signal(SIMD * self.in_bits, reset_less=True)
        if NF > 1:
            taken = fire0 if self.stall_free else self.i.valid  # (with the enable, a take)
            replay = replay_store(m, taken=x_stream, valid=taken, take_stream=take_stream, sf=sf, SF=SF,
                                  en=self._enables, rw_collision=self.rw_collision)
            # stage 1 reads the word just taken from the stream, or the replayed one
            from_stream = replicated_select(m, en, take_stream, SIMD * self.in_bits, "from_stream")
            # a named signal: slicing the Mux expression per element would copy it per element
            x = Signal(SIMD * self.in_bits)
            m.d.comb += x.eq(select_by_slices(from_stream, x_stream, replay))
        else:
            x = x_stream

        # weights
        wword = group_rom(m, width=PE * SIMD * self.w_bits, words=self.rom_init(), step=step, en=self._enables,
                          style=self.rom_style, registered=bool(self.rom_levels),
                          chunk_depth=self.rom_chunk_depth, lane_bits=self.rom_lane_bits) if self.folded else None

        # stage 1
        v1 = Signal()
        first1 = last1 = Const(1, 1)  # SF = 1: every step is its vector's first and last (flag_bits)
        if SF > 1:
            first1, last1 = Signal(name="first1"), Signal(name="last1")
        with m.If(adv):
            m.d.sync += v1.eq(fire0)
            if SF > 1:
                m.d.sync += [first1.eq(sf == 0), last1.eq(sf == SF - 1)]
        for lo, hi in enable_slices(len(x_stream)):
            with m.If(self._enables.take(hi - lo)):
                m.d.sync += x_stream[lo:hi].eq(self.i.payload[lo:hi])
        self._m, self._regs, self._lane = m, [], "x"
        if self.rom_levels:  # the input word beside the block RAM ROM's own register (in group_rom)
            x = self._reg(x, "x_bram")
        x_copies = [x]
        if self.pipeline.operands:  # register the ROM's (and the replay buffer's) read data
            if self.operand_copies > 1:
                x_copies = replicated_register(m, [self._enables.take(len(x)) for _ in range(self.operand_copies)],
                                               x, self.operand_copies, "x_pipe")
            else:
                x_copies = [self._reg(x, "x_pipe")]
            if wword is not None:
                wword = self._reg(wword, "w_pipe")
        xs = self._x_elements(x_copies[0])
        dots, lane_regs = [], []
        if self.graph is not None:  # all lanes as one shared adder graph
            dots = self.graph.elaborate(m, xs, lambda v, name: self._reg(v, name))
            lane_regs = [self.graph.stages] * PE
        for p in range(PE if self.graph is None else 0):
            self._lane, self._lane_regs = p, 0
            xs = self._x_elements(x_copies[p * len(x_copies) // PE])
            if self.folded:
                dots.append(self._dot_rom(xs, wword, p))
            else:
                dots.append(self._dot_const(xs, self.weights[p]))
            lane_regs.append(self._lane_regs)
        extra = self.extra_stages
        inner = extra - int(self.pipeline.operands) - self.rom_levels
        for p in range(PE):  # lanes with fewer register levels (fewer nonzero weights) wait for the rest
            assert lane_regs[p] <= inner, "extra_stages disagrees with the lanes' register levels"
            for _ in range(inner - lane_regs[p]):
                self._lane = p
                dots[p] = self._reg(dots[p])
        for k in range(extra):  # valid (and first / last, SF > 1) travel with the data
            v1 = pipeline_register(m, adv, v1, f"v_pipe{k}", control=True)
            if SF > 1:
                first1, last1 = (pipeline_register(m, adv, sig, f"{tag}_pipe{k}", control=True)
                                 for sig, tag in ((first1, "first"), (last1, "last")))

        # stage 2
        dot2 = [Signal(signed(self.acc_bits), name=f"dot{p}", reset_less=True) for p in range(PE)]
        with m.If(adv):
            m.d.sync += v2.eq(v1)
            if SF > 1:
                m.d.sync += [first2.eq(first1), last2.eq(last1)]
        lane_en = [self._enables.take((3 if SF > 1 else 2) * self.acc_bits) for _ in range(PE)]
        for d, v, e in zip(dot2, dots, lane_en):
            with m.If(e):
                m.d.sync += d.eq(v)
        # the lanes read valid / first / last from one copy per control_lanes_per_copy lanes: one
        # `first` register steering all 32 accumulators of CNV-W1A1's Conv_1 was a 10.1 ns net
        group = self.control_lanes_per_copy
        if self.control_copies > 1:
            flags = Cat(v1, first1, last1) if SF > 1 else v1
            copies = replicated_register(m, [lane_en[k] for k in range(0, PE, group)], flags,
                                         self.control_copies, "flags2_")
            lane_flags = [copies[p // group] if SF > 1 else Cat(copies[p // group], first1, last1)  # (constants)
                          for p in range(PE)]
        else:
            lane_flags = [Cat(v2, first2, last2)] * PE

        # stage 3: accumulate, output register
        accs = [Signal(signed(self.acc_bits), name=f"acc{p}", reset_less=True) for p in range(PE)]
        nxt = [Signal(signed(self.acc_bits), name=f"acc{p}_next") for p in range(PE)]
        for a, n_, d, f in zip(accs, nxt, dot2, lane_flags):
            if SF > 1:
                m.d.comb += n_.eq(Mux(f[1], 0, a) + d)
            else:
                m.d.comb += n_.eq(d)
        if self.stall_free:  # out_valid enters the output FIFO (_credits)
            m.d.sync += out_valid.eq(v2 & last2)
        else:
            load_output_valid(m, self, adv, adv, out_valid, v2 & last2)
        out_words = [out_data[p * self.acc_bits:(p + 1) * self.acc_bits] for p in range(PE)]
        for a, n_, o, e, f in zip(accs, nxt, out_words, lane_en, lane_flags):
            with m.If(e & f[0]):
                if SF > 1:
                    m.d.sync += a.eq(n_)
                with m.If(f[2]):
                    m.d.sync += o.eq(n_)
        return m

    def _bank_fires(self, m, credit_after, nf: Value, sf: Value):
        """Stall-free, the ROM steps on a fire (its enable, a StallFree copy, is the constant 1): one
        fire per group of ROM banks (group_rom calls this with the bank's index), each from its own copies of
        the `credit` and `take_stream` flip-flops. One fire0 net to every bank's counter enables was
        TFC_2W2A's critical path at II 64 (b5e2d82, seed 1: take_stream -> LUT -> 8.33 ns -> a bank's
        address counter, 92.12 MHz).
        Each copy's next state is computed from the copy itself, its own fire and flags of the
        schedule's counters (take_stream_next; `credit_after`, the credit given whether this step
        reserves a word), so the input valid reaches a copy through its own LUTs: one next-state
        value for all copies put the valid, the fire, the counters' tests and the credit count in
        front of one net to copies across the die (CNV-W1A1's Conv_1 at 7be595a, both seeds: the
        window's output valid -> 4 LUTs -> 2.9-3.1 ns -> credit / take_stream copies, 92.6 MHz). The
        copies stay apart because each reads its own output."""
        NF, SF = self.NF, self.SF
        # neighbouring banks share a copy, about ROM_BITS_PER_FIRE_COPY bits of ROM each: one copy a
        # bank of 32 bits put 61 copies on the next-state net (CNV-W1A1's Conv_1 at ce0908b:
        # take_stream's next state -> 5.05 ns -> take_stream_copy61, 93.31 MHz)
        per_copy = self.banks_per_fire_copy
        fires: dict[int, Value] = {}

        def fire(k: int) -> Value:
            c = k // per_copy
            if c not in fires:
                credit = Signal(init=1, name=f"credit_copy{c}")
                stream = Signal(init=1, name=f"take_stream_copy{c}") if NF > 1 else Const(1, 1)
                fires[c] = fire_c = credit & (~stream | self.i.valid)
                m.d.sync += credit.eq(credit_after(fire_c & (sf == SF - 1)))
                if NF > 1:
                    m.d.sync += stream.eq(take_stream_next(NF=NF, SF=SF, fire0=fire_c, nf=nf, sf=sf,
                                                           take_stream=stream))
            return fires[c]
        return fire

    def _credits(self, m, credit: Signal, reserve: Value, out_valid: Value, out_data: Value):
        """Stall-free: the output register's words go into a FIFO of `credits` places (one more
        RAM word, so that a write never meets a full RAM while the FIFO's output register is
        refilled), and `credit` (a flip-flop) says that fewer than `credits` words are reserved:
        a group's last input beat (`reserve`) takes one, a word leaving the FIFO gives it back.
        Returns credit's next state as a function of whether the step reserves a word (for the
        copies, _bank_fires)."""
        m.submodules.out_fifo = fifo = StreamFIFO(width=len(out_data), depth=self.credits + 1)
        m.d.comb += [fifo.i.valid.eq(out_valid), fifo.i.payload.eq(out_data), fifo.o.ready.eq(output_ready(self)),
                     self.o.valid.eq(fifo.o.valid), self.o.payload.eq(fifo.o.payload)]
        held = Signal(range(self.credits + 1), name="credits_held")
        release = Signal()
        m.d.comb += release.eq(self.o.valid & output_ready(self))
        nxt = Signal(range(self.credits + 2), name="credits_held_next")
        m.d.comb += nxt.eq(held + reserve - release)
        # credit's next state with and without a reservation: compares of the count with constants,
        # the release choosing (held + 1 - release < credits as arithmetic put an add and a compare,
        # two carry chains, after the consumer's ready: CNV-W1A1's Conv_0 at 8987f5e, seed 2, 10.0 ns)
        below, below_less_one = held < self.credits, held < self.credits - 1
        if_reserved, if_not = Signal(name="credit_if_reserved"), Signal(name="credit_if_not")
        m.d.comb += [if_reserved.eq(Mux(release, below, below_less_one)), if_not.eq(release | below)]

        def credit_after(reserves: Value) -> Value:
            return Mux(reserves, if_reserved, if_not)
        m.d.sync += [held.eq(nxt), credit.eq(credit_after(reserve))]
        return credit_after
