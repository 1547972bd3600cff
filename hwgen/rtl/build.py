"""Graph -> Verilog + report.json + graph.json/graph.npz + manifest.json (what `hwgen compile`
writes; hwgen.builddir describes the directory and checks it before anything reads it), plus what
makes the directory a drop-in IP: the AXI4-Stream wrapper, file list, FuseSoC core and smoke
testbench (hwgen.rtl.ipcore) and the host processing as ONNX (hwgen.host_onnx).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

from amaranth.back import verilog

from ..builddir import MANIFEST, write_atomic, write_manifest
from ..errors import HwgenError
from ..host_onnx import write_host_models
from ..ir import Graph
from ..plan import HardwarePlan
from .axis import interface_comment
from .ipcore import write_ip_files
from .top import Accelerator

DEFAULT_TOP = "hwgen_top"

VERILOG_KEYWORDS = frozenset("""
always and assign automatic begin buf bufif0 bufif1 case casex casez cell cmos config deassign default
defparam design disable edge else end endcase endconfig endfunction endgenerate endmodule endprimitive
endspecify endtable endtask event for force forever fork function generate genvar highz0 highz1 if
ifnone incdir include initial inout input instance integer join large liblist library localparam
macromodule medium module nand negedge nmos nor noshowcancelled not notif0 notif1 or output parameter
pmos posedge primitive pull0 pull1 pulldown pullup pulsestyle_onevent pulsestyle_ondetect rcmos real
realtime reg release repeat rnmos rpmos rtran rtranif0 rtranif1 scalared showcancelled signed small
specify specparam strong0 strong1 supply0 supply1 table task time tran tranif0 tranif1 tri tri0 tri1
triand trior trireg unsigned use uwire vectored wait wand weak0 weak1 while wire wor xnor xor
bit byte logic int shortint longint shortreal string struct union enum typedef class interface package
endpackage endinterface endclass program endprogram import export return break continue void const
static virtual extends alias assert assume cover property sequence bind chandle unique priority
""".split())
"""Verilog / SystemVerilog keywords: not usable as the top module's name."""


def check_top(name: str) -> str:
    """The top module's name: a Verilog identifier that is not a keyword (API and CLI alike)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name or ""):
        raise HwgenError(f"top module name {name!r} is not a Verilog identifier (letters, digits, _; "
                         "not starting with a digit)")
    if name in VERILOG_KEYWORDS:
        raise HwgenError(f"top module name {name!r} is a Verilog keyword; choose another (--top)")
    return name


def generate_verilog(graph_or_plan: Graph | HardwarePlan, *, top: str = DEFAULT_TOP) -> tuple[str, Accelerator]:
    acc = Accelerator(graph_or_plan)
    text = verilog.convert(acc, name=check_top(top), emit_src=False,
                           ports=[acc.i.payload, acc.i.valid, acc.i.ready,
                                  acc.o.payload, acc.o.valid, acc.o.ready])
    return text, acc


def build_accelerator(graph: Graph, out_dir: str | os.PathLike, *, top: str | None = None,
                      plan: HardwarePlan | None = None, target: str | None = None) -> dict:
    """Write out_dir/<top>.v, out_dir/report.json (the plan), the IR, the IP files (AXI4-Stream
    wrapper, smoke testbench, file list, FuseSoC core) and host_pre/host_post.onnx; return the report.

    The graph must be folded already (hwgen.passes.fold.fold_graph); `plan` defaults to
    hwgen.passes.schedule.schedule(graph, target=target).
    """
    from ..ir.serialize import save_graph
    from ..passes.schedule import DEFAULT_TARGET, schedule

    top = check_top(top or DEFAULT_TOP)
    if plan is None:
        plan = schedule(graph, target=target or DEFAULT_TARGET)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HwgenError(f"{out}: cannot create the build directory ({exc.strerror})") from None
    if not out.is_dir():
        raise HwgenError(f"{out}: exists and is not a directory")
    text, _ = generate_verilog(plan, top=top)
    head_shape = graph.tensors[graph.head.outputs[0]].shape
    core_shape = graph.tensors[graph.core[-1].outputs[0]].shape
    text = interface_comment(plan, top, model=graph.name, in_shape=head_shape, out_shape=core_shape) + "\n" + text
    (out / MANIFEST).unlink(missing_ok=True)  # the directory is incomplete until the new manifest lands
    (out / "graph.pkl").unlink(missing_ok=True)  # an older hwgen's pickle: never read, never left beside
    (out / "verify.json").unlink(missing_ok=True)  # the previous design's verification result (sim.verify)
    vname = f"{top}.v"
    write_atomic(out / vname, text.encode())
    files = [vname, *save_graph(graph, out)]
    files += write_ip_files(out, plan, graph, top, [vname])
    files += write_host_models(graph, out)
    report = plan.to_dict(top=top, verilog=vname)
    # deterministic like the Verilog (no timings or paths of this run)
    write_atomic(out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    write_manifest(out, files + ["report.json"])
    return report
