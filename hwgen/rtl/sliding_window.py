"""Sliding window unit (FINN's ConvolutionInputGenerator / SWG): NHWC pixels in, im2col patches out.

Input stream: the pixels of an H x W x C image in raster order (h, then w), channels innermost,
in beats of SIMD elements (SIMD | C, CF = C/SIMD beats per pixel). Output stream: for every output
pixel (oh, ow) in raster order its kh x kw x C patch in (kh, kw, c) order, also in beats of SIMD
elements: kh*kw*CF beats per patch, taps outside the image carry `pad_value` (zero padding for a
convolution, the type's minimum for a max pool).

Element types: the output type equals the input type, except for a Bipolar input with zero
padding (pad_value 0 and some pad > 0): a padding tap must count 0, which one bit cannot say, so
the elements become INT2 (two's complement -1 = 0b11, 0 = 0b00, +1 = 0b01) and the consumer
multiplies them as integers. `out_type` says which.

Line buffer: a `Memory` of R rows x W*CF words of SIMD elements, rows in a ring (row r of the
continuing input sequence lives in slot r mod R); R = min(kh + sh - 1, H), i.e. kh rows for
stride 1. The writer (input stream) and the reader (patch generator) run concurrently:
  - the reader emits a real tap only when the writer has written that word (same image), or is
    already in the next image;
  - the writer writes word p only when the word it overwrites (p - R*W*CF) lies before the first
    row the reader's current output row still needs (row max(oh*sh - pt, 0)).
Generations (2-bit image counters) tell "same image", "writer one image ahead" and "writer still
finishing the previous image's unused bottom rows" apart. With R >= min(kh, H) neither side can
block the other forever.

Throughput: one patch beat per cycle: Ho*Wo*kh*kw*CF cycles per image in steady state (the input
takes H*W*CF, hidden behind it when kh*kw >= sh*sw). The first patch needs its last real tap:
`fill_cycles` input beats. A 1x1 kernel with stride 1 and no padding is a plain wire (no buffer).

Pipeline: stage 0 holds the current tap's facts (in the image or padding, its word, its buffer
address) in registers, computed one tap ahead from the counters' next state; the read port's data
register (enabled by `en` = output empty or being read) is the output register, so latency is 1
and `valid` never depends on `ready`. `registered_read` (a plan pipelined to a clock) adds an
output register after the read port (latency 2), the padding select after it: a block RAM's
clock-to-out on ECP5 is 5.8 ns, and its data then went through a net and the select to the
consumer's register (CNV-W1A1's Conv_5 at 76b21dd: block RAM -> 5.59 ns -> select -> skid register,
12.64 ns, 79.15 MHz); with nothing between the read port and its register, the ECP5 flow makes it
the block RAM's own output register (0.97 ns clock-to-out).
A skid register behind it makes the enable a flip-flop (rtl.util.unit_enable), so no ready path
runs from the consumer into the window (CNV-W1A1's Conv_3 at a414676: its MatVec's `go` -> 5.06 ns
-> input ready -> the window's enable -> 4.63 ns -> its output register, 12.82 ns, 78.02 MHz).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from ..ir.types import BipolarType
from .util import (SELECT_BITS_PER_COPY, SKID_FFS_PER_COPY, const_product, load_output_valid, load_register,
                   replicated_select, select_slices, signed_width_for, unit_enable)
from .window_util import INT2, add_mod, int2_of_bipolar, replicate, wire_const


def _lands(moved: tuple[Signal | None, int], lo: int, hi: int) -> Value | int:
    """Whether lo <= register + offset < hi, for `moved` = (register, offset), or (None, value) for
    a constant: the register is compared with lo - offset and hi - offset, so no adder sits in
    front of the compare; a bound the register cannot cross is left out."""
    reg, off = moved
    if reg is None:
        return int(lo <= off < hi)
    if hi - lo == 1:
        return reg == lo - off
    w, signed_ = reg.shape().width, reg.shape().signed
    vmin, vmax = (-(1 << w - 1), (1 << w - 1) - 1) if signed_ else (0, (1 << w) - 1)
    fact = Const(1)
    if lo - off > vmin:
        fact = fact & (reg >= lo - off)
    if hi - off <= vmax:
        fact = fact & (reg < hi - off)
    return fact


class SlidingWindowUnit(wiring.Component):
    def __init__(self, *, in_shape, kernel, in_type, stride=(1, 1), pads=(0, 0, 0, 0), simd: int = 1,
                 pad_value: int = 0, rows: int | None = None, registered_read: bool = False):
        self.H, self.W, self.C = (int(v) for v in in_shape)
        self.kh, self.kw = (int(v) for v in kernel)
        self.sh, self.sw = (int(v) for v in stride)
        self.pt, self.pl, self.pb, self.pr = (int(v) for v in pads)
        self.simd = int(simd)
        if self.simd < 1 or self.C % self.simd:
            raise ValueError(f"SIMD {simd} does not divide {self.C} channels")
        if min(self.kh, self.kw, self.sh, self.sw) < 1 or min(pads) < 0:
            raise ValueError(f"bad window: kernel {kernel}, stride {stride}, pads {pads}")
        if self.pt >= self.kh or self.pb >= self.kh or self.pl >= self.kw or self.pr >= self.kw:
            raise ValueError(f"padding {pads} must be smaller than the kernel {kernel}")
        self.Ho = (self.H + self.pt + self.pb - self.kh) // self.sh + 1
        self.Wo = (self.W + self.pl + self.pr - self.kw) // self.sw + 1
        if self.Ho < 1 or self.Wo < 1:
            raise ValueError(f"kernel {kernel} does not fit the padded {self.H}x{self.W} input")
        self.in_type = in_type
        self.in_bits = in_type.wire_bits
        self.padded = any(p > 0 for p in pads)
        self.pad_value = int(pad_value)
        if isinstance(in_type, BipolarType) and self.padded and self.pad_value == 0:
            self.out_type = INT2
        else:
            self.out_type = in_type
            if self.padded and not (in_type.min <= self.pad_value <= in_type.max):
                raise ValueError(f"pad value {pad_value} is not a {in_type} value")
        self.out_bits = self.out_type.wire_bits
        self.CF = self.C // self.simd
        self.identity = (self.kh, self.kw, self.sh, self.sw) == (1, 1, 1, 1) and not self.padded
        R = min(self.kh + self.sh - 1, self.H) if rows is None else int(rows)
        if R < min(self.kh, self.H) or R > self.H:
            raise ValueError(f"a line buffer of {R} rows cannot serve a {self.kh}-row window on {self.H} rows")
        self.R = R
        self.registered_read = bool(registered_read) and not self.identity
        super().__init__({
            "i": In(stream.Signature(self.simd * self.in_bits)),
            "o": Out(stream.Signature(self.simd * self.out_bits)),
        })
        # a probe for tests, no port: a read whose data goes out meets a write of the same word
        self.rw_collision = Signal(name="rw_collision")

    # -- facts for the report -------------------------------------------------------------
    @property
    def out_shape(self) -> tuple[int, int]:
        return self.Ho, self.Wo

    @property
    def patch_beats(self) -> int:
        return self.kh * self.kw * self.CF

    @property
    def patch_elements(self) -> int:
        return self.kh * self.kw * self.C

    @property
    def cycles(self) -> int:
        """Cycles per image in steady state (no stalls)."""
        if self.identity:
            return self.H * self.W * self.CF
        return max(self.Ho * self.Wo * self.patch_beats, self.H * self.W * self.CF)

    @property
    def fill_cycles(self) -> int:
        """Input beats before the first patch can start."""
        if self.identity:
            return 0
        r = min(self.kh - 1 - self.pt, self.H - 1)
        c = min(self.kw - 1 - self.pl, self.W - 1)
        return (r * self.W + c + 1) * self.CF

    @property
    def buffer_bits(self) -> int:
        return 0 if self.identity else self.R * self.W * self.CF * self.simd * self.in_bits

    @property
    def tap_word_steps(self) -> tuple[int, ...]:
        """How the tap's word in the image (row * W*CF + column word) changes when the reader steps
        to the next tap: within a window row, to the next window row, to the next output column,
        to the next output row, to the next image's first tap. Each is a constant."""
        WCF, CF = self.W * self.CF, self.CF
        kh, kw, sh, sw, pt, pl = self.kh, self.kw, self.sh, self.sw, self.pt, self.pl
        last_row, last_col = (self.Ho - 1) * sh - pt + kh - 1, ((self.Wo - 1) * sw - pl + kw) * CF - 1
        return (1,
                WCF - (kw * CF - 1),
                -(kh - 1) * WCF + (sw - kw) * CF + 1,
                (sh - kh + 1) * WCF - ((self.Wo - 1) * sw + kw) * CF + 1,
                -pt * WCF - pl * CF - (last_row * WCF + last_col))

    @property
    def latency(self) -> int:
        return 0 if self.identity else 1 + int(self.registered_read)

    # -- structure ------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        if self.identity:
            m.d.comb += [self.o.payload.eq(self.i.payload), self.o.valid.eq(self.i.valid),
                         self.i.ready.eq(self.o.ready)]
            return m

        H, W, CF, R = self.H, self.W, self.CF, self.R
        kh, kw, sh, sw, pt, pl = self.kh, self.kw, self.sh, self.sw, self.pt, self.pl
        Ho, Wo = self.Ho, self.Wo
        WCF = W * CF
        HWCF = H * WCF
        D = R * WCF
        word = self.simd * self.in_bits

        # no_rw_check: yosys need not emulate a read of the word being written in the same cycle
        # (a delayed write and a bypass mux after the read data, which also kept the read register
        # out of the block RAM): the reader never uses such a read (rw_collision, tested)
        m.submodules.lines = lines = Memory(shape=word, depth=D, init=[], attrs={"no_rw_check": 1})
        wr = lines.write_port()
        rd = lines.read_port(domain="sync")

        # -- writer: the input stream fills the ring ---------------------------------------
        wpos = Signal(range(HWCF), name="wpos")  # word within the image
        wcol = Signal(range(WCF), name="wcol")  # word within the row
        wslot = Signal(range(R), name="wslot")
        wgen = Signal(2, name="wgen")

        # -- reader: patch generator ---------------------------------------------------------
        rgen = Signal(2, name="rgen")
        oh = Signal(range(Ho), name="oh")
        ow = Signal(range(Wo), name="ow")
        ki = Signal(range(kh), name="ki")
        j = Signal(range(kw * CF), name="j")  # kj*CF + cf within the window row
        r0 = Signal(signed(signed_width_for(-pt, (Ho - 1) * sh - pt)), init=-pt, name="r0")
        c0 = Signal(signed(signed_width_for(-pl * CF, ((Wo - 1) * sw - pl) * CF)), init=-pl * CF,
                    name="c0cf")  # (ow*sw - pl) * CF
        r_hi, c_hi = (Ho - 1) * sh - pt + kh - 1, ((Wo - 1) * sw - pl + kw) * CF - 1
        rdaddr_bits = max(1, (D - 1).bit_length())
        # The tap's row and column word and the buffer offsets of its row's slot, of row r0's slot
        # and of this image's row 0 (slot x W*CF) are counters of their own, each stepped by a
        # constant: computed from ki, j, c0 and the slots, the tap's address was a mux, two adds
        # and a constant product in series (CNV-W1A1's Conv_1 at e15df47, seed 2: 10.21 ns, 97.98 MHz)
        row = Signal(signed(signed_width_for(-pt, r_hi)), init=-pt, name="row")  # r0 + ki
        col = Signal(signed(signed_width_for(-pl * CF, c_hi)), init=-pl * CF, name="col")  # c0 + j
        tbase = Signal(range(D), init=(-pt) % R * WCF, name="tap_slot_base")  # slot of row r0 + ki
        s0base = Signal(range(D), init=(-pt) % R * WCF, name="slot0_base")  # slot of row r0
        bbase = Signal(range(D), name="image_base")  # slot of this image's row 0

        # Where the reader stands, as registers loaded with their next-state value when a tap fires:
        # the last-position flags of its counters and, for each way the tap can step, whether the
        # row and column it lands on lie in the image. The next tap's `real` (which can_read needs)
        # is then a choice among flip-flops; computed from the counters, the counter muxes and four
        # range compares sat in front of can_read (CNV-W1A1 at 704e348, seed 2: Conv_1's j ->
        # row / column compares -> can_read, 10.14 ns; seed 1: MaxPool_0's input valid, 12.34 ns).
        spans = {"j": kw * CF, "ki": kh, "ow": Wo, "oh": Ho}  # each counter's range
        # How each of the reader's steps (rstep 1..5: within a window row, to the next window row, to
        # the next output column, to the next output row, to the next image) sets the counters, as
        # (register, offset): the register plus a constant, or (None, value) for a constant. The
        # counters' next state and the flags about it both come from this table; a flag is then one
        # compare of a current register with a constant, not a compare after the next state's adder
        # (CNV-W1A1 at 67825d4: Conv_1's row -> row + 1 -> row + (sh - kh + 1) in range -> the
        # rows_down flag, seed 1, 10.63 ns; MaxPool_1's col -> col + 1 -> cols_next, seed 2, 10.77 ns).
        # The reset state is step 5's (an image's first tap).
        hold, zero = (lambda r: (r, 0)), (None, 0)
        after = {"j": ((j, 1), zero, zero, zero, zero),
                 "ki": (hold(ki), (ki, 1), zero, zero, zero),
                 "ow": (hold(ow), hold(ow), (ow, 1), zero, zero),
                 "oh": (hold(oh), hold(oh), hold(oh), (oh, 1), zero),
                 "row": (hold(row), (row, 1), (row, -(kh - 1)), (row, sh - kh + 1), (None, -pt)),
                 "col": ((col, 1), (col, -(kw * CF - 1)), (c0, sw * CF), (None, -pl * CF), (None, -pl * CF)),
                 "c0": (hold(c0), hold(c0), (c0, sw * CF), (None, -pl * CF), (None, -pl * CF))}
        # for each way the next tap can step: (counter, its move, the image's range)
        moves = {"rows_hold": ("row", 0, H), "rows_next": ("row", 1, H), "rows_back": ("row", -(kh - 1), H),
                 "rows_down": ("row", sh - kh + 1, H), "cols_next": ("col", 1, WCF),
                 "cols_back": ("col", -(kw * CF - 1), WCF), "cols_over": ("c0", sw * CF, WCF)}
        last = {k: Signal(init=_lands(after[k][4], n - 1, n), name=f"{k}_last") for k, n in spans.items()}
        lands_in = {k: Signal(init=_lands(after[c][4], -d, n - d), name=f"{k}_in") for k, (c, d, n) in moves.items()}

        # The current tap's facts are registers, computed from the counters' next state when they
        # advance: computed from the counters in the same cycle, the constant product and adds sat
        # between the counters and the line buffer's read address (CNV-W1A1's Conv_2: 14.66 ns).
        word0 = -pt * WCF - pl * CF  # the first tap's word in the image
        real = Signal(init=int(pt == 0 and pl == 0), name="real")
        rdaddr = Signal(rdaddr_bits, init=((-pt) % R * WCF - pl * CF) % (1 << rdaddr_bits), name="rdaddr")

        diff = Signal(2, name="gen_diff")  # writer generation - reader generation
        m.d.comb += diff.eq(wgen - rgen)
        same, ahead, behind = diff == 0, diff == 1, diff == 3

        # The oldest word the reader still needs is the start of row max(r0, 0); the writer may go up
        # to D words past it (`free`, or `free_ahead` for a writer one image ahead). Registers, not a
        # function of r0 in the same cycle: then the constant product, the add and the compares sat on
        # the input-ready path (CNV-W1A1's second max pool: 10.7 ns of it, 60.9 MHz). They advance by a
        # constant per output row (r0 += sh) from `rowfree` = r0*WCF + D unclamped: loaded as a
        # function of r0 + sh, the product and adds sat before free_ahead (CNV-W1A1's Conv_1: 12.3 ns).
        free = Signal(range(HWCF + D + 1), init=D, name="free_before")
        free_ahead = Signal(signed(signed_width_for(D - HWCF, HWCF + D)), init=D - HWCF, name="free_ahead")
        rowfree = Signal(signed(signed_width_for(-pt * WCF + D, ((Ho - 1) * sh - pt) * WCF + D)),
                         init=-pt * WCF + D, name="rowfree")

        # The writer's permission is a register (input ready never follows a compare), computed from
        # the writer's next position and the reader's current state: the reader only ever frees
        # words, so seeing its update one cycle late delays a permission by a cycle, never grants a
        # wrong one. Combinational, the compare sat between the line buffer and the producer's skid
        # (CNV-W1A1's first max pool: wpos compare -> ready -> skid, 78.44 MHz).
        can_write = Signal(init=1, name="can_write")  # free > 0 words at reset
        # the writer is at the image's last word (a register: its compare fed can_read's candidates)
        wrap = Signal(init=int(HWCF == 1), name="writer_last")
        stay = behind | (same & (wpos < free)) | (ahead & (wpos < free_ahead))
        # after a write: the next word, or word 0 of the next image (generation diff + 1)
        after_write = Mux(wrap, behind | (same & (free_ahead > 0)),
                          behind | (same & (wpos + 1 < free)) | (ahead & (wpos + 1 < free_ahead)))
        # The reader's permission is a register too, but exact (a tap is never read a cycle late):
        # can_read = ~real | ahead | (same & wpos > tap word), loaded with its value for the next
        # state. The compare works on `dist` = wpos - the tap's word, a register moved by a
        # constant per writer and reader step (tap_word_steps); combinational, the compare
        # ran into fire and every reader counter's enable (CNV-W1A1's Conv_1 at 9110f22, both
        # seeds: wpos > tapword -> can_read -> fire -> counter enables, 10.06 ns).
        steps = self.tap_word_steps
        dist_lo = -(r_hi * WCF + c_hi)  # the last tap's word, the writer at word 0
        dist_hi = HWCF - 1 - word0
        dist = Signal(signed(signed_width_for(dist_lo, dist_hi)), init=-word0, name="dist")
        # can_read for the next cycle has two flip-flops, its value if the writer writes this cycle
        # and if not, and a third remembers whether it wrote: can_read is a mux of the three. The
        # input valid then reaches only flip-flops through one LUT (wfire), whatever synthesis
        # does to the rest: ABC, which takes every flip-flop's output to arrive at the same time,
        # had put the upstream valid at the head of can_read's six LUT levels, behind two long nets
        # (CNV-W1A1 at 117f6cb, both seeds: BipolarQuant_10's valid -> MaxPool_0's can_read, 11.8 ns).
        can_read_w = Signal(name="can_read_if_written")
        can_read_h = Signal(init=int(pt > 0 or pl > 0), name="can_read_if_not")  # the first tap: padding
        wrote = Signal(name="wrote")
        can_read = Signal(name="can_read")
        m.d.comb += can_read.eq(Mux(wrote, can_read_w, can_read_h))
        rstep = Signal(range(len(steps) + 1), name="reader_step")  # 1 + the step the reader takes

        # writer
        wfire = Signal()
        m.d.comb += [
            self.i.ready.eq(can_write),
            wfire.eq(self.i.valid & can_write),
            wr.addr.eq(const_product(wslot, WCF) + wcol), wr.data.eq(self.i.payload), wr.en.eq(wfire),
        ]
        m.d.sync += can_write.eq(Mux(wfire, after_write, stay))
        with m.If(wfire):
            with m.If(wcol == WCF - 1):
                m.d.sync += [wcol.eq(0), wslot.eq(add_mod(wslot, 1, R))]
            with m.Else():
                m.d.sync += wcol.eq(wcol + 1)
            with m.If(wrap):
                m.d.sync += [wpos.eq(0), wgen.eq(wgen + 1), wrap.eq(HWCF == 1)]
            with m.Else():
                m.d.sync += [wpos.eq(wpos + 1), wrap.eq(wpos == HWCF - 2)]

        # reader: the counters' next state (`_a`: the tap after this one), taken when a tap fires
        counters = dict(j=j, ki=ki, ow=ow, oh=oh, r0=r0, c0=c0, row=row, col=col, tbase=tbase,
                        s0base=s0base, bbase=bbase,
                        rgen=rgen, free=free, free_ahead=free_ahead, rowfree=rowfree)
        a = {k: Signal.like(v, name=f"{v.name}_a") for k, v in counters.items()}
        m.d.comb += [a[k].eq(v) for k, v in counters.items()]  # hold unless advanced below
        with m.If(~last["j"]):
            m.d.comb += rstep.eq(1)
        with m.Elif(~last["ki"]):  # the next window row: its slot follows (mod R)
            m.d.comb += [a["tbase"].eq(add_mod(tbase, WCF, D)), rstep.eq(2)]
        with m.Elif(~last["ow"]):  # the next output column, the window's first row
            m.d.comb += [a["tbase"].eq(s0base), rstep.eq(3)]
        with m.Elif(~last["oh"]):
            nxt = add_mod(s0base, sh * WCF, D)
            inside = r0 > -sh  # row r0 + sh >= 1: it holds words the reader frees
            row_next = rowfree + sh * WCF
            m.d.comb += [a["r0"].eq(r0 + sh), rstep.eq(4), a["s0base"].eq(nxt), a["tbase"].eq(nxt),
                         a["rowfree"].eq(row_next), a["free"].eq(Mux(inside, row_next, D)),
                         a["free_ahead"].eq(Mux(inside, rowfree + (sh * WCF - HWCF), D - HWCF))]
        with m.Else():
            nxt = add_mod(bbase, (H - pt) * WCF, D)
            m.d.comb += [a["r0"].eq(-pt), rstep.eq(5), a["bbase"].eq(add_mod(bbase, H * WCF, D)),
                         a["s0base"].eq(nxt), a["tbase"].eq(nxt), a["rgen"].eq(rgen + 1),
                         a["free"].eq(D), a["free_ahead"].eq(D - HWCF), a["rowfree"].eq(-pt * WCF + D)]
        # the tabled counters' next state, and the flags about it loaded when the tap fires
        last_a = {k: Signal(name=f"{k}_last_a") for k in spans}
        lands_a = {k: Signal(name=f"{k}_in_a") for k in moves}
        with m.Switch(rstep):
            for b in range(len(steps)):
                with m.Case(b + 1):
                    for k, moved in after.items():
                        reg, off = moved[b]
                        m.d.comb += a[k].eq(off if reg is None else reg + off)
                    for k, n in spans.items():  # a held counter keeps its flag
                        reg, off = after[k][b]
                        m.d.comb += last_a[k].eq(last[k] if reg is not None and off == 0
                                                 else _lands(after[k][b], n - 1, n))
                    for k, (c, d, n) in moves.items():
                        m.d.comb += lands_a[k].eq(_lands(after[c][b], -d, n - d))
        addr_a = (a["tbase"] + a["col"])[:rdaddr_bits]
        real_a = Signal(name="real_a")  # the next tap lies in the image: per step, a row and a column flag
        with m.Switch(rstep):
            for b, fact in enumerate((lands_in["rows_hold"] & lands_in["cols_next"],
                                      lands_in["rows_next"] & lands_in["cols_back"],
                                      lands_in["rows_back"] & lands_in["cols_over"],
                                      lands_in["rows_down"] & int(pl == 0),
                                      Const(int(pt == 0 and pl == 0)))):
                with m.Case(b + 1):
                    m.d.comb += real_a.eq(fact)

        # stage 0 -> read port data register (the output register)
        out_valid, pad1 = Signal(), Signal()
        if self.registered_read:  # the enable is a flip-flop: a skid register behind the output register
            out_data = Signal(len(self.o.payload))  # read only under out_valid
            en, regs_en = unit_enable(m, self, out_valid, out_data, registered=True)
            # the reader's control (counters, tap facts, can_read, dist) on a copy of its own: the
            # master also steers the output valid and the skid (Conv_2 at a31af84: 4.96 ns net)
            reader_en = regs_en.take(SKID_FFS_PER_COPY)
        else:
            en = reader_en = Signal()
            m.d.comb += en.eq(~out_valid | self.o.ready)
        fire = Signal()
        m.d.comb += [
            fire.eq(reader_en & can_read),
            rd.addr.eq(rdaddr),
            rd.en.eq(en),
            self.rw_collision.eq(fire & real & wfire & (wr.addr == rdaddr)),
        ]
        read_valid = Signal() if self.registered_read else out_valid  # the read port's data is valid
        with m.If(en):
            m.d.sync += [read_valid.eq(fire), pad1.eq(~real)]
        with m.If(fire):
            m.d.sync += [v.eq(a[k]) for k, v in counters.items()]
            m.d.sync += [real.eq(real_a), rdaddr.eq(addr_a)]
            m.d.sync += [last[k].eq(last_a[k]) for k in spans]
            m.d.sync += [lands_in[k].eq(lands_a[k]) for k in moves]

        # can_read and dist for the next state. dist moves by (the writer's step) - (the tap word's
        # step): every candidate (writer holds or writes; reader holds or steps) is computed from
        # registers, and fire and the writer's fire only pick one in the last LUTs before the
        # flip-flops. A move chosen by them in front of one adder put the upstream valid and the
        # window's enable before a table and a carry chain (CNV-W1A1 at a31af84: MaxPool_0's input
        # valid -> 3 LUTs -> dist + move -> can_read, 11.27 ns; Conv_2's go -> the same, 12.13 ns).
        # (wrap: a write starts the next image, wpos' = 0)
        wmove = Mux(wrap, 1 - HWCF, 1)
        step, step_w = (Signal(signed(signed_width_for(min(t), max(t))), name=n) for t, n in (
            (steps, "tap_step"),                                                        # the tap word's step
            ([w - s for s in steps for w in (1, 1 - HWCF)], "writer_less_tap_step")))  # wmove - step
        # dist' > 0 for each case; after a write that starts an image the writer is at word 0, which
        # no real tap's word lies below, so only ~real and the generations count there. The reader's
        # cases compare dist with each step's constant (in parallel, from the register) and the step
        # picks a result: a table then a subtraction put a carry chain after the step's choice.
        gt_r, ge_r = Signal(name="dist_gt_step"), Signal(name="dist_ge_step")
        with m.Switch(rstep):
            for b, st in enumerate(steps):
                with m.Case(b + 1):
                    m.d.comb += [step.eq(st), step_w.eq(Mux(wrap, 1 - HWCF - st, 1 - st)),
                                 gt_r.eq(dist > st), ge_r.eq(dist >= st)]
        d_w, d_r, d_rw = dist + wmove, dist - step, dist + step_w  # writer, reader, both step
        gt_h, gt_w = dist > 0, ~dist[-1] & ~wrap  # dist > 0; dist + 1 > 0
        gt_rw = ge_r & ~wrap                      # dist - step + 1 > 0
        rgen_a = a["rgen"]

        def gen_diff(rgen_, write):  # writer generation - reader generation after the step
            diff_ = Signal(2)
            m.d.comb += diff_.eq(wgen + (wrap if write else 0) - rgen_)
            return diff_

        def readable(real_, diff_, gt):
            return ~real_ | (diff_ == 1) | ((diff_ == 0) & gt)

        m.d.sync += [
            can_read_w.eq(Mux(fire, readable(real_a, gen_diff(rgen_a, True), gt_rw),
                              readable(real, gen_diff(rgen, True), gt_w))),
            can_read_h.eq(Mux(fire, readable(real_a, gen_diff(rgen_a, False), gt_r), readable(real, diff, gt_h))),
            wrote.eq(wfire),
            dist.eq(Mux(fire, Mux(wfire, d_rw, d_r), Mux(wfire, d_w, dist))),
        ]

        # output: the read data with padding taps replaced
        if self.registered_read:  # unit_enable drives the output port from out_data and the skid register
            load_output_valid(m, self, en, regs_en, out_valid, read_valid)
            # the read data registered straight after the read port, the padding select after it on
            # registered copies of pad1: on ECP5 the flow makes that register the block RAM's own
            # (hwgen.flows.bram_outreg), which a select in front of it ruled out
            read_q = Signal(word, name="read_q", reset_less=True)
            load_register(m, regs_en, read_q, rd.data)
            pads = replicated_select(m, en, pad1, len(out_data), "pad_q")
            m.d.comb += out_data.eq(self._taps(read_q, lambda bit: pads[bit // SELECT_BITS_PER_COPY]))
        else:
            m.d.comb += [self.o.valid.eq(out_valid), self.o.payload.eq(self._taps(rd.data, lambda bit: pad1))]
        return m

    def _taps(self, data: Value, pad_at) -> Value:
        """The read data with padding taps replaced, each output bit's select from `pad_at(bit)`."""
        if self.out_type is INT2 and isinstance(self.in_type, BipolarType):
            return Cat(*[int2_of_bipolar(data[e], pad_at(2 * e)) for e in range(self.simd)])
        padword = Const(replicate(wire_const(self.pad_value, self.in_type) if self.padded else 0,
                                  self.in_bits, self.simd), len(data))
        return Cat(*[Mux(pad_at(lo), padword[lo:hi], data[lo:hi]) for lo, hi in select_slices(len(data))])
