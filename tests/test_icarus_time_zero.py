"""Amaranth's Verilog (yosys write_verilog) makes every `always @*` block run at time 0 through a
`reg ... = 0` trigger it reads; that needs the declaration initializer to raise an event, which Icarus
does under -g2005 and not under -g2012 (cocotb's default). Found by the fuzzer: a width converter whose
first input word was all zeros, equal to its register's initial value, sent X as its first output beat
in Icarus only. sim.verify passes ICARUS_BUILD_ARGS after cocotb's -g2012; this bench shows both."""
import shutil
import subprocess

import pytest
from amaranth.back import verilog

from hwgen.rtl.width_converter import WidthConverter
from sim.verify import ICARUS_BUILD_ARGS

TB = """
module tb;
  reg clk = 0, rst = 0, i_valid = 1, o_ready = 1;
  reg [7:0] i_payload = 8'h00;
  wire i_ready, o_valid;
  wire [3:0] o_payload;
  conv dut(.clk(clk), .rst(rst), .i__valid(i_valid), .i__payload(i_payload), .i__ready(i_ready),
           .o__valid(o_valid), .o__payload(o_payload), .o__ready(o_ready));
  always #5 clk = ~clk;
  initial begin
    @(posedge clk); #1;  // the all-zero word is in the converter's register, its low nibble on the output
    $display("valid=%b payload=%b", o_valid, o_payload);
    $finish;
  end
endmodule
"""


def _first_beat(tmp_path, generation: list[str]) -> str:
    conv = WidthConverter(element_bits=4, in_elems=2, out_elems=1)
    (tmp_path / "conv.v").write_text(verilog.convert(conv, name="conv", emit_src=False))
    (tmp_path / "tb.v").write_text(TB)
    exe = tmp_path / "tb.vvp"
    subprocess.run(["iverilog", "-g2012", *generation, "-o", str(exe), "-s", "tb", str(tmp_path / "tb.v"),
                    str(tmp_path / "conv.v")], check=True, capture_output=True, text=True)
    return subprocess.run(["vvp", "-n", str(exe)], check=True, capture_output=True, text=True,
                          timeout=60).stdout.strip().splitlines()[-1]


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
def test_first_beat_of_an_all_zero_word_is_defined_with_the_bench_flags(tmp_path):
    assert _first_beat(tmp_path, ICARUS_BUILD_ARGS) == "valid=1 payload=0000"
    assert _first_beat(tmp_path, []) == "valid=1 payload=xxxx"  # cocotb's -g2012 alone: the bug
