"""Top level: the core of a graph as one streaming accelerator, a chain of units.

    i -> Conv0 -> Threshold0 -> [WidthConverter] -> Conv1 -> ... -> MaxPool -> FIFO -> MatVec -> ... -> o

One input stream `i` and one output stream `o`; element e of a beat sits at payload bits
[e*b, (e+1)*b), beats carry consecutive elements. Vectors are flat; a spatial tensor travels
NHWC (pixels in raster order, channels innermost): H*W*C elements per inference.

Units per IR op:
  MatVec          MatVecUnit, SIMD elements per input beat, PE accumulators per output beat
  Conv            ConvUnit (sliding window + MatVec), input beats of W = gcd(SIMD, Cin) channels
  KernelBankConv  KernelBankConvUnit, input beats of SIMD/(kh*kw) channels
  Threshold       ThresholdUnit at the PE of the MatVec / conv before it
  MaxPool,        MaxPoolUnit / GlobalSumPoolUnit; their SIMD (channels per beat) is the incoming
  GlobalSumPool   beat width when that keeps them off the critical path, else the fewest channels
                  that do (the pools have no folding of their own)
  ODEBlock        ODEBlockUnit (its body folded through the body ops' pe/simd)
  Add (residual)  ResidualBlock: fork -> skip FIFO holding a whole feature map, and the body chain,
                  joined by a ResidualAddUnit (an unrolled ResNet step outside an ODE block)
A WidthConverter sits wherever consecutive beat widths differ. A FIFO sits in front of every
MatVec but the first: one holding a whole input vector when the MatVec replays it (NF > 1), so the
producer can run ahead while the MatVec works through the other output groups. Likewise one
holding a whole feature map in front of an ODE block (but the first layer): the block takes its
next input only between images, and the layers before it would otherwise wait through its steps.
"""
from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..errors import HwgenError
from ..ir import Add, Conv, Dot, GlobalSumPool, Graph, KernelBankConv, MatVec, MaxPool, ODEBlock, Threshold
from ..ir.types import BipolarType
from .conv import ConvUnit
from .fifo import StreamFIFO
from .kernel_bank import KernelBankConvUnit
from .matvec import MatVecUnit
from .maxpool import MaxPoolUnit
from .ode_block import ODEBlockUnit
from .residual_add import ResidualAddUnit
from .sumpool import GlobalSumPoolUnit
from .threshold import ThresholdUnit
from .width_converter import WidthConverter


@dataclass
class StreamFormat:
    """How a tensor travels on a stream."""

    element_bits: int
    signed: bool
    bipolar: bool
    elements: int  # per inference
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


def _acc_format(op: Dot, elements: int, pe: int) -> StreamFormat:
    return StreamFormat(op.acc_type.bits, True, False, elements, pe)


def _hwc(shape) -> int:
    h, w, c = shape
    return h * w * c


@dataclass
class Stage:
    """One component in the chain, and the IR op it implements (None for plumbing)."""

    name: str
    unit: wiring.Component
    op: object = None
    cycles: int = 1  # busy cycles per inference (no stalls)


class ResidualBlock(wiring.Component):
    """out = Add(h, f(h)) for a chain f, unrolled (one instance per residual step):

        i -> fork -+-> skip FIFO (a whole feature map) -------------+-> ResidualAddUnit -> o
                   +-> f's units [-> WidthConverter to h's beats] --+

    The fork passes a beat when both branches take it. The skip FIFO holds every element of h that
    f has taken but not yet turned into output, at most one feature map (f's units hold less than
    an image), so the Add never starves while the fork waits."""

    def __init__(self, *, add: Add, skip_port: str, stages: list[Stage], in_fmt: StreamFormat,
                 out_fmt: StreamFormat, fifo_slack: int = 2):
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


def _residual_body(graph: Graph, add: Add, core: list) -> tuple[str, list] | None:
    """(skip tensor, body ops) when add = Add(h, chain(h)) with a simple chain of core ops."""
    produced = {t: op for op in core for t in op.outputs}
    for skip, other in ((add.inputs[0], add.inputs[1]), (add.inputs[1], add.inputs[0])):
        chain, t = [], other
        while t != skip:
            op = produced.get(t)
            if op is None or len(op.inputs) != 1:
                break
            chain.append(op)
            t = op.inputs[0]
        else:
            if chain:
                return skip, chain[::-1]
    return None


class _Planner:
    def __init__(self, graph: Graph, *, fifo_slack: int, bound: int, fmt: StreamFormat | None = None,
                 units: dict | None = None):
        self.graph, self.fifo_slack, self.bound = graph, fifo_slack, bound
        self.units = units or {}
        self.stages: list[Stage] = []
        self.fmt = fmt  # what the previous stage emits
        self.in_fmt = fmt

    # -- plumbing ---------------------------------------------------------------------------
    def feed(self, name: str, need: StreamFormat, *, matvec_nf: int | None = None,
             whole: bool = False) -> None:
        """Make the stream so far fit `need` (a converter when beat widths differ); a FIFO in front
        of a MatVec (matvec_nf = its output groups), one of a whole input with `whole`."""
        fmt = self.fmt
        if fmt is None:  # the first layer takes the top's input
            self.in_fmt = self.fmt = need
            return
        if fmt.element_bits != need.element_bits or fmt.elements != need.elements:
            raise HwgenError(f"layer '{name}': input stream of {fmt.elements} x {fmt.element_bits} bit "
                             f"does not match {need.elements} x {need.element_bits} bit")
        if fmt.per_beat != need.per_beat:
            conv = WidthConverter(element_bits=need.element_bits, in_elems=fmt.per_beat, out_elems=need.per_beat)
            self.stages.append(Stage(f"{name}_conv", conv, None, max(fmt.beats, need.beats)))
        if matvec_nf is not None:
            # a whole vector when it is replayed (NF > 1); >= 4 keeps a full-rate stream
            # (SyncFIFOBuffered of depth 2 takes a beat only every other cycle)
            depth = need.beats + self.fifo_slack if matvec_nf > 1 else 0
            self.stages.append(Stage(f"{name}_fifo", StreamFIFO(width=need.payload_bits, depth=max(4, depth)),
                                     None, need.beats))
        elif whole:
            self.stages.append(Stage(f"{name}_fifo", StreamFIFO(width=need.payload_bits,
                                                                depth=max(4, need.beats + self.fifo_slack)),
                                     None, need.beats))
        self.fmt = need

    def _pool_simd(self, channels: int, cycles_of) -> int:
        """The incoming beat width if it keeps the pool off the critical path, else the fewest channels
        per beat that do (all channels when none does)."""
        p = self.fmt.per_beat if self.fmt is not None else 1
        if channels % p == 0 and cycles_of(p) <= self.bound:
            return p
        for s in range(1, channels + 1):
            if channels % s == 0 and cycles_of(s) <= self.bound:
                return s
        return channels

    # -- ops --------------------------------------------------------------------------------
    def add(self, op) -> None:
        if isinstance(op, MatVec):
            need = _format_of(op.in_type, op.in_features, op.simd)
            self.feed(op.name, need, matvec_nf=op.out_channels // op.pe)
            unit = MatVecUnit(weights=op.weights, in_type=op.in_type, w_type=op.w_type,
                              acc_bits=op.acc_type.bits, pe=op.pe, simd=op.simd)
            self.stages.append(Stage(op.name, unit, op, unit.cycles))
            self.fmt = _acc_format(op, op.out_channels, op.pe)
        elif isinstance(op, KernelBankConv):
            unit = KernelBankConvUnit.from_op(op)
            self.feed(op.name, _format_of(op.in_type, _hwc(op.in_shape), unit.simd))
            self.stages.append(Stage(op.name, unit, op, unit.cycles))
            self.fmt = _acc_format(op, _hwc(unit.out_shape), unit.pe)
        elif isinstance(op, Conv):
            unit = ConvUnit.from_op(op)
            self.feed(op.name, _format_of(op.in_type, _hwc(op.in_shape), unit.window_simd))
            self.stages.append(Stage(op.name, unit, op, unit.cycles))
            self.fmt = _acc_format(op, _hwc(unit.out_shape), unit.pe)
        elif isinstance(op, Threshold):
            if self.fmt is None:
                pe = int(getattr(op, "pe", None) or op.channels)
                self.in_fmt = self.fmt = StreamFormat(op.in_type.bits, True, False, op.channels, pe)
            fmt = self.fmt
            if fmt.elements % op.channels:
                raise HwgenError(f"layer '{op.name}': {op.channels} channels do not tile a stream of "
                                 f"{fmt.elements} elements")
            prev = self.graph.producer(op.inputs[0])
            if isinstance(prev, Dot) or not getattr(op, "pe", None):
                pe = fmt.per_beat if op.channels % fmt.per_beat == 0 else 1
            else:
                pe = op.pe
            if pe != fmt.per_beat:
                self.feed(op.name, StreamFormat(fmt.element_bits, fmt.signed, fmt.bipolar, fmt.elements, pe))
            unit = ThresholdUnit(thresholds=op.thresholds, decreasing=op.decreasing, in_bits=fmt.element_bits,
                                 out_type=op.out_type, out_base=op.out_base, pe=pe)
            self.stages.append(Stage(op.name, unit, op, fmt.elements // pe))
            self.fmt = _format_of(op.out_type, fmt.elements, pe)
        elif isinstance(op, MaxPool):
            h, w, c = op.in_shape
            (kh, kw), (sh, sw) = op.kernel, op.stride
            ho, wo, _ = op.out_shape
            simd = self._pool_simd(c, lambda s: max(ho * wo * kh * kw, h * w) * (c // s))
            unit = MaxPoolUnit.from_op(op, simd=simd)
            self.feed(op.name, _format_of(op.dtype, h * w * c, simd))
            self.stages.append(Stage(op.name, unit, op, unit.cycles))
            self.fmt = _format_of(op.dtype, ho * wo * c, simd)
        elif isinstance(op, GlobalSumPool):
            h, w, c = op.in_shape
            simd = self._pool_simd(c, lambda s: h * w * (c // s))
            unit = GlobalSumPoolUnit.from_op(op, simd=simd)
            self.feed(op.name, _format_of(op.in_type, h * w * c, simd))
            self.stages.append(Stage(op.name, unit, op, unit.cycles))
            self.fmt = _format_of(op.out_type, c, simd)
        elif isinstance(op, ODEBlock):
            unit = self.units.get(op.name) or _ode_unit(op)
            elements = unit.H * unit.W * unit.C
            # a whole feature map: the producer runs ahead while the block iterates on the last one
            self.feed(op.name, _format_of(unit.state_type, elements, unit.simd), whole=True)
            self.stages.append(Stage(op.name, unit, op, unit.cycles))
            self.fmt = _format_of(unit.state_type, elements, unit.simd)
        else:
            raise HwgenError(f"layer '{op.name}': no RTL for {op.kind} yet")

    def residual(self, add: Add, skip: str, body: list) -> None:
        fmt = self.fmt
        if fmt is None:
            raise HwgenError(f"layer '{add.name}': a residual Add cannot be the first layer")
        skip_port = "a" if add.inputs[0] == skip else "b"
        skip_type = add.a_type if skip_port == "a" else add.b_type
        body_type = add.b_type if skip_port == "a" else add.a_type
        if skip_type.wire_bits != fmt.element_bits:
            raise HwgenError(f"layer '{add.name}': the skip path is {fmt.element_bits} bits, the Add takes {skip_type}")
        sub = _Planner(self.graph, fifo_slack=self.fifo_slack, bound=self.bound, fmt=fmt, units=self.units)
        for op in body:
            sub.add(op)
        if sub.fmt.elements != fmt.elements or sub.fmt.element_bits != body_type.wire_bits:
            raise HwgenError(f"layer '{add.name}': the residual branch gives {sub.fmt.elements} x "
                             f"{sub.fmt.element_bits} bit, the skip path {fmt.elements} elements of {body_type}")
        sub.feed(add.name, StreamFormat(sub.fmt.element_bits, sub.fmt.signed, sub.fmt.bipolar, fmt.elements,
                                        fmt.per_beat))
        out_fmt = _format_of(add.out_type, fmt.elements, fmt.per_beat)
        unit = ResidualBlock(add=add, skip_port=skip_port, stages=sub.stages, in_fmt=fmt, out_fmt=out_fmt,
                             fifo_slack=self.fifo_slack)
        self.stages.append(Stage(add.name, unit, add, unit.cycles))
        self.fmt = out_fmt


def _ode_unit(op: ODEBlock) -> ODEBlockUnit:
    try:
        return ODEBlockUnit.from_op(op)
    except (ValueError, NotImplementedError) as e:
        raise HwgenError(f"layer '{op.name}': {e}") from None


def _op_bound(op, units: dict) -> int:
    """Cycles per inference of a compute layer (1 for the rest)."""
    from ..passes.fold import layer_cycles

    if isinstance(op, Dot):
        return layer_cycles(op)
    if isinstance(op, ODEBlock):
        units[op.name] = _ode_unit(op)
        return units[op.name].cycles
    return 1


def plan(graph: Graph, *, fifo_slack: int = 2) -> tuple[list[Stage], StreamFormat, StreamFormat]:
    """Components in stream order, plus the formats of the top's input and output."""
    core = graph.core
    if not core:
        raise ValueError("graph has no core ops")
    units: dict = {}  # ODE block units built for the bound, reused below
    bound = max(_op_bound(op, units) for op in core)
    residuals = {}
    for op in core:
        if isinstance(op, Add):
            found = _residual_body(graph, op, core)
            if found is None:
                raise HwgenError(f"layer '{op.name}': this residual add is not h + f(h) with f a chain of layers; "
                                 "only such residual steps (unrolled, or folded into an ODE block) are supported "
                                 "in hardware")
            residuals[found[1][0].name] = (op, *found)
    planner = _Planner(graph, fifo_slack=fifo_slack, bound=bound, units=units)
    current = graph.head.outputs[0]
    i = 0
    while i < len(core):
        op = core[i]
        if op.inputs[0] != current:
            raise HwgenError(f"layer '{op.name}' does not take the output of the layer before it: "
                             "only chains (and residual h + f(h) steps) are supported in hardware")
        if op.name in residuals:
            add, skip, body = residuals[op.name]
            if skip != current:
                raise HwgenError(f"layer '{add.name}': the skip path must start where the residual branch starts; "
                                 "only h + f(h) steps (unrolled, or folded into an ODE block) are supported in hardware")
            planner.residual(add, skip, body)
            members = {o.name for o in body} | {add.name}
            while i < len(core) and core[i].name in members:
                i += 1
            current = add.outputs[0]
            continue
        if isinstance(op, Add):  # not reached: every top-level Add has a branch (checked above)
            raise HwgenError(f"layer '{op.name}': residual add without a branch")
        planner.add(op)
        current = op.outputs[0]
        i += 1
    return planner.stages, planner.in_fmt, planner.fmt


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


# -- timing (no stalls), for the report's estimates --------------------------------------------
def estimate_latency(stages: list[Stage], in_fmt: StreamFormat, out_fmt: StreamFormat) -> int | None:
    """Cycles from the first input beat's transfer to the last output beat's, one inference alone:
    a cycle-level model of every unit's handshakes (hwgen.rtl.timing)."""
    from .timing import simulate_latency

    return simulate_latency(stages, in_fmt.beats, out_fmt.beats, estimate_ii(stages))


def estimate_ii(stages: list[Stage], in_fmt: StreamFormat | None = None,
                out_fmt: StreamFormat | None = None) -> int | float:
    """Cycles between consecutive inferences, back to back: the busiest stage's cycles per
    inference; with the formats, the timing model's steady state when that is slower (handshakes
    between units of different rhythm can cost extra)."""
    bound = max(st.cycles for st in stages)
    if in_fmt is None or out_fmt is None:
        return bound
    from .timing import simulate_ii

    ii = simulate_ii(stages, in_fmt.beats, out_fmt.beats, bound)
    if ii is None:
        return bound
    return int(ii) if float(ii).is_integer() else round(ii, 2)
