"""Upstream architectures from brevitas_examples.bnn_pynq (the FINN TFC / SFC / LFC family), built
with seeded random weights and randomized BatchNorm statistics, exported with today's Brevitas
(export_qonnx): hwgen's golden model equals qonnx's execute_onnx on 500 inputs (hwgen check: no
mismatch; binary models have no float ties here because their scales are powers of two), and a
batch runs through the host Reshape the exporter writes ([1, -1] with allowzero=1). Slow: each model compiled
with a small auto folding verifies bit-exactly in Verilator, its measured II and latency those of the plan."""
import numpy as np
import pytest

pytest.importorskip("brevitas_examples.bnn_pynq.models")

from quant_models.upstream import bnn_pynq_fc as _export, unit_inputs


def _check(path, vectors=500):
    from hwgen.check import check_model

    x = unit_inputs(vectors, (1, 28, 28))
    result = check_model(path, x)
    assert result.mismatches == 0, result.table()
    return result


def test_tfc_1w1a_matches_qonnx_and_runs_a_batch(tmp_path):
    import hwgen

    path = _export("tfc_1w1a", tmp_path)
    result = _check(path)
    assert result.totals()["exact"] > 0
    acc = hwgen.compile(path, fold="auto", target_cycles=1024)
    y = acc.predict(np.random.default_rng(2).random((3, 1, 28, 28), dtype=np.float32))
    assert y.shape == (3, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "lfc_1w1a"])
def test_fc_family_matches_qonnx(tmp_path, name):
    _check(_export(name, tmp_path))


# name, auto folding target (cycles per inference), the plan's II, vectors verified (10 random, both extremes of
# the first layer's 4 widest channels, the later layers' extremes)
FC_VERILATOR = [("tfc_1w1a", 1024, 1024, 30), ("tfc_1w2a", 1024, 1024, 30), ("tfc_2w2a", 1024, 1024, 30),
                ("sfc_1w1a", 1024, 1024, 30), ("lfc_1w1a", 4096, 4096, 30)]


@pytest.mark.slow
@pytest.mark.parametrize("name,target,ii,vectors", FC_VERILATOR, ids=[c[0] for c in FC_VERILATOR])
def test_fc_family_verifies_in_verilator(tmp_path, name, target, ii, vectors):
    """The RTL of a small auto folding, bit-exact in Verilator with random stalls (cxx_opt -O0: the C++ build
    is most of the time; the bench's cocotb loop, not the model, sets the simulation speed)."""
    import hwgen
    from build_helpers import verify_on_verilator

    acc = hwgen.compile(_export(name, tmp_path), fold="auto", target_cycles=target)
    r = verify_on_verilator(acc, tmp_path / "build", vectors=10, adversarial_limit=4, cxx_opt="-O0")
    assert (acc.plan.ii_cycles, r.vectors) == (ii, vectors), (acc.plan.ii_cycles, r.vectors)
