"""`hwgen check`: golden vs qonnx execute_onnx with every difference classified; float ties are
not mismatches, a wrong threshold is."""
import json

import numpy as np
import pytest
from conftest import shared_model
from onnx_builders import random_mlp, tie_mlp

import hwgen.check
from hwgen.check import CATEGORIES, check_model, prepare
from hwgen.cli import main
from hwgen.ir import Threshold


@pytest.fixture
def tie_model(tmp_onnx):
    return tie_mlp(tmp_onnx("ties.onnx"), seed=0)


def test_ties_are_classified_not_mismatches(tie_model):
    r = check_model(tie_model, vectors=400, seed=0)
    by = {t.tensor: t for t in r.tensors}
    sign, requant = by["BipolarQuant_0_out0"], by["Quant_4_out0"]
    # the exact-0 accumulator before the sign and the x.5 boundaries: ties, really hit
    assert sign.counts["tie"] > 20 and requant.counts["tie"] > 20
    assert r.mismatches == 0 and r.ok
    for t in r.tensors:
        assert sum(t.counts.values()) == t.elements
    out = r.tensors[-1]
    assert out.kind == "output" and out.counts["float"] > 0 and out.counts["downstream"] > 0
    assert r.tensors[0].counts["exact"] == r.tensors[0].elements  # the input quantizer: same engine


def test_ties_exit_zero_with_a_table(tie_model, capsys):
    assert main(["check", tie_model, "--vectors", "200", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "seed 3" in out and "BipolarQuant_0_out0" in out and "0 mismatches" in out
    for c in CATEGORIES:
        assert c in out


def test_json_on_stdout_and_in_a_file(tie_model, tmp_path, capsys):
    assert main(["check", tie_model, "--vectors", "50", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["ok"] is True and doc["vectors"] == 50 and doc["totals"]["mismatch"] == 0
    assert {t["tensor"] for t in doc["tensors"]} >= {"BipolarQuant_0_out0", "Quant_4_out0"}
    target = tmp_path / "r.json"
    assert main(["check", tie_model, "--vectors", "50", "--json", str(target)]) == 0
    assert json.loads(target.read_text())["totals"] == doc["totals"]
    assert "wrote" in capsys.readouterr().out


def _sabotaged(path, shift):
    """The prepared graph with one threshold column of the last activation moved by `shift`."""
    p = prepare(path)
    th = [op for op in p.graph.ops if isinstance(op, Threshold)][-1]
    th.thresholds = th.thresholds.copy()
    th.thresholds[:, th.thresholds.shape[1] // 2] += shift
    if getattr(th, "requant_mul", None) is not None:  # an equivalent requantizer proven for the old ones
        th.requant_mul = None
    return p


def test_a_wrong_threshold_is_a_mismatch(tmp_onnx):
    """Power-of-two scales: the reference is exact, so even a step moved by one is caught."""
    path = random_mlp(tmp_onnx(), seed=1)
    assert check_model(path, vectors=300).ok
    r = check_model(path, vectors=300, prepared=_sabotaged(path, 1))
    assert not r.ok and r.mismatches > 0
    bad = [t for t in r.tensors if t.counts["mismatch"]]
    assert [t.tensor for t in bad] == ["Quant_3_out0"]
    ex = bad[0].examples[0]
    assert ex["golden"] != ex["reference"]


def test_chunked_check_is_the_whole_check(tmp_onnx):
    """chunk=70 on 300 inputs (5 chunks, the last short): the same counts per tensor and the same
    mismatch examples, numbered by their sample in the whole input, as one run over all 300
    (power-of-two scales: the reference is exact, so no count depends on how it batches)."""
    path = random_mlp(tmp_onnx(), seed=1)
    p = _sabotaged(path, 1)
    whole = check_model(path, vectors=300, prepared=p)
    seen = []
    chunked = check_model(path, vectors=300, prepared=p, chunk=70,
                          progress=lambda done, total, r: seen.append((done, total, r.vectors)))
    assert seen == [(70, 300, 70), (140, 300, 140), (210, 300, 210), (280, 300, 280), (300, 300, 300)]
    assert [(t.tensor, t.elements, t.counts) for t in chunked.tensors] == \
        [(t.tensor, t.elements, t.counts) for t in whole.tensors]
    bad = [t for t in whole.tensors if t.counts["mismatch"]]
    assert bad and [t.examples for t in chunked.tensors if t.counts["mismatch"]] == [t.examples for t in bad]


def test_merged_chunks_number_examples_in_the_whole_input():
    """A chunk's mismatch examples are renumbered by the chunk's first sample; at most 5 are kept.
    (Whole-run equality per chunk size is not a property: the reference's float32 sums, and so its
    ties, depend on the batch it runs, e.g. a GEMV for one input against a GEMM for many.)"""
    from hwgen.check import TensorCheck, _merge

    def part(samples):
        t = TensorCheck(tensor="t", op="Threshold", node="n", kind="quantizer", elements=10 * len(samples))
        t.counts = {c: (len(samples) if c == "mismatch" else 0) for c in CATEGORIES}
        t.examples = [{"sample": s, "index": 0, "golden": 1.0, "reference": 0.0} for s in samples]
        return [t]

    total = _merge(None, part([0, 1]), 0)
    total = _merge(total, part([0, 2]), 4)
    total = _merge(total, part([1, 3]), 8)
    assert [e["sample"] for e in total[0].examples] == [0, 1, 4, 6, 9]
    assert total[0].elements == 60 and total[0].counts["mismatch"] == 6


def test_a_wrong_threshold_among_ties_is_a_mismatch(tie_model):
    """With float ties around, a step moved by two (off every boundary) is still a mismatch."""
    r = check_model(tie_model, vectors=300, prepared=_sabotaged(tie_model, 2))
    assert [t.tensor for t in r.tensors if t.counts["mismatch"]] == ["Quant_4_out0"]


def test_mismatch_exits_one(tmp_onnx, monkeypatch, capsys):
    path = random_mlp(tmp_onnx(), seed=1)
    monkeypatch.setattr(hwgen.check, "prepare", lambda p, fmt=None: _sabotaged(p, 1))  # `prepare` here: the real one
    assert main(["check", path, "--vectors", "100"]) == 1
    captured = capsys.readouterr()
    assert "mismatch" in captured.out
    assert captured.err.startswith("hwgen: check failed:") and captured.err.count("\n") == 1


def test_a_wrong_output_scale_is_a_mismatch(tmp_onnx):
    path = random_mlp(tmp_onnx(), seed=2)
    p = prepare(path)
    p.graph.tail.scale = p.graph.tail.scale * np.float32(1.001)
    r = check_model(path, vectors=100, prepared=p)
    assert [t.tensor for t in r.tensors if t.counts["mismatch"]] == [r.tensors[-1].tensor]


def test_bipolar_inputs_are_generated_for_a_bipolar_model():
    path = shared_model("UNSW_w2a2")
    from hwgen.frontend import load_qonnx

    p = prepare(path)
    x, how = hwgen.check.random_inputs(load_qonnx(path), p.graph, 8, 0)
    assert set(np.unique(x)) == {-1.0, 1.0} and "BIPOLAR" in how
    r = check_model(path, vectors=30, prepared=p)
    assert r.ok and r.inputs == how
    assert r.totals()["exact"] == sum(t.elements for t in r.tensors)


def test_given_inputs(tie_model, tmp_path, capsys):
    x = np.random.default_rng(0).uniform(-1, 1, (20, 6)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    assert main(["check", tie_model, "--input", str(tmp_path / "x.npy")]) == 0
    assert "on 20 inputs (given)" in capsys.readouterr().out


def _one_line_error(argv, capsys, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hwgen: error:") and err.count("\n") == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err


def test_errors_are_one_line(tie_model, tmp_path, capsys):
    _one_line_error(["check", str(tmp_path / "missing.onnx")], capsys, "no such file")
    np.save(tmp_path / "bad.npy", np.zeros((3, 5), np.float32))
    _one_line_error(["check", tie_model, "--input", str(tmp_path / "bad.npy")], capsys, "does not match")
    assert main(["check", tie_model, "--vectors", "0"]) == 2
    assert "--vectors" in capsys.readouterr().err
    _one_line_error(["check", tie_model, "--json", str(tmp_path / "nodir" / "r.json")], capsys, "does not exist")


def test_off_grid_inputs_without_an_input_quantizer(tmp_path, capsys):
    """hwgen quantizes the input itself (--input-bits/--input-scale) but the reference does not:
    off-grid inputs would make every layer differ, so check refuses them in one line."""
    from onnx_builders import qkeras_mlp

    path = qkeras_mlp(tmp_path / "qk.onnx", seed=0)
    np.save(tmp_path / "x.npy", np.full((4, 12), 0.3, np.float32))
    fmt = ["--input-bits", "6", "--input-scale", "0.125"]
    _one_line_error(["check", path, "--input", str(tmp_path / "x.npy"), *fmt], capsys, "not on that grid")
    assert main(["check", path, "--vectors", "20", *fmt]) == 0
    assert "input grid" in capsys.readouterr().out
