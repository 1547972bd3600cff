"""Read what yosys and nextpnr write: `stat -json` cell counts, per-module roll-ups, nextpnr's
"Max frequency", "Device utilisation" and critical-path reports, and the first error line of a
failed run.

Pure functions on text, so they are tested on captured excerpts without the tools.
"""
from __future__ import annotations

import json
import re

# -- yosys stat ----------------------------------------------------------------------------------

def load_stat_json(text: str) -> dict:
    """Parse `tee -o f stat -json` output.

    Yosys 0.23 prints the plain-text hierarchy tree ("   top   1") into the JSON of a
    hierarchical design; such lines are dropped before parsing.
    """
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    keep = [ln for ln in text.splitlines() if re.match(r'^\s*(["{}\[\]]|$)', ln)]
    return json.loads("\n".join(keep))


def _clean(name: str) -> str:
    return name[1:] if name.startswith("\\") else name


CATEGORIES = ("luts", "ffs", "carry", "brams", "dsps", "lutram", "spram")


def classify_cells(cells: dict[str, int], family: str) -> dict[str, int]:
    """Cell-type counts of one module -> luts, ffs, carry, brams, dsps, lutram, spram (+ other).

    brams count in the target's unit: SB_RAM40_4K (iCE40), DP16KD (ECP5), RAMB18 (Xilinx; a
    RAMB36 counts 2). Cells that are instances of other modules are not counted here.
    """
    out = dict.fromkeys(CATEGORIES, 0)
    other: dict[str, int] = {}
    for typ, n in cells.items():
        t = _clean(typ)
        cat = _category(t, family)
        if cat is None:
            other[t] = other.get(t, 0) + n
        elif cat == "brams2":
            out["brams"] += 2 * n
        elif cat != "ignore":
            out[cat] += n
    if other:
        out["other"] = other
    return out


def _category(t: str, family: str) -> str | None:
    if family == "ice40":
        if t == "SB_LUT4":
            return "luts"
        if t.startswith("SB_DFF"):
            return "ffs"
        if t == "SB_CARRY":
            return "carry"
        if t.startswith("SB_RAM40_4K"):
            return "brams"
        if t == "SB_MAC16":
            return "dsps"
        if t == "SB_SPRAM256KA":
            return "spram"
        if t in ("SB_IO", "SB_GB", "SB_GB_IO", "SB_PLL40_CORE", "SB_PLL40_PAD"):
            return "ignore"
    elif family == "ecp5":
        if t == "LUT4":
            return "luts"
        if t in ("TRELLIS_FF",) or re.fullmatch(r"FD\d[SP]\d[AISJ]X", t):
            return "ffs"
        if t == "CCU2C":
            return "carry"
        if t in ("DP16KD", "PDPW16KD"):
            return "brams"
        if t in ("MULT18X18D", "ALU54B"):
            return "dsps"
        if t in ("TRELLIS_DPR16X4", "DPR16X4"):
            return "lutram"
        if t in ("PFUMX", "L6MUX21", "TRELLIS_IO", "IB", "OB", "BB", "DCCA", "EHXPLLL", "VHI", "VLO"):
            return "ignore"
    elif family == "xilinx":
        if re.fullmatch(r"LUT[1-6](_2)?", t):
            return "luts"
        if re.fullmatch(r"FD[CPRS]E?(_1)?|FD", t):
            return "ffs"
        if t in ("CARRY4", "CARRY8"):
            return "carry"
        if t.startswith("RAMB18") or t == "FIFO18E1":
            return "brams"
        if t.startswith("RAMB36") or t == "FIFO36E1":
            return "brams2"
        if t.startswith("DSP48"):
            return "dsps"
        if re.fullmatch(r"RAM\d+(X\d+)?[SDMQ]?|RAM\d+M(16)?|SRL16E?|SRLC16E|SRLC32E", t):
            return "lutram"
        if t in ("MUXF7", "MUXF8", "MUXF9", "IBUF", "OBUF", "IOBUF", "BUFG", "BUFGCTRL", "INV",
                 "OBUFT", "IBUFG", "VCC", "GND"):
            return "ignore"
    return None


def module_resources(stat: dict, family: str, top: str | None = None) -> dict[str, dict]:
    """Resources of every module of a hierarchical `stat -json`, each with its sub-modules
    rolled in ("total") and without them ("own"); plus instance depth under `top`.

    Returns {module name: {"own": {...}, "total": {...}, "children": [names], "depth": d}}.
    """
    mods = {_clean(k): v.get("num_cells_by_type", {}) for k, v in stat.get("modules", {}).items()}
    names = set(mods)
    own = {m: classify_cells({t: n for t, n in cells.items() if _clean(t) not in names}, family)
           for m, cells in mods.items()}
    children = {m: [(_clean(t), n) for t, n in cells.items() if _clean(t) in names]
                for m, cells in mods.items()}
    total: dict[str, dict] = {}

    def roll(m: str, seen=()) -> dict:
        if m in total:
            return total[m]
        if m in seen:  # a cycle cannot happen in a valid design; be safe
            return own[m]
        acc = {k: v for k, v in own[m].items() if k != "other"}
        for c, n in children[m]:
            sub = roll(c, seen + (m,))
            for k in CATEGORIES:
                acc[k] += n * sub[k]
        total[m] = acc
        return acc

    for m in mods:
        roll(m)
    if top is None:
        used = {c for m in mods for c, _ in children[m]}
        tops = [m for m in mods if m not in used]
        top = tops[0] if len(tops) == 1 else None
    depth: dict[str, int] = {}
    if top in mods:
        frontier, d = [top], 0
        while frontier:
            nxt = []
            for m in frontier:
                if m not in depth:
                    depth[m] = d
                    nxt.extend(c for c, _ in children[m])
            frontier, d = nxt, d + 1
    return {m: {"own": {k: v for k, v in own[m].items() if k != "other"},
                "total": total[m],
                "children": [c for c, _ in children[m]],
                "depth": depth.get(m)}
            for m in sorted(mods, key=lambda m: (depth.get(m, 99), m))}


def match_layers(modules, layer_names: list[str]) -> dict[str, str]:
    """Module name -> layer name, for modules whose last name part is `<layer>` or `s<k>_<layer>`
    (what hwgen's top and the stand-in call their per-layer submodules)."""
    out: dict[str, str] = {}
    for m in modules:
        last = m.rsplit(".", 1)[-1]
        for name in sorted(layer_names, key=len, reverse=True):
            if re.fullmatch(rf"(?:s\d+_)?{re.escape(name)}", last):
                out[m] = name
                break
    return out


# -- nextpnr -------------------------------------------------------------------------------------

_FMAX = re.compile(r"Max frequency for clock\s+'(?P<clk>[^']+)':\s*(?P<mhz>[0-9.]+)\s*MHz"
                   r"\s*\((?P<status>PASS|FAIL) at (?P<target>[0-9.]+)\s*MHz\)")


def parse_fmax(log: str) -> dict[str, dict]:
    """{clock: {"mhz", "target_mhz", "pass"}} from the LAST report in the log (post-route;
    nextpnr also prints one after placement)."""
    out: dict[str, dict] = {}
    for m in _FMAX.finditer(log):
        out[m["clk"]] = {"mhz": float(m["mhz"]), "target_mhz": float(m["target"]),
                         "pass": m["status"] == "PASS"}
    return out


_UTIL = re.compile(r"^Info:\s+(?P<bel>[A-Za-z0-9_]+):\s+(?P<used>\d+)/\s*(?P<avail>\d+)\s+\d+%", re.M)


def parse_utilisation(log: str) -> dict[str, dict]:
    """{bel type: {"used", "available"}} from nextpnr's "Device utilisation" block (last one)."""
    out: dict[str, dict] = {}
    for m in _UTIL.finditer(log):
        out[m["bel"]] = {"used": int(m["used"]), "available": int(m["avail"])}
    return out


_CP_HEAD = re.compile(r"^Info:\s*Critical path report for (?:clock '(?P<clk>[^']+)'|cross-domain path)")
_CP_CELL = re.compile(r"\b(?P<kind>Source|Sink|Setup)\s+(?P<pin>\S+)")
_CP_TOTAL = re.compile(r"(?P<total>[0-9.]+)\s+(?:Source|Setup)\s")
_CP_SUM = re.compile(r"^Info:\s*(?P<logic>[0-9.]+)\s*ns logic,\s*(?P<routing>[0-9.]+)\s*ns routing")


def _cell_of(pin: str) -> str:
    """'core.s6_Gemm_1.o__ready_LUT4_D.F' -> 'core.s6_Gemm_1.o__ready_LUT4_D' (the port dropped)."""
    return pin.rsplit(".", 1)[0] if "." in pin else pin


def parse_critical_paths(log: str) -> dict[str, dict]:
    """{clock: {"cells", "source", "sink", "logic_ns", "routing_ns", "delay_ns"}} from nextpnr's
    "Critical path report for clock '...'" blocks (the last one per clock: post-route).

    cells: the cells the path visits, in order, ports dropped, repeats merged; source: the
    first, sink: the last (the register or pin the path ends at). Cross-domain (<async>) paths
    are skipped. Both log styles are read: nextpnr 0.4 ("1.4 1.4 Source X.O") and later
    ("clk-to-q 0.52 0.52 Source X.Q")."""
    out: dict[str, dict] = {}
    clk, cells, total = None, [], None
    for ln in log.splitlines():
        m = _CP_HEAD.match(ln)
        if m:
            clk, cells, total = m["clk"], [], None
            continue
        if clk is None:
            continue
        m = _CP_SUM.match(ln)
        if m:
            if cells:
                logic, routing = float(m["logic"]), float(m["routing"])
                out[clk] = {"cells": cells, "source": cells[0], "sink": cells[-1], "logic_ns": logic,
                            "routing_ns": routing,
                            "delay_ns": total if total is not None else round(logic + routing, 3)}
            clk = None
            continue
        if not ln.startswith("Info:"):
            clk = None
            continue
        m = _CP_TOTAL.search(ln)
        if m:
            total = float(m["total"])
        for c in _CP_CELL.finditer(ln):
            cell = _cell_of(c["pin"])
            if not cells or cells[-1] != cell:
                cells.append(cell)
    return out


def critical_paths_from_report(report: dict) -> dict[str, dict]:
    """The same as parse_critical_paths, from nextpnr's --report JSON ("critical_paths")."""
    out: dict[str, dict] = {}
    for cp in report.get("critical_paths") or []:
        src, dst = str(cp.get("from", "")), str(cp.get("to", ""))
        if "<async>" in (src + dst) or not src or src.split(" ", 1)[-1] != dst.split(" ", 1)[-1]:
            continue
        cells, logic, routing = [], 0.0, 0.0
        for step in cp.get("path") or []:
            for end in ("from", "to"):
                cell = (step.get(end) or {}).get("cell")
                if cell and (not cells or cells[-1] != cell):
                    cells.append(cell)
            d = float(step.get("delay") or 0.0)
            if step.get("type") == "routing":
                routing += d
            else:
                logic += d
        if cells:
            out[src.split(" ", 1)[-1]] = {"cells": cells, "source": cells[0], "sink": cells[-1],
                                          "logic_ns": round(logic, 3), "routing_ns": round(routing, 3),
                                          "delay_ns": round(logic + routing, 3)}
    return out


def first_error(log: str) -> str | None:
    """The first 'ERROR:' line of a yosys or nextpnr log (without the prefix)."""
    for ln in log.splitlines():
        s = ln.strip()
        if s.startswith("ERROR:"):
            return s[len("ERROR:"):].strip()
    return None


_NO_BELS = re.compile(r"(?:no BELs remaining to implement cell type|Design uses more|"
                      r"Unable to place cell.*cell type)\s*'?(?P<typ>[A-Za-z0-9_]+)?", re.I)


def placement_overflow(log: str) -> str | None:
    """The cell type nextpnr ran out of, when placement failed for lack of room."""
    err = first_error(log) or ""
    m = _NO_BELS.search(err)
    if m:
        return m["typ"] or "cells"
    m = re.search(r"Design uses (\d+) (\w+) BELs? but device only has (\d+)", log)
    if m:
        return m[2]
    return None


def tool_version(text: str) -> str:
    """First line naming a version: 'Yosys 0.23 (git sha1 ...)', 'nextpnr-ice40 -- ... (Version 0.4)'."""
    for ln in text.splitlines():
        if re.search(r"\bversion\b|\bYosys \d", ln, re.I) and "Preparing" not in ln:
            ln = re.sub(r",\s*(Release|Debug)\b[^)]*\)", ")", ln.replace('"', "").strip())
            return ln
    return text.strip().splitlines()[-1] if text.strip() else "unknown"
