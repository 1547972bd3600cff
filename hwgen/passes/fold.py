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


def layer_cycles(op, pe: int | None = None, simd: int | None = None) -> int:
    """Cycles per inference (one pass; an ODE body layer runs `steps` passes)."""
    return lowering_of(op).cycles(op, op.pe if pe is None else pe, op.simd if simd is None else simd)


def choose_auto(op, target_cycles: int, steps: int = 1) -> tuple[int, int]:
    """The (PE, SIMD) with the fewest lanes whose steps * cycles <= target; if none meets it
    (a conv's window unit sets a floor), the fastest one (fewest lanes among those)."""
    low = lowering_of(op)
    best = fastest = None
    for pe in low.valid_pe(op):
        for simd in low.valid_simd(op):
            cyc = steps * low.cycles(op, pe, simd)
            if fastest is None or (cyc, pe * simd, pe) < fastest[0]:
                fastest = ((cyc, pe * simd, pe), pe, simd)
            if cyc > target_cycles:
                continue
            key = (pe * simd, cyc, pe)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    chosen = best or fastest
    return chosen[1], chosen[2]


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
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] == "auto":
        target = spec[1]
        if not _is_int(target) or target < 1:
            raise HwgenError(f"auto folding needs a target of at least 1 cycle per vector, got {target!r}")
        for op, block in layers:
            steps = block.steps if block else 1
            op.pe, op.simd = choose_auto(op, target, steps)
            cyc = steps * layer_cycles(op)
            if cyc > target:
                graph.notes.append(f"fold: {op.name} cannot meet {target} cycles: its fastest folding "
                                   f"(PE {op.pe}, SIMD {op.simd}) takes {cyc} (the sliding window emits "
                                   "one beat per cycle)")
        graph.notes.append(f"fold: auto, target {target} cycles per inference")
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
