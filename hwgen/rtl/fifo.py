"""Stream FIFO: amaranth.lib.fifo.SyncFIFOBuffered's behaviour cycle for cycle (a RAM of depth - 1
words behind one output register), with its write-side ready held in a flip-flop.

SyncFIFOBuffered's w_rdy compares the fill level with a constant: for a deep FIFO that is two or
three LUT levels between the level register and everything the ready feeds upstream (CNV-W1A1's
Gemm_2_fifo, 9-bit level: 3.3 ns of a 14.5 ns critical path into the layers in front of it). Here
the compare is made on the next level and registered, so the upstream ready path starts at a
flip-flop. The read-side valid is registered too: a FIFO cuts the combinational ready path between
the layers it separates.
"""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out


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

        inner = self.depth - 1  # words in the RAM; the output register holds one more
        level = Signal(range(inner + 1), name="inner_level")
        w_rdy = Signal(init=1, name="w_rdy")  # == (level != inner), one cycle ahead
        r_rdy = Signal(name="r_rdy")
        do_write = Signal()
        do_read = Signal()  # RAM -> output register
        m.d.comb += [
            self.i.ready.eq(w_rdy),
            self.o.valid.eq(r_rdy),
            do_write.eq(w_rdy & self.i.valid),
            do_read.eq((level != 0) & (~r_rdy | self.o.ready)),
        ]

        # no_rw_check (yosys adds no read-before-write emulation, and the read register can be the
        # block RAM's own): produce - consume = level (mod inner), so a read (level != 0) and a write
        # (level != inner) of one word in the same cycle cannot happen
        m.submodules.storage = storage = Memory(shape=self.width, depth=inner, init=[], attrs={"no_rw_check": 1})
        wr = storage.write_port()
        rd = storage.read_port(domain="sync")
        produce = Signal(range(inner), name="produce")
        consume = Signal(range(inner), name="consume")
        m.d.comb += [
            wr.addr.eq(produce), wr.data.eq(self.i.payload), wr.en.eq(do_write),
            rd.addr.eq(consume), rd.en.eq(do_read), self.o.payload.eq(rd.data),
            self.rw_collision.eq(do_read & do_write & (produce == consume)),
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
        with m.Elif(self.o.ready):
            m.d.sync += r_rdy.eq(0)
        return m
