"""Run the AXI4-Stream wrapper of a build directory (<top>_axis.v around <top>.v) in cocotb with
backpressure on both sides (sim/axis_bench.py, cocotbext-axi) and return what came out.

    run_axis_bench(out_dir, xs, simulator="icarus", seed=0) -> dict

xs are integer input vectors [N, *input shape] (sim/vectors.py make_vectors); they are packed
into input words with sim/vectors.py as `hwgen verify` packs them. The caller compares the
result's "frames" (one list of output words per inference, each ending at m_axis_tlast) with its
own expectation: this module computes none, so a test of it stays independent of it.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from hwgen.builddir import load_build
from hwgen.errors import HwgenError

from .verify import _Env, _check_simulator, build_args, simulator_env
from .vectors import input_dtype, pack_vector_beats


def run_axis_bench(out_dir, xs, *, simulator: str = "icarus", seed: int = 0, p_pause_in: float = 0.3,
                   p_pause_out: float = 0.4, cxx_opt: str | None = None) -> dict:
    """Simulate <top>_axis with the vectors xs; the bench's results (frames as ints) plus seconds.

    p_pause_in / p_pause_out: probability that the source / sink pauses in a cycle (the sink never
    pauses for a design compiled without output backpressure). cxx_opt:
    Verilator only, C++ optimisation of the model (as in sim.verify.verify_dir; "-O0" builds faster)."""
    from cocotb_tools.runner import get_runner

    t0 = time.perf_counter()
    out = Path(out_dir).resolve()
    report, graph = load_build(out)
    top = report["top"]
    sources = [out / report["verilog"], out / f"{top}_axis.v"]
    for s in sources:
        if not s.is_file():
            raise HwgenError(f"{s}: missing; compile again (hwgen writes the AXI4-Stream wrapper since 0.1.0)")
    _check_simulator(simulator)
    io_in, io_out = report["io"]["input"], report["io"]["output"]
    if not io_out.get("backpressure", True):  # m_axis_tready is ignored: the sink must never pause
        p_pause_out = 0.0
    xs = np.asarray(xs, dtype=np.int64)
    words = pack_vector_beats(xs, input_dtype(graph), io_in["elements_per_beat"])
    per_inference = max(report.get("ii_cycles") or 1, io_in["beats_per_inference"], io_out["beats_per_inference"])
    rate = (1 - p_pause_in) * (1 - p_pause_out)
    max_cycles = int(((len(xs) + 2) * per_inference + (report.get("latency_cycles") or 0)) / rate) + 2000

    build_dir = out / f"sim_build_axis_{simulator}"
    build_dir.mkdir(parents=True, exist_ok=True)
    results = build_dir / "axis_results.json"
    results.unlink(missing_ok=True)
    cfg = {"inputs": [[f"{w:x}" for w in v] for v in words], "seed": seed, "p_pause_in": p_pause_in,
           "p_pause_out": p_pause_out, "max_cycles": max_cycles, "results": str(results),
           # after the last expected frame: long enough for one more inference to come out
           "drain_cycles": int(per_inference + (report.get("latency_cycles") or 0)) + 100}
    cfg_path = build_dir / "axis_bench.json"
    cfg_path.write_text(json.dumps(cfg))
    env = {"HWGEN_AXIS_CONFIG": str(cfg_path), **simulator_env(simulator, cxx_opt)}
    runner = get_runner(simulator)
    with _Env(env):
        try:
            runner.build(sources=[str(s) for s in sources], hdl_toplevel=f"{top}_axis", build_dir=build_dir,
                         build_args=build_args(simulator, build_dir, f"{top}_axis"), timescale=("1ns", "1ps"),
                         always=True, log_file=build_dir / "build.log")
        except (RuntimeError, SystemExit) as exc:
            raise RuntimeError(f"{simulator} could not build {top}_axis ({exc}); "
                               f"see {build_dir / 'build.log'}") from exc
        try:
            runner.test(test_module="sim.axis_bench", hdl_toplevel=f"{top}_axis", hdl_toplevel_lang="verilog",
                        build_dir=build_dir, test_dir=build_dir, extra_env=env, timescale=("1ns", "1ps"),
                        log_file=build_dir / "test.log", results_xml=str(build_dir / "results.xml"))
        except SystemExit:
            pass
    if not results.exists():
        raise RuntimeError(f"the AXI4-Stream bench did not produce results; see {build_dir / 'test.log'}")
    res = json.loads(results.read_text())
    res["frames"] = [[int(w, 16) for w in f] for f in res["frames"]]
    res["seconds"] = round(time.perf_counter() - t0, 2)
    res["max_cycles"] = max_cycles
    return res
