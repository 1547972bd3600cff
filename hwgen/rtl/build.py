"""Graph -> Verilog + report.json + graph.pkl (what `hwgen compile` writes)."""
from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

from amaranth.back import verilog

from ..ir import Graph
from .conv import ConvUnit
from .kernel_bank import KernelBankConvUnit
from .matvec import MatVecUnit
from .maxpool import MaxPoolUnit
from .ode_block import ODEBlockUnit
from .sumpool import GlobalSumPoolUnit
from .threshold import ThresholdUnit
from .top import Accelerator, ResidualBlock, estimate_ii, estimate_latency

DEFAULT_TOP = "hwgen_top"


def _check_top(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"top module name {name!r} is not a Verilog identifier")
    return name


def _dot_row(op, *, kind: str, pe: int, simd: int, cycles: int, acc_bits: int, memory_bits: int,
             weights_in: str, **extra) -> dict:
    return {
        "name": op.name, "op": kind, "pe": pe, "simd": simd, "cycles": cycles,
        "acc_bits": acc_bits,
        "acc_bits_exact": op.acc_bounds.get("exact"),
        "acc_bits_a2q": op.acc_bounds.get("a2q"),
        "acc_bits_datatype": op.acc_bounds.get("datatype"),
        "weight_bits": int(op.weights.size * op.w_type.wire_bits),
        "weights_nonzero": int((op.weights != 0).sum()),
        "memory_bits": memory_bits,
        "weights_in": weights_in,
        **extra,
    }


def _conv_row(op, u, cycles: int, block: str | None = None) -> dict:
    extra = {"in_shape": list(op.in_shape), "out_shape": list(u.out_shape), "kernel": list(op.kernel),
             "stride": list(op.stride), "groups": op.groups, "fill_cycles": u.fill_cycles,
             "rom_bits": u.rom_bits, "buffer_bits": u.buffer_bits}
    if block is not None:
        extra["block"] = block
    if isinstance(u, KernelBankConvUnit):
        extra.update(tau=u.tau, index_bits=u.index_bits, codebook_bits=u.codebook_bits,
                     channels_per_beat=u.simd, weight_bits=u.index_bits + u.codebook_bits)
        return _dot_row(op, kind="KernelBankConv", pe=u.pe, simd=op.simd, cycles=cycles, acc_bits=u.acc_bits,
                        memory_bits=u.rom_bits + u.buffer_bits, weights_in="rom" if u.folded else "wiring",
                        **extra)
    extra.update(window_simd=u.window_simd, weights_dense=int(u.dense.size))
    return _dot_row(op, kind="Conv", pe=u.pe, simd=u.simd, cycles=cycles, acc_bits=u.acc_bits,
                    memory_bits=u.rom_bits + u.buffer_bits, weights_in="rom" if u.folded else "constants",
                    binary=u.mv.binary, **extra)


def _threshold_row(op, u, cycles: int, block: str | None = None) -> dict:
    row = {
        "name": op.name, "op": "Threshold", "pe": u.pe, "simd": None, "cycles": cycles,
        "channels": u.C, "levels": u.L + 1,
        "acc_bits": u.in_bits, "acc_bits_exact": None, "acc_bits_a2q": None,
        "acc_bits_datatype": None,
        "weight_bits": u.C * u.L * u.cmp_bits,
        "memory_bits": u.rom_bits,
        "weights_in": "rom" if u.folded else "constants",
        "style": u.style,
    }
    if block is not None:
        row["block"] = block
    return row


def _plumbing_row(name: str, u) -> dict:
    row = {"name": name, "op": type(u).__name__, "memory_bits": getattr(u, "memory_bits", 0)}
    if hasattr(u, "n_in"):
        row.update(element_bits=u.b, in_elements=u.n_in, out_elements=u.n_out)
    if hasattr(u, "depth"):
        row.update(width=u.width, depth=u.depth)
    return row


def _stage_rows(stages, rows: list, plumbing: list) -> None:
    for st in stages:
        u, op = st.unit, st.op
        if isinstance(u, MatVecUnit):
            rows.append(_dot_row(op, kind="MatVec", pe=u.pe, simd=u.simd, cycles=st.cycles, acc_bits=u.acc_bits,
                                 memory_bits=u.rom_bits + u.buffer_bits,
                                 weights_in="rom" if u.folded else "constants", binary=u.binary,
                                 in_features=u.K, out_channels=u.C))
        elif isinstance(u, (ConvUnit, KernelBankConvUnit)):
            rows.append(_conv_row(op, u, st.cycles))
        elif isinstance(u, ThresholdUnit):
            rows.append(_threshold_row(op, u, st.cycles))
        elif isinstance(u, MaxPoolUnit):
            rows.append({"name": op.name, "op": "MaxPool", "pe": None, "simd": u.simd, "cycles": st.cycles,
                         "in_shape": list(op.in_shape), "out_shape": list(u.out_shape), "kernel": list(op.kernel),
                         "stride": list(op.stride), "fill_cycles": u.fill_cycles, "acc_bits": None,
                         "rom_bits": 0, "buffer_bits": u.buffer_bits, "memory_bits": u.buffer_bits})
        elif isinstance(u, GlobalSumPoolUnit):
            rows.append({"name": op.name, "op": "GlobalSumPool", "pe": None, "simd": u.simd, "cycles": st.cycles,
                         "in_shape": list(op.in_shape), "acc_bits": u.out_bits,
                         "rom_bits": 0, "buffer_bits": u.buffer_bits, "memory_bits": u.buffer_bits})
        elif isinstance(u, ODEBlockUnit):
            body_rows = []
            for name, inner in u.stages:
                iop = next((o for o in op.body if o.name == name), None)
                cyc = u._stage_cycles(inner)
                if isinstance(inner, (ConvUnit, KernelBankConvUnit)):
                    body_rows.append(_conv_row(iop, inner, cyc, block=op.name))
                elif isinstance(inner, ThresholdUnit):
                    body_rows.append(_threshold_row(iop, inner, cyc, block=op.name))
                else:
                    plumbing.append(_plumbing_row(f"{op.name}.{name}", inner))
            state_bits = u.P * u.simd * u.sbits
            rows.append({"name": op.name, "op": "ODEBlock", "pe": None, "simd": u.simd, "cycles": st.cycles,
                         "steps": u.steps, "dt_shift": op.dt_shift, "step_cycles": u.step_cycles,
                         "body": [o.name for o in op.body], "acc_bits": None,
                         "state_bits": state_bits, "rom_bits": u.rom_bits, "buffer_bits": u.buffer_bits,
                         # the body layers' memories are listed in their own rows
                         "memory_bits": state_bits})
            for r in body_rows:  # cycles are per pass; the body runs `steps` passes per inference
                r["runs_per_inference"] = u.steps
            rows.extend(body_rows)
        elif isinstance(u, ResidualBlock):
            rows.append({"name": op.name, "op": "Add", "pe": None, "simd": u.in_fmt.per_beat, "cycles": st.cycles,
                         "acc_bits": u.add.sum_bits, "skip_fifo_depth": u.skip.depth,
                         "memory_bits": u.skip.memory_bits, "residual_body": [s.op.name for s in u.stages if s.op]})
            _stage_rows(u.stages, rows, plumbing)
        else:
            plumbing.append(_plumbing_row(st.name, u))


def layer_rows(acc: Accelerator) -> tuple[list[dict], list[dict]]:
    """One row per IR layer (ODE body and residual branch layers included), and one per plumbing
    component (width converter, FIFO). memory_bits = ROM + buffers; an ODE block's row counts its
    state buffer, its body layers count their own."""
    rows, plumbing = [], []
    _stage_rows(acc.stages, rows, plumbing)
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
        "ii_cycles": estimate_ii(acc.stages, acc.in_fmt, acc.out_fmt),
        "ii_cycles_bound": estimate_ii(acc.stages),
        "latency_cycles": estimate_latency(acc.stages, acc.in_fmt, acc.out_fmt),
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
