"""Move the register after an ECP5 block RAM read into the block RAM's own output register.

yosys 0.70 maps a memory's read port to a DP16KD without its output register (memory_libmap has
no such capability for ECP5), so a register written after the read, as hwgen's registered weight
ROMs do (rtl.util.group_rom), stays a fabric flip-flop: the read data leave the cell 5.61 ns
after the clock and then travel to wherever the placer put that flip-flop (CNV-W1A1 at b050b9e:
another 5.4-5.9 ns, 84 MHz). With REGMODE OUTREG the cell's clock-to-out is 0.97 ns (nextpnr's
timing database). Vendor flows do this in synthesis; here it is a pass over yosys's JSON netlist,
run between yosys and nextpnr, that keeps the function: a read port takes its flip-flops only when

- every read-data pin of the port that drives anything drives exactly one flip-flop's data
  input and nothing else (no other cell, no module port);
- those flip-flops are clocked by the port's clock on the same edge, share one clock enable
  (which becomes the port's output-register enable), have no set/reset input and power up at 0.

A 36-bit pseudo dual port cell (DATA_WIDTH_A 36: port A writes, port B reads all 36 bits on
DOA and DOB) is one read port: both REGMODEs, both output enables and, where port A never
writes (a ROM: CEA is 0), CLKA take the read side's settings, so the output register works
whichever of the two the silicon uses for the DOA half; nextpnr times DOA from REGMODE_A.

    python -m hwgen.flows.bram_outreg netlist.json netlist-pnr.json
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field

BRAM = "DP16KD"
FF = "TRELLIS_FF"
CONSTANTS = ("0", "1", "x", "z")


@dataclass
class Report:
    """What the pass did: ports that took their register, flip-flops absorbed, and why the
    other read ports (with something connected) kept theirs in the fabric."""
    ports: int = 0
    absorbed_ports: int = 0
    absorbed_ffs: int = 0
    kept: Counter = field(default_factory=Counter)

    def line(self) -> str:
        why = "; ".join(f"{n} {reason}" for reason, n in sorted(self.kept.items()))
        return (f"bram_outreg: {self.absorbed_ports} of {self.ports} block RAM read ports took their output "
                f"register ({self.absorbed_ffs} flip-flops absorbed)" + (f"; kept: {why}" if why else ""))


def _param(cell: dict, name: str, default: str = "") -> str:
    """A string parameter (yosys pads strings that look like bits with a trailing space)."""
    return str(cell.get("parameters", {}).get(name, default)).rstrip()


def _int_param(cell: dict, name: str, default: int) -> int:
    v = _param(cell, name)
    try:
        return int(v, 2) if v and set(v) <= {"0", "1"} else int(v or default)
    except ValueError:
        return default


def _bit(cell: dict, pin: str):
    bits = cell["connections"].get(pin) or ["z"]
    return bits[0]


def _read_ports(cell: dict) -> list[dict]:
    """The read ports of a DP16KD: its data pins, clock, and the settings one output register
    per port goes with."""
    pins = sorted(p for p in cell["connections"] if p.startswith("DO"))
    if _int_param(cell, "DATA_WIDTH_A", 18) == 36:  # pseudo dual port: B reads all of DO
        return [{"pins": pins, "clk": "CLKB", "mux": ("CLKBMUX", "CLKB"), "regmode": ("REGMODE_A", "REGMODE_B"),
                 "oce": ("OCEA", "OCEB"), "rst": ("RSTA", "RSTB"), "pdp": True}]
    return [{"pins": [p for p in pins if p.startswith(f"DO{s}")], "clk": f"CLK{s}", "mux": (f"CLK{s}MUX", f"CLK{s}"),
             "regmode": (f"REGMODE_{s}",), "oce": (f"OCE{s}",), "rst": (f"RST{s}",), "pdp": False} for s in "AB"]


def _loads(module: dict) -> dict:
    """bit -> [(cell name, pin)] of every input pin and output port it drives."""
    loads: dict = {}
    for name, c in module["cells"].items():
        dirs = c.get("port_directions", {})
        for pin, bits in c["connections"].items():
            if dirs.get(pin) == "input":
                for b in bits:
                    if b not in CONSTANTS:
                        loads.setdefault(b, []).append((name, pin))
    for pname, p in module.get("ports", {}).items():
        if p.get("direction") in ("output", "inout"):
            for b in p["bits"]:
                loads.setdefault(b, []).append((None, pname))
    return loads


def _why_not(module: dict, cell: dict, port: dict, loads: dict):
    """(None, the flip-flop on each pin, their clock enable) when the port can take its register,
    else (the reason, None, None)."""
    cells = module["cells"]
    used = [p for p in port["pins"] if _bit(cell, p) not in CONSTANTS and loads.get(_bit(cell, p))]
    if not used:
        return None, None, None  # nothing connected: not a port in use
    if any(_param(cell, r, "NOREG") != "NOREG" for r in port["regmode"]):
        return "already registered", None, None
    clk = _bit(cell, port["clk"])
    if clk in CONSTANTS or _param(cell, port["mux"][0], port["mux"][1]) != port["mux"][1]:
        return "unclocked or inverted clock", None, None
    if any(_bit(cell, r) not in ("0", "z") for r in port["rst"]):
        return "reset in use", None, None
    if port["pdp"] and _bit(cell, "CLKA") not in ("0", "1", "x", "z", clk):
        return "second clock", None, None
    ffs, enables = {}, set()
    for pin in used:
        users = loads[_bit(cell, pin)]
        if len(users) != 1 or users[0][0] is None or users[0][1] != "DI" or cells[users[0][0]]["type"] != FF:
            return "read data used by logic", None, None
        ff = cells[users[0][0]]
        if _bit(ff, "CLK") != clk or _param(ff, "CLKMUX", "CLK") != "CLK":
            return "register on another clock", None, None
        if _bit(ff, "LSR") not in ("0", "z") or _param(ff, "LSRMUX", "LSR") != "LSR" \
                or _param(ff, "REGSET", "RESET") != "RESET" or _param(ff, "GSR", "DISABLED") != "DISABLED":
            return "register with set/reset", None, None
        cemux = _param(ff, "CEMUX", "1")
        if cemux not in ("1", "CE"):
            return "inverted clock enable", None, None
        enables.add("1" if cemux == "1" else _bit(ff, "CE"))
        ffs[pin] = users[0][0]
    if len(enables) != 1:
        return "registers with different enables", None, None
    return None, ffs, enables.pop()


def absorb(netlist: dict) -> Report:
    """Rewrite `netlist` (yosys write_json) in place; see the module docstring."""
    rep = Report()
    for module in netlist.get("modules", {}).values():
        cells = module.get("cells", {})
        rams = [c for c in cells.values() if c.get("type") == BRAM]
        if not rams:
            continue
        loads = _loads(module)
        for cell in rams:
            for port in _read_ports(cell):
                why, ffs, ce = _why_not(module, cell, port, loads)
                if why is None and ffs is None:
                    continue
                rep.ports += 1
                if why:
                    rep.kept[why] += 1
                    continue
                for pin, ff_name in ffs.items():
                    cell["connections"][pin] = list(cells[ff_name]["connections"]["Q"])
                    del cells[ff_name]
                for r in port["regmode"]:
                    cell["parameters"][r] = "OUTREG"
                for o in port["oce"]:
                    cell["connections"][o] = [ce]
                if port["pdp"] and _bit(cell, "CEA") == "0":  # no writes: CLKA can be the read clock
                    cell["connections"]["CLKA"] = [_bit(cell, port["clk"])]
                rep.absorbed_ports += 1
                rep.absorbed_ffs += len(ffs)
    return rep


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hwgen.flows.bram_outreg",
                                 description="Move each register that directly follows an ECP5 block RAM read "
                                             "into the block RAM's output register (REGMODE OUTREG).")
    ap.add_argument("netlist", help="yosys write_json netlist (synth_ecp5)")
    ap.add_argument("out", help="netlist to write for nextpnr")
    args = ap.parse_args(argv)
    with open(args.netlist) as f:
        net = json.load(f)
    rep = absorb(net)
    with open(args.out, "w") as f:
        json.dump(net, f)
    print(rep.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
