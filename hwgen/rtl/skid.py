"""Skid buffer (a register slice): cuts the combinational ready path between two units.

A unit's input ready is combinational from its output ready (its pipeline advances under one
enable, `~out_valid | o.ready`); chained, every unit's enable would wait for the last unit's
ready in the same cycle, and the path grows with the design. Between two such units the schedule
puts this buffer: its input ready is a register (`~skid_valid`), so no ready path crosses it.

Two entries (the output register and the skid register), full throughput, one cycle of latency:
a beat moves to the output register when it is free or being read, and parks in the skid
register for the one cycle the consumer stalls while the producer still saw `ready` high.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class SkidBuffer(wiring.Component):
    latency = 1

    def __init__(self, *, width: int):
        self.width = int(width)
        super().__init__({
            "i": In(stream.Signature(self.width)),
            "o": Out(stream.Signature(self.width)),
        })

    @property
    def memory_bits(self) -> int:
        return 0

    def elaborate(self, platform):
        m = Module()
        out_valid, skid_valid = Signal(), Signal()
        # data registers are reset-less: read only under their valid bits
        out_data, skid_data = Signal(self.width, reset_less=True), Signal(self.width, reset_less=True)
        m.d.comb += [
            self.i.ready.eq(~skid_valid),
            self.o.valid.eq(out_valid),
            self.o.payload.eq(out_data),
        ]
        with m.If(self.o.ready | ~out_valid):
            with m.If(skid_valid):
                m.d.sync += [out_data.eq(skid_data), out_valid.eq(1), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [out_data.eq(self.i.payload), out_valid.eq(self.i.valid)]
        with m.Elif(self.i.valid & ~skid_valid):
            m.d.sync += [skid_data.eq(self.i.payload), skid_valid.eq(1)]
        return m
