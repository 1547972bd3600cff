"""Folding pass: full, auto (least PE*SIMD meeting a cycle target), user dict / JSON file,
and the errors a user file can cause."""
import json
from pathlib import Path

import pytest

from hwgen.errors import HwgenError
from hwgen.ir import MatVec
from hwgen.compiler import compile_model
from hwgen.lowering import divisors
from hwgen.passes.fold import choose_auto, fold_graph, folding_table, layer_cycles


def model_path(name: str) -> str:
    local = Path(__file__).parent / "fixtures" / f"{name}.onnx"
    return str(local if local.exists() else Path("/work/shared/models") / f"{name}.onnx")


@pytest.fixture(scope="module")
def tfc_path():
    return model_path("TFC_2W2A")


def mats(g):
    return [op for op in g.core if isinstance(op, MatVec)]


def test_full(tfc_path):
    g = fold_graph(compile_model(tfc_path), "full")
    for op in mats(g):
        assert (op.pe, op.simd) == (op.out_channels, op.in_features)
        assert layer_cycles(op) == 1


@pytest.mark.parametrize("target", [1, 7, 64, 300, 100000])
def test_auto_meets_target_with_fewest_lanes(tfc_path, target):
    g = fold_graph(compile_model(tfc_path), ("auto", target))
    for op in mats(g):
        assert layer_cycles(op) <= target
        assert op.out_channels % op.pe == 0 and op.in_features % op.simd == 0
        lanes = op.pe * op.simd
        for pe in divisors(op.out_channels):  # brute force: nothing smaller meets the target
            for simd in divisors(op.in_features):
                if layer_cycles(op, pe, simd) <= target:
                    assert pe * simd >= lanes


def test_auto_rejects_bad_target(tfc_path):
    with pytest.raises(HwgenError):
        fold_graph(compile_model(tfc_path), ("auto", 0))


def test_dict_and_json_file(tfc_path, tmp_path):
    spec = {"MatMul_0": {"pe": 4, "simd": 49}, "MatMul_3": {"pe": 5, "simd": 8}}
    g = fold_graph(compile_model(tfc_path), spec)
    table = folding_table(g)
    assert table["MatMul_0"] == {"pe": 4, "simd": 49}
    assert table["MatMul_1"] == {"pe": 1, "simd": 1}  # not named: sequential
    f = tmp_path / "fold.json"
    f.write_text(json.dumps({"layers": table}))
    g2 = fold_graph(compile_model(tfc_path), str(f))
    assert folding_table(g2) == table


def test_user_file_errors_name_layer_and_divisors(tfc_path, tmp_path):
    g = compile_model(tfc_path)
    with pytest.raises(HwgenError) as e:
        fold_graph(g, {"MatMul_0": {"pe": 3, "simd": 49}})
    msg = str(e.value)
    assert "MatMul_0" in msg and "1, 2, 4, 8, 16, 32, 64" in msg
    with pytest.raises(HwgenError) as e:
        fold_graph(g, {"MatMul_1": {"pe": 1, "simd": 5}})
    assert "MatMul_1" in str(e.value) and "valid SIMD" in str(e.value)
    with pytest.raises(HwgenError, match="unknown layer"):
        fold_graph(g, {"nope": {"pe": 1}})
    with pytest.raises(HwgenError, match="Threshold"):
        fold_graph(g, {"MatMul_0": {"pe": 4}, "Quant_5": {"pe": 2}})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(HwgenError, match="not valid JSON"):
        fold_graph(g, str(bad))
    with pytest.raises(HwgenError, match="does not exist"):
        fold_graph(g, str(tmp_path / "missing.json"))


def test_choose_auto_prefers_fewer_cycles_on_ties(tfc_path):
    g = compile_model(tfc_path)
    op = mats(g)[0]  # 64 x 784
    pe, simd = choose_auto(op, 64)
    assert layer_cycles(op, pe, simd) == 64 and pe * simd == 784
