"""Convolutions, depthwise, stride, MaxPool, global average pooling and the NCHW -> NHWC
layout change at import: golden == qonnx reference, integers exact."""
import numpy as np
import pytest
from onnx_builders import random_cnn

from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.golden import run
from hwgen.ir import Conv, GlobalSumPool, MaxPool, Threshold
from hwgen.compiler import compile_model


@pytest.mark.parametrize("depthwise,pool,bias", [(True, "max", False), (False, "max", True), (True, "gap", False)])
def test_random_cnn_matches_qonnx(tmp_onnx, depthwise, pool, bias):
    for seed in range(2):
        path = random_cnn(tmp_onnx(f"c{seed}.onnx"), seed=seed, depthwise=depthwise, pool=pool, bias=bias)
        graph = compile_model(path)
        kinds = [op.kind for op in graph.core]
        assert kinds.count("Conv") == (2 if depthwise else 1)
        assert (MaxPool if pool == "max" else GlobalSumPool).__name__ in kinds
        x = np.random.default_rng(seed).uniform(-0.1, 1.1, (300, 2, 8, 8)).astype(np.float32)
        match = compare_with_reference(graph, path, x)
        assert all(v == 1.0 for v in match.values()), match
        y, ref = run(graph, x), run_reference(path, x)
        np.testing.assert_allclose(y, ref, rtol=1e-6, atol=1e-6)


def test_depthwise_conv_fields(tmp_onnx):
    graph = compile_model(random_cnn(tmp_onnx(), seed=3))
    convs = [op for op in graph.core if isinstance(op, Conv)]
    assert convs[0].in_shape == (8, 8, 2) and convs[0].out_shape == (8, 8, 6) and not convs[0].depthwise
    assert convs[1].depthwise and convs[1].stride == (2, 2) and convs[1].out_shape == (4, 4, 6)
    assert convs[1].weights.shape == (6, 3, 3, 1)
    assert all(isinstance(graph.consumers(c.outputs[0])[0], Threshold) for c in convs)
