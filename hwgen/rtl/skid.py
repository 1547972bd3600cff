"""Skid buffer (a register slice): cuts the combinational ready path between two units.

A unit's input ready is combinational from its output ready (its pipeline advances under one
enable, `~out_valid | o.ready`); chained, every unit's enable would wait for the last unit's
ready in the same cycle, and the path grows with the design. Between two such units the schedule
puts this buffer: its input ready is a register (`skid_empty`), so no ready path crosses it.

Two entries (the output register and the skid register), full throughput, one cycle of latency:
a beat moves to the output register when it is free or being read, and parks in the skid
register for the one cycle the consumer stalls while the producer still saw `ready` high.
"""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .util import select_slices


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
        # Both state bits (out_valid, skid_empty) are kept as one copy per 64 data bits
        # (util.select_slices): a wide skid's registers spread with the unit beside it (CNV-W1A1's
        # 352-bit skid behind Conv_1 across the ECP5), and one valid bit steering every clock enable and mux was the critical path
        # (skid_valid -> 11 ns net -> LUT -> 6 ns net -> skid_data enables). The copies compute
        # the same next state from their own outputs, so they stay equal and synthesis cannot
        # merge them; the skid data register loads whenever its copy says the skid is empty, so
        # its enable is a copy's output with no logic between.
        # Each copy stores `skid_empty` (reset 1) rather than a valid bit, so the input ready is a
        # flip-flop's output with no inverter between it and the producer's enable (CNV-W1A1 at
        # 68.27 MHz: MaxPool_0_skid's valid -> 4.9 ns net -> inverter -> BipolarQuant_10's enable).
        slices = select_slices(self.width)
        out_valid = [Signal(name=f"out_valid{k}") for k in range(len(slices))]
        skid_empty = [Signal(init=1, name=f"skid_empty{k}") for k in range(len(slices))]
        # data registers are reset-less: read only under their valid bits
        out_data, skid_data = Signal(self.width, reset_less=True), Signal(self.width, reset_less=True)
        m.d.comb += [
            self.i.ready.eq(skid_empty[0]),
            self.o.valid.eq(out_valid[0]),
            self.o.payload.eq(out_data),
        ]
        for ov, se, (lo, hi) in zip(out_valid, skid_empty, slices):
            with m.If(self.o.ready | ~ov):
                with m.If(~se):
                    m.d.sync += [out_data[lo:hi].eq(skid_data[lo:hi]), ov.eq(1), se.eq(1)]
                with m.Else():
                    m.d.sync += [out_data[lo:hi].eq(self.i.payload[lo:hi]), ov.eq(self.i.valid)]
            with m.Elif(self.i.valid & se):
                m.d.sync += se.eq(0)
            with m.If(se):  # empty: load every cycle (read only once it says it holds a beat)
                m.d.sync += skid_data[lo:hi].eq(self.i.payload[lo:hi])
        return m
