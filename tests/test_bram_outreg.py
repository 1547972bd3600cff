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
    (dict(ffs={11: _ff(11, 21, LSRMUX="INV")}), "register with set/reset"),  # LSR 0 inverted: always reset
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


@pytest.mark.parametrize("width,depth,shape,cells", [
    (40, 512, (36, 512), 2),  # two lanes (36 + 4 bits) of one chunk
    pytest.param(48, 12288, (4, 4096), 36, marks=pytest.mark.slow),  # CNV-W1A1 Conv_5: 3 chunks x 12 lanes
])
def test_registered_weight_rom_takes_the_block_ram_registers(tmp_path, width, depth, shape, cells):
    """yosys's netlist of a registered block RAM ROM (rtl.util.group_rom) split by the plan's rule into
    one memory per cell (cost.primitives.bram_cell_shape): every cell's read data feed only their
    chunk register, so every cell takes those flip-flops as its output register, and yosys reads the
    rewritten netlist back. (yosys took 9 minutes on the Conv_5 case here, hence slow.)"""
    from amaranth.back import verilog
    from amaranth.hdl import Const, Elaboratable, Module, Signal

    from hwgen.cost.primitives import bram_cell_shape
    from hwgen.rtl.util import group_rom

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    rng = np.random.default_rng(3)
    words = [int(w) for w in rng.integers(0, 1 << width, depth, dtype=np.uint64)]
    lane_bits, chunk = bram_cell_shape(width, depth, "ecp5")
    assert (lane_bits, chunk) == shape

    class Rom(Elaboratable):
        def __init__(self):
            self.q = Signal(width)

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.q.eq(group_rom(m, width=width, words=words, step=Const(1), en=Const(1), style="bram",
                                            registered=True, chunk_depth=chunk, lane_bits=lane_bits))
            return m

    rom = Rom()
    (tmp_path / "rom.v").write_text(verilog.convert(rom, name="top", ports=[rom.q]))
    subprocess.run(["yosys", "-q", "-p", "read_verilog rom.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=1800)
    net = json.loads((tmp_path / "net.json").read_text())
    ffs_before = sum(c["type"] == "TRELLIS_FF" for c in net["modules"]["top"]["cells"].values())
    rep = bram_outreg.absorb(net)
    left = net["modules"]["top"]["cells"]
    assert sum(c["type"] == "DP16KD" for c in left.values()) == cells
    assert (rep.ports, rep.absorbed_ports, dict(rep.kept)) == (cells, cells, {})
    chunks = -(-depth // chunk)
    assert rep.absorbed_ffs == chunks * width == ffs_before - sum(c["type"] == "TRELLIS_FF" for c in left.values())
    (tmp_path / "out.json").write_text(json.dumps(net))
    subprocess.run(["yosys", "-q", "-p", "read_json out.json; hierarchy -top top; check -assert"],
                   cwd=tmp_path, check=True, timeout=600)


@pytest.mark.parametrize("dtype", ["bipolar", "uint4"])
def test_window_line_buffer_takes_the_block_ram_register(tmp_path, dtype):
    """A registered-read sliding window's line buffer (no_rw_check, the padding select after the
    read register): yosys adds no read-write collision logic, so the read data feed only the read
    register and every block RAM port takes it as its output register."""
    from amaranth.back import verilog

    from hwgen.ir.types import Bipolar, IntType
    from hwgen.rtl.sliding_window import SlidingWindowUnit

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    in_type = Bipolar if dtype == "bipolar" else IntType(4, False)
    dut = SlidingWindowUnit(in_shape=(32, 32, 64), kernel=(3, 3), stride=(1, 1), pads=(1, 1, 1, 1), in_type=in_type,
                            simd=16, registered_read=True)
    (tmp_path / "w.v").write_text(verilog.convert(dut, name="top"))
    subprocess.run(["yosys", "-q", "-p", "read_verilog w.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=600)
    net = json.loads((tmp_path / "net.json").read_text())
    cells = net["modules"]["top"]["cells"].values()
    brams = sum(c["type"] == "DP16KD" for c in cells)
    rep = bram_outreg.absorb(net)
    word = 16 * in_type.wire_bits
    assert brams == (1 if dtype == "bipolar" else 2)  # 384 words of 16 / 64 bits
    assert (rep.ports, rep.absorbed_ports, rep.absorbed_ffs, dict(rep.kept)) == (brams, brams, word, {})


def test_unused_port_is_not_counted():
    """A true dual port ROM read on A only: B (no clock, its read data on nets nothing reads) is not
    a read port, so it is neither absorbed nor reported as kept."""
    net = _netlist(ram=_ram(width_a=9, CLKA=[CLK], CLKB=["0"], OCEA=["1"]), out_bits=(20, 21))
    cells = net["modules"]["top"]["cells"]
    del cells["ff12"]  # DOB0's net (12) now has no load
    rep = bram_outreg.absorb(net)
    assert (rep.ports, rep.absorbed_ports, rep.absorbed_ffs, dict(rep.kept)) == (1, 1, 2, {})
    assert cells["ram"]["parameters"]["REGMODE_B"] == "NOREG" and cells["ram"]["connections"]["DOB0"] == [12]


@pytest.mark.parametrize("no_rw_check", [False, True])
def test_no_rw_check_ram_mapping_follows_the_cost_model(tmp_path, no_rw_check):
    """A 42 x 64 RAM (the shape of CNV-W1A1's Conv_2 line buffer): with the read-before-write
    emulation yosys puts it in 48 LUT RAM cells; marked no_rw_check, the emulation's cost is gone and
    it takes 2 block RAMs, as cost.primitives.map_memory(rw_check=...) says."""
    from amaranth.back import verilog
    from amaranth.hdl import Elaboratable, Module, Signal
    from amaranth.lib.memory import Memory

    from hwgen.cost.primitives import map_memory

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")

    class Ram(Elaboratable):
        def __init__(self):
            self.wa, self.ra, self.d, self.q, self.we = Signal(6), Signal(6), Signal(64), Signal(64), Signal()

        def elaborate(self, platform):
            m = Module()
            m.submodules.mem = mem = Memory(shape=64, depth=42, init=[],
                                            attrs={"no_rw_check": 1} if no_rw_check else None)
            wr, rd = mem.write_port(), mem.read_port(domain="sync")
            m.d.comb += [wr.addr.eq(self.wa), wr.data.eq(self.d), wr.en.eq(self.we), rd.addr.eq(self.ra),
                         self.q.eq(rd.data)]
            return m

    ram = Ram()
    (tmp_path / "ram.v").write_text(verilog.convert(ram, name="top", ports=[ram.wa, ram.ra, ram.d, ram.q, ram.we]))
    subprocess.run(["yosys", "-q", "-p", "read_verilog ram.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=600)
    cells = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]["cells"].values()
    got = (sum(c["type"] == "DP16KD" for c in cells), sum(c["type"] == "TRELLIS_DPR16X4" for c in cells))
    mm = map_memory(64, 42, "ecp5", write_ports=1, rw_check=not no_rw_check)
    assert got == ((mm.cells, 0) if mm.kind == "bram" else (0, mm.cells))
    assert got == ((2, 0) if no_rw_check else (0, 48))
