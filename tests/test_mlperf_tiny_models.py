"""The MLPerf-Tiny-class models (quant_models/cnv.py, quant_models/kws.py) compile with auto
folding for ECP5, and the golden model equals qonnx's execute_onnx on them, every quantized
tensor and the output exactly. Slow: exporting takes 15 s each (cached under build/models/),
compiling CNV 15 s."""
import numpy as np
import pytest

import hwgen
from hwgen.frontend.reference import compare_with_reference, run_reference

pytestmark = pytest.mark.slow


def _check(path, x, target_cycles):
    acc = hwgen.compile(path, fold="auto", target_cycles=target_cycles, target="ecp5")
    y, ref = acc.predict(x), run_reference(str(path), x)
    assert np.array_equal(y, ref.reshape(y.shape))
    match = compare_with_reference(acc.graph, str(path), x)
    assert len(match) >= 4 and all(v == 1.0 for v in match.values()), match
    return acc


def test_kws_w3a3():
    from quant_models.kws import N_FEATURES, kws_onnx, random_features

    acc = _check(kws_onnx(), random_features(64, seed=3), 512)
    assert tuple(acc.graph.head.input_shape) == (N_FEATURES,)
    mv = [r for r in acc.plan.layers if r["op"] == "MatVec"]
    assert [r["name"] for r in mv] == ["Gemm_0", "Gemm_1", "Gemm_2", "Gemm_3"]
    assert all(r["cycles"] <= 512 for r in mv)
    # random BN statistics: every 3-bit activation level is used
    from hwgen.golden import execute

    ctx = execute(acc.graph, random_features(64, seed=3))
    for op in acc.graph.core:
        if op.kind == "Threshold":
            assert set(np.unique(ctx[op.outputs[0]]).tolist()) == set(range(8)), op.name


def test_cnv_w1a1():
    from quant_models.cnv import cnv_onnx, random_images

    acc = _check(cnv_onnx(), random_images(3, seed=3), 8192)
    convs = [r for r in acc.plan.layers if r["op"] == "Conv"]
    assert len(convs) == 6 and all(r["cycles"] <= 8192 for r in convs)
    from hwgen.golden import execute

    ctx = execute(acc.graph, random_images(3, seed=3))
    for op in acc.graph.core:  # random BN statistics: no sign activation is constant
        if op.kind == "Threshold":
            v = ctx[op.outputs[0]]
            assert 0.2 < float(np.mean(v > 0)) < 0.8, op.name
