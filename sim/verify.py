"""Verify a built accelerator (out_dir from hwgen.rtl.build.build_accelerator) in simulation.

    verify_dir(out_dir, simulator="icarus" | "verilator", vectors=N, seed=S) -> VerifyResult

Checks the build directory against its manifest (hwgen.builddir), loads the golden model
from out_dir/graph.json + graph.npz, makes N random plus adversarial integer
input vectors (feature maps [H, W, C] for conv models, sim/vectors.py), writes them (with the expected output beats from hwgen.golden.run_core) to
out_dir/sim_build_<sim>/bench.json, and runs the cocotb bench sim/cocotb_bench.py with
cocotb_tools.runner; the bench reports pass/fail per vector, the measured II and latency.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from hwgen.builddir import load_build
from hwgen.golden import run_core
from hwgen.ir import MatVec, Threshold
from hwgen.rtl.lint import verilator_env

from .vectors import input_dtype, make_vectors, output_dtype, pack_vector_beats

SIMULATORS = ("icarus", "verilator")


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

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.passed > 0

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in (
            "simulator", "passed", "failed", "vectors", "ii_measured", "latency_measured",
            "ii_estimated", "latency_estimated", "failed_vectors", "build_dir", "waves", "seconds")}


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


def verify_dir(out_dir, *, simulator: str = "icarus", vectors: int = 20, seed: int = 0,
               waves: bool = False, progress=print, p_valid: float = 0.7, p_ready: float = 0.6,
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
    waves=True leaves a VCD (path in result.waves). progress: callable for status lines (or None).
    """
    from cocotb_tools.runner import get_runner

    t0 = time.perf_counter()
    say = progress or (lambda *_: None)
    if simulator not in SIMULATORS:
        raise ValueError(f"unknown simulator {simulator!r}; use one of {', '.join(SIMULATORS)}")
    out = Path(out_dir).resolve()
    report, graph = load_build(out)
    top = report["top"]
    vpath = out / report["verilog"]
    io_in, io_out = report["io"]["input"], report["io"]["output"]

    # vectors and golden outputs
    xs, labels, notes = make_vectors(graph, vectors, seed, adversarial=adversarial,
                                     later_layers=later_layers, adversarial_limit=adversarial_limit)
    values = run_core(graph, xs)
    ys = values[graph.core[-1].outputs[0]]
    in_beats = pack_vector_beats(xs, input_dtype(graph), io_in["elements_per_beat"])
    out_beats = pack_vector_beats(ys, output_dtype(graph), io_out["elements_per_beat"])
    hits = sum(n["hit"] for n in notes)
    spatial = any(not isinstance(op, (MatVec, Threshold)) for op in graph.core)
    say(f"verify: {len(xs)} vectors ({vectors} random, {len(xs) - vectors} adversarial"
        + (f"; later-layer extremes reached {hits}/{len(notes)}" if notes else "")
        + ("; first-layer extremes only (no later-layer search for conv models)"
           if spatial and adversarial and later_layers else "") + ")")

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
        "max_cycles_per_vector": int(max(report["ii_cycles"], 1) * 2 + report["latency_cycles"] + 64),
        "results": str(results_path),
    }
    cfg_path = build_dir / "bench.json"
    cfg_path.write_text(json.dumps(cfg))

    # build (skipped when the Verilog and options are unchanged)
    env = {"HWGEN_BENCH_CONFIG": str(cfg_path)}
    if simulator == "verilator":
        env.update(verilator_env())
        if cxx_opt:
            env["MAKEFLAGS"] = (env.get("MAKEFLAGS", "") + f" OPT_FAST={cxx_opt} OPT_SLOW={cxx_opt}").strip()
    vcd = build_dir / "waves.vcd"
    sources = [str(vpath)]
    build_args: list[str] = []
    if simulator == "verilator":
        build_args = ["-Wno-fatal", "-Wno-lint", "-Wno-style"]
    elif waves:
        sources.append(str(_write_vcd_dump(build_dir, top, vcd)))
        build_args = ["-s", "hwgen_vcd_dump"]
    stamp = hashlib.sha256(vpath.read_bytes() + json.dumps([simulator, waves, build_args, cxx_opt]).encode()).hexdigest()
    stamp_path = build_dir / "build.stamp"
    fresh = stamp_path.exists() and stamp_path.read_text() == stamp
    runner = _icarus_vcd_runner() if (simulator == "icarus" and waves) else get_runner(simulator)
    say(f"verify: {'reusing' if fresh else 'building'} {simulator} model in {build_dir}")
    tb = time.perf_counter()
    log_build = build_dir / "build.log"
    with _Env(env):
        if not fresh:
            stamp_path.unlink(missing_ok=True)
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir, build_args=build_args,
                         timescale=("1ns", "1ps"), waves=(waves and simulator == "verilator"),
                         always=True, log_file=log_build)
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
        seconds=round(time.perf_counter() - t0, 2))
    say(f"verify: {simulator}: II measured {result.ii_measured} (estimate {result.ii_estimated}), "
        f"latency measured {result.latency_measured} (estimate {result.latency_estimated})")
    say(result.summary())
    return result
