"""Synthesize foreign Verilog (a peer tool's output) through hwgen's own open flow, unchanged.

hwgen.flows.synthesize reads DIR/report.json ("top", "verilog", "verilog_files", "io") and puts
the core inside the same serial harness, yosys script (synth_ecp5) and nextpnr-ecp5 command line
as an hwgen accelerator. A peer's module has no stream handshake, so `stream_wrapper` writes a
small Verilog module with hwgen's stream ports around a fixed-latency, II = 1 pipeline:
i__ready is always 1 (the pipeline has no enable, so o__ready is ignored: the wrapper does not
support back-pressure, which hwgen's designs do) and o__valid is i__valid delayed by the
pipeline's latency. The wrapper costs `latency` flip-flops and nothing else.
"""
from __future__ import annotations

import json
import os
import shutil

WRAPPER = """// Stream wrapper around a fixed-latency II=1 pipeline (bench/verilog_synth.py)
module {name} (
    input  wire clk,
    input  wire rst,
    input  wire [{w_in}-1:0] i__payload,
    input  wire i__valid,
    output wire i__ready,
    output wire [{w_out}-1:0] o__payload,
    output wire o__valid,
    input  wire o__ready
);
    reg [{lat}-1:0] v = {{{lat}{{1'b0}}}};
    always @(posedge clk) begin
        if (rst) v <= {{{lat}{{1'b0}}}};
        else v <= {shift};
    end
    assign i__ready = 1'b1;
    assign o__valid = v[{lat}-1];
    {inner} inner (.clk(clk), .{in_port}(i__payload), .{out_port}(o__payload));
endmodule
"""


def stream_wrapper(out_dir: str, *, name: str, inner: str, sources: list[str], w_in: int, w_out: int,
                   latency: int, in_port: str = "model_inp", out_port: str = "model_out") -> str:
    """Copy `sources` into out_dir, write `<name>.v` (the wrapper) and a report.json naming
    them, so that hwgen.flows.synthesize(out_dir, ...) runs on it. Returns out_dir."""
    os.makedirs(out_dir, exist_ok=True)
    files = []
    for src in sources:
        dst = os.path.basename(src)
        shutil.copy(src, os.path.join(out_dir, dst))
        files.append(dst)
    shift = "i__valid" if latency == 1 else f"{{v[{latency - 2}:0], i__valid}}"
    with open(os.path.join(out_dir, f"{name}.v"), "w") as f:
        f.write(WRAPPER.format(name=name, inner=inner, w_in=w_in, w_out=w_out, lat=latency,
                               shift=shift, in_port=in_port, out_port=out_port))
    io = {"input": {"payload_bits": w_in}, "output": {"payload_bits": w_out}}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"top": name, "verilog": f"{name}.v", "verilog_files": [f"{name}.v", *files],
                   "io": io, "layers": [], "ii_cycles": 1, "latency_cycles": latency}, f, indent=2)
    return out_dir
