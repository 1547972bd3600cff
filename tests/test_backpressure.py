"""Compiling without output backpressure (hwgen.compile(backpressure=False), `--no-backpressure`):
the top ignores o.ready, the ready cuts behind the output go where the units take a beat every
cycle, the design still computes every output exactly, and verify never stalls its output."""
import json
import os

import pytest

import hwgen
from hwgen.golden import run_core
from hwgen.lowering import lowering_of_unit
from sim.amaranth_streams import run_stream
from sim.vectors import input_dtype, make_vectors, output_dtype, pack_vector_beats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JET_SMALL = os.path.join(ROOT, "quant_models", "onnx", "jet_small_w4a6.onnx")
RESNET = os.path.join(ROOT, "quant_models", "onnx", "digits_resnet_n2.onnx")


def _kinds(acc) -> list[str]:
    return [type(st.unit).__name__ for st in acc.plan.stages]


def test_fully_parallel_design_loses_its_skid_registers():
    """The requantizer pipelined to the clock cuts the ready path with a skid register behind its
    output (rtl.util.unit_enable), so neither design has a skid buffer; never stalled, that register
    and the requantizer's enable are constants, and the estimate drops them."""
    with_bp = hwgen.compile(JET_SMALL, fold="full")
    free = hwgen.compile(JET_SMALL, fold="full", backpressure=False)
    assert _kinds(with_bp) == _kinds(free) == ["MatVecUnit", "RequantUnit", "MatVecUnit"]
    assert with_bp.plan.stages[1].unit.registered_enable and free.plan.stages[1].unit.never_stalled
    assert (with_bp.plan.ii_cycles, with_bp.plan.latency_cycles) == (1, 18)
    assert (free.plan.ii_cycles, free.plan.latency_cycles) == (1, 18)
    assert free.plan.estimate["ff"] < with_bp.plan.estimate["ff"]
    assert with_bp.plan.to_dict(top="t", verilog="t.v")["io"]["output"]["backpressure"] is True
    assert free.plan.to_dict(top="t", verilog="t.v")["io"]["output"]["backpressure"] is False


def test_folded_design_keeps_the_cuts_before_a_unit_that_stalls_on_its_own():
    """Only the tail of always-ready units loses its cuts: upstream of a MatVec that replays its
    input (NF > 1: it stalls its input on its own) every skid stays (the residual CNN's, between its
    blocks: pipelined MatVec, conv, Threshold and requantizer units register their own enables)."""
    with_bp = hwgen.compile(RESNET, fold="auto", target_cycles=64)
    free = hwgen.compile(RESNET, fold="auto", target_cycles=64, backpressure=False)
    stages = with_bp.plan.stages
    last_stalling = max(k for k, st in enumerate(stages) if not lowering_of_unit(st.unit).always_ready(st.unit)
                        and not lowering_of_unit(st.unit).only_cuts_ready)
    expect = [st.name for k, st in enumerate(stages)
              if k <= last_stalling or not lowering_of_unit(st.unit).only_cuts_ready]
    assert [st.name for st in free.plan.stages] == expect
    assert any(type(st.unit).__name__ == "SkidBuffer" for st in free.plan.stages[:last_stalling])
    assert free.plan.ii_cycles == with_bp.plan.ii_cycles


def _simulate_ignoring_ready(acc, xs, seed: int):
    """Every output beat seen with o.ready held LOW the whole time, input valid random."""
    from hwgen.rtl.top import Accelerator

    beats = [b for v in pack_vector_beats(xs, input_dtype(acc.graph), acc.plan.in_fmt.per_beat) for b in v]
    out, _ = run_stream(Accelerator(acc.plan), beats, len(xs) * acc.plan.out_fmt.beats, seed=seed, p_valid=0.6,
                        ready_ignored=True, max_cycles=20 * len(beats) + 200)
    return out


def test_free_running_design_is_exact_with_output_ready_low():
    acc = hwgen.compile(JET_SMALL, fold="full", backpressure=False)
    graph = acc.graph
    xs = make_vectors(graph, 12, 4, adversarial=False)[0]
    ys = run_core(graph, xs)[graph.core[-1].outputs[0]]
    expected = [b for v in pack_vector_beats(ys, output_dtype(graph), acc.plan.out_fmt.per_beat) for b in v]
    assert _simulate_ignoring_ready(acc, xs, seed=4) == expected


def test_design_with_backpressure_holds_its_output_while_ready_is_low():
    """The same bench on the default design: with ready low the first output beat is held (valid
    stays high), so every valid cycle shows that beat and no later vector's."""
    acc = hwgen.compile(JET_SMALL, fold="full")
    graph = acc.graph
    xs = make_vectors(graph, 3, 4, adversarial=False)[0]
    ys = run_core(graph, xs)[graph.core[-1].outputs[0]]
    first = pack_vector_beats(ys, output_dtype(graph), acc.plan.out_fmt.per_beat)[0][0]
    seen = _simulate_ignoring_ready(acc, xs, seed=4)
    assert seen and set(seen) == {first}


def test_cli_no_backpressure_verifies_in_icarus_without_output_stalls(tmp_path):
    from hwgen.cli import main

    out = tmp_path / "jet"
    assert main(["compile", JET_SMALL, "-o", str(out), "--no-backpressure"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["io"]["output"]["backpressure"] is False
    assert "NO OUTPUT BACKPRESSURE" in (out / "hwgen_top.v").read_text()
    assert main(["verify", str(out), "--sim", "icarus", "--vectors", "10"]) == 0
    cfg = json.loads((out / "sim_build_icarus" / "bench.json").read_text())
    assert cfg["p_ready"] == 1.0 and cfg["p_valid"] < 1.0
    record = json.loads((out / "verify.json").read_text())
    assert record["failed"] == 0 and record["passed"] > 10


def test_free_running_design_has_a_constant_input_ready_in_every_unit(tmp_path):
    """Without backpressure, after yosys's constant propagation every unit's input ready is 1 in its own
    module (the flow synthesizes each unit as a module: `synth_ecp5 -noflatten`, so a constant tied at
    the top would not reach them). Before the units tied their own ready (rtl.util.output_ready) and
    MatVec's take_stream became a constant for NF = 1, jet_full routed at 29.3 and 48.5 MHz on a ready
    path through all seven units."""
    import re
    import shutil
    import subprocess

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    hwgen.compile(JET_SMALL, fold="full", backpressure=False).write(str(tmp_path))
    subprocess.run(["yosys", "-q", "-p", "read_verilog hwgen_top.v; prep -top hwgen_top; opt -full; "
                    "opt_clean -purge; write_verilog -noattr out.v"], cwd=tmp_path, check=True, timeout=600)
    modules = re.split(r"\nmodule ", (tmp_path / "out.v").read_text())[1:]
    units = {m.split("(")[0].strip(): m for m in modules if not m.startswith("hwgen_top")}
    assert len(units) == 3
    for name, text in units.items():
        # the 1-bit outputs but o.valid: the input ready (Amaranth may name a port after the signal
        # that drives it: i__ready or a registered enable's `go`, o__valid or `out_valid`)
        readies = [p for p in re.findall(r"^\s*output (\w+);", text, re.M) if "valid" not in p]
        assert len(readies) == 1 and f"assign {readies[0]} = 1'h1;" in text, (name, readies)
