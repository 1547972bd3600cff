"""Streamlining keeps the graph bit-exact: Threshold == the float map it replaces, on every
reachable accumulator value, for increasing and decreasing channels, dense and bisection paths."""
import copy

import numpy as np
import pytest
from conftest import SHARED, shared_model
from onnx_builders import GraphBuilder, random_mlp

from hwgen.errors import HwgenError
from hwgen.frontend import import_onnx
from hwgen.golden import run_op
from hwgen.ir import FloatActivation, Threshold
from hwgen.passes import streamline as streamline_module
from hwgen.passes.accumulators import exact_range
from hwgen.passes.streamline import streamline


def _assert_pass_exact(path, max_points=1 << 16):
    imported = import_onnx(path)
    lowered = streamline(copy.deepcopy(imported))
    checked = 0
    for before, after in zip(imported.ops, lowered.ops):
        if not isinstance(before, FloatActivation):
            continue
        assert isinstance(after, Threshold)
        lo, hi = exact_range(imported.producer(before.inputs[0]))
        span = int((hi - lo).max()) + 1
        if span <= max_points:
            acc = np.minimum(lo + np.arange(span)[:, None], hi)
        else:  # wide: the ends, every threshold +-1 and random points
            rng = np.random.default_rng(0)
            acc = np.concatenate([np.stack([lo, hi]), rng.integers(lo, hi + 1, size=(4096, len(lo)))] +
                                 [np.clip(after.thresholds[:, j] + d, lo, hi)[None]
                                  for j in range(after.thresholds.shape[1]) for d in (-1, 0, 1)])
        assert np.array_equal(run_op(before, acc), run_op(after, acc)), before.name
        checked += 1
    return checked, lowered


@pytest.mark.parametrize("key", sorted(SHARED))
def test_streamline_exact_on_shared_models(key):
    checked, _ = _assert_pass_exact(shared_model(key))
    assert checked == {"TFC_1W1A": 3, "TFC_2W2A": 3, "UNSW_w2a2": 4}[key]


def test_streamline_handles_decreasing_channels(tmp_onnx):
    path = random_mlp(tmp_onnx(), seed=3, sizes=(20, 32, 8), negative_bn=True)
    checked, lowered = _assert_pass_exact(path)
    th = next(op for op in lowered.ops if isinstance(op, Threshold))
    assert checked == 1 and th.decreasing.any() and (~th.decreasing).any()


def test_bisection_path_equals_dense_path(tmp_onnx, monkeypatch):
    path = random_mlp(tmp_onnx(), seed=5, sizes=(40, 16, 4), a_bits=4, w_bits=6)
    dense = streamline(import_onnx(path))
    monkeypatch.setattr(streamline_module, "DENSE_LIMIT", 1)
    bisected = streamline(import_onnx(path))
    for a, b in zip(dense.ops, bisected.ops):
        if isinstance(a, Threshold):
            assert np.array_equal(a.thresholds, b.thresholds)
            assert np.array_equal(a.decreasing, b.decreasing)


def test_non_monotone_float_ops_are_refused(tmp_onnx):
    b = GraphBuilder(8)
    b.quant(0.25, 3, signed=False)
    b.linear(np.random.default_rng(0).integers(-4, 4, (6, 8)), 0.5)
    b.op("Abs")  # |x| is not monotone: no thresholds reproduce it
    b.quant(0.5, 3, signed=False)
    b.linear(np.ones((2, 6)), 1.0)
    path = b.save(tmp_onnx())
    with pytest.raises(HwgenError, match="not monotone"):
        streamline(import_onnx(path))
