"""Generate the flow for one build directory: the wrapper Verilog, the yosys script, the nextpnr
and packer command lines, and a run.sh that replays them, all kept in DIR/flow-<target>/.

Nothing here runs a tool: `make_plan` returns what `hwgen.flows.synth` writes and runs, so the
scripts are checked in tests without yosys or nextpnr (the way LiteX tests its build files).
"""
from __future__ import annotations

import importlib.resources
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import HwgenError
from . import devices

HARNESS_MODULE = "hwgen_serial_harness"
BOARD_MODULE = "hwgen_icebreaker_top"
TEMPLATE_FILES = ("serial_harness.v", "icebreaker_top.v", "icebreaker.pcf")


def templates_dir() -> Path:
    """The directory holding TEMPLATE_FILES (the repository's top-level rtl_templates/).

    A wheel carries them as package data, hwgen/rtl_templates/ (pyproject.toml maps the folder
    to the sub-package hwgen.rtl_templates), found through importlib.resources. A source checkout
    (`pip install -e .`, or the tree on sys.path) has no hwgen/rtl_templates/: setuptools'
    editable finder cannot import a mapped sub-package without __init__.py, so there the folder
    is rtl_templates/ next to the hwgen package.
    """
    pkg = importlib.resources.files("hwgen")
    candidates = [pkg / "rtl_templates",                                  # wheel / sdist install
                  Path(str(pkg)).resolve().parent / "rtl_templates"]      # source checkout
    for d in candidates:
        if isinstance(d, Path) and all((d / name).is_file() for name in TEMPLATE_FILES):
            return d
    raise HwgenError("rtl_templates not found: looked in "
                     + " and ".join(str(d) for d in candidates)
                     + "; reinstall hwgen (pip install . or pip install -e .)")


@dataclass
class Step:
    name: str                 # yosys | nextpnr | icepack
    argv: list[str]           # argv[0] is the program name, resolved on PATH when run
    log: str                  # log file (relative to the work dir)
    outputs: list[str] = field(default_factory=list)
    capture: bool = False     # the tool writes no log itself: the runner saves its console there
    version: str | None = None  # a step of hwgen itself says its version (None: ask the program)


@dataclass
class FlowPlan:
    build_dir: Path
    work_dir: Path
    target: str
    stage: str                # synth | pnr | bitstream
    device: devices.Device
    package: str | None
    freq_mhz: float
    top: str                  # core module (report.json "top")
    wrapper: str              # module synthesized as the top (harness or board top)
    w_in: int
    w_out: int
    per_module: bool
    files: dict[str, str]     # name (in work_dir) -> text
    steps: list[Step]
    result_json: Path

    @property
    def programs(self) -> list[str]:
        return [s.argv[0] for s in self.steps]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


def load_report(build_dir) -> dict:
    """report.json of a build directory, checked: a directory with a manifest.json (what `hwgen
    compile` writes) must match it (hwgen.builddir.check_build); one without (bench/unit_synth.py's
    single-unit directories) needs a report.json naming a top module and its Verilog file."""
    from ..builddir import MANIFEST, check_build

    build = Path(build_dir)
    if not build.is_dir():
        what = "is not a directory" if build.exists() else "no such build directory"
        raise HwgenError(f"{build}: {what}; run `hwgen compile MODEL -o {build}` first")
    if (build / MANIFEST).is_file():
        check_build(build)
    path = build / "report.json"
    if not path.is_file():
        raise HwgenError(f"{path} not found: run `hwgen compile MODEL -o {build_dir}` first")
    try:
        rep = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise HwgenError(f"{path}: not valid JSON ({exc.msg}, line {exc.lineno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HwgenError(f"{path}: cannot read it ({type(exc).__name__})") from None
    if not isinstance(rep, dict):
        raise HwgenError(f"{path}: not a JSON object (was it written by hwgen compile?)")
    for key in ("top", "verilog", "io"):
        if key not in rep:
            raise HwgenError(f"{path}: missing key {key!r} (was it written by hwgen compile?)")
    top, vname, io = rep["top"], rep["verilog"], rep["io"]
    if not (isinstance(top, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top)):
        raise HwgenError(f"{path}: 'top' is {top!r}, not a Verilog module name")
    if not (isinstance(vname, str) and vname.strip()):
        raise HwgenError(f"{path}: 'verilog' is {vname!r}, not a file name")
    if not (isinstance(io, dict) and all(isinstance(io.get(k), dict) for k in ("input", "output"))):
        raise HwgenError(f"{path}: 'io' must hold the input and output stream formats")
    for key, kind in (("layers", list), ("plumbing", list), ("notes", list), ("estimate", dict)):
        if key in rep and not isinstance(rep[key], kind):
            raise HwgenError(f"{path}: {key!r} must be a JSON {'array' if kind is list else 'object'}")
    if not all(isinstance(r, dict) for r in rep.get("layers", []) + rep.get("plumbing", [])):
        raise HwgenError(f"{path}: every row of 'layers' / 'plumbing' must be a JSON object")
    for key in ("ii_cycles", "latency_cycles"):
        v = rep.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0):
            raise HwgenError(f"{path}: {key} is {v!r}, not a cycle count")
    vpath = build / vname
    if not vpath.is_file():
        raise HwgenError(f"{vpath} not found (named by {path}): run `hwgen compile` again")
    try:
        text = vpath.read_text(errors="replace")
    except OSError as exc:
        raise HwgenError(f"{vpath}: cannot read it ({exc.strerror})") from None
    if not re.search(rf"^\s*module\s+{re.escape(top)}\b", text, re.M):
        raise HwgenError(f"{path}: top module {top!r} is not in {vname}: run `hwgen compile` again")
    return rep


def _extra_verilog(rep: dict, build: Path) -> list[str]:
    """Further Verilog files of the core (report.json "verilog_files", besides "verilog")."""
    extra = [v for v in rep.get("verilog_files", []) if v != rep["verilog"]]
    for v in extra:
        if not (build / v).is_file():
            raise HwgenError(f"{build / v} not found (named by report.json verilog_files)")
    return extra


def payload_widths(report: dict) -> tuple[int, int]:
    io = report["io"]
    try:
        return int(io["input"]["payload_bits"]), int(io["output"]["payload_bits"])
    except (KeyError, TypeError, ValueError):
        raise HwgenError("report.json: io.input.payload_bits / io.output.payload_bits missing") from None


def yosys_script(*, target: str, device: devices.Device, core_verilog: str, core_top: str,
                 wrapper_file: str, wrapper: str, params: dict[str, int], per_module: bool,
                 netlist: str = "netlist.json", dsp: bool = True,
                 extra_verilog: tuple[str, ...] = ()) -> str:
    """The yosys script: read, elaborate with the wrapper's parameters, synthesize, write stats.

    With per_module, synthesis keeps the hierarchy (`-noflatten` for iCE40/ECP5; synth_xilinx
    keeps it by default), `stat` is taken per module into stat_hier.json, and the netlist is
    flattened afterwards for place and route. stat.json always holds the whole design.
    dsp=False keeps multipliers in LUTs (closer to LUT-only published numbers).
    """
    t = devices.target(target)
    chparams = " ".join(f"-chparam {k} {v}" for k, v in params.items())
    synth = [t.synth_cmd, "-top", wrapper, *device.synth_args]
    if not dsp:
        synth = [a for a in synth if a != "-dsp"]
        if target in ("ecp5", "xilinx"):
            synth.append("-nodsp")
    if target in ("ice40", "ecp5") and per_module:
        synth.append("-noflatten")
    if target == "xilinx" and not per_module:
        synth.append("-flatten")
    # ECP5: the harness puts its reset on a global network (a DCCA cell, declared by yosys's library)
    ecp5_cells = ["read_verilog -lib +/ecp5/cells_bb.v"] if target == "ecp5" else []
    defines = "-DHWGEN_ECP5_GLOBAL_RESET " if target == "ecp5" else ""
    lines = [
        f"# hwgen {target} synthesis of {core_top} inside {wrapper} ({device.part})",
        "# re-run: see run.sh in this directory",
        *ecp5_cells,
        f"read_verilog {defines}-DHWGEN_CORE={core_top} {' '.join((core_verilog, *extra_verilog))} {wrapper_file}",
        f"hierarchy -check -top {wrapper} {chparams}".rstrip(),
        " ".join(synth),
    ]
    if per_module:
        lines += ["tee -q -o stat_hier.json stat -json", "flatten", "opt_clean"]
    lines += ["tee -q -o stat.json stat -json", f"write_json {netlist}", ""]
    return "\n".join(lines)


def nextpnr_argv(*, target: str, device: devices.Device, package: str | None, freq_mhz: float,
                 netlist: str = "netlist.json", constraints: str | None = None,
                 seed: int = 1, router: str | None = None, timing_ripup: bool = False) -> tuple[list[str], list[str]]:
    """nextpnr command line (and the files it writes) for iCE40 or ECP5; `router` None takes
    the target's default (devices.Target.router).

    `timing_ripup` (router2 only) passes --tmg-ripup: router2 then keeps re-routing the nets of
    failing paths until the design meets `freq_mhz`. On one digits_a2q_64 netlist (ad3ddc4,
    ECP5-85, 100 MHz) it lifted seeds 1 / 2 / 3 from 84.25 / 79.57 / 95.04 to 105.14 / 100.34 /
    100.11 MHz, for 92-157 s of routing instead of 29-37 s. It is opt-in because a design that
    cannot reach its target never converges: nextpnr 0.11 iterates up to its limit (1,000 passes)
    and then stops with "giving up" (CNV-W1A1 at 100 MHz, an early netlist: still at pass 532 after
    50 minutes; at 8c0d2d1, which reaches 94-96 MHz without it, 100.57 / 103.05 MHz on seeds 1 / 2
    in 6.5 minutes)."""
    t = devices.target(target)
    router = router or t.router
    if router is not None and router not in t.routers:
        raise HwgenError(f"nextpnr for {target} has no router {router!r}; choose one of {', '.join(t.routers)}")
    argv = [t.nextpnr, *device.nextpnr_args]
    if package:
        argv += ["--package", package]
    argv += ["--json", netlist]
    if target == "ice40":
        out = "design.asc"
        argv += ["--asc", out]
        argv += ["--pcf", constraints] if constraints else ["--pcf-allow-unconstrained"]
    elif target == "ecp5":
        out = "design.config"
        argv += ["--textcfg", out]
        argv += ["--lpf", constraints] if constraints else ["--lpf-allow-unconstrained"]
    else:
        raise HwgenError(f"no place and route for target {target!r}")
    if router:
        argv += ["--router", router]
    if timing_ripup:
        if router != "router2":
            raise HwgenError(f"--tmg-ripup is a router2 option; the {target} flow routes with {router or 'router1'} "
                             "(pass --router router2)")
        argv += ["--tmg-ripup"]
    argv += ["--freq", _num(freq_mhz), "--seed", str(seed), "--timing-allow-fail",
             "--report", "nextpnr-report.json", "-l", "nextpnr.log", "-q"]
    return argv, [out, "nextpnr-report.json"]


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def run_sh(steps: list[Step]) -> str:
    lines = ["#!/bin/sh", "# Re-run this flow by hand: sh run.sh (from any directory).",
             "set -e", 'cd "$(dirname "$0")"']
    for s in steps:
        cmd = shlex.join(s.argv)
        lines.append(f"{cmd} > {shlex.quote(s.log)} 2>&1" if s.capture else cmd)
    return "\n".join(lines) + "\n"


def make_plan(build_dir, *, target: str, device: str | None = None, package: str | None = None,
              freq_mhz: float | None = None, stage: str | None = None, per_module: bool = True,
              seed: int = 1, dsp: bool = True, router: str | None = None, timing_ripup: bool = False,
              bram_outreg: bool = True) -> FlowPlan:
    """Everything needed to run the flow for build_dir (which holds report.json + Verilog).

    bram_outreg (ECP5 place and route): between yosys and nextpnr, move each register that
    directly follows a block RAM read into the block RAM's output register
    (hwgen.flows.bram_outreg); nextpnr then reads netlist-pnr.json."""
    build = Path(build_dir)
    rep = load_report(build)
    t = devices.target(target)
    dev, pkg = devices.device(target, device, package)
    stage = stage or ("pnr" if "pnr" in t.stages else "synth")
    if stage not in ("synth", "pnr", "bitstream"):
        raise HwgenError(f"unknown stage {stage!r}: synth, pnr or bitstream")
    if stage not in t.stages:
        raise HwgenError(f"target {target} can do {', '.join(t.stages)}, not {stage}")
    if stage == "bitstream" and dev.name != "up5k":
        raise HwgenError("the board top is for the iCEBreaker (iCE40 up5k, sg48); "
                         f"use --stage pnr for {dev.part}")
    freq = float(freq_mhz) if freq_mhz else t.default_freq_mhz
    if freq <= 0:
        raise HwgenError("the target frequency must be positive (MHz)")
    w_in, w_out = payload_widths(rep)
    tdir = templates_dir()
    board = stage == "bitstream"
    work = build / (f"flow-{target}-board" if board else f"flow-{target}")
    core_v = f"../{rep['verilog']}"
    files: dict[str, str] = {}
    if board:
        wrapper, wfile = BOARD_MODULE, "icebreaker_top.v"
        files[wfile] = (tdir / "icebreaker_top.v").read_text()
        files["icebreaker.pcf"] = (tdir / "icebreaker.pcf").read_text()
        params = {"W_IN": w_in, "W_OUT": w_out, "CLK_HZ": 12_000_000}
        freq = freq_mhz or 12.0
    else:
        wrapper, wfile = HARNESS_MODULE, "serial_harness.v"
        files[wfile] = (tdir / "serial_harness.v").read_text()
        params = {"W_IN": w_in, "W_OUT": w_out}
    files["synth.ys"] = yosys_script(target=target, device=dev, core_verilog=core_v,
                                     core_top=rep["top"], wrapper_file=wfile, wrapper=wrapper,
                                     params=params, per_module=per_module, dsp=dsp,
                                     extra_verilog=tuple(f"../{v}" for v in _extra_verilog(rep, build)))
    steps = [Step("yosys", [t.yosys[0], "-q", "-l", "yosys.log", "synth.ys"], "yosys.log",
                  ["netlist.json", "stat.json"] + (["stat_hier.json"] if per_module else []))]
    netlist = "netlist.json"
    if stage in ("pnr", "bitstream") and target == "ecp5" and bram_outreg:
        netlist = "netlist-pnr.json"
        from .. import __version__
        steps.append(Step("bram_outreg", [sys.executable, "-m", "hwgen.flows.bram_outreg", "netlist.json", netlist],
                          "bram_outreg.log", [netlist], capture=True, version=f"hwgen {__version__}"))
    if stage in ("pnr", "bitstream"):
        argv, outs = nextpnr_argv(target=target, device=dev, package=pkg, freq_mhz=freq,
                                  netlist=netlist, constraints="icebreaker.pcf" if board else None, seed=seed,
                                  router=router, timing_ripup=timing_ripup)
        steps.append(Step("nextpnr", argv, "nextpnr.log", outs))
    if stage == "bitstream":
        steps.append(Step("icepack", [t.packer, "design.asc", "design.bin"], "icepack.log",
                          ["design.bin"], capture=True))
    files["run.sh"] = run_sh(steps)
    result = build / (f"bitstream-{target}.json" if board else f"synth-{target}.json")
    return FlowPlan(build, work, target, stage, dev, pkg, freq, rep["top"], wrapper, w_in, w_out,
                    per_module, files, steps, result)


def write_plan(plan: FlowPlan) -> None:
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    for name, text in plan.files.items():
        p = plan.work_dir / name
        p.write_text(text)
        if name.endswith(".sh"):
            p.chmod(0o755)
