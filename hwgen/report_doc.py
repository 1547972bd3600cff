"""report.md and report.html for a build directory, with plots as PNG files beside them.

    from hwgen.report_doc import write_report
    md, html = write_report("build/")

Reads build/report.json (what `hwgen compile` writes), every build/synth-*.json and
bitstream-*.json (what `hwgen synth` writes, with the nextpnr log in its flow directory) and
build/verify.json (what `hwgen verify` writes). The page answers a hardware engineer first
(issue 16): throughput (inferences/s at the post-route Fmax, and over the iCEBreaker's UART for a
board build), latency in cycles and microseconds, timing against the plan's clock target with the
critical path mapped to the core's blocks, device utilisation as a share of the device, the
verification result; then the layers with the cycle and area bottlenecks flagged, the plan's
estimates and the measured resources per layer. A number that cannot be given says why and which
command produces it (the numbers come from hwgen/report_metrics.py). Plots (matplotlib, Agg
backend): accumulator widths per layer (exact vs A2Q bound vs data-type bound vs 32-bit), cycles
per layer with the bottleneck highlighted, and resources per layer for each synthesis that has
per-module numbers, the area bottleneck outlined.
"""
from __future__ import annotations

import html
import json
import re
from pathlib import Path


ACC_SERIES = (("acc_bits_exact", "exact range", "#1f77b4"),
              ("acc_bits_a2q", "A2Q bound", "#2ca02c"),
              ("acc_bits_datatype", "data-type bound", "#ff7f0e"))
BOTTLENECK = "#d62728"
NORMAL = "#7f9fbf"
RES_KEYS = (("luts", "LUT"), ("ffs", "FF"), ("carry", "carry"), ("brams", "BRAM"), ("dsps", "DSP"))


# -- data ----------------------------------------------------------------------------------------

def _load(build: Path) -> tuple[dict, list[dict]]:
    from .flows.scripts import load_report  # checks the manifest, report.json's keys and its Verilog

    rep = load_report(build)
    synths = []
    for p in sorted(build.glob("synth-*.json")) + sorted(build.glob("bitstream-*.json")):
        try:
            s = json.loads(p.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if not isinstance(s, dict):
            continue
        s["_file"] = p.name
        synths.append(s)
    return rep, synths


def _layers(rep: dict) -> list[dict]:
    return [r for r in rep.get("layers", []) if r.get("name")]


def bottlenecks(layers: list[dict]) -> list[str]:
    """Names of the slowest layers (those with the most cycles per inference); empty when every
    layer takes the same number of cycles (nothing stands out)."""
    timed = [r for r in layers if isinstance(r.get("cycles"), (int, float))]
    if not timed:
        return []
    hi, lo = max(r["cycles"] for r in timed), min(r["cycles"] for r in timed)
    return [r["name"] for r in timed if r["cycles"] == hi] if hi > lo else []


def layer_resources(synth: dict, rep: dict) -> list[dict]:
    """Rows of the core's direct sub-modules (layers and the plumbing between them), in order."""
    mods = synth.get("per_module") or []
    top = synth.get("top") or rep.get("top")
    core = next((m for m in mods if m["module"] == top), None)
    if core is None:
        return []
    kids = [m for m in mods if m["module"].startswith(top + ".") and m["depth"] == core["depth"] + 1]

    def order(m):
        mm = re.match(r"s(\d+)_", m["module"].rsplit(".", 1)[-1])
        return (int(mm[1]) if mm else 10**6, m["module"])

    rows = []
    for m in sorted(kids, key=order):
        name = m.get("layer") or re.sub(r"^s\d+_", "", m["module"].rsplit(".", 1)[-1])
        rows.append({"name": name, "is_layer": bool(m.get("layer")), "module": m["module"],
                     **{k: m.get(k, 0) for k, _ in RES_KEYS}})
    own = {k: synth.get(k, 0) - core.get(k, 0) for k, _ in RES_KEYS}
    rows.append({"name": f"wrapper ({synth.get('wrapper', 'harness')})", "is_layer": False,
                 "module": synth.get("wrapper"), **own})
    return rows


# -- plots ---------------------------------------------------------------------------------------

def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_acc_widths(layers: list[dict], path: Path) -> bool:
    rows = [r for r in layers if any(r.get(k) is not None for k, _, _ in ACC_SERIES)]
    if not rows:
        return False
    plt = _plt()
    import numpy as np
    n = len(rows)
    x = np.arange(n)
    w = 0.8 / (len(ACC_SERIES) + 1)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * n + 2), 3.6))
    for k, (key, label, color) in enumerate(ACC_SERIES):
        vals = [r.get(key) or 0 for r in rows]
        bars = ax.bar(x + (k - 1.5) * w, vals, w, label=label, color=color)
        ax.bar_label(bars, labels=[str(v) if v else "" for v in vals], fontsize=7, padding=1)
    ax.bar(x + 1.5 * w, [32] * n, w, label="32-bit", color="#bbbbbb")
    used = [r.get("acc_bits") for r in rows]
    ax.scatter(x, [u if u else np.nan for u in used], marker="_", s=600, color="black",
               zorder=3, label="hardware uses")
    ax.set_xticks(x, [r["name"] for r in rows], rotation=20 if n > 4 else 0, ha="right" if n > 4 else "center")
    ax.set_ylabel("accumulator bits")
    ax.set_title("Accumulator width per layer")
    ax.legend(fontsize=8, ncol=3, loc="upper left", bbox_to_anchor=(0, -0.18 if n <= 4 else -0.3))
    ax.set_ylim(0, 36)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def cycles_figure(layers: list[dict], ii: int | None = None):
    """(fig, ax, bars, legend) of the cycles-per-layer plot, legend None without an II line.

    The II line's legend sits below the x axis, outside the plot area, so it never covers a bar
    or its label (tests/test_report_doc.py checks the boxes)."""
    rows = [r for r in layers if isinstance(r.get("cycles"), (int, float))]
    if not rows:
        return None
    plt = _plt()
    slow = bottlenecks(rows)
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(rows) + 2), 3.6))
    colors = [BOTTLENECK if r["name"] in slow else NORMAL for r in rows]
    bars = ax.bar([r["name"] for r in rows], [r["cycles"] for r in rows], color=colors)
    for b, r in zip(bars, rows):
        ax.annotate(str(r["cycles"]), (b.get_x() + b.get_width() / 2, b.get_height()),
                    ha="center", va="bottom", fontsize=8)
    top = max([r["cycles"] for r in rows] + [ii or 0])
    ax.set_ylim(0, top * 1.15 if top else 1)
    ax.set_ylabel("cycles per inference")
    ax.set_title("Cycles per layer (bottleneck: " + (", ".join(slow) if slow else "none, all equal") + ")")
    rotate = len(rows) > 4
    if rotate:
        plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    legend = None
    if ii:
        ax.axhline(ii, ls="--", color="gray", lw=1, label=f"initiation interval ({ii} cycles)")
        legend = ax.legend(fontsize=8, loc="upper center", frameon=False,
                           bbox_to_anchor=(0.5, -0.22 if rotate else -0.12))
    fig.tight_layout()
    return fig, ax, bars, legend


def plot_cycles(layers: list[dict], path: Path, ii: int | None = None) -> bool:
    made = cycles_figure(layers, ii)
    if made is None:
        return False
    fig = made[0]
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return True


def plot_resources(rows: list[dict], path: Path, title: str, big: list[str] = ()) -> bool:
    """LUT and FF bars per block; the area bottleneck's (`big`) LUT bar outlined in red."""
    rows = [r for r in rows if r["is_layer"] or r["luts"] or r["ffs"]]
    if not rows:
        return False
    plt = _plt()
    import numpy as np
    x = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(max(5.0, 0.9 * len(rows) + 2), 3.6))
    lut_bars = ax.bar(x - 0.2, [r["luts"] for r in rows], 0.4, label="LUT", color="#1f77b4")
    for b, r in zip(lut_bars, rows):
        if r["name"] in big:
            b.set_edgecolor(BOTTLENECK)
            b.set_linewidth(2)
    ax.bar(x + 0.2, [r["ffs"] for r in rows], 0.4, label="FF", color="#9467bd")
    for i, r in enumerate(rows):
        extra = " ".join(s for s in (f"{r['brams']} BRAM" if r["brams"] else "",
                                     f"{r['dsps']} DSP" if r["dsps"] else "") if s)
        if extra:
            ax.annotate(extra, (i, max(r["luts"], r["ffs"])), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(x, [r["name"] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("cells")
    flagged = [r["name"] for r in rows if r["name"] in big]
    ax.set_title(title + (f"\n(area bottleneck: {', '.join(flagged)})" if flagged else ""), fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)  # never over a bar
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return True


# -- tables --------------------------------------------------------------------------------------

def _fmt(v) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) < 1000 else f"{v:.0f}"
    return str(v)


class _Table:
    """A table for both renderers; a row's mark is False, "hot" (cycle bottleneck; True means
    "hot"), "area" (area bottleneck) or "hot area". Markdown bolds "hot" rows; HTML colours both."""

    def __init__(self, head: list[str], cls: str = ""):
        self.head, self.rows, self.marks, self.cls = head, [], [], cls

    def add(self, cells: list, mark=False):
        self.rows.append([_fmt(c) for c in cells])
        self.marks.append("hot" if mark is True else (mark or ""))

    def md(self) -> str:
        esc = lambda s: str(s).replace("|", "\\|")
        out = ["| " + " | ".join(map(esc, self.head)) + " |",
               "|" + "|".join("---" for _ in self.head) + "|"]
        for row, mark in zip(self.rows, self.marks):
            cells = [esc(c) for c in row]
            if "hot" in mark.split():      # the area bottleneck is flagged by its name's suffix
                cells = [f"**{c}**" for c in cells]
            out.append("| " + " | ".join(cells) + " |")
        return "\n".join(out)

    def html(self) -> str:
        h = "".join(f"<th>{html.escape(c)}</th>" for c in self.head)
        body = []
        for row, mark in zip(self.rows, self.marks):
            cls = f' class="{mark}"' if mark else ""
            body.append(f"<tr{cls}>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>")
        tcls = f' class="{self.cls}"' if self.cls else ""
        return f"<table{tcls}><thead><tr>{h}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _io_text(fmt: dict) -> str:
    if not fmt:
        return "-"
    sign = "bipolar" if fmt.get("bipolar") else ("signed" if fmt.get("signed") else "unsigned")
    return (f"{fmt.get('elements', '?')} x {fmt.get('element_bits', '?')}-bit {sign}, "
            f"{fmt.get('elements_per_beat', '?')} per beat, {fmt.get('beats_per_inference', '?')} "
            f"beat{'' if fmt.get('beats_per_inference') == 1 else 's'} "
            f"({fmt.get('payload_bits', '?')}-bit payload)")


def _kv(rows: list[list]) -> _Table:
    t = _Table(["item", "value"], cls="kv")
    for r in rows:
        t.add(r)
    return t


def _sections(rep: dict, synths: list[dict], build: Path) -> list[tuple]:
    """The document as a list of (kind, payload): ('h1' | 'h2' | 'h3', text), ('p' | 'note', text),
    ('table', _Table), ('img', (file, alt))."""
    from . import report_metrics as rm

    layers = _layers(rep)
    slow = bottlenecks(layers)
    basis, area = rm.area_rows(rep, synths)
    big = rm.area_bottlenecks(area)
    doc: list[tuple] = [("h1", f"hwgen report: {rep.get('model') or rep.get('top')}")]

    # -- summary
    summary = _Table(["item", "value"], cls="kv")
    summary.add(["model", rep.get("model") or "-"])
    if rep.get("source"):
        summary.add(["source", rep["source"]])
    summary.add(["top module", f"{rep.get('top')} ({rep.get('verilog')})"])
    clk = rep.get("clock_mhz")
    summary.add(["plan", f"{rm.plan_target(rep)}, clock target "
                 + (f"{clk:g} MHz" if isinstance(clk, (int, float)) else "none (no pipelining for a clock)")])
    summary.add(["initiation interval", f"{rep.get('ii_cycles')} cycles"])
    summary.add(["latency", f"{rep.get('latency_cycles')} cycles"])
    summary.add(["bottleneck layer", ", ".join(slow) if slow else "none (every layer takes the same cycles)"])
    if big:
        a = area[big[0]]
        summary.add(["area bottleneck", ", ".join(big) + f" ({a['lut']:,} LUT"
                     + (f", {100 * a['share']:.1f}% of the core" if a.get("share") is not None else "")
                     + f"; {basis})"])
    else:
        summary.add(["area bottleneck", "none stands out" if any(v["lut"] is not None for v in area.values())
                     else "unknown: no per-layer LUT numbers (no estimate, no per-module synthesis)"])
    io = rep.get("io", {})
    summary.add(["input stream", _io_text(io.get("input", {}))])
    summary.add(["output stream", _io_text(io.get("output", {}))])
    if rep.get("memory_bits_total") is not None:
        summary.add(["on-chip weight/buffer memory", f"{rep['memory_bits_total']} bits"])
    doc += [("h2", "Summary"), ("table", summary)]

    # -- throughput, latency, timing
    t = _Table(["at", "inferences/s", "how"], cls="text")
    for r in rm.throughput_rows(rep, synths, build):
        t.add(r)
    doc += [("h2", "Throughput"),
            ("p", f"Inferences per second, back to back: a new inference every initiation interval "
                  f"({rep.get('ii_cycles')} cycles) at the clock named."),
            ("table", t)]
    t = _Table(["at", "latency", "how"], cls="text")
    for r in rm.latency_rows(rep, synths, build):
        t.add(r)
    doc += [("h2", "Latency"), ("table", t)]
    rows, notes = rm.timing_rows(rep, synths, build)
    t = _Table(["build", "plan clock target", "P&R clock", "post-route Fmax", "timing", "slack",
                "critical path (blocks, in order)", "path delay"], cls="text")
    for r in rows:
        t.add(r)
    doc += [("h2", "Timing"),
            ("p", "Post-route Fmax from nextpnr against the plan's clock target (the clock the "
                  "pipeline depths were chosen for); slack is the target period minus the critical "
                  "path. The critical path's cells are mapped to the core's blocks (layers and the "
                  "plumbing between them)."),
            ("table", t)] + [("note", n) for n in notes]

    # -- utilisation
    doc.append(("h2", "Device utilisation"))
    if synths:
        doc.append(("p", "Cells yosys mapped for the whole design (the core in its serial harness or "
                         "board top) as a share of the device, beside the core alone and the plan's "
                         "estimate of the core; then what nextpnr placed (its used/available lines)."))
        for s in synths:
            t = _Table(["resource", "used", "core alone", "plan estimate", "available", "utilisation",
                        "estimate / device"])
            for r in rm.utilisation_table(rep, s):
                t.add(r)
            doc += [("h3", rm.synth_label(s) + (f" {s['package']}" if s.get("package") else "")), ("table", t)]
    else:
        where, rows = rm.estimate_utilisation(rep)
        doc.append(("p", f"not synthesized yet: run {rm.synth_cmd(build, rm.plan_target(rep))}. "
                         f"Until then, the plan's estimate as a share of {where} (the default device):"))
        t = _Table(["resource", "plan estimate", "available", "estimate / device"])
        for r in rows:
            t.add(r)
        doc.append(("table", t))

    # -- verification
    vrows, _ = rm.verification_rows(rep, build)
    doc += [("h2", "Verification"),
            ("p", "RTL simulation (cocotb) against the bit-exact golden model, from verify.json."),
            ("table", _kv(vrows))]

    # -- layers
    lt = _Table(["layer", "op", "PE", "SIMD", "cycles", "acc bits (used)", "exact", "A2Q", "data-type",
                 "32-bit", "weight bits", "memory bits", "LUT", "LUT est.", "area share"])
    for r in layers:
        is_slow, is_big = r["name"] in slow, r["name"] in big
        flags = [f for f, on in (("bottleneck", is_slow), ("area bottleneck", is_big)) if on]
        a = area.get(r["name"], {})
        share = f"{100 * a['share']:.1f}%" if a.get("share") is not None else None
        lt.add([r["name"] + (f" ({', '.join(flags)})" if flags else ""), r.get("op"), r.get("pe"), r.get("simd"),
                r.get("cycles"), r.get("acc_bits"), r.get("acc_bits_exact"), r.get("acc_bits_a2q"),
                r.get("acc_bits_datatype"), 32 if r.get("acc_bits_exact") is not None else None,
                r.get("weight_bits"), r.get("memory_bits"), a.get("lut"), a.get("lut_est"), share],
               mark=" ".join(m for m, on in (("hot", is_slow), ("area", is_big)) if on))
    doc += [("h2", "Layers"),
            ("p", f"bottleneck: the most cycles per inference (sets the II); area bottleneck: the most "
                  f"LUTs. LUT and area share: {basis}"
                  + (" (share of the core's LUTs, plumbing included)" if "post-synthesis" in basis
                     else " (share of the plan's total estimate)")
                  + "; LUT est.: the plan's estimate for the same layer."),
            ("table", lt)]
    if plot_cycles(layers, build / "report_cycles.png", rep.get("ii_cycles")):
        doc += [("img", ("report_cycles.png", "cycles per layer"))]
    if plot_acc_widths(layers, build / "report_acc_widths.png"):
        doc += [("p", "Accumulator width per layer: the exact range of the integer weights and inputs, "
                      "the A2Q bound from the weights' L1 norm, the data-type bound from the bit widths "
                      "alone, and the 32-bit accumulator a generic design would use."),
                ("img", ("report_acc_widths.png", "accumulator widths per layer"))]

    est_rows = [r for r in layers + rep.get("plumbing", []) if r.get("estimate")]
    if est_rows:
        et = _Table(["stage", "unit", "memory", "arithmetic", "LUT", "FF", "carry", "BRAM", "DSP"])
        for r in est_rows:
            e = r["estimate"]
            et.add([r["name"], r.get("unit") or r.get("op"), r.get("memory_style"), r.get("arithmetic"),
                    e.get("lut"), e.get("ff"), e.get("carry"), e.get("bram"), e.get("dsp")])
        total = rep.get("estimate") or {}
        et.add(["total", "", "", "", total.get("lut"), total.get("ff"), total.get("carry"), total.get("bram"),
                total.get("dsp")])
        doc += [("h2", f"Plan estimates ({rep.get('target', '?')}, before synthesis)"),
                ("p", "The hardware plan's resource estimate per stage (hwgen's cost model of what yosys "
                      "infers); measured numbers, where a synthesis ran, are in the tables below."),
                ("table", et)]

    for s in synths:
        rows = layer_resources(s, rep)
        if not rows:
            continue
        tag = s["_file"].removesuffix(".json")
        title = f"Resources per layer: {s.get('target')} {s.get('device')}" + (
            " (iCEBreaker board top)" if s.get("stage") == "bitstream" else "")
        t = _Table(["layer / block", "module", "LUT", "LUT est.", "FF", "FF est.", "carry", "BRAM", "BRAM est.",
                    "DSP", "LUT share"])
        total = max(1, s.get("luts") or 0)
        est = {r["name"]: r["estimate"] for r in layers + rep.get("plumbing", []) if r.get("estimate")}
        same_target = s.get("target") == rep.get("target")
        for r in rows:
            e = est.get(r["name"], {}) if same_target else {}
            t.add([r["name"] + (" (area bottleneck)" if r["name"] in big and r["is_layer"] else ""), r["module"],
                   r["luts"], e.get("lut"), r["ffs"], e.get("ff"), r["carry"], r["brams"], e.get("bram"),
                   r["dsps"], f"{100 * r['luts'] / total:.1f}%"],
                  mark=r["name"] in slow)
        doc += [("h2", title),
                ("p", "Post-synthesis cells per block (sub-modules rolled in), the plan's estimate beside "
                      "them (same target only); LUT share of the whole design."),
                ("table", t)]
        png = f"report_resources_{tag}.png"
        if plot_resources(rows, build / png, title, big):
            doc.append(("img", (png, title)))

    if synths:
        t = _Table(["target", "device", "LUT", "FF", "carry", "BRAM", "DSP", "Fmax (MHz)",
                    "inferences/s", "tool s", "file"])
        ii = rep.get("ii_cycles")
        for s in synths:
            fmax = s.get("fmax_mhz")
            if not (isinstance(fmax, (int, float)) and fmax > 0):
                rate = rm.why_no_fmax(s, build)
            elif not (isinstance(ii, (int, float)) and ii > 0):
                rate = "unknown: no II in report.json"
            elif rm.is_board(s):
                link = rm.board_link(build, s, rep)
                ur = rm.uart_rate(link)
                core = link["clock_mhz"] * 1e6 / ii
                rate = (f"{rm.fmt_rate(min(ur, core))} on the board ({'UART' if ur <= core else 'clock'}-bound)"
                        if ur else f"{rm.fmt_rate(core)} at the {link['clock_mhz']:g} MHz board clock")
            else:
                rate = f"{rm.fmt_rate(fmax * 1e6 / ii)} at Fmax"
            name = s.get("target", "?") + (" (board)" if rm.is_board(s) else "")
            t.add([name, f"{s.get('device')} {s.get('package') or ''}".strip(), s.get("luts"), s.get("ffs"),
                   s.get("carry"), s.get("brams"), s.get("dsps"), fmax, rate, s.get("tool_seconds"),
                   s.get("_file")])
        doc += [("h2", "Synthesis runs"),
                ("p", "Whole design: the core inside its small-I/O serial harness (or the board top). "
                      "Fmax is post-route (nextpnr); Xilinx numbers are yosys synth_xilinx estimates "
                      "without place and route. BRAM units: " + "; ".join(
                          sorted({f"{s.get('target')}: {s.get('bram_unit')}" for s in synths}))),
                ("table", t)]
    return doc


def _render_md(doc) -> str:
    out = []
    for kind, x in doc:
        if kind == "h1":
            out.append(f"# {x}\n")
        elif kind == "h2":
            out.append(f"## {x}\n")
        elif kind == "h3":
            out.append(f"### {x}\n")
        elif kind == "p":
            out.append(x + "\n")
        elif kind == "note":
            out.append(f"_{x}_\n")
        elif kind == "table":
            out.append(x.md() + "\n")
        elif kind == "img":
            out.append(f"![{x[1]}]({x[0]})\n")
    return "\n".join(out)


CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:76em;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:0.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;
text-align:right;vertical-align:top}th{background:#f0f0f0}td:first-child,th:first-child{text-align:left}
table.kv td,table.kv th,table.text td,table.text th{text-align:left}tr.hot td{background:#fde2e2;font-weight:600}
tr.area td{background:#fff1d6;font-weight:600}tr.hot.area td{background:#fbd3b5}
h2{border-bottom:1px solid #ddd;padding-bottom:2px;margin-top:1.6em}h3{margin-bottom:0.2em}
p.note{color:#555;font-size:90%;margin:0.2em 0}img{max-width:100%;margin:0.5em 0 1.5em}"""


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _render_html(doc) -> str:
    title = next((x for k, x in doc if k == "h1"), "hwgen report")
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"]
    for kind, x in doc:
        if kind == "h1":
            out.append(f"<h1>{html.escape(x)}</h1>")
        elif kind in ("h2", "h3"):
            out.append(f'<{kind} id="{_slug(x)}">{html.escape(x)}</{kind}>')
        elif kind == "p":
            out.append(f"<p>{html.escape(x)}</p>")
        elif kind == "note":
            out.append(f'<p class="note">{html.escape(x)}</p>')
        elif kind == "table":
            out.append(x.html())
        elif kind == "img":
            out.append(f'<img src="{html.escape(x[0])}" alt="{html.escape(x[1])}">')
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(build_dir) -> tuple[Path, Path]:
    """Write build_dir/report.md and build_dir/report.html (+ report_*.png); return both paths."""
    build = Path(build_dir)
    rep, synths = _load(build)
    for old in build.glob("report_*.png"):
        old.unlink()
    doc = _sections(rep, synths, build)
    md, page = build / "report.md", build / "report.html"
    md.write_text(_render_md(doc))
    page.write_text(_render_html(doc))
    return md, page


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 2:
        sys.exit("usage: python -m hwgen.report_doc BUILD_DIR")
    for p in write_report(sys.argv[1]):
        print("wrote", p)
