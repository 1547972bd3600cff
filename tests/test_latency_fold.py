"""Folding oriented for latency (hwgen.passes.fold "stream", hwgen.compile fold="auto-latency") on the
digits MLP w2a2 (64-64-64-10): a dense layer after one that spreads its output takes PE = all its
outputs, reads each input beat as it arrives and gives its whole vector in one beat; the Threshold
after it is serialised through a width converter when that is cheaper (ThresholdLowering.serial_pe).
Same II, lower latency, bit-exact in simulation."""
import os

import numpy as np
import pytest
from conftest import OWN_MODELS

import hwgen
from hwgen.compiler import compile_model
from hwgen.errors import HwgenError
from hwgen.passes.fold import auto_folding, choose_auto, fold_graph, foldable, folding_table

MLP = os.path.join(OWN_MODELS, "digits_mlp_w2a2.onnx")
PLAIN_64 = {"Gemm_0": {"pe": 1, "simd": 64}, "Gemm_1": {"pe": 1, "simd": 64}, "Gemm_2": {"pe": 5, "simd": 2}}
STREAM_64 = {"Gemm_0": {"pe": 1, "simd": 64}, "Gemm_1": {"pe": 64, "simd": 1}, "Gemm_2": {"pe": 5, "simd": 4}}


def test_stream_orientation_alternates_dense_layers():
    g = compile_model(MLP)
    layers = list(foldable(g))
    assert auto_folding(layers, 64) == [(1, 64), (1, 64), (5, 2)]
    # Gemm_0 spreads its 64 outputs over 64 cycles: Gemm_1 drains at once with PE 64; it then gives
    # its vector at the end, so Gemm_2 takes the fewest cycles within 2x the fewest lanes (20 lanes,
    # 32 cycles instead of 10 lanes, 64 cycles)
    assert auto_folding(layers, 64, "stream") == [(1, 64), (64, 1), (5, 4)]
    fold_graph(g, ("auto", 64, "stream"))
    assert folding_table(g) == STREAM_64
    assert g.notes[-1] == "fold: auto, target 64 cycles per inference, oriented for latency (stream)"


def test_overlap_takes_up_to_twice_the_lanes_to_drain_sooner():
    g = compile_model(MLP)
    gemm_2 = list(foldable(g))[2][0]  # 10 x 64
    assert choose_auto(gemm_2, 256) == (1, 4)  # 4 lanes, 10 groups x 16 beats: drains 9 x 16 cycles
    assert choose_auto(gemm_2, 256, overlap="drain") == (5, 1)  # 5 lanes: 2 groups x 64, drains 64
    # its whole input at once: the fewest cycles with at most 8 lanes (8 x 80 cycles), smaller PE first
    assert choose_auto(gemm_2, 256, overlap="whole") == (1, 8)


def test_bad_orientation_is_a_clear_error():
    with pytest.raises(HwgenError, match=r"^auto folding orientation must be one of outputs, stream, got 'x'$"):
        fold_graph(compile_model(MLP), ("auto", 64, "x"))


def test_auto_latency_same_ii_lower_latency_and_bit_exact(tmp_path):
    plain = hwgen.compile(MLP, fold="auto", target_cycles=64)
    acc = hwgen.compile(MLP, fold="auto-latency", target_cycles=64)
    assert folding_table_of(plain) == PLAIN_64 and folding_table_of(acc) == STREAM_64
    assert (plain.plan.ii_cycles, acc.plan.ii_cycles) == (64, 64)
    assert (plain.plan.latency_cycles, acc.plan.latency_cycles) == (198, 130)
    # Quant_5 takes Gemm_1's 64 accumulators in one beat; 16 lanes behind a width converter cost less
    # than 64 (4 cycles more, within II bound / 16)
    th = {r["name"]: r["pe"] for r in acc.plan.layers if r["op"] == "Threshold"}
    assert th == {"Quant_4": 1, "Quant_5": 16}
    names = [st.name for st in acc.plan.stages]
    assert names.index("Gemm_1") < names.index("Quant_5_conv") < names.index("Quant_5")
    # no skid buffer and no converter with a registered ready: pipelined to the clock, the MatVecs and
    # the activations register their own enables, so no ready path spans three units
    assert not acc.plan.stages[names.index("Quant_5_conv")].unit.registered_ready
    assert not [n for n in names if n.endswith("_skid")]
    x = np.random.default_rng(3).random((32, 64), dtype=np.float32)
    assert np.array_equal(acc.predict(x), plain.predict(x))
    acc.write(tmp_path / "build")
    r = acc.verify(sim="icarus", vectors=4, seed=1, ii_vectors=4)
    assert r.ok and r.passed == r.vectors > 0 and r.ii_measured == 64 and r.latency_measured == 130, r.summary()


def folding_table_of(acc):
    return {r["name"]: {"pe": r["pe"], "simd": r["simd"]} for r in acc.plan.layers if r["op"] == "MatVec"}
