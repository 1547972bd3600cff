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
Threshold layers run at the PE of the layer that feeds them.

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
import math
import os
from typing import Any, Iterator

from ..errors import HwgenError
from ..ir import Conv, Dot, Graph, KernelBankConv, MatVec, ODEBlock, Threshold


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


# -- what a layer may be folded by, and what it costs --------------------------------------------
def patch_length(op: Conv) -> int:
    """kh*kw*Cin: the dense dot product length of a conv (zeros included for grouped convs)."""
    kh, kw = op.kernel
    return kh * kw * op.in_shape[2]


def valid_pe(op: Dot) -> list[int]:
    return divisors(op.out_channels)


def valid_simd(op: Dot) -> list[int]:
    if isinstance(op, KernelBankConv):
        # S channels per beat; the unit reads them back as gcd(SIMD, Cin) (KernelBankConvUnit.from_op)
        kh, kw = op.kernel
        cin = op.in_shape[2]
        return [kh * kw * s for s in divisors(cin) if math.gcd(kh * kw * s, cin) == s]
    if isinstance(op, Conv):
        return divisors(patch_length(op))
    return divisors(op.in_features)


def window_cycles(op: Conv, channels_per_beat: int) -> int:
    """Cycles per image of a sliding window unit emitting `channels_per_beat` channels a cycle."""
    h, w, c = op.in_shape
    kh, kw = op.kernel
    ho, wo, _ = op.out_shape
    cf = c // channels_per_beat
    identity = (kh, kw) == (1, 1) and tuple(op.stride) == (1, 1) and not any(op.pads)
    if identity:
        return h * w * cf
    return max(ho * wo * kh * kw * cf, h * w * cf)


def layer_cycles(op: Dot, pe: int | None = None, simd: int | None = None) -> int:
    """Cycles per inference (one pass; an ODE body layer runs `steps` passes)."""
    pe = op.pe if pe is None else pe
    simd = op.simd if simd is None else simd
    if isinstance(op, KernelBankConv):
        ho, wo, _ = op.out_shape
        kh, kw = op.kernel
        s = math.gcd(simd, op.in_shape[2])
        cf = op.in_shape[2] // s
        return max(ho * wo * max(kh * kw * cf, (op.out_channels // pe) * cf), window_cycles(op, s))
    if isinstance(op, Conv):
        ho, wo, _ = op.out_shape
        mv = (op.out_channels // pe) * (patch_length(op) // simd)
        return max(ho * wo * mv, window_cycles(op, math.gcd(simd, op.in_shape[2])))
    return (op.out_channels // pe) * (op.in_features // simd)


def full_folding(op: Dot) -> tuple[int, int]:
    if isinstance(op, Conv):
        return op.out_channels, patch_length(op)
    return op.out_channels, op.in_features


def default_folding(op: Dot) -> tuple[int, int]:
    """PE = SIMD = 1 (for a kernel bank: one input channel per beat, SIMD = kh*kw)."""
    return 1, valid_simd(op)[0]


def choose_auto(op: Dot, target_cycles: int, steps: int = 1) -> tuple[int, int]:
    """The (PE, SIMD) with the fewest lanes whose steps * cycles <= target; if none meets it
    (a conv's window unit sets a floor), the fastest one (fewest lanes among those)."""
    best = fastest = None
    for pe in valid_pe(op):
        for simd in valid_simd(op):
            cyc = steps * layer_cycles(op, pe, simd)
            if fastest is None or (cyc, pe * simd, pe) < fastest[0]:
                fastest = ((cyc, pe * simd, pe), pe, simd)
            if cyc > target_cycles:
                continue
            key = (pe * simd, cyc, pe)
            if best is None or key < best[0]:
                best = (key, pe, simd)
    chosen = best or fastest
    return chosen[1], chosen[2]


def foldable(graph: Graph) -> Iterator[tuple[Dot, ODEBlock | None]]:
    """Every foldable layer, with the ODE block it sits in (None at top level)."""
    for op in graph.core:
        if isinstance(op, ODEBlock):
            for inner in op.body:
                if isinstance(inner, Dot):
                    yield inner, op
        elif isinstance(op, Dot):
            yield op, None


def _all_ops(graph: Graph) -> dict[str, Any]:
    ops = {}
    for op in graph.core:
        ops[op.name] = op
        if isinstance(op, ODEBlock):
            for inner in op.body:
                ops[inner.name] = inner
    return ops


def _producer(graph: Graph, tensor: str):
    for op in graph.core:
        if isinstance(op, ODEBlock):
            for inner in op.body:
                if tensor in inner.outputs:
                    return inner
        if tensor in op.outputs:
            return op
    return None


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


def _check(op: Dot, pe: Any, simd: Any) -> tuple[int, int]:
    problems = []
    pes, simds = valid_pe(op), valid_simd(op)
    if not _is_int(pe) or pe not in pes:
        problems.append(f"PE {pe!r} must divide its {op.out_channels} output channels (valid PE: "
                        f"{', '.join(map(str, pes))})")
    if not _is_int(simd) or simd not in simds:
        if isinstance(op, KernelBankConv):
            kh, kw = op.kernel
            what = (f"be {kh}*{kw} times the input channels per beat, a divisor of its {op.in_shape[2]} "
                    "input channels (kernel bank: SIMD counts window taps)")
        elif isinstance(op, Conv):
            kh, kw = op.kernel
            what = f"divide its patch of {kh}*{kw}*{op.in_shape[2]} = {patch_length(op)} inputs"
        else:
            what = f"divide its {op.in_features} inputs"
        problems.append(f"SIMD {simd!r} must {what} (valid SIMD: {', '.join(map(str, simds))})")
    if problems:
        raise HwgenError(f"layer '{op.name}': " + "; ".join(problems))
    return pe, simd


def threshold_pe(graph: Graph, op: Threshold) -> int:
    """The PE a Threshold runs at: that of the MatVec / Conv feeding it (else all channels)."""
    prev = _producer(graph, op.inputs[0])
    if isinstance(prev, Dot):
        return prev.pe
    return int(getattr(op, "pe", op.channels) or op.channels)


def fold_graph(graph: Graph, spec: Any = "full") -> Graph:
    """Set pe/simd on every foldable layer (in place, ODE bodies included) and return the graph."""
    spec = _load_spec(spec)
    layers = list(foldable(graph))
    if isinstance(spec, str) and spec == "full":
        for op, _ in layers:
            op.pe, op.simd = full_folding(op)
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
            pe0, simd0 = default_folding(op)
            op.pe, op.simd = _check(op, entry.get("pe", pe0), entry.get("simd", simd0))
        for name, entry in spec.items():
            op = names[name]
            if isinstance(op, Threshold):
                pe = threshold_pe(graph, op)
                if "simd" in entry or entry.get("pe", pe) != pe:
                    raise HwgenError(f"layer '{name}': a Threshold runs at the PE of the layer before "
                                     f"it ({pe}); give PE there instead")
            elif isinstance(op, ODEBlock):
                raise HwgenError(f"layer '{name}' (ODEBlock) has no folding of its own; fold the layers of "
                                 f"its body: {', '.join(o.name for o in op.body if isinstance(o, Dot))}")
            elif not isinstance(op, Dot):
                raise HwgenError(f"layer '{name}' ({op.kind}) has no folding")
        graph.notes.append("fold: from user file")
    else:
        raise HwgenError(f"unknown folding {spec!r}: use 'full', ('auto', cycles) or a "
                         "{layer: {pe, simd}} JSON file")
    return graph


def folding_table(graph: Graph) -> dict[str, dict[str, int]]:
    """The current folding as a spec dict (round-trips through fold_graph)."""
    return {op.name: {"pe": op.pe, "simd": op.simd} for op, _ in foldable(graph)}
