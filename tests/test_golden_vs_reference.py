"""Golden model == qonnx's execute_onnx, on real exports and on our own digits models.

Integers between layers must be exact (compared as the reference carries them, q * scale);
outputs exact here too, which implies float32 tolerance and equal argmax.
"""
import numpy as np
import pytest
from conftest import OWN_KINDS, SHARED, own_model, random_inputs, shared_model

from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.golden import run
from hwgen.compiler import compile_model

N = 1000


def _check(path, x):
    graph = compile_model(path)
    match = compare_with_reference(graph, path, x)
    assert len(match) >= 3, match  # head output, layers, output were all compared
    assert all(v == 1.0 for v in match.values()), match
    y, ref = run(graph, x), run_reference(path, x)
    np.testing.assert_allclose(y, ref.reshape(y.shape), rtol=1e-6, atol=1e-6)
    if y.ndim == 2 and y.shape[1] > 1:
        assert np.array_equal(y.argmax(1), ref.reshape(y.shape).argmax(1))


@pytest.mark.parametrize("key", sorted(SHARED))
def test_shared_models_match_qonnx(key):
    _, shape, kind = SHARED[key]
    _check(shared_model(key), random_inputs(kind, shape, N, seed=1))


@pytest.mark.parametrize("kind", OWN_KINDS)
def test_own_models_match_qonnx(kind):
    x = random_inputs("unit", (64,), N, seed=2)
    _check(own_model(kind), x)


@pytest.mark.parametrize("kind", OWN_KINDS)
def test_own_models_match_qonnx_on_digits(kind):
    from quant_models.digits import load_digits_split

    _, _, x_test, _ = load_digits_split()
    _check(own_model(kind), x_test)


def test_synthetic_mlp_with_decreasing_channels_and_float_scales(tmp_onnx):
    """Negative BatchNorm scales (decreasing thresholds), per-channel weight scales, Gemm bias."""
    from onnx_builders import random_mlp

    for seed in range(4):
        path = random_mlp(tmp_onnx(f"m{seed}.onnx"), seed=seed, sizes=(24, 16, 12, 6))
        x = np.random.default_rng(seed).uniform(-0.2, 1.3, (400, 24)).astype(np.float32)
        _check(path, x)
