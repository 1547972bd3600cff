"""Residual adds (h + dt * f(h), one quantized domain) import as integer Add ops with
alignment shifts and half-to-even rounding; golden == qonnx reference."""
import numpy as np
import pytest
from onnx_builders import residual_cnn

from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.golden import run
from hwgen.golden.numeric import rounding_shift
from hwgen.ir import Add
from hwgen.compiler import CompileOptions, compile_model


@pytest.mark.parametrize("shared,dt", [(True, 0.5), (False, 0.5), (True, 0.25), (True, 1.0)])
def test_residual_cnn_matches_qonnx(tmp_onnx, shared, dt):
    path = residual_cnn(tmp_onnx(), seed=1, steps=3, shared=shared, dt=dt)
    graph = compile_model(path, CompileOptions(ode_blocks=False))  # the Adds themselves
    adds = [op for op in graph.core if isinstance(op, Add)]
    assert len(adds) == 3
    k = int(round(-np.log2(dt)))
    assert all((op.a_shift, op.b_shift, op.out_shift) == (k, 0, k) for op in adds)
    x = np.random.default_rng(2).uniform(-0.2, 1.2, (400, 1, 8, 8)).astype(np.float32)
    match = compare_with_reference(graph, path, x)
    assert all(v == 1.0 for v in match.values()), match
    np.testing.assert_array_equal(run(graph, x), run_reference(path, x))


def test_rounding_shift_is_half_to_even():
    v = np.arange(-20, 21)
    for s in (1, 2, 3):
        assert np.array_equal(rounding_shift(v, s, "ROUND"), np.round(v / 2**s).astype(np.int64))
        assert np.array_equal(rounding_shift(v, s, "FLOOR"), np.floor(v / 2**s).astype(np.int64))
