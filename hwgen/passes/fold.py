"""Folding: choose PE (output channels in parallel) and SIMD (inputs in parallel) per layer.

Foldable layers: MatVec, Conv, KernelBankConv, and the Conv / KernelBankConv ops inside an
ODEBlock's body (their body runs `steps` times per inference, so its cycles count `steps` times).

Cycles per inference of one layer folded by (PE, SIMD):
  MatVec (C outputs, K inputs)   (C/PE) * (K/SIMD)
  Conv                           Ho*Wo * (Cout/PE) * (kh*kw*Cin / SIMD), SIMD a divisor of the dense
                                 patch length kh*kw*Cin (also for depthwise / grouped convs, whose
                                 matrix is dense with zeros); at least the sliding window's
                                 Ho*Wo*kh*kw*Cin/W and H*W*Cin/W with W = gcd(SIMD, Cin) (the window
                                 unit emits one beat of W channels per cycle)
  KernelBankConv                 Ho*Wo * max(kh*kw, Cout/PE) * Cin/S with SIMD = kh*kw*S, S | Cin
                                 (S input channels per beat, S = gcd(SIMD, Cin) as the unit reads it;
                                 the same Ho*Wo*(Cout/PE)*(kh*kw*Cin/SIMD) once Cout/PE >= kh*kw)
Threshold layers run at the PE of the layer that feeds them. Each op's lowering (hwgen.lowering)
owns its legal (PE, SIMD) and cycle count; this pass only searches and checks.

spec:
  "full"                    every layer fully parallel (MatVec: PE = C, SIMD = K; Conv: PE = Cout,
                            SIMD = kh*kw*Cin)
  ("auto", target_cycles)   per layer the (PE, SIMD), valid divisors as above, with the fewest
                            PE*SIMD lanes whose cycles per inference (times `steps` inside an ODE
                            block) <= target (FINN's target_fps idea); ties go to fewer cycles,
                            then to the smaller PE. A conv whose window unit cannot meet the target
                            gets its fastest folding (a note says so).
  ("auto", target, "stream")  oriented for latency: every dense layer (one output needs every
                            input) but the first may take up to OVERLAP_LANES x the fewest lanes to
                            add less latency. One whose producer spreads its output over its cycles
                            reads each input beat once, as it arrives, when it can: the fewest
                            cycles left after its last input (C/PE - 1 replays of K/SIMD: PE = C
                            drains at once); it then gives its outputs at the end. One whose input
                            comes at once takes the fewest cycles (then the smaller PE, which
                            spreads its output again). The plain rule everywhere makes a chain of
                            dense layers wait for each other (latency ~ the sum of their cycles);
                            alternating makes it ~ every other one's (the KWS MLP at II 512:
                            1,969 -> 844 cycles).
  dict or JSON file path    {layer_name: {"pe": p, "simd": s}} (a top-level {"layers": {...}}
                            is accepted too); layers not named keep PE = SIMD = 1 (a kernel bank:
                            SIMD = kh*kw)
"""
from __future__ import annotations

import json
import os
from typing import Any, Iterator

from ..errors import HwgenError
from ..ir import Graph
from ..lowering import lowering_of, walk

ORIENTATIONS = ("outputs", "stream")  # auto folding's orientation (module doc)
OVERLAP_LANES = 2  # "stream": a dense layer may take up to this many times the fewest lanes to add less latency


def layer_cycles(op, pe: int | None = None, simd: int | None = None) -> int:
    """Cycles per inference (one pass; an ODE body layer runs `steps` passes)."""
    return lowering_of(op).cycles(op, op.pe if pe is None else pe, op.simd if simd is None else simd)


def choose_auto(op, target_cycles: int, steps: int = 1, overlap: str | None = None) -> tuple[int, int]:
    """The (PE, SIMD) with the fewest lanes whose steps * cycles <= target; if none meets it
    (a conv's window unit sets a floor), the fastest one (fewest lanes among those). Ties go to
    the smaller PE. With `overlap` (module doc: "stream"), among those with at most OVERLAP_LANES x
    the fewest lanes, the one that adds the least latency: "drain" (its input comes spread out) the
    fewest cycles after its last input, "whole" (its input comes at once) the fewest cycles."""
    low = lowering_of(op)
    best = fastest = None
    meeting = []
    for pe in low.valid_pe(op):
        for simd in low.valid_simd(op):
            cyc = steps * low.cycles(op, pe, simd)
            lanes = low.fold_lanes(op, pe, simd)
            if fastest is None or (cyc, lanes, pe) < fastest[0]:
                fastest = ((cyc, lanes, pe), pe, simd)
            if cyc > target_cycles:
                continue
            meeting.append((pe, simd, cyc, lanes))
            key = (lanes, cyc, pe)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    if overlap and best is not None:
        cap = OVERLAP_LANES * best[0][0]
        if overlap == "drain":
            key = lambda m: (steps * low.drain_cycles(op, m[0], m[1]), m[3], m[2], -m[0])
        else:  # "whole": fewest cycles, then fewest lanes, then the smaller PE (spreads its output)
            key = lambda m: (m[2], m[3], m[0])
        pe, simd, _, _ = min((m for m in meeting if m[3] <= cap), key=key)
        return pe, simd
    chosen = best or fastest
    return chosen[1], chosen[2]


def auto_folding(layers: list, target_cycles: int, orient: str = "outputs") -> list[tuple[int, int]]:
    """choose_auto's (PE, SIMD) for every (op, ODE block or None) of `layers` (in stream order),
    oriented as `orient` says (module doc); the ops are not changed."""
    spread, first = False, True  # the graph input: the first layer keeps the plain rule
    out = []
    for op, block in layers:
        low = lowering_of(op)
        overlap = None
        if orient == "stream" and low.needs_whole_input and not first:
            overlap = "drain" if spread else "whole"
        pe, simd = choose_auto(op, target_cycles, block.steps if block else 1, overlap=overlap)
        spread, first = low.streams_output(op, pe), False
        out.append((pe, simd))
    return out


def foldable(graph: Graph) -> Iterator[tuple[Any, Any]]:
    """Every foldable layer, with the op it sits in (an ODE block; None at top level)."""
    for op, parent in walk(graph.core):
        if lowering_of(op).foldable:
            yield op, parent


def _all_ops(graph: Graph) -> dict[str, Any]:
    return {op.name: op for op, _ in walk(graph.core)}


def _load_spec(spec: Any) -> Any:
    if isinstance(spec, (str, os.PathLike)) and str(spec) not in ("full", "auto"):
        path = os.fspath(spec)
        try:
            with open(path) as f:
                spec = json.load(f)
        except FileNotFoundError:
            raise HwgenError(f"folding file '{path}' does not exist") from None
        except json.JSONDecodeError as e:
            raise HwgenError(f"folding file '{path}' is not valid JSON: {e}") from None
        if isinstance(spec, dict) and isinstance(spec.get("layers"), dict):
            spec = spec["layers"]
    return spec


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _check(op, pe: Any, simd: Any) -> tuple[int, int]:
    low = lowering_of(op)
    problems = []
    pes, simds = low.valid_pe(op), low.valid_simd(op)
    if not _is_int(pe) or pe not in pes:
        problems.append(f"PE {pe!r} must divide its {op.out_channels} output channels (valid PE: "
                        f"{', '.join(map(str, pes))})")
    if not _is_int(simd) or simd not in simds:
        problems.append(f"SIMD {simd!r} must {low.simd_rule(op)} (valid SIMD: {', '.join(map(str, simds))})")
    if problems:
        raise HwgenError(f"layer '{op.name}': " + "; ".join(problems))
    return pe, simd


def fold_graph(graph: Graph, spec: Any = "full") -> Graph:
    """Set pe/simd on every foldable layer (in place, ODE bodies included) and return the graph."""
    spec = _load_spec(spec)
    layers = list(foldable(graph))
    if isinstance(spec, str) and spec == "full":
        for op, _ in layers:
            op.pe, op.simd = lowering_of(op).full_folding(op)
        graph.notes.append("fold: full (every layer parallel)")
    elif isinstance(spec, (tuple, list)) and len(spec) in (2, 3) and spec[0] == "auto":
        target = spec[1]
        orient = spec[2] if len(spec) == 3 else "outputs"
        if not _is_int(target) or target < 1:
            raise HwgenError(f"auto folding needs a target of at least 1 cycle per vector, got {target!r}")
        if orient not in ORIENTATIONS:
            raise HwgenError(f"auto folding orientation must be one of {', '.join(ORIENTATIONS)}, got {orient!r}")
        for (op, block), (pe, simd) in zip(layers, auto_folding(layers, target, orient)):
            op.pe, op.simd = pe, simd
            steps = block.steps if block else 1
            cyc = steps * layer_cycles(op)
            if cyc > target:
                graph.notes.append(f"fold: {op.name} cannot meet {target} cycles: its fastest folding "
                                   f"(PE {op.pe}, SIMD {op.simd}) takes {cyc} (the sliding window emits "
                                   "one beat per cycle)")
        graph.notes.append(f"fold: auto, target {target} cycles per inference"
                           + (", oriented for latency (stream)" if orient == "stream" else ""))
    elif isinstance(spec, dict):
        names = _all_ops(graph)
        unknown = sorted(set(spec) - names.keys())
        if unknown:
            raise HwgenError(f"folding names unknown layer(s) {', '.join(map(repr, unknown))}; "
                             f"layers are: {', '.join(names)}")
        for name, entry in spec.items():
            if not isinstance(entry, dict):
                raise HwgenError(f"layer '{name}': folding entry must be {{\"pe\": p, \"simd\": s}}, got {entry!r}")
            extra = sorted(set(entry) - {"pe", "simd"})
            if extra:
                raise HwgenError(f"layer '{name}': unknown folding key(s) {', '.join(extra)} (use pe, simd)")
        for op, _ in layers:
            entry = spec.get(op.name, {})
            pe0, simd0 = lowering_of(op).default_folding(op)
            op.pe, op.simd = _check(op, entry.get("pe", pe0), entry.get("simd", simd0))
        for name in spec:
            op = names[name]
            low = lowering_of(op)
            if not low.foldable:
                inner = [o.name for o in low.children(op) if lowering_of(o).foldable]
                raise HwgenError(f"layer '{name}' ({op.kind}) {low.fold_hint}"
                                 + (f": {', '.join(inner)}" if inner else ""))
        graph.notes.append("fold: from user file")
    else:
        raise HwgenError(f"unknown folding {spec!r}: use 'full', ('auto', cycles) or a "
                         "{layer: {pe, simd}} JSON file")
    return graph


def folding_table(graph: Graph) -> dict[str, dict[str, int]]:
    """The current folding as a spec dict (round-trips through fold_graph)."""
    return {op.name: {"pe": op.pe, "simd": op.simd} for op, _ in foldable(graph)}
