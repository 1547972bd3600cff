"""Stream FIFO: amaranth.lib.fifo.SyncFIFOBuffered's behaviour cycle for cycle (a RAM of depth - 1
words behind one output register), with its write-side ready held in a flip-flop.

SyncFIFOBuffered's w_rdy compares the fill level with a constant: for a deep FIFO that is two or
three LUT levels between the level register and everything the ready feeds upstream (CNV-W1A1's
Gemm_2_fifo, 9-bit level: 3.3 ns of a 14.5 ns critical path into the layers in front of it). Here
the compare is made on the next level and registered, so the upstream ready path starts at a
flip-flop. The read-side valid is registered too: a FIFO cuts the combinational ready path between
the layers it separates. A wide FIFO is built as slices of at most FIFO_BITS_PER_SLICE bits, each a
FIFO with its own copy of the control, so that no one read enable reaches every output flip-flop.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .util import SKID_FFS_PER_COPY, bit_slices

FIFO_BITS_PER_SLICE = SKID_FFS_PER_COPY  # output flip-flops one copy of the FIFO's control drives


def _incr(value, modulo: int):
    return value + 1 if modulo == 1 << len(value) else Mux(value == modulo - 1, 0, value + 1)


class StreamFIFO(wiring.Component):
    def __init__(self, *, width: int, depth: int):
        self.width, self.depth = int(width), int(depth)
        if self.depth < 1:
            raise ValueError(f"FIFO depth must be at least 1, not {depth}")
        super().__init__({
            "i": In(stream.Signature(self.width)),
            "o": Out(stream.Signature(self.width)),
        })
        # a probe for tests, no port: a RAM write meets the read of its word
        self.rw_collision = Signal(name="rw_collision")

    latency = 2

    @property
    def memory_bits(self) -> int:
        return self.width * self.depth

    def elaborate(self, platform):
        m = Module()
        if self.depth == 1:  # one register, a beat every other cycle (as SyncFIFOBuffered)
            m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.width, depth=1)
            m.d.comb += [
                fifo.w_data.eq(self.i.payload), fifo.w_en.eq(self.i.valid), self.i.ready.eq(fifo.w_rdy),
                self.o.payload.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.o.ready),
            ]
            return m

        # One FIFO per slice of at most FIFO_BITS_PER_SLICE bits, each with its own copy of the
        # control (level, pointers, ready / valid flags): the copies see the same input valid and
        # output ready, so they move together, and each read enable drives only its slice's output
        # register. With one control, one read-enable net reached every output flip-flop's clock
        # enable (KWS's Gemm_1 credit FIFO, 2,600 bits: 16.58 ns of routing, 42.9 MHz; CNV-W1A1's
        # Conv_1, 350 bits: 7.51 ns). The port's ready and valid are the first copy's.
        collisions = []
        for k, (lo, hi) in enumerate(fifo_slices(self.width)):
            w_rdy, r_rdy, data, collision = _fifo_slice(m, k, self.i.valid, self.i.payload[lo:hi], self.o.ready,
                                                        self.depth - 1)
            m.d.comb += self.o.payload[lo:hi].eq(data)
            collisions.append(collision)
            if k == 0:
                m.d.comb += [self.i.ready.eq(w_rdy), self.o.valid.eq(r_rdy)]
        m.d.comb += self.rw_collision.eq(Cat(*collisions).any())
        return m


def fifo_slices(width: int) -> list[tuple[int, int]]:
    """The bit ranges of a StreamFIFO's slices, each with a control of its own."""
    return bit_slices(width, FIFO_BITS_PER_SLICE)


def _fifo_slice(m, k: int, i_valid, i_data, o_ready, inner: int):
    """One slice: a RAM of `inner` words behind an output register (the read port's), its level,
    pointers and registered ready / valid. Returns (w_rdy, r_rdy, read data, collision probe)."""
    level = Signal(range(inner + 1), name=f"inner_level{k}")
    w_rdy = Signal(init=1, name=f"w_rdy{k}")  # == (level != inner), one cycle ahead
    r_rdy = Signal(name=f"r_rdy{k}")
    do_write = Signal(name=f"do_write{k}")
    do_read = Signal(name=f"do_read{k}")  # RAM -> output register
    m.d.comb += [
        do_write.eq(w_rdy & i_valid),
        do_read.eq((level != 0) & (~r_rdy | o_ready)),
    ]

    # no_rw_check (yosys adds no read-before-write emulation, and the read register can be the
    # block RAM's own): produce - consume = level (mod inner), so a read (level != 0) and a write
    # (level != inner) of one word in the same cycle cannot happen
    storage = Memory(shape=len(i_data), depth=inner, init=[], attrs={"no_rw_check": 1})
    m.submodules[f"storage{k}"] = storage
    wr = storage.write_port()
    rd = storage.read_port(domain="sync")
    produce = Signal(range(inner), name=f"produce{k}")
    consume = Signal(range(inner), name=f"consume{k}")
    collision = Signal(name=f"rw_collision{k}")
    m.d.comb += [
        wr.addr.eq(produce), wr.data.eq(i_data), wr.en.eq(do_write),
        rd.addr.eq(consume), rd.en.eq(do_read),
        collision.eq(do_read & do_write & (produce == consume)),
    ]
    with m.If(do_write):
        m.d.sync += produce.eq(_incr(produce, inner))
    with m.If(do_read):
        m.d.sync += consume.eq(_incr(consume, inner))

    # the level changes by at most one: the next level is full exactly when this one is full
    # and nothing leaves, or one short of full and a word comes in and none leaves
    with m.If(do_write & ~do_read):
        m.d.sync += [level.eq(level + 1), w_rdy.eq(level != inner - 1)]
    with m.Elif(do_read & ~do_write):
        m.d.sync += [level.eq(level - 1), w_rdy.eq(1)]

    with m.If(do_read):
        m.d.sync += r_rdy.eq(1)
    with m.Elif(o_ready):
        m.d.sync += r_rdy.eq(0)
    return w_rdy, r_rdy, rd.data, collision
