"""The numbers a hardware engineer asks of a build, for report_doc.py to lay out.

    throughput_rows, latency_rows, timing_rows, utilisation_tables, verification_rows, area_rows

Each reads report.json (`rep`), the `hwgen synth` results (synth-*.json, bitstream-*.json; `synths`,
each with "_file" set), the flow files beside them (nextpnr.log for the critical path, the board
top's synth.ys for its UART rate) and DIR/verify.json. Pure apart from reading those files; a
number that cannot be given is replaced by the reason and the command that would produce it,
never left blank.

Rows are lists of cells (strings or numbers); a row may end in a dict {"mark": "hot" | "area"}.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

UART_BITS_PER_BYTE = 10          # 8N1: start bit, 8 data bits, stop bit
DEFAULT_BAUD = 115200            # rtl_templates/icebreaker_top.v's default
BOARD_NAME = "iCEBreaker"

RESOURCES = (  # (synth-*.json key, plan estimate key, label)
    ("luts", "lut", "LUT"), ("ffs", "ff", "FF"), ("carry", "carry", "carry"),
    ("brams", "bram", "BRAM"), ("dsps", "dsp", "DSP"), ("lutram", "lutram", "LUT RAM"),
    ("spram", None, "SPRAM"))

CELL_NAMES = {  # what yosys counts, per family, for the utilisation table's labels
    "ice40": {"luts": "SB_LUT4", "ffs": "SB_DFF*", "carry": "SB_CARRY", "brams": "SB_RAM40_4K",
              "dsps": "SB_MAC16", "spram": "SB_SPRAM256KA"},
    "ecp5": {"luts": "LUT4", "ffs": "TRELLIS_FF", "carry": "CCU2C", "brams": "DP16KD",
             "dsps": "MULT18X18D", "lutram": "TRELLIS_DPR16X4"},
    "xilinx": {"luts": "LUT6", "ffs": "FD*", "carry": "CARRY4", "brams": "RAMB18", "dsps": "DSP48",
               "lutram": "LUT RAM / SRL"},
}

PLACED_BELS = {  # nextpnr's "Device utilisation" lines worth showing, with what they count
    "ICESTORM_LC": "logic cells (LUT4 + FF + carry each)", "ICESTORM_RAM": "4 kbit block RAMs",
    "ICESTORM_DSP": "DSP blocks", "ICESTORM_SPRAM": "256 kbit SPRAMs",
    "TRELLIS_COMB": "LUT4s, carry and RAM LUTs included", "TRELLIS_FF": "flip-flops",
    "TRELLIS_RAMW": "LUT RAM write ports", "DP16KD": "18 kbit block RAMs",
    "MULT18X18D": "18x18 multipliers",
}


# -- formatting ----------------------------------------------------------------------------------

def fmt_rate(r: float) -> str:
    """Inferences per second: thousands separated, whole numbers (two decimals below 10/s)."""
    return f"{r:,.2f}" if r < 10 else f"{r:,.0f}"


def fmt_us(us: float) -> str:
    if us >= 1000:
        return f"{us / 1000:,.2f} ms"
    if us >= 100:
        return f"{us:,.0f} µs"
    if us >= 10:
        return f"{us:.1f} µs"
    if us >= 0.01:
        return f"{us:.2f} µs"
    return f"{us * 1000:.1f} ns"


def fmt_pct(used, avail) -> str:
    if not avail:
        return "-"
    return f"{100.0 * used / avail:.1f}%"


def fmt_mhz(mhz: float) -> str:
    return f"{float(mhz):.2f} MHz"


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


# -- which synthesis is which -----------------------------------------------------------------------

def is_board(s: dict) -> bool:
    return s.get("stage") == "bitstream"


def placed(s: dict) -> bool:
    """The run went through place and route (so it has, or should have, a post-route Fmax)."""
    return s.get("stage") in ("pnr", "bitstream")


def synth_label(s: dict) -> str:
    label = f"{s.get('target', '?')} {s.get('device', '?')}"
    return label + (f" ({BOARD_NAME} board top)" if is_board(s) else "")


def plan_target(rep: dict) -> str:
    return rep.get("target") or "ecp5"


def synth_cmd(build, target: str, extra: str = "") -> str:
    return f"hwgen synth {build} --target {target}{extra}"


def why_no_fmax(s: dict, build) -> str:
    """Why a synth result has no post-route Fmax."""
    t = s.get("target", "?")
    if t == "xilinx":
        return "no Fmax: the xilinx flow is yosys synthesis only (no place and route)"
    if s.get("fits") is False:
        probs = "; ".join(s.get("fit_problems") or []) or "see " + str(s.get("_file"))
        return f"no Fmax: does not fit {s.get('device')} ({probs})"
    if not placed(s):
        return f"no Fmax: synthesized without place and route; run {synth_cmd(build, t, ' --stage pnr')}"
    return (f"no Fmax: nextpnr reported none (see {build}/{s.get('work_dir', 'flow-' + t)}/nextpnr.log); "
            f"run {synth_cmd(build, t)} again")


def fmax_runs(synths: list[dict]) -> list[dict]:
    return [s for s in synths if _num(s.get("fmax_mhz")) and s["fmax_mhz"] > 0]


# -- the iCEBreaker board's UART ------------------------------------------------------------------

def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


def _param(text: str, name: str) -> int | None:
    m = re.search(rf"-chparam\s+{name}\s+(\d+)", text) or \
        re.search(rf"parameter\s+(?:integer\s+)?{name}\s*=\s*(\d+)", text)
    return int(m[1]) if m else None


def stream_bytes(fmt: dict) -> int | None:
    """UART bytes per inference of one stream: ceil(payload_bits / 8) per beat (flows/board.py)."""
    try:
        return (int(fmt["payload_bits"]) + 7) // 8 * int(fmt["beats_per_inference"])
    except (KeyError, TypeError, ValueError):
        return None


def board_link(build: Path, s: dict, rep: dict) -> dict:
    """What the board build's UART carries: baud, board clock, bytes in / out per inference.

    The board top takes one inference at a time (a beat that arrives while the core is busy is
    dropped), so an inference costs its input bytes plus its output bytes on the wire."""
    work = build / (s.get("work_dir") or "flow-ice40-board")
    ys, top = _read(work / "synth.ys"), _read(work / "icebreaker_top.v")
    baud = _param(ys, "BAUD") or _param(top, "BAUD") or DEFAULT_BAUD
    clk_hz = _param(ys, "CLK_HZ") or _param(top, "CLK_HZ") or int((s.get("freq_target_mhz") or 12) * 1e6)
    io = rep.get("io") or {}
    return {"baud": baud, "clock_mhz": clk_hz / 1e6, "bytes_in": stream_bytes(io.get("input") or {}),
            "bytes_out": stream_bytes(io.get("output") or {})}


def uart_rate(link: dict) -> float | None:
    n = (link["bytes_in"] or 0) + (link["bytes_out"] or 0)
    if link["bytes_in"] is None or link["bytes_out"] is None or n == 0:
        return None
    return link["baud"] / (UART_BITS_PER_BYTE * n)


# -- throughput and latency ----------------------------------------------------------------------

def throughput_rows(rep: dict, synths: list[dict], build) -> list[list]:
    """[what, inferences/s, how] rows."""
    ii = rep.get("ii_cycles")
    rows: list[list] = []
    if not (_num(ii) and ii > 0):
        return [["any clock", "unknown: report.json has no initiation interval; run hwgen compile again", "-"]]
    for s in synths:
        fmax = s.get("fmax_mhz")
        what = f"post-route Fmax, {synth_label(s)}"
        if _num(fmax) and fmax > 0:
            how = f"Fmax / II = {fmax:g} MHz / {ii:g} cycles"
            if is_board(s):
                how += " (what the core could do; the board runs at its own clock, below)"
            rows.append([f"{what}: {fmt_mhz(fmax)}", fmt_rate(fmax * 1e6 / ii), how])
        else:
            rows.append([what, why_no_fmax(s, build), "-"])
        if is_board(s):
            link = board_link(Path(build), s, rep)
            clk = link["clock_mhz"]
            core = clk * 1e6 / ii
            rows.append([f"{BOARD_NAME} board clock {clk:g} MHz", fmt_rate(core),
                         f"board clock / II = {clk:g} MHz / {ii:g} cycles (the core alone)"])
            ur = uart_rate(link)
            if ur is None:
                rows.append([f"{BOARD_NAME} UART {link['baud']} baud", "unknown: report.json's io formats "
                             "lack payload_bits / beats_per_inference", "-"])
                continue
            n_in, n_out = link["bytes_in"], link["bytes_out"]
            rows.append([f"{BOARD_NAME} UART {link['baud']} baud", fmt_rate(ur),
                         f"{link['baud']} / ({UART_BITS_PER_BYTE} bits x ({n_in} bytes in + {n_out} bytes out)); "
                         "one inference at a time, 8N1"])
            best = min(ur, core)
            rows.append([f"{BOARD_NAME} board, end to end", fmt_rate(best),
                         ("UART-bound" if ur <= core else "clock-bound") + ": the lower of the two above"])
    if not fmax_runs(synths):
        t = plan_target(rep)
        if not synths:
            rows.insert(0, ["post-route Fmax", f"not synthesized yet: run {synth_cmd(build, t)}", "-"])
        clk = rep.get("clock_mhz")
        if _num(clk) and clk > 0:
            rows.append([f"plan clock target {clk:g} MHz (not measured: no post-route Fmax)",
                         fmt_rate(clk * 1e6 / ii), f"clock target / II = {clk:g} MHz / {ii:g} cycles"])
    return rows


def latency_rows(rep: dict, synths: list[dict], build) -> list[list]:
    """[what, latency, how] rows: cycles, then time at each post-route Fmax (or the clock target)."""
    lat = rep.get("latency_cycles")
    if not (_num(lat) and lat >= 0):
        return [["cycles", "unknown: report.json has no latency (the timing model gave none)", "-"]]
    rows = [["cycles", f"{lat:,} cycles", "first input beat to last output beat, one inference alone"]]
    for s in fmax_runs(synths):
        f = s["fmax_mhz"]
        rows.append([f"at post-route Fmax {f:.2f} MHz, {synth_label(s)}", fmt_us(lat / f),
                     f"{lat:,} cycles / {f:g} MHz"])
        if is_board(s):
            link = board_link(Path(build), s, rep)
            clk = link["clock_mhz"]
            rows.append([f"at the {BOARD_NAME} board clock {clk:g} MHz", fmt_us(lat / clk),
                         f"{lat:,} cycles / {clk:g} MHz (the core alone)"])
            if uart_rate(link):
                wire = (link["bytes_in"] + link["bytes_out"]) * UART_BITS_PER_BYTE / link["baud"] * 1e6
                rows.append([f"{BOARD_NAME} round trip over the UART", fmt_us(wire + lat / clk),
                             f"{link['bytes_in'] + link['bytes_out']} bytes at {link['baud']} baud + "
                             "the core's latency (an upper bound: the core starts before the last byte)"])
    if not fmax_runs(synths):
        clk = rep.get("clock_mhz")
        why = why_no_fmax(synths[0], build) if synths else \
            f"not synthesized yet: run {synth_cmd(build, plan_target(rep))}"
        rows.append(["at post-route Fmax", why, "-"])
        if _num(clk) and clk > 0:
            rows.append([f"at the plan clock target {clk:g} MHz (not measured)", fmt_us(lat / clk),
                         f"{lat:,} cycles / {clk:g} MHz"])
    return rows


# -- timing ----------------------------------------------------------------------------------------

def _layer_index(rep: dict) -> dict[str, dict]:
    out = {}
    for kind, rows in (("layer", rep.get("layers") or []), ("plumbing", rep.get("plumbing") or [])):
        for r in rows:
            if isinstance(r, dict) and r.get("name"):
                out[r["name"]] = {"kind": kind, "op": r.get("op") or r.get("unit")}
    return out


def stage_of_cell(cell: str) -> str | None:
    """The core's sub-module instance ("s6_Gemm_1") a placed cell belongs to; "core" for the
    core's own glue, "harness" for the wrapper's cells, None for a cell nextpnr made itself."""
    if cell.startswith("$nextpnr"):
        return None
    parts = cell.split(".")
    for p in parts[:-1]:
        if re.fullmatch(r"s\d+_.+", p):
            return p
    if len(parts) > 1 and parts[0] == "core":
        return "core"
    return "harness"


def stage_text(inst: str, rep: dict) -> str:
    if inst in ("core", "harness"):
        return {"core": f"{rep.get('top', 'core')} (top-level glue)", "harness": "wrapper (harness / board top)"}[inst]
    name = re.sub(r"^s\d+_", "", inst)
    info = _layer_index(rep).get(name)
    return f"{name} ({info['op']})" if info and info.get("op") else name


def critical_path(build: Path, s: dict) -> tuple[dict | None, str]:
    """The worst clock's post-route critical path (parse.parse_critical_paths of the run's
    nextpnr.log, else its nextpnr-report.json), and where it came from or why there is none."""
    from .flows import parse

    work = build / (s.get("work_dir") or f"flow-{s.get('target')}")
    paths, src = {}, ""
    log = _read(work / "nextpnr.log")
    if log:
        paths, src = parse.parse_critical_paths(log), f"{work.name}/nextpnr.log"
    if not paths and (work / "nextpnr-report.json").is_file():
        try:
            paths = parse.critical_paths_from_report(json.loads(_read(work / "nextpnr-report.json")))
            src = f"{work.name}/nextpnr-report.json"
        except (ValueError, TypeError, AttributeError):
            paths = {}
    if not paths:
        return None, f"not found: no critical-path report in {work}/nextpnr.log"
    clocks = s.get("clocks") or {}
    worst = min(clocks, key=lambda c: clocks[c].get("mhz", math.inf)) if clocks else None
    return paths.get(worst) or next(iter(paths.values())), src


def describe_path(path: dict, rep: dict) -> str:
    """'Gemm_2_conv_skid (SkidBuffer) -> Quant_5 (Threshold) -> Gemm_1 (MatVec)' (the stages the
    path runs through, in order), with a note when it is a handshake (ready) path."""
    stages: list[str] = []
    for c in path["cells"]:
        st = stage_of_cell(c)
        if st and (not stages or stages[-1] != st):
            stages.append(st)
    text = " → ".join(stage_text(st, rep) for st in stages) or "unknown cells"
    inner = path["cells"]
    readies = sum("ready" in c for c in inner)
    if len(stages) > 1 and readies * 2 >= len(inner):
        text += f"; a ready (handshake) path through {len(stages)} blocks"
    elif len(stages) == 1:
        text += "; inside one block"
    return text


def timing_rows(rep: dict, synths: list[dict], build) -> tuple[list[list], list[str]]:
    """[build, plan clock target, P&R clock, post-route Fmax, result, slack, critical path, delay]
    rows, and notes (the critical paths' end cells)."""
    build = Path(build)
    plan_clk = rep.get("clock_mhz")
    rows, notes = [], []
    for s in synths:
        fmax = s.get("fmax_mhz")
        pr = s.get("freq_target_mhz")
        plan_txt = f"{plan_clk:g} MHz" if _num(plan_clk) else "none (plan has no clock target)"
        pr_txt = f"{pr:g} MHz" if _num(pr) else "-"
        if not (_num(fmax) and fmax > 0):
            rows.append([synth_label(s), plan_txt, pr_txt, why_no_fmax(s, build), "-", "-", "-", "-"])
            continue
        ref, ref_name = (plan_clk, "plan clock target") if _num(plan_clk) and plan_clk > 0 else (pr, "P&R clock")
        if _num(ref) and ref > 0:
            slack = 1000.0 / ref - 1000.0 / fmax
            met = fmax >= ref
            result = (f"met ({ref_name} {ref:g} MHz)" if met
                      else f"FAILED ({ref_name} {ref:g} MHz, Fmax {100 * (ref - fmax) / ref:.1f}% short)")
            slack_txt = f"{slack:+.2f} ns"
        else:
            result, slack_txt = "no clock target to compare with", "-"
        if is_board(s):
            clk = board_link(build, s, rep)["clock_mhz"]
            result += f"; board clock {clk:g} MHz: " + ("met" if fmax >= clk else "FAILED")
        path, src = critical_path(build, s)
        if path is None:
            rows.append([synth_label(s), plan_txt, pr_txt, fmt_mhz(fmax), result, slack_txt,
                         f"critical path {src}", "-"])
            continue
        rows.append([synth_label(s), plan_txt, pr_txt, fmt_mhz(fmax), result, slack_txt,
                     describe_path(path, rep),
                     f"{path['delay_ns']:.2f} ns ({path['logic_ns']:.2f} logic, {path['routing_ns']:.2f} routing)"])
        notes.append(f"{synth_label(s)}: critical path from {path['source']} to {path['sink']} ({src}).")
    if not any(placed(s) for s in synths):
        t = plan_target(rep)
        rows.append(["-", f"{plan_clk:g} MHz" if _num(plan_clk) else "none", "-",
                     f"not placed and routed yet: run {synth_cmd(build, t)}", "-", "-", "-", "-"])
    return rows, notes


# -- device utilisation ------------------------------------------------------------------------

def device_capacity(s: dict) -> dict:
    from .flows import devices

    dev = devices.find_device(s.get("target"), s.get("device_name"), s.get("device"))
    if dev is not None:
        return devices.capacity(dev)
    return {k: v for k, v in (s.get("available") or {}).items() if _num(v)}


def utilisation_table(rep: dict, s: dict) -> list[list]:
    """[resource, used (whole design), core alone, plan estimate (core), available, used %,
    estimate %] rows for one synth result, then nextpnr's placed-cell lines."""
    cap = device_capacity(s)
    fam = s.get("target")
    est = rep.get("estimate") or {}
    same = fam == plan_target(rep)
    core = s.get("core") or {}
    cells = CELL_NAMES.get(fam, {})
    rows = []
    for key, ekey, label in RESOURCES:
        used = s.get(key)
        if key in ("lutram", "spram") and not used and key not in cap:
            continue
        if key == "spram" and fam != "ice40":
            continue
        if not _num(used):
            rows.append([label, "not counted by this synthesis", "-", "-", "-", "-", "-"])
            continue
        name = label + (f": {cells[key]}" if key in cells else "")
        if key == "brams" and s.get("bram_unit"):
            name = f"BRAM: {s['bram_unit']}"
        e = est.get(ekey) if (same and ekey) else None
        avail = cap.get(key)
        rows.append([name, used, core.get(key, "-") if core else "-",
                     e if _num(e) else ("-" if same or not ekey else f"- (plan is for {plan_target(rep)})"),
                     avail if avail else "unknown",
                     fmt_pct(used, avail) if avail else "capacity unknown",
                     fmt_pct(e, avail) if (_num(e) and avail) else "-"])
    for bel, what in PLACED_BELS.items():
        u = (s.get("utilisation") or {}).get(bel)
        if isinstance(u, dict) and _num(u.get("used")) and _num(u.get("available")) and u["available"]:
            rows.append([f"placed {bel}: {what}", u["used"], "-", "-", u["available"],
                         fmt_pct(u["used"], u["available"]), "-"])
    return rows


def estimate_utilisation(rep: dict) -> tuple[str, list[list]]:
    """Before any synthesis: the plan estimate as a share of the plan target's default device."""
    from .flows import devices

    t = plan_target(rep)
    try:
        dev, _ = devices.device(t)
    except Exception:
        return t, []
    cap = devices.capacity(dev)
    est = rep.get("estimate") or {}
    rows = []
    for key, ekey, label in RESOURCES:
        if not ekey or not _num(est.get(ekey)) or key not in cap:
            continue
        rows.append([label, est[ekey], cap[key], fmt_pct(est[ekey], cap[key])])
    return f"{t} {dev.part}", rows


# -- verification --------------------------------------------------------------------------------

def verification_rows(rep: dict, build) -> tuple[list[list], str | None]:
    """[item, value] rows from DIR/verify.json (sim/verify.py's record), and a status line (None
    when there is none).

    Keys read: simulator, vectors, passed, failed, ii_measured, latency_measured, date,
    hwgen_version, and when present ok, timing_mismatches, seconds, manifest_sha256 (a record
    whose manifest hash differs from the build's manifest.json is from an earlier build; without
    the hash, a report.json newer than verify.json says the same)."""
    import hashlib

    build = Path(build)
    p = build / "verify.json"
    if not p.is_file():
        return [["result", f"not verified yet: run hwgen verify {build}"]], None
    try:
        v = json.loads(p.read_text())
        if not isinstance(v, dict):
            raise ValueError("not a JSON object")
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return [["result", f"verify.json unreadable ({why}): run hwgen verify {build} again"]], None
    passed, failed, n = v.get("passed"), v.get("failed"), v.get("vectors")
    mism = [str(m) for m in v.get("timing_mismatches") or []]
    of = f"{n:g}" if _num(n) else "?"
    if _num(failed) and failed > 0:
        status = f"FAILED: {failed:g} of {of} vectors differ from the golden model"
    elif _num(passed) and passed > 0 and (not _num(n) or passed == n):
        status = f"passed: {passed:g} of {of if _num(n) else f'{passed:g}'} vectors bit-exact against the golden model"
        if mism or v.get("ok") is False:
            status = "FAILED on timing: " + status + ("; " + "; ".join(mism) if mism else "")
    elif _num(passed) and _num(n) and passed < n:
        status = f"incomplete: {passed:g} of {n:g} vectors passed, {failed if _num(failed) else '?'} failed"
    else:
        status = "no vectors checked"
    rows = [["result", status], ["simulator", v.get("simulator") or "-"],
            ["vectors", n if _num(n) else "-"]]
    for key, plan_key, label in (("ii_measured", "ii_cycles", "II measured"),
                                 ("latency_measured", "latency_cycles", "latency measured")):
        m, want = v.get(key), rep.get(plan_key)
        if not _num(m):
            rows.append([label, "not measured"])
        elif _num(want):
            rows.append([label, f"{m:g} cycles (plan {want:g}: " + ("matches)" if m == want else f"differs by {m - want:+g})")])
        else:
            rows.append([label, f"{m:g} cycles"])
    rows.append(["date", v.get("date") or "-"])
    if _num(v.get("seconds")):
        rows.append(["verify run time", f"{v['seconds']:.0f} s (simulator build included)"])
    ver = v.get("hwgen_version")
    try:
        from . import __version__ as now
    except ImportError:  # pragma: no cover
        now = None
    rows.append(["hwgen version", (ver or "-") + (f" (this report: {now})" if ver and now and ver != now else "")])
    stale = None
    mpath = build / "manifest.json"
    if v.get("manifest_sha256") and mpath.is_file():
        if hashlib.sha256(mpath.read_bytes()).hexdigest() != v["manifest_sha256"]:
            stale = "verify.json is from an earlier build of this directory (manifest.json changed)"
    else:
        try:
            if (build / "report.json").stat().st_mtime > p.stat().st_mtime + 1:
                stale = "report.json is newer than verify.json"
        except OSError:
            pass
    if stale:
        rows.append(["note", f"{stale}: run hwgen verify {build} again"])
        status += " (stale)"
    return rows, status


# -- area per layer ------------------------------------------------------------------------------

def core_luts(s: dict) -> int | None:
    """LUTs of the core alone (without the harness / board top) of one synthesis."""
    v = (s.get("core") or {}).get("luts")
    if _num(v):
        return v
    top = s.get("top")
    row = next((m for m in s.get("per_module") or [] if isinstance(m, dict) and m.get("module") == top), None)
    return row.get("luts") if row and _num(row.get("luts")) else None


def area_source(rep: dict, synths: list[dict]) -> dict | None:
    """The synthesis whose per-module numbers give the layers' area: one for the plan's target if
    any, else any with per-module numbers; None if no synthesis kept them."""
    cands = [s for s in synths if s.get("per_module") and core_luts(s)]
    cands.sort(key=lambda s: (s.get("target") != plan_target(rep), is_board(s)))
    return cands[0] if cands else None


def _layer_module(s: dict, name: str) -> dict | None:
    mods = [m for m in s.get("per_module") or [] if isinstance(m, dict)]
    hit = [m for m in mods if m.get("layer") == name]
    if not hit:
        top = s.get("top") or ""
        hit = [m for m in mods if str(m.get("module") or "").startswith(top + ".")
               and re.fullmatch(rf"(?:s\d+_)?{re.escape(name)}", str(m["module"]).rsplit(".", 1)[-1])]
    return min(hit, key=lambda m: m.get("depth") or 0) if hit else None


def area_rows(rep: dict, synths: list[dict]) -> tuple[str, dict[str, dict]]:
    """(basis, {layer name: {"lut", "lut_est", "share"}}) for every layer of report.json.

    basis says where "lut" comes from: per-module post-synthesis LUTs of one synthesis (share of
    the core's LUTs), or the plan estimate (share of the plan's total)."""
    layers = [r for r in rep.get("layers") or [] if isinstance(r, dict) and r.get("name")]
    s = area_source(rep, synths)
    out: dict[str, dict] = {}
    if s is not None:
        total = core_luts(s)
        same = s.get("target") == plan_target(rep)
        for r in layers:
            m = _layer_module(s, r["name"])
            est = (r.get("estimate") or {}).get("lut") if same else None
            lut = m.get("luts") if m else None
            out[r["name"]] = {"lut": lut, "lut_est": est,
                              "share": lut / total if _num(lut) and total else None}
        return f"post-synthesis LUTs per module, {synth_label(s)}", out
    total = (rep.get("estimate") or {}).get("lut")
    for r in layers:
        est = (r.get("estimate") or {}).get("lut")
        out[r["name"]] = {"lut": est, "lut_est": est,
                          "share": est / total if _num(est) and _num(total) and total else None}
    return f"plan estimate ({plan_target(rep)}, before synthesis)", out


def area_bottlenecks(area: dict[str, dict]) -> list[str]:
    """The layers with the most LUTs; empty when fewer than two layers have a number or every
    one has the same (nothing stands out)."""
    vals = {n: a["lut"] for n, a in area.items() if _num(a.get("lut"))}
    if len(vals) < 2:
        return []
    hi, lo = max(vals.values()), min(vals.values())
    return [n for n, v in vals.items() if v == hi] if hi > lo else []
