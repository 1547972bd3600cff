"""hwgen.flows.bram_outreg: the register after an ECP5 block RAM read becomes the block RAM's
output register only where that keeps the function, on hand-made netlists (each refusal case
leaves the netlist unchanged) and on the netlist yosys makes of a registered weight ROM."""
import copy
import json
import shutil
import subprocess

import numpy as np
import pytest

from hwgen.flows import bram_outreg
from hwgen.ir.types import Bipolar
from hwgen.rtl.matvec import MatVecUnit, Pipeline

CLK, CE, OTHER = 2, 7, 8  # net bits of the hand-made netlists
DO = {"DOA0": 10, "DOA1": 11, "DOB0": 12}
Q = {10: 20, 11: 21, 12: 22}


def _ram(width_a=36, **conn):
    c = {"CLKA": ["0"], "CLKB": [CLK], "CEA": ["0"], "CEB": ["1"], "OCEA": ["0"], "OCEB": ["1"],
         "RSTA": ["0"], "RSTB": ["0"], "ADB4": [3], **{p: [b] for p, b in DO.items()}, **conn}
    dirs = {p: "output" if p.startswith("DO") else "input" for p in c}
    params = {"DATA_WIDTH_A": format(width_a, "032b"), "DATA_WIDTH_B": format(36, "032b"),
              "REGMODE_A": "NOREG", "REGMODE_B": "NOREG", "CLKAMUX": "CLKA", "CLKBMUX": "CLKB"}
    return {"type": "DP16KD", "parameters": params, "port_directions": dirs, "connections": c}


def _ff(d, q, **over):
    conn = {"CLK": [CLK], "LSR": ["0"], "DI": [d], "Q": [q]}
    params = {"CEMUX": "1 ", "CLKMUX": "CLK", "GSR": "DISABLED", "LSRMUX": "LSR", "REGSET": "RESET"}
    for k, v in over.items():
        (params if k.isupper() and k not in ("CE", "LSR", "CLK") else conn)[k] = v
    dirs = {"CLK": "input", "LSR": "input", "DI": "input", "Q": "output", "CE": "input"}
    return {"type": "TRELLIS_FF", "parameters": params, "port_directions": dirs, "connections": conn}


def _netlist(ram=None, ffs=None, extra=None, out_bits=(20, 21, 22)):
    cells = {"ram": ram or _ram()}
    for d, q in Q.items():
        cells[f"ff{d}"] = (ffs or {}).get(d) or _ff(d, q)
    cells.update(extra or {})
    return {"modules": {"top": {"ports": {"clk": {"direction": "input", "bits": [CLK]},
                                          "q": {"direction": "output", "bits": list(out_bits)}},
                                "cells": cells, "netnames": {}}}}


def test_pseudo_dual_port_read_takes_its_registers():
    net = _netlist()
    rep = bram_outreg.absorb(net)
    cells = net["modules"]["top"]["cells"]
    assert sorted(cells) == ["ram"]  # the three flip-flops are gone
    ram = cells["ram"]
    assert {p: ram["connections"][p] for p in DO} == {"DOA0": [20], "DOA1": [21], "DOB0": [22]}
    assert ram["parameters"]["REGMODE_A"] == ram["parameters"]["REGMODE_B"] == "OUTREG"
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == ["1"]
    assert ram["connections"]["CLKA"] == [CLK]  # port A never writes (CEA 0): it clocks the DOA half
    assert (rep.ports, rep.absorbed_ports, rep.absorbed_ffs, dict(rep.kept)) == (1, 1, 3, {})
    assert rep.line() == ("bram_outreg: 1 of 1 block RAM read ports took their output register "
                          "(3 flip-flops absorbed)")
    again = bram_outreg.absorb(net)  # a second pass finds the port registered
    assert (again.absorbed_ports, dict(again.kept)) == (0, {"already registered": 1})


def test_clock_enable_becomes_the_output_enable():
    net = _netlist(ffs={d: _ff(d, q, CE=[CE], CEMUX="CE") for d, q in Q.items()})
    assert bram_outreg.absorb(net).absorbed_ffs == 3
    ram = net["modules"]["top"]["cells"]["ram"]
    assert ram["connections"]["OCEA"] == ram["connections"]["OCEB"] == [CE]


def test_true_dual_port_ports_are_separate():
    """18-bit ports: A's flip-flops move into A's register; B's read data also feed logic, so B keeps
    its fabric register and its NOREG."""
    lut = {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "Z": "output"},
           "connections": {"A": [12], "Z": [30]}}
    net = _netlist(ram=_ram(width_a=18, CLKA=[CLK], OCEA=["1"]), extra={"lut": lut})
    rep = bram_outreg.absorb(net)
    cells = net["modules"]["top"]["cells"]
    assert sorted(cells) == ["ff12", "lut", "ram"]
    assert cells["ram"]["parameters"]["REGMODE_A"] == "OUTREG" and cells["ram"]["parameters"]["REGMODE_B"] == "NOREG"
    assert cells["ram"]["connections"]["DOB0"] == [12]
    assert (rep.ports, rep.absorbed_ffs, dict(rep.kept)) == (2, 2, {"read data used by logic": 1})


def _lut_on_11():
    return {"lut": {"type": "LUT4", "parameters": {}, "port_directions": {"A": "input", "Z": "output"},
                    "connections": {"A": [11], "Z": [30]}}}


@pytest.mark.parametrize("case,why", [
    (dict(extra=_lut_on_11()), "read data used by logic"),
    (dict(out_bits=(11, 21, 22)), "read data used by logic"),  # a read bit is also a module output
    (dict(ffs={11: _ff(11, 21, CLK=[OTHER])}), "register on another clock"),
    (dict(ffs={11: _ff(11, 21, CLKMUX="INV")}), "register on another clock"),
    (dict(ffs={11: _ff(11, 21, LSR=[OTHER])}), "register with set/reset"),
    (dict(ffs={11: _ff(11, 21, REGSET="SET")}), "register with set/reset"),
    (dict(ffs={11: _ff(11, 21, CE=[CE], CEMUX="INV")}), "inverted clock enable"),
    (dict(ffs={11: _ff(11, 21, CE=[CE], CEMUX="CE")}), "registers with different enables"),
    (dict(ram=_ram(RSTB=[OTHER])), "reset in use"),
    (dict(ram=_ram(CLKA=[OTHER])), "second clock"),
])
def test_refusals_leave_the_netlist_unchanged(case, why):
    net = _netlist(**case)
    before = copy.deepcopy(net)
    rep = bram_outreg.absorb(net)
    assert net == before
    assert (rep.ports, rep.absorbed_ports, dict(rep.kept)) == (1, 0, {why: 1})


def test_registered_weight_rom_takes_the_block_ram_registers(tmp_path):
    """yosys's netlist of a MatVec with a registered block RAM weight ROM split in two depth chunks
    (rtl.util.group_rom): each chunk's register (36 flip-flops) becomes its cell's output register,
    and yosys reads the rewritten netlist back."""
    from amaranth.back import verilog

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    rng = np.random.default_rng(3)
    dut = MatVecUnit(weights=rng.choice([-1, 1], (64, 288)), in_type=Bipolar, w_type=Bipolar, acc_bits=10,
                     pe=4, simd=9, pipeline=Pipeline(operands=True, products=True, tree_every=2, stall_free=True))
    dut.rom_style, dut.rom_chunk_depth = "bram", 256
    assert (dut.NF * dut.SF, dut.rom_levels) == (512, 1)
    (tmp_path / "mv.v").write_text(verilog.convert(dut, name="top"))
    subprocess.run(["yosys", "-q", "-p", "read_verilog mv.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=600)
    assert bram_outreg.main([str(tmp_path / "net.json"), str(tmp_path / "out.json")]) == 0
    before = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]["cells"]
    after = json.loads((tmp_path / "out.json").read_text())["modules"]["top"]["cells"]
    rams = [c for c in after.values() if c["type"] == "DP16KD"]
    assert len(rams) == 2 and all(r["parameters"]["REGMODE_B"] == "OUTREG" for r in rams)
    ffs = sum(c["type"] == "TRELLIS_FF" for c in before.values()) - sum(c["type"] == "TRELLIS_FF" for c in after.values())
    assert ffs == 2 * 36
    subprocess.run(["yosys", "-q", "-p", "read_json out.json; hierarchy -top top; check -assert"],
                   cwd=tmp_path, check=True, timeout=600)
