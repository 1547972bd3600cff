"""Small helpers shared by the RTL components (not components themselves).

Streams carry flat unsigned payloads; element i of a beat occupies payload bits
[i*element_bits, (i+1)*element_bits).
"""
from __future__ import annotations

import itertools

from amaranth.hdl import Array, Cat, Const, Mux, Signal, Value

from ..ir.types import BipolarType, signed_bits_for


def kept_wire(m, name: str):
    """A `wire(value)` for pipelined_sum: the value as a combinational signal with yosys's `keep`
    attribute, so alumacc keeps it as one adder's output (names are `name`0, `name`1, ...)."""
    count = [0]

    def wire(value):
        s = Signal(value.shape(), name=f"{name}{count[0]}", attrs={"keep": 1})
        count[0] += 1
        m.d.comb += s.eq(value)
        return s
    return wire


def at_least(v: Value, n: int) -> Value:
    """v >= n for an unsigned v and a constant n, written as AND/OR logic of v's bits (MSB first:
    v[i] & ~n[i] decides, v[i] == n[i] defers) so synthesis packs it into a few LUTs; a `>=`
    becomes a subtraction on the carry chain (ECP5: a CCU2C per two bits)."""
    n = int(n)
    if n <= 0:
        return Const(1, 1)
    if n >= 1 << len(v):
        return Const(0, 1)
    result = Const(1, 1)  # v[:0] >= 0
    for i in range(len(v)):  # LSB up: ge_i = v[i] & ~n[i] | (v[i] == n[i]) & ge_{i-1}
        if (n >> i) & 1:
            result = v[i] & result
        else:
            result = v[i] | result
    return result


def balanced_sum(terms: list) -> Value:
    """Sum as a balanced tree of `+` (a left-deep chain makes emission quadratic)."""
    return pipelined_sum(terms, register=None, every=0)


def pipelined_sum(terms: list, register, every: int = 0, wire=None) -> Value:
    """A balanced tree of `+` with `register(value)` (a pipeline register) applied to every partial
    sum after each `every` levels (0: none). The number of register levels is tree_registers().
    `wire(value)` (see kept_wire), when given, names every partial sum as a kept signal: each adder
    then gets its own carry chain instead of being merged with its neighbours into a multi-operand
    sum, which yosys builds from LUT full adders (two LUT4 per bit per 3:2 compressor)."""
    terms = list(terms)
    if not terms:
        return Const(0, 1)
    level = 0
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if wire is not None:
            nxt = [wire(t) for t in nxt]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
        level += 1
        if every and level % every == 0 and len(terms) > 1:
            terms = [register(t) for t in terms]
    return terms[0]


def pipeline_register(m, en, value: Value, name: str, *, control: bool = False) -> Signal:
    """`value` one clock later in `m`, held while `en` is low (a pipeline stage under a unit's
    global enable). Data registers are reset-less (`control=False`): they are only read where a
    valid bit that travels beside them says so, and a reset on every datapath FF is a net of tens of
    thousands of sinks that congests routing (CNV-W1A1 on ECP5: 19,046 LSR sinks). Valid bits and
    other control pass `control=True`. `en` may be an EnableCopies: the register then takes its
    copies (EnableCopies.register)."""
    if isinstance(en, EnableCopies):
        return en.register(value, name, control=control)
    reg = Signal(value.shape(), name=name, reset_less=not control)
    with m.If(en):
        m.d.sync += reg.eq(value)
    return reg


SELECT_BITS_PER_COPY = 64  # widest slice of a wide 2:1 mux that one select register drives


def bit_slices(width: int, size: int) -> list[tuple[int, int]]:
    """Bit ranges [lo, hi) of `size` bits (the last one shorter) covering `width` bits (one empty
    range for width 0)."""
    width = int(width)
    return [(lo, min(width, lo + size)) for lo in range(0, max(width, 1), size)]


def select_slices(width: int) -> list[tuple[int, int]]:
    """Bit ranges [lo, hi) of a `width`-bit datapath that one copy of a control register drives
    each (SELECT_BITS_PER_COPY bits, the last one shorter)."""
    return bit_slices(width, SELECT_BITS_PER_COPY)


def select_copies(width: int) -> int:
    """Copies of a mux select register that a `width`-bit 2:1 mux gets (see replicated_select)."""
    return len(select_slices(width))


def output_ready(unit) -> Value:
    """The unit's output ready, or the constant 1 when the planner marked its output as never stalled
    (`unit.never_stalled`, a design compiled without backpressure: Planner.drop_idle_cuts). Tied
    inside the unit, not only at the top: synthesis keeps each unit a module of its own (per-layer
    resources), so a constant at the top would not reach the enables (jet_full without backpressure
    kept a ready path through all seven units, 48.5 MHz)."""
    return Const(1, 1) if getattr(unit, "never_stalled", False) else unit.o.ready


ENABLE_FFS_PER_COPY = 512  # pipeline flip-flops that one copy of a unit's enable drives. 256 was
# tried (CNV-W1A1's Conv_1 had a 9.3 ns net from one copy to ROM output registers beside block RAMs):
# on digits_a2q_64 it routed at 74.02 / 86.10 MHz (seeds 1 / 2) against 86.41 / 94.63 with 512, the
# same netlist otherwise; the copy's sinks stay spread whatever their number
SKID_FFS_PER_COPY = 128  # the same for a registered enable (SkidEnables: activation units, windows):
# at 512, one `go` copy of CNV-W1A1's BipolarQuant_10 reached its input register's clock enables
# through a 12.56 ns net (48f0d5c, seed 2, 76.40 MHz)


class EnableCopies:
    """A unit's pipeline enable `~out_valid | ready` as one copy per ENABLE_FFS_PER_COPY flip-flops.

    One enable LUT driving every clock enable of a wide pipeline is a net of thousands of sinks
    across the die: KWS W3A3's Gemm_0 (PE 1, SIMD 245, 10.8k FFs) routed at 47.3 MHz on ECP5 with a
    16.6 ns net from its enable LUT to a product register. Copy k keeps its own out_valid register
    (`name`_valid<k>, updated like out_valid under its own enable, so equal to it every cycle) and its
    own LUT; only `ready` fans out to all copies. take(bits) gives the copy for a new register of
    `bits` flip-flops, in creation order, so neighbouring registers of a tree share one."""

    per_copy = ENABLE_FFS_PER_COPY  # flip-flops one copy drives

    def __init__(self, m, ready: Value, out_valid_next: Value, name: str = "en"):
        self.m, self.ready, self.next, self.name = m, ready, out_valid_next, name
        self.copies: list[Signal] = []
        self.load = self.per_copy

    def _copy(self, k) -> Signal:
        valid = Signal(name=f"{self.name}_valid{k}")  # out_valid again: reset, like it
        en = Signal(name=f"{self.name}{k}")
        self.m.d.comb += en.eq(~valid | self.ready)
        with self.m.If(en):
            self.m.d.sync += valid.eq(self.next)
        return en

    def take(self, bits: int) -> Signal:
        if self.load + bits > self.per_copy and self.load > 0:
            self.copies.append(self._copy(len(self.copies)))
            self.load = 0
        self.load += bits
        return self.copies[-1]

    def register(self, value: Value, name: str, *, control: bool = False) -> Value:
        """`value` one clock later (a pipeline_register), in slices of at most `per_copy` bits,
        each under the copy take() gives it."""
        if len(value) <= self.per_copy:
            return pipeline_register(self.m, self.take(len(value)), value, name, control=control)
        parts = [pipeline_register(self.m, self.take(hi - lo), value[lo:hi], f"{name}_{k}", control=control)
                 for k, (lo, hi) in enumerate(bit_slices(len(value), self.per_copy))]
        v = Cat(*parts)
        return v.as_signed() if value.shape().signed else v


class SkidEnables(EnableCopies):
    """The enable of a unit with a skid register after its output register, as flip-flops.

    `go` says the skid register is empty; the unit's pipeline advances while it is. The output
    shows the skid register's word while it holds one (it parked the output register's word for a
    cycle when the consumer did not take it as the pipeline advanced), else the output register's.
    So the enable is a register: its next state, go' = ready | (go & ~out_valid), is the only logic
    that reads the output ready, and no ready path runs through the unit. With EnableCopies, each
    copy was a LUT of the output ready: the ready's net, the LUT and the copy's net to its clock
    enables were one path (CNV-W1A1 at ad3ddc4: Conv_1's copy -> 7.29 ns -> a ROM read register,
    behind a skid's register and its net to every copy's LUT). Copy k is a register of its own
    (`name`k, reset 1) computing the same next state from its own output, so the copies stay equal
    and synthesis cannot merge them; `master` steers the unit's control (schedule, valid bits) and
    its output valid. One copy per SKID_FFS_PER_COPY flip-flops."""

    per_copy = SKID_FFS_PER_COPY

    def __init__(self, m, ready: Value, out_valid: Value, name: str = "go"):
        super().__init__(m, ready, out_valid_next=None, name=name)
        self.out_valid = out_valid
        self.master = self._copy("")

    def _copy(self, k) -> Signal:
        go = Signal(init=1, name=f"{self.name}{k}")
        self.m.d.sync += go.eq(self._go_next(go))
        return go

    def _go_next(self, go: Value) -> Value:
        return self.ready | (go & ~self.out_valid)

    def shown_valid(self, valid_in: Value) -> Signal:
        """The output port's valid, `out_valid | skid full` (= out_valid | ~go), as a flip-flop of
        its own loaded with that OR's next state, where the unit loads out_valid <= valid_in under
        `go`: the consumer's valid is then a register, not a LUT of two registers whose output
        net leaves for the consumer (CNV-W1A1 at 8c0d2d1, seed 1: Conv_2's window out_valid ->
        2.87 ns -> the OR -> 1.54 ns -> the gather's valid LUT -> 4.54 ns -> its clock enables,
        100.57 MHz; a0d39b3 with this: 100.79 / 105.65 MHz on seeds 1 / 2 without rip-up)."""
        go = self.master
        shown = Signal(name="o_valid_q")
        self.m.d.sync += shown.eq(Mux(go, valid_in, self.out_valid) | ~self._go_next(go))
        return shown


class StallFree(EnableCopies):
    """The enable of a datapath that never stalls (MatVecUnit under Pipeline.stall_free): its
    registers load every cycle, with no clock enable, and the bubbles travel as cleared valid bits.
    Flow control is by credits before the pipeline: a word enters only when the output FIFO has a
    place reserved for it. An enable copy that drives every clock enable of a wide pipeline is a net
    across the die, whatever its source (digits_a2q_64 at 46c4304: one `go` copy -> 10.6 ns -> 512
    clock enables of an operand register)."""

    def __init__(self, m):
        super().__init__(m, Const(1, 1), out_valid_next=None, name="stall_free")

    def take(self, bits: int) -> Value:
        return Const(1, 1)

    def register(self, value: Value, name: str, *, control: bool = False) -> Value:
        reg = Signal(value.shape(), name=name, reset_less=not control)
        self.m.d.sync += reg.eq(value)
        return reg


def skid_output(m, unit, enables: SkidEnables, out_data: Value) -> None:
    """Drive unit.o's payload from its output register and a skid register behind it (SkidEnables):
    the skid register loads the output word while empty and is shown while full, each slice of
    SELECT_BITS_PER_COPY bits under its own copy of `go` (clock enable and select). Its valid comes
    from load_output_valid."""
    skid_data = Signal(len(out_data), reset_less=True)  # read only while full
    payload = Signal(len(out_data))
    for lo, hi in select_slices(len(out_data)):
        copy = enables.take(2 * (hi - lo))
        with m.If(copy):
            m.d.sync += skid_data[lo:hi].eq(out_data[lo:hi])
        m.d.comb += payload[lo:hi].eq(Mux(copy, out_data[lo:hi], skid_data[lo:hi]))
    m.d.comb += unit.o.payload.eq(payload)


def unit_enable(m, unit, out_valid: Value, out_data: Value, registered: bool):
    """The pipeline enable of a unit that advances as a whole (Threshold, requantizer; a MatVec's
    without a skid register, which it then copies with EnableCopies), with its output payload
    driven (its valid: load_output_valid).
    Returns (go, en): `go` steers the unit's control (input ready, valid bits), `en` is what its
    registers take (pipeline_register, load_register, group_rom).

    Plain: `~out_valid | o.ready` for both, the output register on o. `registered` (a plan
    pipelined to a clock): SkidEnables, with a skid register behind the output (skid_output), so
    that no ready path runs through the unit (CNV-W1A1's BipolarQuant_10 after the registered
    MatVec: a skid's register -> 5.68 ns -> its enable LUT -> 6.40 ns -> 1,204 clock enables,
    77.89 MHz); `go` is its master flip-flop and the registers take copies of it, one per
    ENABLE_FFS_PER_COPY flip-flops (with the master alone, BipolarQuant_10's one `go` had a
    15.58 ns net to its 1,204 clock enables, 62.09 MHz)."""
    if registered:
        enables = SkidEnables(m, output_ready(unit), out_valid)
        skid_output(m, unit, enables, out_data)
        return enables.master, enables
    en = Signal()
    m.d.comb += [en.eq(~out_valid | output_ready(unit)), unit.o.payload.eq(out_data)]
    return en, en


def load_output_valid(m, unit, go: Value, en, out_valid: Signal, valid_in: Value) -> None:
    """out_valid <= valid_in as the unit advances (under `go`), and unit.o.valid: out_valid itself,
    or behind a skid register (`en` the SkidEnables of unit_enable's registered form) a flip-flop
    of its own (SkidEnables.shown_valid). Every unit_enable caller loads its output valid here."""
    with m.If(go):
        m.d.sync += out_valid.eq(valid_in)
    m.d.comb += unit.o.valid.eq(en.shown_valid(valid_in) if isinstance(en, SkidEnables) else out_valid)


def load_register(m, en, reg: Signal, value: Value, when: Value | None = None) -> None:
    """reg <= value under the pipeline enable `en` (a signal or an EnableCopies, sliced like
    EnableCopies.register), and only where `when` holds if given: a unit's output register, loaded
    only by a valid beat."""
    for lo, hi in enable_slices(len(reg)):
        load = enable_for(en, hi - lo)
        with m.If(load if when is None else load & when):
            m.d.sync += reg[lo:hi].eq(value[lo:hi])


def enable_for(en, bits: int) -> Value:
    """The enable for a new register of `bits` flip-flops: its copy (EnableCopies.take) when `en` is
    an EnableCopies, else the plain enable signal itself."""
    return en.take(bits) if isinstance(en, EnableCopies) else en


def enable_slices(width: int) -> list[tuple[int, int]]:
    """Bit ranges [lo, hi) of at most ENABLE_FFS_PER_COPY bits covering `width` bits."""
    return bit_slices(width, ENABLE_FFS_PER_COPY)


def enable_copies(ffs: int, per_copy: int = ENABLE_FFS_PER_COPY) -> int:
    """Copies EnableCopies (per_copy flip-flops each) makes for about `ffs` pipeline flip-flops (the
    cost model's count)."""
    return max(1, -(-int(ffs) // per_copy))


def kept_register(m, value: Value, name: str, *, en: Value | None = None, init: int = 0,
                  reset_less: bool = True) -> Signal:
    """`value` one clock later (under `en`), written in toggle form, c <= c ^ (en & (value ^ c)):
    the same function as a plain register, but yosys's opt_merge never folds it into another
    register with the same next state (copies of one signal, enables that a StallFree unit makes
    identical), because its next state reads its own output."""
    c = Signal(value.shape(), name=name, init=init, reset_less=reset_less)
    change = value ^ c
    m.d.sync += c.eq(c ^ (change if en is None else en.replicate(len(c)) & change))
    return c


def replicated_register(m, en, value: Value, copies: int, name: str) -> list[Signal]:
    """`value` one clock later under `en` (one enable, or one per copy), as `copies` registers (name0,
    name1, ...), so that each copy drives only its share of a wide fan-out. Each copy is written in toggle form,
    c <= c ^ (en & (value ^ c)) (the same function as a register with a clock enable), because
    yosys's opt_merge folds identical flip-flops back into one, `keep` or not; a copy whose next
    state reads its own output is never identical to another. Under a StallFree enable (the
    constant 1) the form is still c <= c ^ (value ^ c): yosys does not fold it to c <= value before
    opt_merge, so the copies stay (tested; abc then makes it a plain register). One copy is a plain
    pipeline register. Copies are read only under a valid bit (reset-less)."""
    ens = en if isinstance(en, list) else [en] * copies
    if copies <= 1:
        return [pipeline_register(m, ens[0], value, name)]
    return [kept_register(m, value, f"{name}{k}", en=ens[k]) for k in range(copies)]


def replicated_select(m, en, value: Value, width: int, name: str) -> list[Signal]:
    """`value` (1 bit) one clock later under `en`, as select_copies(width) registers, one per
    SELECT_BITS_PER_COPY bits of the `width`-bit mux it selects (replicated_register). One register
    driving a 768-bit mux was KWS W3A3's critical path on ECP5 (18.75 ns of routing across the
    die)."""
    return replicated_register(m, en, value, select_copies(width), name)


def take_stream_next(*, NF: int, SF: int, fire0: Value, nf: Value, sf: Value, take_stream: Value) -> Value:
    """take_stream's next state in replay_schedule (NF > 1): set as the last group's last word
    fires, cleared as the first group's does. One home, because MatVecUnit's stall-free ROM banks
    keep copies of the flip-flop that must follow it exactly."""
    return Mux(fire0 & (sf == SF - 1), nf == NF - 1, take_stream)


def replay_schedule(m, *, NF: int, SF: int, en: Value, valid: Value):
    """The schedule of a folded matrix unit (MatVecUnit, KernelBankConvUnit's stage 2): sf counts
    the SF words of an input vector, nf the NF output groups; the input stream is taken while
    nf == 0 and replayed for the other groups. Returns (nf, sf, take_stream, step, fire0): the unit
    steps when enabled and `step` (~take_stream | valid), fire0 = en & step (group_rom takes `step`
    to fire each bank on its own enable copy); the unit's input ready is en & take_stream.
    take_stream is a flip-flop set as nf wraps, not a compare of nf on the ready path
    (digits_a2q_64's Gemm_1: nf -> compare -> 2.3 ns net -> replay write enables, 89.71 MHz);
    without replay (NF = 1) it is the constant 1 (synthesis would not prove the nf register stays
    0, and jet_full's input ready hung off seven units' nf, 29.3 MHz)."""
    nf = Signal(range(max(NF, 2)), name="nf")
    sf = Signal(range(max(SF, 2)), name="sf")
    take_stream = Signal(init=1, name="take_stream")
    step, fire0 = Signal(name="step"), Signal(name="fire0")
    if NF == 1:
        m.d.comb += take_stream.eq(1)
    else:
        m.d.sync += take_stream.eq(take_stream_next(NF=NF, SF=SF, fire0=fire0, nf=nf, sf=sf, take_stream=take_stream))
    m.d.comb += [step.eq(~take_stream | valid), fire0.eq(en & step)]
    with m.If(fire0):
        with m.If(sf == SF - 1):
            m.d.sync += sf.eq(0)
            with m.If(nf == NF - 1):
                m.d.sync += nf.eq(0)
            with m.Else():
                m.d.sync += nf.eq(nf + 1)
        with m.Else():
            m.d.sync += sf.eq(sf + 1)
    return nf, sf, take_stream, step, fire0


def replay_slices(width: int, SF: int) -> list[tuple[int, int]]:
    """Bit ranges [lo, hi) of a replay store (replay_store) that each have their own registered
    write enable. A memory (SF > 1) is one bank per ENABLE_FFS_PER_COPY bits. A register (SF = 1)
    gets one per SELECT_BITS_PER_COPY bits: its bits sit by their consumers all over the die, and one
    write enable per 512 bits was a 13.3 ns net to their clock enables (TFC_2W2A at II 64, 48f0d5c,
    seed 1: 72.2 MHz)."""
    return enable_slices(width) if SF > 1 else select_slices(width)


def replay_store(m, *, taken: Value, valid: Value, take_stream: Value, sf: Value, SF: int, en,
                 name: str = "buffer", rw_collision: Signal | None = None) -> Value:
    """The replayed input word of a folded matrix unit (NF > 1), read one clock after sf: a register
    when SF = 1, else a memory of SF words. `taken` is the unit's register of the stream word (loaded
    under `en`, so it holds the word taken for a cycle after the take); the store copies it one
    clock after the take, under a registered write enable (valid & take_stream & enable, one per
    enable slice) and, for a memory, a registered write address. The replay reads word sf at least
    SF >= 2 cycles after its take, or (SF = 1) a register one cycle after stage 0, so the late write
    is never seen early. Written as the word was taken, the write enable was the enable copy's LUT
    and the valid's, in series, before every clock enable: CNV-W1A1's Conv_0 had 4.9 + 6.6 ns of
    nets to its replay register (66.50 MHz). Each slice of ENABLE_FFS_PER_COPY bits has its own enable
    copy and write enable (replay_slices): one on every bit was digits_a2q_64's 3.4 ns net to 512
    clock enables and KWS W3A3's 12.3 ns net to its LUT-RAM buffer's write enables.
    `rw_collision` (a test probe): driven high where a memory write meets the read of its word."""
    slices = replay_slices(len(taken), SF)
    writes = []
    for k, (lo, hi) in enumerate(slices):
        # in toggle form: under a StallFree enable (the constant 1) the slices' write enables have
        # the same next state, and as plain registers yosys merged them into one (TFC_2W2A at II 64:
        # one write enable -> 14.8 ns -> 1,568 clock enables of its replay register, 65.4 MHz)
        writes.append(kept_register(m, valid & take_stream & enable_for(en, hi - lo), f"{name}_write{k}",
                                    reset_less=False))
    if SF == 1:
        replay = Signal(len(taken), reset_less=True, name=f"{name}_word")
        for wr_en, (lo, hi) in zip(writes, slices):
            with m.If(wr_en):
                m.d.sync += replay[lo:hi].eq(taken[lo:hi])
        return replay
    from amaranth.lib.memory import Memory

    parts, meets = [], []
    for k, (wr_en, (lo, hi)) in enumerate(zip(writes, slices)):
        # no_rw_check (yosys adds no collision logic): word sf is written a clock after its take,
        # when the read address has stepped on to sf + 1 mod SF != sf, so a read never meets a write
        bank = Memory(shape=hi - lo, depth=SF, init=[], attrs={"no_rw_check": 1})
        m.submodules[f"{name}{k}" if len(slices) > 1 else name] = bank
        wr, rd = bank.write_port(), bank.read_port(domain="sync")
        wr_addr = Signal.like(sf, name=f"{name}_write_addr{k}")
        m.d.sync += wr_addr.eq(sf)
        m.d.comb += [
            wr.addr.eq(wr_addr), wr.data.eq(taken[lo:hi]), wr.en.eq(wr_en),
            rd.addr.eq(sf), rd.en.eq(enable_for(en, hi - lo)),
        ]
        meets.append(wr_en & (wr_addr == sf))
        parts.append(rd.data)
    if rw_collision is not None:
        m.d.comb += rw_collision.eq(Cat(*meets).any())
    return Cat(*parts)


def select_by_slices(selects: list, when_1: Value, when_0: Value) -> Value:
    """Mux(sel, when_1, when_0) built slice by slice, slice k of SELECT_BITS_PER_COPY bits under
    selects[k] (the copies of replicated_select)."""
    return Cat(*(Mux(sel, when_1[lo:hi], when_0[lo:hi])
                 for sel, (lo, hi) in zip(selects, select_slices(len(when_1)), strict=True)))


ROM_STYLES = ("bram", "logic")
_ROM_STYLE_ATTR = {"bram": "block", "logic": "logic"}  # yosys memory_libmap's rom_style values


def rom_memory(*, shape, depth: int, init, style: str | None = None):
    """An Amaranth Memory for a ROM; `style` ("bram" | "logic", the plan's choice) becomes yosys's
    `rom_style` attribute, which memory_libmap obeys (None: yosys's own cost rule decides)."""
    from amaranth.lib.memory import Memory

    if style is not None and style not in ROM_STYLES:
        raise ValueError(f"ROM style must be one of {', '.join(ROM_STYLES)}, not {style!r}")
    attrs = {"rom_style": _ROM_STYLE_ATTR[style]} if style else None
    return Memory(shape=shape, depth=depth, init=init, attrs=attrs)


ROM_BANK_BITS = 32  # widest bank of a logic ROM that one address register drives: with 128, an address
# bit of digits_a2q_64's Gemm_1 ROM (64 words) reached 430 LUTs, a 7.2 ns net across two rows; with
# 64, an address bit of its Gemm_0 ROM (64 words, 256 LUT leaves) was a 7.00 ns net (9110f22, seed 2:
# 97.07 MHz); with 32, 120.83 / 118.95 MHz (seeds 2 / 1) and 305 fewer LUTs
ROM_BITS_PER_FIRE_COPY = 64  # ROM bits (neighbouring banks) that one copy of a stall-free MatVec's
# credit and take_stream flip-flops fires (MatVecUnit._bank_fires)
ROM_BANK_MIN_BITS = 16  # narrowest bank of a deeper logic ROM (ROM_LEAVES_PER_ADDRESS)
ROM_LEAVES_PER_ADDRESS = 128  # 16-word LUT leaves of a logic ROM bank (bits x words/16) one address
# register drives: CNV-W1A1's Conv_2 (96 words, banks of 64 bits) had address bits of 340-457 sinks,
# one a 10.28 ns net (e15df47, seed 1: 82.87 MHz)


def rom_bank_bits(depth: int) -> int:
    """Widest bank of a logic ROM of `depth` words: ROM_BANK_BITS up to 64 words, then narrower so
    that bits x depth/16 stays near ROM_LEAVES_PER_ADDRESS, down to ROM_BANK_MIN_BITS."""
    leaves = max(1, -(-int(depth) // 16))
    return max(ROM_BANK_MIN_BITS, min(ROM_BANK_BITS, ROM_LEAVES_PER_ADDRESS // leaves))


def rom_banks(width: int, style: str | None, depth: int = 0) -> list[tuple[int, int]]:
    """Bit ranges [lo, hi) of the banks a ROM of `width` bits and `depth` words is split into: a logic
    ROM wider than rom_bank_bits(depth) gets one bank, with its own address register, per that many
    bits (near-equal widths), so that no address bit fans out to thousands of LUTs (the CNV-W1A1 conv
    ROMs, 768 and 2,048 bits wide, gave address nets of 2,000-3,000 sinks that nextpnr could not
    route). Block RAM and tool-chosen ROMs stay one memory."""
    bank = rom_bank_bits(depth)
    if style != "logic" or width <= bank:
        return [(0, width)]
    n = -(-width // bank)
    cuts = [width * b // n for b in range(n + 1)]
    return list(itertools.pairwise(cuts))


def rom_chunks(depth: int, chunk_depth: int) -> list[tuple[int, int]]:
    """Word ranges [lo, hi) of the memories a ROM of `depth` words is split into in depth: one per
    `chunk_depth` (a power of two: the chunk is the address's high bits) or one in all (0)."""
    if not chunk_depth or depth <= chunk_depth:
        return [(0, depth)]
    assert chunk_depth & (chunk_depth - 1) == 0, "a depth chunk is a power of two"
    return [(lo, min(lo + chunk_depth, depth)) for lo in range(0, depth, chunk_depth)]


CELLS_PER_ADDRESS_COPY = 4  # block RAM cells of one ROM that one copy of its address register drives


def address_groups(cells: int) -> list[range]:
    """The cells (by index) that share one copy of a ROM bank's address register (rom_cell_reads)."""
    return [range(g, min(g + CELLS_PER_ADDRESS_COPY, cells)) for g in range(0, cells, CELLS_PER_ADDRESS_COPY)]


def rom_cell_reads(m, en, bank_en: Value, step: Value, addr: Value, nxt: Value, widths: list[int], name: str):
    """The read address and read enable of each block RAM cell of one ROM bank (cells of `widths`
    bits, in order): the bank's own address register `addr` and enable `bank_en` for one group, else one
    address register per CELLS_PER_ADDRESS_COPY cells (name0, name1, ...) under the group's own
    enable copy, loading `nxt` when the group fires (enable & `step`), kept apart from the others in
    toggle form (kept_register) and reset to 0 like the counter. Every copy of a unit's enable is
    equal to the others every cycle, so the copies stay equal to the counter. One address register
    drove all 36 cells of CNV-W1A1's Conv_5 ROM, which nextpnr spreads over the die (ECP5, seed 1:
    10.57 ns to a far cell's address pin)."""
    groups = address_groups(len(widths))
    if len(groups) <= 1:
        return [(addr, bank_en)] * len(widths)
    reads = []
    for g, cells in enumerate(groups):
        group_en = enable_for(en, sum(widths[i] for i in cells))
        copy = kept_register(m, nxt, f"{name}{g}", en=group_en & step, reset_less=False)
        reads += [(copy, group_en)] * len(cells)
    return reads


def group_rom(m, *, width: int, words: list[int], step: Value, en, style: str | None = None, name: str = "rom",
              registered: bool = False, chunk_depth: int = 0, lane_bits: int = 0):
    """A ROM of one word per step (m.submodules.<name>, or <name>0, <name>1, ... when banked, see
    rom_banks), addressed by a counter that steps when the unit fires (`en & step`; `step` may be a
    function giving each bank its own, from the bank's index) and wraps after the last word; read under the pipeline enable `en`, a signal or an EnableCopies. Under copies,
    each bank's read register and address counter take one copy, so the bank also fires on its own
    copy: CNV-W1A1's Conv_2 had one enable net of 12.1 ns to its 2,048-bit ROM read register, and
    Conv_1 one fire net of 7.55 ns to its 16 banks' address counters. Returns the read data one
    cycle after the address, like a block RAM; `registered`: two cycles after, the read data
    registered once more.

    A registered block RAM ROM is split here into one memory per cell (the plan's cell shape,
    hwgen.cost.primitives.bram_cell_shape): `chunk_depth` words (<name>_c0, ...; the chunks are
    muxed after their registers) by `lane_bits` bits (<name>_l0, ... or <name>_c0_l0, ...). Split
    by yosys, a depth mux sat after the cells, which nextpnr spreads over the die, so a register
    after the mux could not sit near them (CNV-W1A1's Conv_5: block RAM -> 6.6-8.0 ns -> depth mux);
    given a chunk, yosys still stacked cells behind a mux at times. Each cell's read register is its
    only load, so on ECP5 the flow makes it the cell's own output register
    (hwgen.flows.bram_outreg); as a fabric register nextpnr did not always put it by its cells
    (CNV-W1A1 at ad3ddc4, seed 1: one 91 columns away, a 6.41 ns net). Every CELLS_PER_ADDRESS_COPY
    cells share a copy of the address register and an enable copy (rom_cell_reads)."""
    depth = len(words)
    chunks = rom_chunks(depth, chunk_depth if registered else 0)
    low = (chunks[0][1] - 1).bit_length() if len(chunks) > 1 else None  # address bits within a chunk
    parts = []
    banks = rom_banks(width, style, depth)
    for b, (lo, hi) in enumerate(banks):
        tag = name if len(banks) == 1 else f"{name}{b}"
        bank_en = enable_for(en, hi - lo)
        # the address register steps to a second register holding the next address, so the increment
        # feeds only flip-flops: stepped in place, abc shared the incrementer's carry outputs with the
        # ROM's decode (digits_a2q_64's Gemm_1: address -> carry chain -> 3.9 ns -> ROM LUTs, 88.53 MHz)
        addr = Signal(range(max(depth, 2)), name=f"{tag}_addr")
        nxt = Signal(range(max(depth, 2)), init=1 % depth, name=f"{tag}_addr_next")
        bank_step = step(b) if callable(step) else step
        with m.If(bank_en & bank_step):
            m.d.sync += [addr.eq(nxt), nxt.eq(Mux(nxt == depth - 1, 0, nxt + 1))]
        lanes = [(lo + a, lo + b) for a, b in bit_slices(hi - lo, lane_bits)] if registered and lane_bits else [(lo, hi)]
        cell_reads = iter(rom_cell_reads(m, en, bank_en, bank_step,
                                         addr if low is None else addr[:low], nxt if low is None else nxt[:low],
                                         [l1 - l0 for _c in chunks for l0, l1 in lanes], f"{tag}_addr_cell"))
        data = []
        for c, (w0, w1) in enumerate(chunks):
            reads = []
            for k, (l0, l1) in enumerate(lanes):
                rom = rom_memory(shape=l1 - l0, depth=w1 - w0,
                                 init=[(int(w) >> l0) & ((1 << (l1 - l0)) - 1) for w in words[w0:w1]], style=style)
                where = [f"c{c}"] * (len(chunks) > 1) + [f"l{k}"] * (len(lanes) > 1)
                m.submodules["_".join([tag, *where])] = rom
                rd = rom.read_port(domain="sync")
                cell_addr, cell_en = next(cell_reads)
                m.d.comb += [rd.addr.eq(cell_addr), rd.en.eq(cell_en)]
                # registered: beside its cell, nothing between them, under the cell's enable copy
                # (one per group of cells) or, read under the bank's, a copy of its own
                if registered:
                    reg_en = enable_for(en, l1 - l0) if cell_en is bank_en else cell_en
                    reads.append(pipeline_register(m, reg_en, rd.data, f"{tag}_{'_'.join(where) or 'rd'}_q"))
                else:
                    reads.append(rd.data)
            data.append(Cat(*reads))
        if len(chunks) == 1:
            parts.append(data[0])
            continue
        # the chunk each read came from travels beside the data: with the read, then the registers,
        # the second one copy per SELECT_BITS_PER_COPY bits of the mux: one register selecting every
        # bit spread the mux over the die (CNV-W1A1's Conv_4 at 520fabb, seed 1: chunk_q -> 9.08 ns
        # of routing -> the weight pipeline register, 97.40 MHz)
        word_bits = len(data[0])
        sels = replicated_register(m, bank_en, pipeline_register(m, bank_en, addr[low:], f"{tag}_chunk_rd"),
                                   select_copies(word_bits), f"{tag}_chunk_q")
        parts.append(Cat(*[Array([d[lo:hi] for d in data])[sel]
                           for sel, (lo, hi) in zip(sels, select_slices(word_bits))]))
    return parts[0] if len(parts) == 1 else Cat(*parts)


def tree_registers(terms: int, every: int) -> int:
    """Register levels pipelined_sum inserts into a tree of `terms` terms."""
    if not every or terms <= 1:
        return 0
    levels = (terms - 1).bit_length()  # ceil(log2(terms))
    return (levels - 1) // every


def popcount(bits: list) -> Value:
    """Number of set bits among 1-bit values, as an unsigned balanced tree."""
    if not bits:
        return Const(0, 1)
    return balanced_sum([b.as_unsigned() if isinstance(b, Value) else b for b in bits])


def is_bipolar(t) -> bool:
    return isinstance(t, BipolarType)


def element(payload: Value, index: int, bits: int, *, signed_: bool) -> Value:
    v = payload[index * bits:(index + 1) * bits]
    return v.as_signed() if signed_ else v.as_unsigned()


def csd_digits(c: int) -> list[tuple[int, int]]:
    """Canonical signed digits of c: [(shift, +1 | -1)], no two adjacent (fewest nonzero digits)."""
    digits, k, c = [], 0, int(c)
    while c:
        if c & 1:
            d = 2 - (c & 3)  # +1 when c = 1 mod 4, -1 when c = 3 mod 4
            digits.append((k, d))
            c -= d
        c >>= 1
        k += 1
    return digits


def const_product(x: Value, c: int) -> Value:
    """x * c for a constant c as shifts and adds of its canonical signed digits: synthesis maps it to
    LUTs and carry chains, never to a DSP block (a 4-bit weight is at most two adds)."""
    terms = [(x << k) if d > 0 else -(x << k) for k, d in csd_digits(c)]
    return balanced_sum(terms) if terms else Const(0, 1)


def lut_product(x: Value, w: Value) -> Value:
    """x * w for two signals as one partial product per bit of the narrower operand (the sign bit
    of a signed one weighs -2^(n-1)), summed in a balanced tree: LUTs and carry chains, no DSP."""
    if len(w) > len(x):
        x, w = w, x
    n = len(w)
    signed_w = w.shape().signed
    terms = []
    for i in range(n):
        shifted = x << i
        terms.append(Mux(w[i], -shifted if (signed_w and i == n - 1) else shifted, 0))
    return balanced_sum(terms)


def truncate_signed(value: Value, bits: int) -> Value:
    """`value` as a `bits`-wide signed value: sign-extended, or wrapped like a `bits`-wide register."""
    v = value.as_signed()
    if len(v) < bits:
        return Cat(v, v[-1].replicate(bits - len(v))).as_signed()
    return v[:bits].as_signed()


def pack_ints(values, bits: int) -> int:
    """Pack unsigned bit patterns into one payload integer (element 0 in the low bits)."""
    word = 0
    mask = (1 << bits) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


signed_width_for = signed_bits_for  # bits of a signed value holding [lo, hi] (one definition, in ir.types)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


__all__ = ["balanced_sum", "popcount", "is_bipolar", "element", "truncate_signed", "pack_ints",
           "signed_width_for", "divisors", "csd_digits", "const_product", "lut_product", "pipelined_sum",
           "pipeline_register", "tree_registers", "group_rom", "rom_banks", "rom_chunks"]
