"""Top level: the core of a graph (MatVec / Threshold ops) as one streaming accelerator.

    i -> MatVec0 -> Threshold0 -> [WidthConverter PE0 -> SIMD1] -> FIFO -> MatVec1 -> ... -> o

One input stream `i` (beats of SIMD0 input elements) and one output stream `o` (beats of the
last layer's PE elements); element e of a beat sits at payload bits [e*b, (e+1)*b).
A FIFO holding one whole input vector sits in front of every MatVec but the first, so the
producer can run ahead while the MatVec replays its buffered vector for the other output groups.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..ir import Graph, MatVec, Threshold
from ..ir.types import BipolarType
from .fifo import StreamFIFO
from .matvec import MatVecUnit
from .threshold import ThresholdUnit
from .width_converter import WidthConverter


@dataclass
class StreamFormat:
    """How a vector travels on a stream."""

    element_bits: int
    signed: bool
    bipolar: bool
    elements: int  # per vector
    per_beat: int

    @property
    def beats(self) -> int:
        return self.elements // self.per_beat

    @property
    def payload_bits(self) -> int:
        return self.element_bits * self.per_beat

    def as_dict(self) -> dict:
        return {
            "element_bits": self.element_bits,
            "signed": self.signed,
            "bipolar": self.bipolar,
            "elements": self.elements,
            "elements_per_beat": self.per_beat,
            "beats_per_inference": self.beats,
            "payload_bits": self.payload_bits,
            "bit_order": f"element i occupies payload bits [i*{self.element_bits}, (i+1)*{self.element_bits})"
                         "; beat j carries elements [j*elements_per_beat, (j+1)*elements_per_beat)",
        }


def _format_of(dtype, elements: int, per_beat: int) -> StreamFormat:
    bip = isinstance(dtype, BipolarType)
    return StreamFormat(dtype.wire_bits, bool(dtype.signed) and not bip, bip, elements, per_beat)


@dataclass
class Stage:
    """One component in the chain, and the IR op it implements (None for plumbing)."""

    name: str
    unit: wiring.Component
    op: object = None


def _threshold_pe(graph: Graph, op: Threshold, prev_per_beat: int) -> int:
    pe = getattr(op, "pe", None)
    if isinstance(graph.producer(op.inputs[0]), MatVec) or not pe:
        return prev_per_beat if op.channels % prev_per_beat == 0 else 1
    return pe


def plan(graph: Graph, *, fifo_slack: int = 2) -> tuple[list[Stage], StreamFormat, StreamFormat]:
    """Components in stream order, plus the formats of the top's input and output."""
    core = graph.core
    if not core:
        raise ValueError("graph has no core ops")
    stages: list[Stage] = []
    fmt: StreamFormat | None = None  # what the previous stage emits
    in_fmt: StreamFormat | None = None
    for op in core:
        if isinstance(op, MatVec):
            need = _format_of(op.in_type, op.in_features, op.simd)
            if fmt is None:
                in_fmt = need
            else:
                if fmt.element_bits != need.element_bits or fmt.elements != need.elements:
                    raise ValueError(f"{op.name}: input stream of {fmt.elements} x {fmt.element_bits} bit "
                                     f"does not match {need.elements} x {need.element_bits} bit")
                if fmt.per_beat != need.per_beat:
                    stages.append(Stage(f"{op.name}_conv", WidthConverter(
                        element_bits=need.element_bits, in_elems=fmt.per_beat, out_elems=need.per_beat)))
                nf = op.out_channels // op.pe
                # a whole vector when it is replayed (NF > 1); >= 4 keeps a full-rate stream
                # (SyncFIFOBuffered of depth 2 takes a beat only every other cycle)
                depth = need.beats + fifo_slack if nf > 1 else 0
                stages.append(Stage(f"{op.name}_fifo", StreamFIFO(width=need.payload_bits, depth=max(4, depth))))
            unit = MatVecUnit(weights=op.weights, in_type=op.in_type, w_type=op.w_type,
                              acc_bits=op.acc_type.bits, pe=op.pe, simd=op.simd)
            stages.append(Stage(op.name, unit, op))
            fmt = StreamFormat(op.acc_type.bits, True, False, op.out_channels, op.pe)
        elif isinstance(op, Threshold):
            if fmt is None:
                pe = int(getattr(op, "pe", None) or op.channels)
                in_fmt = fmt = StreamFormat(op.in_type.bits, True, False, op.channels, pe)
            pe = _threshold_pe(graph, op, fmt.per_beat)
            if pe != fmt.per_beat:
                stages.append(Stage(f"{op.name}_conv", WidthConverter(
                    element_bits=fmt.element_bits, in_elems=fmt.per_beat, out_elems=pe)))
            unit = ThresholdUnit(thresholds=op.thresholds, decreasing=op.decreasing,
                                 in_bits=fmt.element_bits, out_type=op.out_type,
                                 out_base=op.out_base, pe=pe)
            stages.append(Stage(op.name, unit, op))
            fmt = _format_of(op.out_type, op.channels, pe)
        else:
            raise NotImplementedError(f"no RTL for {op.kind} ({op.name})")
    return stages, in_fmt, fmt


class Accelerator(wiring.Component):
    """The whole core: `i` in, `o` out, one `sync` domain."""

    def __init__(self, graph: Graph):
        self.stages, self.in_fmt, self.out_fmt = plan(graph)
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
        wiring.connect(m, prev.o, wiring.flipped(self.o))
        return m


# -- timing model (no stalls), for the report's estimates --------------------------------------
def _stage_timing(unit, arrivals: list[int]) -> list[int]:
    """Cycle of every output beat of one vector given the cycles of its input beats."""
    if isinstance(unit, MatVecUnit):
        steps, t = [], None
        for a in arrivals:
            t = a if t is None else max(a, t + 1)
            steps.append(t)
        outs = []
        for nf in range(unit.NF):
            last = steps[-1] + nf * unit.SF
            outs.append(last + unit.latency)
        return outs
    if isinstance(unit, ThresholdUnit):
        outs, t = [], None
        for a in arrivals:
            t = a + unit.latency if t is None else max(a + unit.latency, t + 1)
            outs.append(t)
        return outs
    if isinstance(unit, WidthConverter):
        if unit.n_in == unit.n_out:
            return list(arrivals)
        kg, ks = unit.mid // unit.n_in, unit.mid // unit.n_out
        words = [arrivals[j + kg - 1] + (1 if kg > 1 else 0) for j in range(0, len(arrivals), kg)]
        outs, t = [], None
        for w in words:
            for s in range(ks):
                start = w + (1 if ks > 1 else 0)
                t = start if t is None else max(start, t + 1)
                outs.append(t)
        return outs
    if isinstance(unit, StreamFIFO):
        outs, t = [], None
        for a in arrivals:
            t = a + unit.latency if t is None else max(a + unit.latency, t + 1)
            outs.append(t)
        return outs
    raise TypeError(unit)


def estimate_latency(stages: list[Stage], in_fmt: StreamFormat) -> int:
    """Cycles from the first input beat's transfer to the last output beat's, one vector alone."""
    times = list(range(in_fmt.beats))
    for st in stages:
        times = _stage_timing(st.unit, times)
    return times[-1] + 1


def estimate_ii(stages: list[Stage]) -> int:
    return max(getattr(st.unit, "cycles", 1) for st in stages)
