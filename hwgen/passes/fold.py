"""Folding: choose PE (output channels in parallel) and SIMD (inputs in parallel) per layer.

A MatVec with C outputs and K inputs folded by (PE, SIMD) takes (C/PE) * (K/SIMD) cycles per
vector. Threshold layers run at the PE of the MatVec that feeds them (C/PE cycles).

spec:
  "full"                    every layer fully parallel (PE = C, SIMD = K): II = 1
  ("auto", target_cycles)   per layer the (PE, SIMD), divisors of C and K, with the fewest
                            PE*SIMD lanes whose cycles <= target (FINN's target_fps idea);
                            ties go to fewer cycles, then to the smaller PE
  dict or JSON file path    {layer_name: {"pe": p, "simd": s}} (a top-level {"layers": {...}}
                            is accepted too); layers not named keep PE = SIMD = 1
"""
from __future__ import annotations

import json
import os
from typing import Any

from ..errors import HwgenError
from ..ir import Graph, MatVec, Threshold


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def layer_cycles(op: MatVec, pe: int | None = None, simd: int | None = None) -> int:
    pe = op.pe if pe is None else pe
    simd = op.simd if simd is None else simd
    return (op.out_channels // pe) * (op.in_features // simd)


def choose_auto(op: MatVec, target_cycles: int) -> tuple[int, int]:
    best = None
    for pe in divisors(op.out_channels):
        for simd in divisors(op.in_features):
            cyc = layer_cycles(op, pe, simd)
            if cyc > target_cycles:
                continue
            key = (pe * simd, cyc, pe)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    assert best is not None  # full parallel always meets target >= 1
    return best[1], best[2]


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


def _check(op: MatVec, pe: Any, simd: Any) -> tuple[int, int]:
    c, k = op.out_channels, op.in_features
    problems = []
    if not isinstance(pe, int) or isinstance(pe, bool) or pe < 1 or c % pe:
        problems.append(f"PE {pe!r} must divide its {c} output channels (valid PE: "
                        f"{', '.join(map(str, divisors(c)))})")
    if not isinstance(simd, int) or isinstance(simd, bool) or simd < 1 or k % simd:
        problems.append(f"SIMD {simd!r} must divide its {k} inputs (valid SIMD: "
                        f"{', '.join(map(str, divisors(k)))})")
    if problems:
        raise HwgenError(f"layer '{op.name}': " + "; ".join(problems))
    return pe, simd


def threshold_pe(graph: Graph, op: Threshold) -> int:
    """The PE a Threshold runs at: that of the MatVec feeding it (else all channels)."""
    prev = graph.producer(op.inputs[0])
    if isinstance(prev, MatVec):
        return prev.pe
    return int(getattr(op, "pe", op.channels) or op.channels)


def fold_graph(graph: Graph, spec: Any = "full") -> Graph:
    """Set pe/simd on every MatVec of graph.core (in place) and return the graph."""
    spec = _load_spec(spec)
    mats = [op for op in graph.core if isinstance(op, MatVec)]
    if isinstance(spec, str) and spec == "full":
        for op in mats:
            op.pe, op.simd = op.out_channels, op.in_features
        graph.notes.append("fold: full (every layer parallel, II = 1)")
    elif isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] == "auto":
        target = spec[1]
        if not isinstance(target, int) or isinstance(target, bool) or target < 1:
            raise HwgenError(f"auto folding needs a target of at least 1 cycle per vector, got {target!r}")
        for op in mats:
            op.pe, op.simd = choose_auto(op, target)
        graph.notes.append(f"fold: auto, target {target} cycles per vector")
    elif isinstance(spec, dict):
        names = {op.name: op for op in graph.core}
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
        for op in mats:
            entry = spec.get(op.name, {})
            op.pe, op.simd = _check(op, entry.get("pe", 1), entry.get("simd", 1))
        for name, entry in spec.items():
            op = names[name]
            if isinstance(op, Threshold):
                pe = threshold_pe(graph, op)
                if "simd" in entry or entry.get("pe", pe) != pe:
                    raise HwgenError(f"layer '{name}': a Threshold runs at the PE of the MatVec before "
                                     f"it ({pe}); give PE there instead")
            elif not isinstance(op, MatVec):
                raise HwgenError(f"layer '{name}' ({op.kind}) has no folding")
        graph.notes.append("fold: from user file")
    else:
        raise HwgenError(f"unknown folding {spec!r}: use 'full', ('auto', cycles) or a "
                         "{layer: {pe, simd}} JSON file")
    return graph


def folding_table(graph: Graph) -> dict[str, dict[str, int]]:
    """The current folding as a spec dict (round-trips through fold_graph)."""
    return {op.name: {"pe": op.pe, "simd": op.simd} for op in graph.core if isinstance(op, MatVec)}
