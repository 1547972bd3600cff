"""Small helpers shared by the spatial (windowed) RTL components; not components themselves."""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Mux, Signal, Value, signed

from ..ir.types import BipolarType, IntType

INT2 = IntType(2, signed=True)  # -1 / 0 / +1: a Bipolar element that may also be a zero-padding tap


def add_mod(value: Value, k: int, modulus: int) -> Value:
    """(value + k) mod modulus for value in [0, modulus) and a constant k (any integer). The wrap
    test compares `value` itself with a constant, beside the two adds, not their sum: the sum, its
    compare and the mux were three stages in series on the window's tap-address path."""
    k %= modulus
    if modulus == 1:
        return Const(0, 1)
    if k == 0:
        return value
    return Mux(value >= modulus - k, value - (modulus - k), value + k)


def value_of(bits: Value, dtype) -> Value:
    """The integer an element's wire bits stand for (Bipolar: 0 -> -1, 1 -> +1), as a signed or
    unsigned Amaranth value."""
    if isinstance(dtype, BipolarType):
        return Mux(bits[0], Const(1, signed(2)), Const(-1, signed(2)))
    return bits.as_signed() if dtype.signed else bits.as_unsigned()


def elements(payload: Value, n: int, bits: int) -> list[Value]:
    """The n element slices (wire bits) of a beat."""
    return [payload[e * bits:(e + 1) * bits] for e in range(n)]


def wire_const(value: int, dtype) -> int:
    """Wire bit pattern of an integer value of dtype."""
    if isinstance(dtype, BipolarType):
        if value not in (-1, 1):
            raise ValueError(f"{value} is not a Bipolar value")
        return int(value > 0)
    return int(value) & ((1 << dtype.bits) - 1)


def replicate(pattern: int, bits: int, n: int) -> int:
    word = 0
    for e in range(n):
        word |= (pattern & ((1 << bits) - 1)) << (e * bits)
    return word


def elementwise_max(a: list[Value], b: list[Value], dtype) -> list[Value]:
    """Per element max of two element lists (wire bits), as wire bits."""
    out = []
    for x, y in zip(a, b):
        if isinstance(dtype, BipolarType):
            out.append(x | y)
        elif dtype.signed:
            out.append(Mux(x.as_signed() >= y.as_signed(), x, y))
        else:
            out.append(Mux(x >= y, x, y))
    return out


def int2_of_bipolar(bit: Value, pad: Value) -> Value:
    """A Bipolar wire bit as INT2 (+1 = 0b01, -1 = 0b11), or 0 for a padding tap."""
    return Mux(pad, Const(0, 2), Cat(Const(1, 1), ~bit))


class TapReducerFacts:
    """The report facts of a pool unit built as a sliding window (`self.swg`) over C channels
    followed by reduce_over_taps: shapes, cycles and latency come from the window."""
    rom_bits = 0

    @property
    def out_shape(self) -> tuple[int, int, int]:
        return (*self.swg.out_shape, self.C)

    @property
    def cycles(self) -> int:
        return self.swg.cycles

    @property
    def fill_cycles(self) -> int:
        return self.swg.fill_cycles

    @property
    def latency(self) -> int:
        return self.swg.fill_cycles + self.swg.latency + self.swg.patch_beats + 1


def reduce_over_taps(m, src, o, *, groups: int, taps: int, width: int, first_value, merge) -> None:
    """The reduction every windowed pool shares. A sliding window (`src`) sends, per output pixel,
    `taps` beats (kernel positions) for each of `groups` channel groups, group-major within a tap;
    a register per group keeps the running value of its window: first_value(payload) at the first
    tap, merge(running, payload) at the others (both `width` bits). The last tap's value goes to
    the output register (`o`). Drives src.ready, o.valid and o.payload."""
    cf = Signal(range(groups), name="cf")
    tap = Signal(range(taps), name="tap")
    first, last = tap == 0, tap == taps - 1
    regs = [Signal(width, name=f"run{k}") for k in range(groups)] if taps > 1 else []
    new = Signal(width, name="new")  # the running value after this beat; the head register is its group's
    m.d.comb += new.eq(first_value(src.payload))
    if regs:
        with m.If(~first):
            m.d.comb += new.eq(merge(regs[0], src.payload))

    out_valid = Signal()
    out_data = Signal(width)
    fire = Signal()
    m.d.comb += [
        src.ready.eq(~last | ~out_valid | o.ready),
        fire.eq(src.valid & src.ready),
        o.valid.eq(out_valid),
        o.payload.eq(out_data),
    ]
    with m.If(o.ready):
        m.d.sync += out_valid.eq(0)
    with m.If(fire):
        if regs:
            m.d.sync += [regs[k].eq(regs[k + 1]) for k in range(groups - 1)]
            m.d.sync += regs[-1].eq(new)
        with m.If(last):
            m.d.sync += [out_valid.eq(1), out_data.eq(new)]
        with m.If(cf == groups - 1):
            m.d.sync += [cf.eq(0), tap.eq(tap + 1)]
            with m.If(last):
                m.d.sync += tap.eq(0)
        with m.Else():
            m.d.sync += cf.eq(cf + 1)
