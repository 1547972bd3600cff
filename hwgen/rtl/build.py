"""Graph -> Verilog + report.json + graph.pkl (what `hwgen compile` writes)."""
from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

from amaranth.back import verilog

from ..ir import Graph, MatVec, Threshold
from .matvec import MatVecUnit
from .threshold import ThresholdUnit
from .top import Accelerator, estimate_ii, estimate_latency

DEFAULT_TOP = "hwgen_top"


def _check_top(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"top module name {name!r} is not a Verilog identifier")
    return name


def layer_rows(acc: Accelerator) -> tuple[list[dict], list[dict]]:
    """One row per IR layer, and one per plumbing component (width converter, FIFO)."""
    rows, plumbing = [], []
    for st in acc.stages:
        u, op = st.unit, st.op
        if isinstance(u, MatVecUnit):
            rows.append({
                "name": op.name, "op": "MatVec", "pe": u.pe, "simd": u.simd, "cycles": u.cycles,
                "in_features": u.K, "out_channels": u.C,
                "acc_bits": u.acc_bits,
                "acc_bits_exact": op.acc_bounds.get("exact"),
                "acc_bits_a2q": op.acc_bounds.get("a2q"),
                "acc_bits_datatype": op.acc_bounds.get("datatype"),
                "weight_bits": u.C * u.K * u.w_bits,
                "weights_nonzero": int((op.weights != 0).sum()),
                "memory_bits": u.rom_bits + u.buffer_bits,
                "weights_in": "rom" if u.folded else "constants",
                "binary": u.binary,
            })
        elif isinstance(u, ThresholdUnit):
            rows.append({
                "name": op.name, "op": "Threshold", "pe": u.pe, "simd": None, "cycles": u.cycles,
                "channels": u.C, "levels": u.L + 1,
                "acc_bits": u.in_bits, "acc_bits_exact": None, "acc_bits_a2q": None,
                "acc_bits_datatype": None,
                "weight_bits": u.C * u.L * u.cmp_bits,
                "memory_bits": u.rom_bits,
                "weights_in": "rom" if u.folded else "constants",
                "style": u.style,
            })
        else:
            row = {"name": st.name, "op": type(u).__name__, "memory_bits": getattr(u, "memory_bits", 0)}
            if hasattr(u, "n_in"):
                row.update(element_bits=u.b, in_elements=u.n_in, out_elements=u.n_out)
            if hasattr(u, "depth"):
                row.update(width=u.width, depth=u.depth)
            plumbing.append(row)
    return rows, plumbing


def generate_verilog(graph: Graph, *, top: str = DEFAULT_TOP) -> tuple[str, Accelerator]:
    acc = Accelerator(graph)
    text = verilog.convert(acc, name=_check_top(top), emit_src=False,
                           ports=[acc.i.payload, acc.i.valid, acc.i.ready,
                                  acc.o.payload, acc.o.valid, acc.o.ready])
    return text, acc


def build_accelerator(graph: Graph, out_dir: str | os.PathLike, *, top: str | None = None) -> dict:
    """Write out_dir/<top>.v, out_dir/report.json and out_dir/graph.pkl; return the report.

    The graph must be folded already (hwgen.passes.fold.fold_graph); layers keep their pe/simd.
    """
    top = _check_top(top or DEFAULT_TOP)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    text, acc = generate_verilog(graph, top=top)
    vpath = out / f"{top}.v"
    vpath.write_text(text)
    with open(out / "graph.pkl", "wb") as f:
        pickle.dump(graph, f, protocol=4)
    layers, plumbing = layer_rows(acc)
    report = {
        "top": top,
        "verilog": vpath.name,
        "model": graph.name,
        "source": graph.source,
        "ii_cycles": estimate_ii(acc.stages),
        "latency_cycles": estimate_latency(acc.stages, acc.in_fmt),
        "layers": layers,
        "plumbing": plumbing,
        "memory_bits_total": sum(r["memory_bits"] or 0 for r in layers + plumbing),
        "io": {
            "clock": "clk", "reset": "rst (synchronous, active high)",
            "input": {"port": "i", **acc.in_fmt.as_dict()},
            "output": {"port": "o", **acc.out_fmt.as_dict()},
        },
    }
    # deterministic like the Verilog (no timings or paths of this run)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report
