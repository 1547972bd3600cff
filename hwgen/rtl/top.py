"""Top level: a HardwarePlan's stages as one streaming accelerator, a chain of units.

    i -> Conv0 -> Threshold0 -> [WidthConverter] -> Conv1 -> ... -> MaxPool -> FIFO -> MatVec -> ... -> o

One input stream `i` and one output stream `o`; element e of a beat sits at payload bits
[e*b, (e+1)*b), beats carry consecutive elements. Vectors are flat; a spatial tensor travels
NHWC (pixels in raster order, channels innermost): H*W*C elements per inference.

What each stage is (unit, beat widths, FIFOs) is decided by the schedule pass
(hwgen.passes.schedule) through each op's lowering (hwgen.lowering); this module only connects
the planned units.
"""
from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir import Graph
from ..plan import HardwarePlan, Stage, StreamFormat  # noqa: F401  (StreamFormat, Stage: re-exported)


class Accelerator(wiring.Component):
    """The whole core: `i` in, `o` out, one `sync` domain."""

    def __init__(self, plan: HardwarePlan | Graph):
        if isinstance(plan, Graph):  # convenience for tests: schedule with the default target
            from ..passes.schedule import schedule

            plan = schedule(plan)
        self.plan = plan
        self.stages, self.in_fmt, self.out_fmt = plan.stages, plan.in_fmt, plan.out_fmt
        super().__init__({
            "i": In(stream.Signature(self.in_fmt.payload_bits)),
            "o": Out(stream.Signature(self.out_fmt.payload_bits)),
        })

    def elaborate(self, platform):
        m = Module()
        prev = None
        for k, st in enumerate(self.stages):
            m.submodules[f"s{k}_{st.name}"] = st.unit
            if prev is None:
                wiring.connect(m, wiring.flipped(self.i), st.unit.i)
            else:
                wiring.connect(m, prev.o, st.unit.i)
            prev = st.unit
        if self.plan.backpressure:
            wiring.connect(m, prev.o, wiring.flipped(self.o))
        else:  # o.ready is ignored: a constant ready lets synthesis drop every ready path behind it
            m.d.comb += [self.o.valid.eq(prev.o.valid), self.o.payload.eq(prev.o.payload), prev.o.ready.eq(1)]
        return m


def plan(graph: Graph, *, fifo_slack: int = 2):
    """Units in stream order, plus the formats of the top's input and output (no timing, no rows)."""
    from ..passes.schedule import plan_stages

    return plan_stages(graph, fifo_slack=fifo_slack)


def estimate_ii(stages: list[Stage], in_fmt: StreamFormat | None = None,
                out_fmt: StreamFormat | None = None) -> int | float:
    """Cycles between consecutive inferences, back to back: the busiest stage's cycles per
    inference; with the formats, the timing model's steady state when that is slower."""
    bound = max(st.cycles for st in stages)
    if in_fmt is None or out_fmt is None:
        return bound
    from .timing import simulate_ii

    ii = simulate_ii(stages, in_fmt.beats, out_fmt.beats, bound)
    if ii is None:
        return bound
    return int(ii) if float(ii).is_integer() else round(ii, 2)


def estimate_latency(stages: list[Stage], in_fmt: StreamFormat, out_fmt: StreamFormat) -> int | None:
    """Cycles from the first input beat's transfer to the last output beat's, one inference alone."""
    from .timing import simulate_latency

    return simulate_latency(stages, in_fmt.beats, out_fmt.beats, estimate_ii(stages))
