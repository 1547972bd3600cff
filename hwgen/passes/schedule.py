"""Schedule: the folded graph -> a HardwarePlan (hwgen.plan).

Walks the core in stream order and asks each op's lowering to plan its stage(s); inserts the
plumbing between them (a WidthConverter wherever consecutive beat widths differ; a FIFO holding a
whole input vector in front of a MatVec that replays it, and one holding a whole feature map in
front of an ODE block, so the producer can run ahead; when pipelining to a clock, a SkidBuffer
wherever three units would otherwise share one combinational ready path). Then the timing models give II and latency
and the lowerings give each stage's report row and resource estimate for the target.

Only chains are supported, plus residual steps Add(f(h), g(h)) with f and g chains from one
tensor h, g empty for an identity shortcut (an op that joins two branches: its lowering plans the step).
"""
from __future__ import annotations

from dataclasses import replace

from ..errors import HwgenError
from ..ir import Graph
from ..lowering import lowering_of, lowering_of_unit
from ..plan import DEFAULT_CLOCK_MHZ, ClockTarget, HardwarePlan, Stage, StreamFormat
from ..rtl.fifo import StreamFIFO
from ..rtl.skid import SkidBuffer
from ..rtl.util import ROM_STYLES
from ..rtl.width_converter import WidthConverter

DEFAULT_TARGET = "ecp5"


SKID_NARROW_BITS = 64  # a skid's two registers and mux per bit: cheap up to here
# ... or wider, behind a unit with at least this many flip-flops per skid bit: its enable then
# hangs off the skid's register through one LUT, for at most 1/8 of that enable's fan-out in FFs
SKID_FANOUT_PER_BIT = 16


class Planner:
    """The stream so far (`fmt`, what the last stage emits) and the stages planned; lowerings
    append their stages with `feed` (make the stream fit) and `push`."""

    def __init__(self, graph: Graph, *, fifo_slack: int, bound: int, fmt: StreamFormat | None = None,
                 units: dict | None = None, clock: ClockTarget = ClockTarget()):
        self.graph, self.fifo_slack, self.bound = graph, fifo_slack, bound
        self.clock = clock
        self.units = units if units is not None else {}  # units built while bounding, reused
        self.stages: list[Stage] = []
        self.fmt = fmt
        self.in_fmt = fmt

    # -- formats ------------------------------------------------------------------------------
    format_of = staticmethod(StreamFormat.of)
    stream_format = StreamFormat

    @staticmethod
    def acc_format(op, elements: int, pe: int) -> StreamFormat:
        return StreamFormat(op.acc_type.bits, True, False, elements, pe)

    # -- building the chain -------------------------------------------------------------------
    def push(self, name: str, unit, op=None, cycles: int = 1) -> None:
        unit, cycles = self._cut_ready_path(name, unit, cycles)
        _planned(unit)
        if self.stages and self.stages[-1].out_fmt is None:
            self.stages[-1].out_fmt = self.fmt
        self.stages.append(Stage(name, unit, op, cycles, in_fmt=self.fmt))

    def _cut_ready_path(self, name: str, unit, cycles: int) -> tuple:
        """When pipelining to a clock, no combinational ready path may run through more than two
        units: a unit's input ready follows its output ready in the same cycle, so chained units
        would wait on the last one's ready. Skid buffers register ready. A FIFO also ends the path
        on ECP5; on iCE40 it counts as a unit (SyncFIFOBuffered's write ready compares its fill level
        and its read enable feeds its pointers: there the path FIFO -> MatVec -> activation -> FIFO
        was the critical one, 34.3 MHz; counting FIFOs as units gave 43.0 MHz. On ECP5 the same rule
        put a 256-bit skid in front of the digits II-64 MatVec whose clock-enable fan-out cost 110.8 ->
        87.5 MHz; bench/qor_vs_peers.py). Before a third uncut unit in a row, a SkidBuffer goes on the
        narrower of the two boundaries it could cut (after the last unit, or between the last two:
        usually after an activation rather than on a wide accumulator stream), except that a unit
        with more pipeline registers than the one after it gets the skid right behind it when that
        boundary is at most SKID_NARROW_BITS wide: its clock-enable fan-out is the slow part of a
        ready path, so it should hang off a register through one LUT, not two (digits A2Q II 64:
        skid -> Quant -> MatVec enable was the 99.2 MHz critical path, 8.4 of 10.1 ns routing).
        A wider boundary gets that skid too when the unit has SKID_FANOUT_PER_BIT flip-flops per
        skid bit (CNV-W1A1's Conv_1, 7,799 FFs behind a 352-bit accumulator stream: skid ->
        BipolarQuant_10 -> Conv_1's enable -> its ROM address counters was the 55.6 MHz critical
        path, two chip-wide nets in a row).
        Before any skid: a width converter among the three that splits words and has an idle cycle
        per word to spare becomes one with registered ready (WidthConverter.registered_ready; of
        several, the one whose idle cycles add the fewest), which cuts the path at no cost (KWS
        W3A3: Gemm_1, 12.6k FFs, behind a 3,328 -> 104-bit converter whose combinational ready gave
        a 14 ns enable net). MatVec, conv, Threshold and requantizer units pipelined to the clock
        cut the path themselves (credits for a stall-free MatVec, rtl.util.StallFree; a registered
        enable, rtl.util.SkidEnables, for the others). Returns the unit to push and its cycles."""
        if self.clock.mhz is None or self._cuts(unit):
            return unit, cycles
        run = []
        for st in reversed(self.stages):
            if self._cuts(st.unit):
                break
            run.append(st)
        if len(run) < 2:
            return unit, cycles
        # the registered twin that costs the fewest extra cycles (the new unit first on a tie)
        candidates = [(unit, self.fmt.beats, cycles, None)] + [(st.unit, st.in_fmt.beats, st.cycles, st) for st in run]
        twins = []
        for order, (u, beats, busy, st) in enumerate(candidates):
            twin = self._registered_split(u, beats)
            if twin is not None:
                twins.append((twin[1] - busy, order, twin, st))
        if twins:
            _, _, twin, st = min(twins, key=lambda t: t[:2])
            for _, _, other, _ in twins:
                if other is not twin:
                    _planned(other[0])
            if st is None:
                _planned(unit)
                return twin
            _planned(st.unit)
            st.unit, st.cycles = twin
            return unit, cycles
        last = run[0]
        narrower = last.in_fmt.payload_bits < self.fmt.payload_bits
        width, before = last.in_fmt.payload_bits, self._registers(run[1].unit)
        heavier = (before > self._registers(last.unit)
                   and (width <= SKID_NARROW_BITS or before >= SKID_FANOUT_PER_BIT * width))
        if narrower or heavier:  # cut in front of the last unit
            skid = SkidBuffer(width=last.in_fmt.payload_bits)
            _planned(skid)
            self.stages.insert(self.stages.index(last), Stage(f"{last.name}_skid", skid, None, last.in_fmt.beats,
                                                              in_fmt=last.in_fmt, out_fmt=last.in_fmt))
        else:
            skid = SkidBuffer(width=self.fmt.payload_bits)
            _planned(skid)
            if self.stages[-1].out_fmt is None:
                self.stages[-1].out_fmt = self.fmt
            self.stages.append(Stage(f"{name}_skid", skid, None, self.fmt.beats, in_fmt=self.fmt))
        return unit, cycles

    def _registered_split(self, unit, in_beats: int):
        """(unit rebuilt with a registered input ready, its cycles) when its lowering has such a form
        (a width converter that splits words) and it stays within the II bound; else None."""
        twin = lowering_of_unit(unit).registered_ready_twin(unit, in_beats)
        if twin is None:
            return None
        if twin[1] > self.bound:
            _planned(twin[0])
            return None
        return twin

    def _cuts(self, unit) -> bool:
        """Whether the unit's input ready is a register (no ready path runs through it)."""
        return lowering_of_unit(unit).cuts_ready_path(unit, self.clock.target)

    @staticmethod
    def discard(unit) -> None:
        """A unit built but not used (a rejected alternative): no UnusedElaboratable warning for it."""
        _planned(unit)

    def _registers(self, unit) -> int:
        """The unit's estimated flip-flops: the fan-out of its pipeline enable."""
        return lowering_of_unit(unit).estimate(unit, self.clock.target).ff

    def drop_idle_cuts(self) -> None:
        """Without output backpressure (clock.backpressure False) the top ties the last unit's output
        ready high, and every input ready up the chain is then constant 1 as far as the units take a
        beat every cycle (Lowering.always_ready): the ready cuts on that run (skid buffers) guard no
        ready path and only add a register level and a mux per bit, so they go. A fully parallel
        design loses all of them (jet-style MLPs: no skid, no ready logic, as hls4ml's io_parallel)."""
        if self.clock.backpressure:
            return
        drop = []
        for k in range(len(self.stages) - 1, -1, -1):
            unit = self.stages[k].unit
            lowering = lowering_of_unit(unit)
            if lowering.only_cuts_ready:
                drop.append(k)
                continue
            unit.never_stalled = True  # its output ready is 1: tied inside it (rtl.util.output_ready)
            if not lowering.always_ready(unit):  # it stalls its input on its own: the tail ends here
                break
        for k in drop:  # a cut's stream formats are its neighbours': nothing else changes
            _planned(self.stages[k].unit)
            del self.stages[k]

    def close(self) -> "Planner":
        """Record the last stage's output format; returns self."""
        if self.stages and self.stages[-1].out_fmt is None:
            self.stages[-1].out_fmt = self.fmt
        return self

    def sub(self) -> "Planner":
        """A planner for a branch that starts from the current stream."""
        return Planner(self.graph, fifo_slack=self.fifo_slack, bound=self.bound, fmt=self.fmt, units=self.units,
                       clock=self.clock)

    def add(self, op) -> None:
        lowering_of(op).plan(op, self)

    def feed(self, name: str, need: StreamFormat, *, matvec_nf: int | None = None,
             whole: bool = False) -> None:
        """Make the stream so far fit `need` (a converter when beat widths differ); a FIFO in front
        of a MatVec (matvec_nf = its output groups), one of a whole input with `whole`."""
        fmt = self.fmt
        if fmt is None:  # the first layer takes the top's input
            self.in_fmt = self.fmt = need
            return
        if fmt.element_bits != need.element_bits or fmt.elements != need.elements:
            raise HwgenError(f"input stream of {fmt.elements} x {fmt.element_bits} bit does not match "
                             f"{need.elements} x {need.element_bits} bit", node=name)
        if fmt.per_beat != need.per_beat:
            conv = WidthConverter(element_bits=need.element_bits, in_elems=fmt.per_beat, out_elems=need.per_beat)
            self.push(f"{name}_conv", conv, None, conv.cycles(fmt.beats))
            self.fmt = need
        if matvec_nf is not None and (matvec_nf > 1 or self.clock.mhz is None):
            # a whole vector when it is replayed (NF > 1); >= 4 keeps a full-rate stream
            # (SyncFIFOBuffered of depth 2 takes a beat only every other cycle). Without replay, when
            # pipelining, skid buffers do the decoupling (without a clock target: a 4-deep FIFO).
            depth = need.beats + self.fifo_slack if matvec_nf > 1 else 0
            self.push(f"{name}_fifo", StreamFIFO(width=need.payload_bits, depth=max(4, depth)), None, need.beats)
        elif whole:
            self.push(f"{name}_fifo", StreamFIFO(width=need.payload_bits, depth=max(4, need.beats + self.fifo_slack)),
                      None, need.beats)
        self.fmt = need

    def pool_simd(self, channels: int, cycles_of) -> int:
        """The incoming beat width if it keeps a pool off the critical path, else the fewest channels
        per beat that do (all channels when none does)."""
        p = self.fmt.per_beat if self.fmt is not None else 1
        if channels % p == 0 and cycles_of(p) <= self.bound:
            return p
        for s in range(1, channels + 1):
            if channels % s == 0 and cycles_of(s) <= self.bound:
                return s
        return channels


def _planned(unit, seen=None) -> None:
    """Mark a planned unit and its sub-units as meant to exist unelaborated: a plan made only for
    its estimates (hwgen.compile without write) never turns them into Verilog, and Amaranth would
    warn about each at garbage collection."""
    from amaranth.hdl import Elaboratable

    seen = set() if seen is None else seen
    if id(unit) in seen:
        return
    seen.add(id(unit))
    unit._MustUse__silence = True
    for v in vars(unit).values():
        for x in (v if isinstance(v, (list, tuple)) else (v,)):
            for y in (x if isinstance(x, tuple) else (x,)):
                if isinstance(y, Elaboratable):
                    _planned(y, seen)
                elif hasattr(y, "unit") and isinstance(getattr(y, "unit"), Elaboratable):
                    _planned(y.unit, seen)


def plan_chain(ops: list, fmt: StreamFormat, *, fifo_slack: int = 2, clock: ClockTarget = ClockTarget()) -> Planner:
    """The planner after planning `ops` as a chain fed by a stream of format `fmt` (an ODE block's
    body: the block builds its units from the planned stages)."""
    planner = Planner(None, fifo_slack=fifo_slack, bound=1, fmt=fmt, clock=clock)
    for op in ops:
        planner.add(op)
    return planner


def plan_stages(graph: Graph, *, fifo_slack: int = 2,
                clock: ClockTarget = ClockTarget()) -> tuple[list[Stage], StreamFormat, StreamFormat]:
    """Units in stream order, plus the formats of the top's input and output (without output
    backpressure, clock.backpressure False, minus the ready cuts that guard no ready path)."""
    core = graph.core
    if not core:
        raise HwgenError("the graph has no hardware layers")
    units: dict = {}
    probe = Planner(graph, fifo_slack=fifo_slack, bound=1, units=units, clock=clock)
    bound = max(lowering_of(op).bound(op, probe) for op in core)
    steps = {}  # first op of each branch of a residual step -> (join op, ResidualStep)
    for op in core:
        if len(op.inputs) > 1:
            step = lowering_of(op).branches(op, core)
            for chain in (step.body, step.skip):
                if chain:
                    steps[chain[0].name] = (op, step)
    planner = Planner(graph, fifo_slack=fifo_slack, bound=bound, units=units, clock=clock)
    current = graph.head.outputs[0]
    done: set[str] = set()  # ops planned inside a residual step
    for op in core:
        if op.name in done:
            continue
        if op.inputs[0] != current:
            raise HwgenError("this layer does not take the output of the layer before it: only chains (and "
                             "residual Add(f(h), g(h)) steps) are supported in hardware", node=op.name, op=op.kind)
        if op.name in steps:
            join, step = steps[op.name]
            if step.fork != current:
                raise HwgenError("the residual paths must start where the stream is; only Add(f(h), g(h)) steps "
                                 "(unrolled, or identity steps folded into an ODE block) are supported in hardware",
                                 node=join.name, op=join.kind)
            lowering_of(join).plan_step(join, step, planner)
            done |= {o.name for o in step.body + step.skip} | {join.name}
            current = join.outputs[0]
            continue
        planner.add(op)
        current = op.outputs[0]
    planner.close().drop_idle_cuts()
    return planner.stages, planner.in_fmt, planner.fmt


def stage_rows(stages: list[Stage], target: str) -> tuple[list[dict], list[dict]]:
    """One report row per IR layer (ODE body and residual branch layers included) and one per
    plumbing unit, each with its resource estimate on `target`."""
    rows: list[dict] = []
    plumbing: list[dict] = []
    for st in stages:
        start_rows, start_plumbing = len(rows), len(plumbing)
        lowering_of_unit(st.unit).report_rows(st, rows, plumbing, target)
        for r in rows[start_rows:] + plumbing[start_plumbing:]:
            if r["name"] == st.name:
                r.update(st.facts())
            r.update({k: v for k, v in _styles(r.get("estimate"), r.get("memory_bits")).items() if k not in r})
    return rows, plumbing


def _styles(est: dict | None, memory_bits) -> dict:
    """Where the estimate puts a row's memories (what yosys infers for the unit as emitted), and its
    products for rows whose lowering did not choose (a MatVec's / conv's `arithmetic` is chosen)."""
    if not est:
        return {}
    if est.get("bram"):
        memory = "bram"
    elif est.get("lutram"):
        memory = "lutram"
    elif memory_bits:
        memory = "logic"  # ROMs as LUT logic, buffers as registers
    else:
        memory = "none"
    return {"memory_style": memory, "arithmetic": "dsp" if est.get("dsp") else "lut"}


# LUT4s per block RAM on the family's reference device (LFE5U-85F: 83,640 / 208 DP16KD; UP5K: 5,280 /
# 30 SB_RAM40_4K): a ROM goes to block RAM when that takes a smaller share of the device than its logic
BRAM_IN_LUTS = {"ecp5": 400, "ice40": 176}


def choose_rom_styles(stages: list[Stage], target: str) -> None:
    """Block RAM or logic for each unit's ROMs (units that have them carry `rom_style`): the style the
    cost model scores lower (Resources.score, a block RAM weighed by its share of the device,
    BRAM_IN_LUTS), emitted as yosys's rom_style attribute so synthesis builds what the plan costed.
    Where both cost the same (no ROM) yosys keeps its own rule. A unit that splits a block RAM ROM
    in depth itself (`choose_rom_chunks`) chooses its split for each style tried."""
    def set_style(unit, style):
        unit.rom_style = style
        if hasattr(unit, "choose_rom_chunks"):
            unit.choose_rom_chunks(target)

    for st in stages:
        unit = st.unit
        if not hasattr(unit, "rom_style"):
            continue
        lowering = lowering_of_unit(unit)
        scores = {}
        for style in ROM_STYLES:
            set_style(unit, style)
            scores[style] = lowering.estimate(unit, target).score(bram=BRAM_IN_LUTS[target])
        best = min(ROM_STYLES, key=lambda s: scores[s])
        set_style(unit, best if len(set(scores.values())) > 1 else None)


LINE_ROWS_EXTRA = (1, 2)  # extra line-buffer rows the schedule tries, fewest first


def schedule(graph: Graph, *, target: str = DEFAULT_TARGET, clock_mhz: float | str | None = "auto",
             arith: str = "auto", activation: str = "auto", backpressure: bool = True,
             fifo_slack: int = 2) -> HardwarePlan:
    """The folded graph's HardwarePlan for `target`, pipelined for `clock_mhz` ("auto": the target's
    default clock, hwgen.plan.DEFAULT_CLOCK_MHZ; None: no pipelining beyond the units' base);
    arith "auto" | "lut" | "dsp": where every layer's products go (auto: each lowering's rule);
    activation "auto" | "thresholds" | "requant": comparators or requantizers (auto: the cheaper);
    backpressure False: the output is never stalled (the top ignores o.ready; see drop_idle_cuts)."""
    from ..rtl.top import estimate_ii, estimate_latency

    if clock_mhz == "auto":
        clock_mhz = DEFAULT_CLOCK_MHZ[target]

    clock = ClockTarget(target, clock_mhz, arith, activation, bool(backpressure))
    stages, in_fmt, out_fmt = plan_stages(graph, fifo_slack=fifo_slack, clock=clock)
    bound = estimate_ii(stages)
    ii = estimate_ii(stages, in_fmt, out_fmt)
    notes = list(graph.notes)
    # A window whose line buffer holds only the rows one output row reads stops taking input while
    # its reader works on that row, and its producer stalls with it: chained windows then lose
    # cycles at every row (CNV-W1A1: II 17,654 against a busiest stage of 14,400). Where the II
    # misses its bound, give every window more rows, the fewest that help most.
    if ii > bound and any(hasattr(st.unit, "swg") for st in stages):
        ii0 = ii
        for extra in LINE_ROWS_EXTRA:
            more = replace(clock, line_rows_extra=extra)
            st2, in2, out2 = plan_stages(graph, fifo_slack=fifo_slack, clock=more)
            ii2 = estimate_ii(st2, in2, out2)
            if ii2 < ii:
                clock, stages, in_fmt, out_fmt, ii = more, st2, in2, out2, ii2
            if ii <= bound:
                break
        if clock.line_rows_extra:
            notes.append(f"schedule: every line buffer holds {clock.line_rows_extra} row(s) more than its window "
                         f"reads (kh + sh - 1): II {ii0} -> {ii} cycles (busiest stage {bound})")
    choose_rom_styles(stages, target)
    latency = estimate_latency(stages, in_fmt, out_fmt)
    rows, plumbing = stage_rows(stages, target)
    return HardwarePlan(model=graph.name, source=graph.source, target=target, stages=stages, in_fmt=in_fmt,
                        out_fmt=out_fmt, ii_cycles=ii, ii_bound=bound, latency_cycles=latency, layers=rows,
                        plumbing=plumbing, notes=notes, clock_mhz=clock_mhz,
                        backpressure=bool(backpressure), line_rows_extra=clock.line_rows_extra)
