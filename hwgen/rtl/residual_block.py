"""An unrolled residual step out = Add(h, f(h)) for a chain of units f (ResNet outside an ODE block).

    i -> fork -+-> skip FIFO (a whole feature map) -------------+-> ResidualAddUnit -> o
               +-> f's units [-> WidthConverter to h's beats] --+

The fork passes a beat when both branches take it. The skip FIFO holds every element of h that
f has taken but not yet turned into output, at most one feature map (f's units hold less than
an image), so the Add never starves while the fork waits.
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .fifo import StreamFIFO
from .residual_add import ResidualAddUnit


class ResidualBlock(wiring.Component):
    def __init__(self, *, add, skip_port: str, stages: list, in_fmt, out_fmt, fifo_slack: int = 2):
        self.add_op, self.stages = add, stages
        self.in_fmt, self.out_fmt = in_fmt, out_fmt
        self.skip_port = skip_port
        self.body_port = "b" if skip_port == "a" else "a"
        self.skip = StreamFIFO(width=in_fmt.payload_bits, depth=max(4, in_fmt.beats + fifo_slack))
        self.add = ResidualAddUnit.from_op(add, elems=in_fmt.per_beat)
        super().__init__({
            "i": In(stream.Signature(in_fmt.payload_bits)),
            "o": Out(stream.Signature(out_fmt.payload_bits)),
        })

    latency = 1

    @property
    def cycles(self) -> int:
        return max([self.in_fmt.beats] + [st.cycles for st in self.stages])

    @property
    def buffer_bits(self) -> int:
        return self.skip.memory_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.skip = self.skip
        m.submodules.add = self.add
        body_in = None
        prev = None
        for k, st in enumerate(self.stages):
            m.submodules[f"f{k}_{st.name}"] = st.unit
            if prev is None:
                body_in = st.unit.i
            else:
                wiring.connect(m, prev.o, st.unit.i)
            prev = st.unit
        wiring.connect(m, self.skip.o, getattr(self.add, self.skip_port))
        wiring.connect(m, prev.o, getattr(self.add, self.body_port))
        wiring.connect(m, self.add.o, wiring.flipped(self.o))
        # fork: a beat moves into both branches at once
        m.d.comb += [
            self.skip.i.payload.eq(self.i.payload), body_in.payload.eq(self.i.payload),
            self.skip.i.valid.eq(self.i.valid & body_in.ready),
            body_in.valid.eq(self.i.valid & self.skip.i.ready),
            self.i.ready.eq(self.skip.i.ready & body_in.ready),
        ]
        return m
