"""Fit a model to a device: the fastest auto folding whose resource estimate fits.

    from hwgen.fit import fit
    acc = fit("model.onnx", device="ecp5-85", objective="throughput", margin=0.8)
    acc.plan                      # the chosen design
    print(acc.fit_report.table())  # every point tried: target, II, latency, estimate, fits

Candidates. Auto folding (hwgen.passes.fold.choose_auto) gives each layer the (PE, SIMD) with the
fewest lanes that meets the target, so the folding only changes where the target crosses a
cycle count one of a layer's Pareto-optimal foldings takes (fewest lanes for its cycles): those
"layer-natural" values, and the powers of two, between the floor (the slowest layer's fastest
folding; below it a target only adds lanes elsewhere, the II cannot drop) and the slowest layer
at one lane. Targets giving the same folding are one candidate, labelled with its own natural
target: the busiest layer's cycles (auto folding for that target gives the same folding).

For the latency objective the candidates oriented for latency join them (fold's "stream":
consecutive dense layers alternate small and large PE, so each reads its input as it is made;
latency close to every other dense layer's cycles instead of their sum, for some more lanes).

Search. Each candidate is a full compile (hwgen.api.plan_accelerator: schedule, II and latency
from the timing models, the cost model's estimate); the timing models simulate cycle by cycle,
so a slow candidate costs more to compile than a fast one, and the search goes fastest first:
1. the fastest candidate whose logic (LUT, FF, DSP) fits, assuming a slower folding never needs
   more logic (the fully parallel one aside, below): galloping from the fastest (positions 0, 1,
   3, 7, ...), then bisection;
2. from there, slower, the first candidate whose block RAM fits too (block RAM is not monotone:
   folding moves weights from logic into ROMs);
3. estimates wiggle by a few % between neighbours (a folding with more PE and less SIMD can
   need less than a slower one): from the first that fits, back towards the faster ones until
   `lookback` untried-or-failing candidates in a row do not fit;
4. the slower candidates that could still do better: a candidate's busiest layer (its natural
   target) bounds its II and its latency from below, so for throughput those with a natural
   target below the best II, for latency below the best latency (at most `latency_window` more).
The fully parallel candidate (every layer at PE x SIMD = outputs x inputs: constant weights,
shift-and-add, no ROMs) breaks the logic assumption: its estimate can be far below that of the
design folded 2x (digits MLP w2a2: 9.7k vs 87k LUT), about that of one folded to 1/8-1/16 of its
lanes. It is left out of steps 1-3 and compiled (planning it can take minutes for a large layer)
only when a candidate with at least 1/`full_lanes_ratio` of its lanes has logic that fits.
A wiggle wider than `lookback` can still hide a candidate: `exhaustive=True` compiles them all.
Every point compiled is kept in the report; the chosen Accelerator is returned.

Fits: the plan estimate within `margin` x the device (hwgen.flows.devices): ECP5 LUT4 =
LUT + 2 x CCU2C carry cells + 2 x DPR16X4 LUT RAMs (as hwgen.flows.synth.fit_problems counts
what place and route needs), FF, DP16KD block RAM, MULT18X18D; iCE40 logic cells = max(LUT, FF,
carry), SB_RAM40_4K, SB_MAC16.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import HwgenError
from .flows import devices as _devices
from .flows.devices import Device

OBJECTIVES = ("throughput", "latency")
ORIENT = {"throughput": ("outputs",), "latency": ("outputs", "stream")}  # auto foldings tried (fold doc)
RESOURCES = ("lut", "ff", "bram", "dsp")
_LOGIC = ("lut", "ff", "dsp")  # fewer with fewer lanes; block RAM is not (weights move into it when folded)
_LOWER_KEYS = ("input_format", "acc_bits", "acc_policy", "kernel_bank", "ode_blocks")
_PLAN_KEYS = ("clock_mhz", "arith", "activation", "backpressure", "top")


# -- devices -------------------------------------------------------------------------------------

def device_names() -> list[str]:
    """The names fit accepts, family-device ("ecp5-85k", "ice40-up5k"), compile targets only."""
    from .api import TARGETS

    return [f"{fam}-{name}" for fam in TARGETS for name in _devices.DEVICES.get(fam, {})]


def resolve_device(device: str | Device) -> Device:
    """A Device from a name: "ecp5-85", "ecp5-85k", "lfe5u-85f", "85k", "ice40-up5k", "up5k", ...;
    a Device passes through (a custom part, e.g. for tests)."""
    from .api import TARGETS

    if isinstance(device, Device):
        dev = device
    else:
        name = str(device).strip().lower()
        fam, _, rest = name.partition("-")
        tries = [(fam, rest)] if fam in _devices.DEVICES and rest else [(f, name) for f in _devices.DEVICES]
        dev = None
        for f, n in tries:
            for cand in (n, n + "k", n.removesuffix("f") + "k"):
                try:
                    dev = _devices.device(f, cand)[0]
                    break
                except HwgenError:
                    continue
            if dev is not None:
                break
        if dev is None:
            raise HwgenError(f"unknown device {device!r}: choose one of {', '.join(device_names())}")
    if dev.family not in TARGETS:
        raise HwgenError(f"device {dev.part}: hwgen estimates resources for {' and '.join(TARGETS)} only")
    return dev


def needs(estimate: dict, family: str) -> dict[str, int]:
    """What a plan estimate needs of a device: lut (LUT4 / logic cells, see the module doc), ff,
    bram, dsp."""
    e = {k: int(estimate.get(k) or 0) for k in ("lut", "ff", "carry", "lutram", "bram", "dsp")}
    if family == "ice40":
        logic = max(e["lut"], e["ff"], e["carry"])
    else:
        logic = e["lut"] + 2 * e["carry"] + 2 * e["lutram"]
    return {"lut": logic, "ff": e["ff"], "bram": e["bram"], "dsp": e["dsp"]}


def _logic(family: str) -> str:
    return "logic cells" if family == "ice40" else "LUT4"


def limits(dev: Device, margin: float) -> dict[str, int]:
    """margin x the device's LUT4 (logic cells), FF, block RAM and DSP blocks, rounded down."""
    cap = {"lut": dev.luts, "ff": dev.ffs, "bram": dev.brams, "dsp": dev.dsps}
    return {k: int(math.floor(margin * v + 1e-9)) for k, v in cap.items()}


# -- the record ----------------------------------------------------------------------------------

@dataclass
class FitPoint:
    """One compiled candidate."""

    target_cycles: int | None  # the auto-folding target (None: a model with nothing to fold)
    folding: dict[str, dict[str, int]]
    ii_cycles: int | float
    ii_bound: int
    latency_cycles: int | None
    estimate: dict[str, int]
    needs: dict[str, int]
    fits: bool
    over: list[str]  # resources beyond the limit, e.g. "lut 71261 > 66912"
    seconds: float
    orient: str = "outputs"  # the auto folding's orientation (hwgen.passes.fold: "outputs" | "stream")

    def as_dict(self) -> dict:
        return {"target_cycles": self.target_cycles, "ii_cycles": self.ii_cycles, "ii_bound": self.ii_bound,
                "latency_cycles": self.latency_cycles, "estimate": dict(self.estimate), "needs": dict(self.needs),
                "fits": self.fits, "over": list(self.over), "folding": self.folding, "orient": self.orient,
                "compile_seconds": round(self.seconds, 2)}


@dataclass
class FitReport:
    """Every point fit compiled, the device limits it checked them against, and the choice."""

    device: str
    family: str
    capacity: dict[str, int]
    margin: float
    limits: dict[str, int]
    objective: str
    candidates: int  # distinct auto foldings between the floor and the slowest
    points: list[FitPoint] = field(default_factory=list)  # in the order compiled
    chosen: int | None = None  # index into points
    seconds: float = 0.0

    @property
    def point(self) -> FitPoint | None:
        return None if self.chosen is None else self.points[self.chosen]

    def table(self) -> str:
        """The points by target, slowest first; the chosen one marked with *."""
        from .summary import format_table

        order = sorted(range(len(self.points)), key=lambda i: -(self.points[i].target_cycles or 0))
        rows = []
        for i in order:
            p = self.points[i]
            rows.append({"mark": "*" if i == self.chosen else "", "target": p.target_cycles, "orient": p.orient,
                         "ii": p.ii_cycles,
                         "latency": p.latency_cycles, **{k: p.needs[k] for k in RESOURCES},
                         "fits": "yes" if p.fits else "no", "s": f"{p.seconds:.1f}"})
        lim = {"mark": "", "target": f"limit ({self.margin:g} x)", **self.limits}
        cols = [("mark", ""), ("target", "target cycles"), ("orient", "orientation"), ("ii", "II"),
                ("latency", "latency"),
                ("lut", _logic(self.family)), ("ff", "FF"), ("bram", "BRAM"),
                ("dsp", "DSP"), ("fits", "fits"), ("s", "compile s")]
        return format_table(rows + [lim], cols)

    def summary(self) -> str:
        p = self.point
        if p is None:
            return f"nothing fits {self.device}"
        return (f"chosen ({self.objective}): target {p.target_cycles} cycles"
                + (", oriented for latency" if p.orient == "stream" else "") + f", II {p.ii_cycles}, latency "
                f"{p.latency_cycles}; needs {p.needs['lut']} {_logic(self.family)}, {p.needs['ff']} FF, {p.needs['bram']} BRAM, "
                f"{p.needs['dsp']} DSP of {self.device} x {self.margin:g} ({self.limits['lut']}, {self.limits['ff']}, "
                f"{self.limits['bram']}, {self.limits['dsp']}); {len(self.points)} of {self.candidates} "
                f"candidate foldings compiled in {self.seconds:.1f} s")

    def as_dict(self) -> dict:
        return {"device": self.device, "family": self.family, "capacity": dict(self.capacity), "margin": self.margin,
                "limits": dict(self.limits), "objective": self.objective, "candidates": self.candidates,
                "chosen": self.chosen, "seconds": round(self.seconds, 2),
                "points": [p.as_dict() for p in self.points]}


# -- candidates ----------------------------------------------------------------------------------

def _layer_options(op, steps: int) -> list[tuple[int, int]]:
    """(cycles, lanes) of every legal folding of a layer."""
    from .lowering import lowering_of

    low = lowering_of(op)
    return [(steps * low.cycles(op, pe, simd), low.fold_lanes(op, pe, simd))
            for pe in low.valid_pe(op) for simd in low.valid_simd(op)]


def _key(folding: dict) -> tuple:
    return tuple((v["pe"], v["simd"]) for v in folding.values())


def candidates(graph, orient: str = "outputs") -> list[tuple[int, dict[str, dict[str, int]], str]]:
    """The distinct auto foldings of a lowered graph, fastest first: (natural target, folding,
    orient), `orient` as hwgen.passes.fold's auto folding."""
    from .lowering import lowering_of
    from .passes.fold import auto_folding, foldable

    layers = [(op, block.steps if block else 1) for op, block in foldable(graph)]
    if not layers:
        return []
    values: set[int] = set()
    floor = hi = 0
    for op, steps in layers:
        opts = sorted(_layer_options(op, steps), key=lambda o: (o[1], o[0]))
        floor = max(floor, min(c for c, _ in opts))
        hi = max(hi, max(c for c, _ in opts))
        best = None
        for cyc, _ in opts:  # Pareto: fewest lanes for a given number of cycles
            if best is None or cyc < best:
                values.add(cyc)
                best = cyc
    values |= {1 << k for k in range(hi.bit_length() + 1)}
    seen: dict[tuple, int] = {}
    out = []
    for target in sorted(v for v in values | {floor} if floor <= v <= hi):
        folding = {}
        natural = 0
        for (op, steps), (pe, simd) in zip(layers, auto_folding(list(foldable(graph)), target, orient)):
            folding[op.name] = {"pe": pe, "simd": simd}
            natural = max(natural, steps * lowering_of(op).cycles(op, pe, simd))
        key = _key(folding)
        if key not in seen:
            seen[key] = natural
            out.append((natural, folding, orient))
    out.sort(key=lambda c: c[0])
    return out


# -- the search ----------------------------------------------------------------------------------

def _split_kwargs(kw: dict) -> tuple[dict, dict, Callable[[str], None] | None]:
    for bad in ("fold", "target_cycles"):
        if bad in kw:
            raise HwgenError(f"fit chooses the folding: do not pass {bad}")
    progress = kw.pop("progress", None)
    unknown = sorted(set(kw) - set(_LOWER_KEYS) - set(_PLAN_KEYS) - {"target"})
    if unknown:
        raise HwgenError(f"fit: unknown option(s) {', '.join(unknown)} (hwgen.compile's options but fold, "
                         "target_cycles)")
    return ({k: kw[k] for k in _LOWER_KEYS if k in kw}, {k: kw[k] for k in _PLAN_KEYS if k in kw}, progress)


def fit(model, device: str | Device = "ecp5-85", objective: str = "throughput", margin: float = 0.8, *,
        exhaustive: bool = False, lookback: int = 2, latency_window: int = 3, full_lanes_ratio: int = 32,
        **compile_kwargs):
    """Compile `model` (path, onnx.ModelProto or qonnx ModelWrapper) with fold="auto" for the
    candidate targets (module doc) and return the Accelerator that best meets `objective` among
    those whose estimate fits `margin` x `device`: "throughput" the smallest II (then latency),
    "latency" the smallest latency (then II). The record is `acc.fit_report` (FitReport).
    compile_kwargs: hwgen.compile's options except fold and target_cycles (target, if given, must
    be the device's family); progress(str) hears about every point."""
    from .api import check_options, plan_accelerator
    from .compiler import CompileOptions, check_graph, compile_model
    from .passes.fold import fold_graph, folding_table

    t_start = time.perf_counter()
    if objective not in OBJECTIVES:
        raise HwgenError(f"objective must be one of {', '.join(OBJECTIVES)}, got {objective!r}")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 < margin <= 1:
        raise HwgenError(f"margin must be a number in (0, 1], got {margin!r}")
    dev = resolve_device(device)
    kw = dict(compile_kwargs)
    target = kw.get("target", dev.family)
    if target != dev.family:
        raise HwgenError(f"target {target!r} does not match device {dev.part} ({dev.family})")
    lower_kw, plan_kw, progress = _split_kwargs(kw)
    plan_kw = {"target": dev.family, **plan_kw}
    check_options(**plan_kw)
    say = progress or (lambda _: None)

    base = compile_model(model, CompileOptions(**lower_kw, fold=None))
    lists = [candidates(base, o) for o in ORIENT[objective]]
    lim = limits(dev, margin)
    report = FitReport(device=dev.part, family=dev.family,
                       capacity={"lut": dev.luts, "ff": dev.ffs, "bram": dev.brams, "dsp": dev.dsps},
                       margin=float(margin), limits=lim, objective=objective,
                       candidates=max(len({_key(c[1]) for cands in lists for c in cands}), 1))
    accs: dict[tuple, Any] = {}  # folding key -> Accelerator (fitting points only)
    done: dict[tuple, FitPoint] = {}  # folding key -> point, over every orientation's list

    def compile_point(cand) -> FitPoint:
        key = _key(cand[1]) if cand else ()
        if key in done:
            return done[key]
        t0 = time.perf_counter()
        graph = copy.deepcopy(base)
        if cand:
            natural, folding, orient = cand
            fold_graph(graph, ("auto", natural, orient))
            if folding_table(graph) != folding:  # cannot happen (module doc); be exact anyway
                fold_graph(graph, folding)
        else:
            natural, folding, orient = None, {}, "outputs"
            fold_graph(graph, "full")
        check_graph(graph, "fold", typed=True)
        acc = plan_accelerator(graph, target_cycles=natural, **plan_kw)
        plan = acc.plan
        need = needs(plan.estimate, dev.family)
        over = [f"{k} {need[k]} > {lim[k]}" for k in RESOURCES if need[k] > lim[k]]
        point = FitPoint(target_cycles=natural, folding=folding, ii_cycles=plan.ii_cycles, ii_bound=plan.ii_bound,
                         latency_cycles=plan.latency_cycles, estimate=dict(plan.estimate), needs=need,
                         fits=not over, over=over, seconds=time.perf_counter() - t0, orient=orient)
        done[key] = point
        report.points.append(point)
        if point.fits:
            accs[key] = acc
        say(f"fit: target {natural} cycles: II {point.ii_cycles}, latency {point.latency_cycles}, "
            f"{need['lut']} {_logic(dev.family)} / {need['ff']} FF / {need['bram']} BRAM / {need['dsp']} DSP: "
            + ("fits" if point.fits else "over (" + ", ".join(over) + ")") + f" [{point.seconds:.1f} s]")
        return point

    for cands in lists:  # one search per orientation: each list is about monotone in logic, their union is not
        tried: dict[int, FitPoint] = {}

        def point_at(i: int, cands=cands, tried=tried) -> FitPoint:
            tried[i] = compile_point(cands[i] if cands else None)
            return tried[i]

        n = max(len(cands), 1)
        if exhaustive or n == 1:
            for i in range(n):
                point_at(i)
        else:
            _search(n, cands, point_at, tried, objective, lim, lookback=lookback, latency_window=latency_window,
                    full=0 if _fully_parallel(base, cands[0][1]) else None, full_lanes_ratio=full_lanes_ratio)
    report.seconds = time.perf_counter() - t_start
    best = _choose(done, objective)
    if best is None:
        err = HwgenError(_nothing_fits(report, dev))
        err.fit_report = report  # every point tried, for callers that want more than the line
        raise err
    report.chosen = report.points.index(done[best])
    acc = accs[best]
    acc.fit_report = report
    acc.plan.notes.append(f"fit: {report.summary()}")
    return acc


def _lanes(folding: dict) -> int:
    return sum(f["pe"] * f["simd"] for f in folding.values())


def _fully_parallel(graph, folding: dict) -> bool:
    """Every layer of the folding at its full folding (constant weights: no ROMs)."""
    from .lowering import lowering_of
    from .passes.fold import foldable

    return all(tuple(lowering_of(op).full_folding(op)) == (folding[op.name]["pe"], folding[op.name]["simd"])
               for op, _ in foldable(graph))


def _search(n: int, cands, compile_point, tried: dict, objective: str, lim: dict, *, lookback: int,
            latency_window: int, full: int | None, full_lanes_ratio: int) -> None:
    """The search of the module doc over candidates 0..n-1 (fastest first); `full` is the index
    of the fully parallel candidate, probed last and only when worth it."""
    order = [i for i in range(n) if i != full]
    m = len(order)
    logic_fits = lambda p: all(p.needs[r] <= lim[r] for r in _LOGIC)
    logic_ok = lambda pos: logic_fits(compile_point(order[pos]))
    # 1. the fastest whose logic (LUT, FF, DSP) fits, assuming that is monotone: gallop, then bisect
    if logic_ok(0):
        k = 0
    else:
        lo, hi = 0, m  # lo's logic does not fit; hi's does (m: none known yet)
        while hi - lo > 1:
            mid = (lo + hi) // 2 if hi < m else min(m - 1, 2 * lo + 1)
            if logic_ok(mid):
                hi = mid
            else:
                lo = mid
                if lo == m - 1:
                    break
        k = hi if hi < m else m
    # 2. block RAM is not monotone (folded weights move from logic into ROMs): scan on, slower
    first = next((pos for pos in range(k, m) if compile_point(order[pos]).fits), None)
    # 3. look back over `lookback` faster candidates in a row that do not fit
    misses, pos = 0, (first if first is not None else m) - 1
    while first is not None and pos >= 0 and misses < lookback:
        if compile_point(order[pos]).fits:
            first, misses = pos, 0
        else:
            misses += 1
        pos -= 1
    # the fully parallel design: worth compiling when a candidate with 1/full_lanes_ratio of its
    # lanes has logic that fits (a fully parallel layer's constant weights cost about what the
    # layer folded to 1/8-1/16 of its lanes does)
    if full is not None:
        need = _lanes(cands[full][1])
        if any(_lanes(cands[i][1]) * full_lanes_ratio >= need and logic_fits(p) for i, p in tried.items()):
            compile_point(full)
    # 4. slower candidates that may still do better (a busiest layer bounds both II and latency)
    if first is None:
        return
    extra = 0
    for pos in range(first + 1, m):
        best = _choose(tried, objective)
        bound = tried[best].ii_cycles if objective == "throughput" else (tried[best].latency_cycles or math.inf)
        if cands[order[pos]][0] >= bound or (objective == "latency" and extra >= latency_window):
            break
        extra += order[pos] not in tried
        compile_point(order[pos])


def _choose(tried: dict[int, FitPoint], objective: str) -> int | None:
    inf = math.inf
    fitting = [(i, p) for i, p in tried.items() if p.fits]
    if not fitting:
        return None
    if objective == "throughput":
        key = lambda ip: (ip[1].ii_cycles, ip[1].latency_cycles or inf, ip[1].needs["lut"], ip[0])
    else:
        key = lambda ip: (ip[1].latency_cycles or inf, ip[1].ii_cycles, ip[1].needs["lut"], ip[0])
    return min(fitting, key=key)[0]


def _nothing_fits(report: FitReport, dev: Device) -> str:
    lim = report.limits
    worst = lambda p: max(p.needs[k] / max(lim[k], 1) for k in RESOURCES)  # least over its limits
    p = min(report.points, key=worst)
    logic = _logic(dev.family)
    return (f"nothing fits {dev.part} at margin {report.margin:g} (limits {lim['lut']} {logic}, {lim['ff']} FF, "
            f"{lim['bram']} BRAM, {lim['dsp']} DSP): the smallest of {len(report.points)} foldings tried "
            f"(target {p.target_cycles} cycles, II {p.ii_cycles}) needs {p.needs['lut']} {logic}, {p.needs['ff']} FF, "
            f"{p.needs['bram']} BRAM, {p.needs['dsp']} DSP ({'; '.join(p.over)})")
