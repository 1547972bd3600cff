"""report.md / report.html from a stand-in report.json and synth-*.json; the Makefile fragment
and the flows' command line (checked with make -n and argparse, no tools run)."""
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hwgen.errors import HwgenError
from hwgen.flows.cli import main as flows_main, summarize
from hwgen.report_doc import bottlenecks, write_report

ROOT = Path(__file__).resolve().parents[1]

LAYERS = [
    {"name": "Gemm_0", "op": "MatVec", "pe": 4, "simd": 16, "cycles": 64, "acc_bits": 12,
     "acc_bits_exact": 12, "acc_bits_a2q": 13, "acc_bits_datatype": 15, "weight_bits": 16384,
     "memory_bits": 16384},
    {"name": "Quant_4", "op": "Threshold", "pe": 4, "simd": None, "cycles": 16, "acc_bits": 12,
     "acc_bits_exact": None, "acc_bits_a2q": None, "acc_bits_datatype": None, "weight_bits": 11520,
     "memory_bits": 0},
    {"name": "Gemm_1_fifo", "op": "StreamFIFO", "pe": None, "simd": None, "cycles": None,
     "acc_bits": None, "acc_bits_exact": None, "acc_bits_a2q": None, "acc_bits_datatype": None,
     "weight_bits": 0, "memory_bits": 512},
    {"name": "Gemm_1", "op": "MatVec", "pe": 2, "simd": 8, "cycles": 256, "acc_bits": 11,
     "acc_bits_exact": 11, "acc_bits_a2q": 12, "acc_bits_datatype": 14, "weight_bits": 16384,
     "memory_bits": 16384, "unit": "MatVecUnit", "memory_style": "bram", "arithmetic": "lut",
     "estimate": {"lut": 330, "ff": 150, "carry": 3, "bram": 4, "dsp": 0}},
]


def _module(name, depth, layer, luts, ffs, brams=0, dsps=0):
    return {"module": name, "depth": depth, "layer": layer, "luts": luts, "ffs": ffs, "carry": 3,
            "brams": brams, "dsps": dsps, "lutram": 0, "spram": 0, "own": {}}


@pytest.fixture
def build(tmp_path):
    rep = {"top": "hwgen_top", "verilog": "hwgen_top.v", "model": "digits|mlp", "ii_cycles": 256, "target": "ice40",
           "estimate": {"lut": 330, "ff": 150, "carry": 3, "bram": 4, "dsp": 0},
           "latency_cycles": 400, "layers": LAYERS, "memory_bits_total": 33280,
           "io": {"input": {"element_bits": 4, "signed": False, "elements": 64, "elements_per_beat": 16,
                            "beats_per_inference": 4, "payload_bits": 64},
                  "output": {"element_bits": 11, "signed": True, "elements": 10, "elements_per_beat": 2,
                             "beats_per_inference": 5, "payload_bits": 22}}}
    (tmp_path / "report.json").write_text(json.dumps(rep))
    (tmp_path / "hwgen_top.v").write_text("module hwgen_top(); endmodule\n")
    synth = {"target": "ice40", "stage": "pnr", "device": "iCE40UP5K", "package": "sg48",
             "top": "hwgen_top", "wrapper": "hwgen_serial_harness", "luts": 1500, "ffs": 700,
             "carry": 120, "brams": 9, "dsps": 0, "fmax_mhz": 31.5, "tool_seconds": 12.5,
             "bram_unit": "SB_RAM40_4K (4 kbit)",
             "per_module": [_module("hwgen_serial_harness", 0, None, 1500, 700, 9),
                            _module("hwgen_top", 1, None, 1480, 600, 9),
                            _module("hwgen_top.s0_Gemm_0", 2, "Gemm_0", 900, 300, 5),
                            _module("hwgen_top.s1_Quant_4", 2, "Quant_4", 200, 100),
                            _module("hwgen_top.s2_Gemm_1_fifo", 2, None, 30, 40, 0),
                            _module("hwgen_top.s2_Gemm_1_fifo.fifo", 3, None, 20, 30, 0),
                            _module("hwgen_top.s3_Gemm_1", 2, "Gemm_1", 350, 160, 4)]}
    (tmp_path / "synth-ice40.json").write_text(json.dumps(synth))
    return tmp_path


def _png_ok(path: Path) -> bool:
    data = path.read_bytes()
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return False
    w, h = struct.unpack(">II", data[16:24])
    return w > 100 and h > 100 and len(data) > 5000


def test_report_files_tables_and_plots(build):
    md, page = write_report(build)
    assert md == build / "report.md" and page == build / "report.html"
    text, html = md.read_text(), page.read_text()
    for name in ("Gemm_0", "Quant_4", "Gemm_1"):
        assert re.search(rf"^\| (\*\*)?{name}\b", text, re.M), name        # a table row per layer
        assert f"<td>{name}" in html
    # bottleneck (256 cycles) is marked in the table and the summary
    assert "**Gemm_1 (bottleneck)**" in text and 'class="hot"><td>Gemm_1 (bottleneck)' in html
    assert "| bottleneck layer | Gemm_1 |" in text
    # accumulator columns: exact, A2Q, data-type, 32-bit
    assert "| 12 | 12 | 13 | 15 | 32 |" in text
    # resources per layer from the per-module numbers, the nested FIFO rolled into its parent
    # measured beside the plan's estimate (same target)
    assert "| **Gemm_1** | **hwgen_top.s3_Gemm_1** | **350** | **330** | **160** |" in text
    assert "## Plan estimates (ice40, before synthesis)" in text
    assert "| Gemm_1 | MatVecUnit | bram | lut | 330 | 150 | 3 | 4 | 0 |" in text
    assert "| Gemm_1_fifo | hwgen_top.s2_Gemm_1_fifo | 30 | - | 40 |" in text
    assert "wrapper (hwgen_serial_harness)" in text
    assert "123,047" in text                                   # 31.5 MHz / 256 cycles
    assert "digits\\|mlp" in text and "digits|mlp" in html     # escaped in markdown tables
    pngs = sorted(p.name for p in build.glob("report_*.png"))
    assert pngs == ["report_acc_widths.png", "report_cycles.png", "report_resources_synth-ice40.png"]
    for p in pngs:
        assert _png_ok(build / p), p
        assert f"]({p})" in text and f'src="{p}"' in html


def test_report_without_synthesis_and_errors(build, tmp_path_factory):
    (build / "synth-ice40.json").unlink()
    md, _ = write_report(build)
    assert "Resources per layer" not in md.read_text()
    assert not list(build.glob("report_resources_*.png"))
    with pytest.raises(HwgenError, match="hwgen compile"):
        write_report(tmp_path_factory.mktemp("empty"))


def test_bottlenecks():
    assert bottlenecks(LAYERS) == ["Gemm_1"]
    assert bottlenecks([{"name": "a", "cycles": 4}, {"name": "b", "cycles": 4}]) == []
    assert bottlenecks([{"name": "a", "cycles": None}]) == []


def test_flows_cli_report_and_summary(build, capsys):
    assert flows_main(["report", str(build)]) == 0
    assert "report.html" in capsys.readouterr().out
    s = summarize(build)
    assert "II 256 cycles" in s and "1500 LUT" in s and "Fmax 31.5 MHz" in s
    assert flows_main(["synth", str(build / "nope"), "--target", "ice40"]) == 2
    assert "hwgen compile" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")
def test_flows_mk_targets_call_the_cli(tmp_path):
    def dry(*args):
        # --no-print-directory: under `make test` MAKELEVEL > 0 would add "Entering directory" lines
        r = subprocess.run(["make", "-n", "--no-print-directory", "-f", str(ROOT / "flows.mk"), *args],
                           cwd=ROOT, capture_output=True, text=True, check=True)
        return r.stdout

    b = tmp_path / "b"
    b.mkdir()
    (b / "report.json").write_text("{}")
    common = [f"BUILD={b}", "MODEL=flows.mk", "HWGEN=hwgen"]       # report.json newer than MODEL
    os.utime(b / "report.json", None)
    out = dry("pnr-ice40", *common)
    assert out.strip() == f"hwgen synth {b} --target ice40 --device up5k --package sg48 --freq 12  --stage pnr"
    assert dry("synth-ice40", *common).strip().endswith("--stage synth")
    assert "--target ecp5 --device 85k --package CABGA381 --freq 100" in dry("pnr-ecp5", *common)
    assert "--target ecp5" in dry("synth-ecp5", *common) and "--stage synth" in dry("synth-ecp5", *common)
    assert f"hwgen synth {b} --target xilinx --device xc7z020" in dry("synth-xilinx", *common)
    assert "--stage bitstream" in dry("bitstream-ice40", *common)
    assert dry("report", *common).strip() == f"hwgen report {b}"
    assert dry("sim", *common, "SIM=icarus").strip() == f"hwgen verify {b} --sim icarus"
    assert dry("verilog", *common, "FOLD=full").strip() == f"hwgen compile flows.mk -o {b} --fold full"
    assert dry("verilog", *common, "TARGET_CYCLES=64").split() == \
        ["hwgen", "compile", "flows.mk", "-o", str(b), "--fold", "auto", "--target-cycles", "64"]
    assert "--device hx8k" in dry("pnr-ice40", *common, "ICE40_DEVICE=hx8k")
    # a missing build compiles first
    out = dry("pnr-ice40", f"BUILD={tmp_path / 'new'}", "MODEL=flows.mk", "HWGEN=hwgen")
    assert out.splitlines()[0].startswith(f"hwgen compile flows.mk -o {tmp_path / 'new'} --fold auto --target-cycles 1024")
    demo = dry("flow-demo", "HWGEN=hwgen")
    assert "--fold auto --target-cycles 1024" in demo and "digits_mlp_w4a4_a2q.onnx" in demo and "--sim verilator" in demo and "--stage bitstream" in demo


def test_summary_gives_the_board_rate(build):
    """A board build is paced by its UART: (4 x 8 + 5 x 3) bytes of 10 bits at 115200 baud."""
    board = {"target": "ice40", "stage": "bitstream", "device": "iCE40UP5K", "package": "sg48", "top": "hwgen_top",
             "luts": 1600, "ffs": 720, "carry": 120, "brams": 9, "dsps": 0, "fmax_mhz": 31.5, "tool_seconds": 20,
             "bitstream": "flow-ice40-board/hwgen_board.bin"}
    (build / "bitstream-ice40.json").write_text(json.dumps(board))
    s = summarize(build)
    assert "-> 245 inferences/s on the board (UART 115200 baud, 32 + 15 bytes per inference)" in s
