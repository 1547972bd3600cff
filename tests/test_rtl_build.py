"""build_accelerator: Verilog + report.json + graph.json/npz + manifest; determinism, emission time, lint."""
import copy
import json
from pathlib import Path

import pytest

from hwgen.ir import MatVec
from hwgen.compiler import compile_model
from hwgen.passes.fold import fold_graph
from hwgen.builddir import load_build
from hwgen.rtl.build import build_accelerator
from hwgen.rtl.lint import lint_verilog

LAYER_KEYS = {"name", "op", "pe", "simd", "cycles", "acc_bits", "acc_bits_exact", "acc_bits_a2q",
              "acc_bits_datatype", "weight_bits", "memory_bits"}
IO_KEYS = {"element_bits", "signed", "bipolar", "elements_per_beat", "beats_per_inference",
           "payload_bits", "bit_order"}


def model_path(name: str) -> str:
    local = Path(__file__).parent / "fixtures" / f"{name}.onnx"
    return str(local if local.exists() else Path("/work/shared/models") / f"{name}.onnx")


@pytest.fixture(scope="module")
def tfc_build(tmp_path_factory):
    g = fold_graph(compile_model(model_path("TFC_1W1A")), ("auto", 64))
    out = tmp_path_factory.mktemp("tfc")
    report = build_accelerator(g, out)  # emission time is measured by bench/compile_time.py, not here
    return g, out, report


def test_report_contents(tfc_build):
    g, out, report = tfc_build
    assert report == json.loads((out / "report.json").read_text())
    assert report["top"] == "hwgen_top" and (out / report["verilog"]).exists()
    assert report["ii_cycles"] == 64
    assert report["latency_cycles"] > 64
    mv = [r for r in report["layers"] if r["op"] == "MatVec"]
    assert [r["name"] for r in mv] == [op.name for op in g.core if isinstance(op, MatVec)]
    assert [r["name"] for r in report["layers"]] == [op.name for op in g.core]
    # no skid buffer: pipelined for the default clock, every MatVec's enable is a register
    # (Pipeline.registered_enable), so MatVec -> Threshold -> converter is the longest ready path
    assert {p["op"] for p in report["plumbing"]} == {"WidthConverter", "StreamFIFO"}
    for row in report["layers"]:
        assert LAYER_KEYS <= row.keys()
    for row, op in zip(mv, [op for op in g.core if isinstance(op, MatVec)]):
        assert row["acc_bits"] == op.acc_type.bits == row["acc_bits_exact"]
        assert row["acc_bits_a2q"] == op.acc_bounds["a2q"]
        assert row["cycles"] <= 64 and row["weight_bits"] == op.weights.size
    io = report["io"]
    assert IO_KEYS <= io["input"].keys() and IO_KEYS <= io["output"].keys()
    assert io["input"]["bipolar"] and io["input"]["element_bits"] == 1
    assert io["input"]["elements_per_beat"] * io["input"]["beats_per_inference"] == 784
    assert io["output"]["element_bits"] == 8 and io["output"]["signed"]
    assert io["output"]["elements_per_beat"] * io["output"]["beats_per_inference"] == 10
    _, loaded = load_build(out)
    assert [op.name for op in loaded.core] == [op.name for op in g.core]
    assert not (out / "graph.pkl").exists()


def test_deterministic(tfc_build, tmp_path):
    g, out, report = tfc_build
    again = build_accelerator(copy.deepcopy(g), tmp_path)
    assert (tmp_path / again["verilog"]).read_bytes() == (out / report["verilog"]).read_bytes()
    assert (tmp_path / "report.json").read_bytes() == (out / "report.json").read_bytes()
    assert again["layers"] == report["layers"] and again["io"] == report["io"]


def test_lint_clean_and_ports_match(tfc_build):
    _, out, report = tfc_build
    assert lint_verilog(out / report["verilog"], report) == []


def test_lint_reports_port_mismatch(tfc_build):
    _, out, report = tfc_build
    bad = copy.deepcopy(report)
    bad["io"]["output"]["payload_bits"] += 1
    problems = lint_verilog(out / report["verilog"], bad, verilator=False)
    assert len(problems) == 1 and "o__payload" in problems[0]


def test_unsw_threshold_output_and_top_name(tmp_path):
    g = fold_graph(compile_model(model_path("unsw_nb15-mlp-w2a2")), ("auto", 64))
    report = build_accelerator(g, tmp_path, top="unsw_accel")
    assert report["verilog"] == "unsw_accel.v"
    out = report["io"]["output"]
    assert out["bipolar"] and out["element_bits"] == 1 and out["payload_bits"] == 1
    assert report["io"]["input"]["element_bits"] == 1 and not report["io"]["input"]["signed"]
    assert "module unsw_accel(" in (tmp_path / "unsw_accel.v").read_text()
