"""An unrolled residual step out = Add(f(h), g(h)) for chains of units f (the body) and g (the skip
path: empty for an identity shortcut, e.g. a 1x1 stride-2 conv and its activation for a ResNet
projection shortcut), outside an ODE block.

    i -> fork -+-> g's units [-> WidthConverter] -> skip FIFO (a whole map) -+-> ResidualAddUnit -> o
               +-> f's units [-> WidthConverter to the join's beats] -------+

The fork passes a beat when both branches take it. The skip FIFO holds every element of g(h)
that the Add cannot take yet because f has not produced its partner, at most one feature map
(f's units hold less than an image), so the Add never starves while the fork waits. That covers g
running ahead of f by any amount; a g that needs more of h than f does is refused at planning
(hwgen.lowering.residual, from the block's timing model).
"""
from __future__ import annotations

from itertools import pairwise

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from .fifo import StreamFIFO
from .residual_add import ResidualAddUnit


class ResidualBlock(wiring.Component):
    """`stages` are f's planned stages, `skip_stages` g's; `skip_fmt` is the stream entering the skip
    FIFO (in_fmt for an identity skip), in the join's beats."""

    def __init__(self, *, add, skip_port: str, stages: list, in_fmt, out_fmt, fifo_slack: int = 2,
                 skip_stages=(), skip_fmt=None):
        self.add_op, self.stages = add, stages
        self.skip_stages = list(skip_stages)
        self.in_fmt, self.out_fmt = in_fmt, out_fmt
        self.skip_fmt = skip_fmt if skip_fmt is not None else in_fmt
        self.skip_port = skip_port
        self.body_port = "b" if skip_port == "a" else "a"
        self.skip = StreamFIFO(width=self.skip_fmt.payload_bits, depth=max(4, self.skip_fmt.beats + fifo_slack))
        self.add = ResidualAddUnit.from_op(add, elems=out_fmt.per_beat)
        super().__init__({
            "i": In(stream.Signature(in_fmt.payload_bits)),
            "o": Out(stream.Signature(out_fmt.payload_bits)),
        })

    latency = 1

    @property
    def cycles(self) -> int:
        return max([self.in_fmt.beats, self.out_fmt.beats] + [st.cycles for st in self.stages + self.skip_stages])

    @property
    def buffer_bits(self) -> int:
        return self.skip.memory_bits

    @staticmethod
    def _chain(m, prefix: str, stages, last):
        """Connect `stages` in order and the last one to `last`; the first unit's input port."""
        ports = [st.unit for st in stages]
        for k, st in enumerate(stages):
            m.submodules[f"{prefix}{k}_{st.name}"] = st.unit
        for a, b in pairwise(ports):
            wiring.connect(m, a.o, b.i)
        if last is not None and ports:
            wiring.connect(m, ports[-1].o, last)
        return ports[0].i if ports else None

    def elaborate(self, platform):
        m = Module()
        m.submodules.skip = self.skip
        m.submodules.add = self.add
        body_in = self._chain(m, "f", self.stages, getattr(self.add, self.body_port))
        skip_in = self._chain(m, "g", self.skip_stages, self.skip.i) or self.skip.i
        wiring.connect(m, self.skip.o, getattr(self.add, self.skip_port))
        wiring.connect(m, self.add.o, wiring.flipped(self.o))
        # fork: a beat moves into both branches at once
        m.d.comb += [
            skip_in.payload.eq(self.i.payload), body_in.payload.eq(self.i.payload),
            skip_in.valid.eq(self.i.valid & body_in.ready),
            body_in.valid.eq(self.i.valid & skip_in.ready),
            self.i.ready.eq(skip_in.ready & body_in.ready),
        ]
        return m
