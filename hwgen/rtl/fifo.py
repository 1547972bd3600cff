"""Stream FIFO: `amaranth.lib.fifo.SyncFIFOBuffered` with stream ports.

Its write-side ready depends only on the fill level and its read-side valid is registered, so
a FIFO also cuts the combinational ready path between the layers it separates.
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.wiring import In, Out


class StreamFIFO(wiring.Component):
    def __init__(self, *, width: int, depth: int):
        self.width, self.depth = int(width), int(depth)
        super().__init__({
            "i": In(stream.Signature(self.width)),
            "o": Out(stream.Signature(self.width)),
        })

    latency = 2

    @property
    def memory_bits(self) -> int:
        return self.width * self.depth

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = fifo = SyncFIFOBuffered(width=self.width, depth=self.depth)
        m.d.comb += [
            fifo.w_data.eq(self.i.payload), fifo.w_en.eq(self.i.valid), self.i.ready.eq(fifo.w_rdy),
            self.o.payload.eq(fifo.r_data), self.o.valid.eq(fifo.r_rdy), fifo.r_en.eq(self.o.ready),
        ]
        return m
