"""Accumulator sizing: bound formulas against hand-computed cases and the papers' closed forms."""
import math

import numpy as np
import pytest
from conftest import OWN_MODELS, own_model

from hwgen.errors import HwgenError
from hwgen.golden import AccumulatorOverflow, run_core
from hwgen.ir import IntType, MatVec
from hwgen.compiler import CompileOptions, compile_model
from hwgen.passes.accumulators import a2q_bits, a2q_max_l1, datatype_bits, exact_range, size_layer


def _phi(a):
    return math.log2(1 + 2 ** -a)


def _layer(w, in_type):
    w = np.asarray(w, dtype=np.int64)
    return MatVec(name="L", inputs=["x"], outputs=["y"], weights=w, in_type=in_type,
                  w_type=IntType(8, True), input_scale=1.0, weight_scale=np.ones(len(w), np.float32))


def test_a2q_plus_trap_needs_the_exact_range():
    """q = [127, 2, -127, 0] meets the A2Q+ L1 bound for P = 16 with 8-bit unsigned inputs,
    yet the dot product reaches (127 + 2) * 255 = 32895 > 2^15 - 1: 17 bits are needed."""
    q = [[127, 2, -127, 0]]
    assert np.abs(q).sum() <= (2**16 - 2) / (2**8 - 1)
    op = _layer(q, IntType(8, False))
    lo, hi = exact_range(op)
    assert (int(lo[0]), int(hi[0])) == (-127 * 255, 129 * 255)
    assert size_layer(op)["exact"] == 17


def test_exact_range_hand_computed():
    op = _layer([[3, -2, 0], [-1, -1, -1]], IntType(4, True))  # x in [-8, 7]
    lo, hi = exact_range(op)
    assert lo.tolist() == [-24 - 14, -21] and hi.tolist() == [21 + 16, 24]
    # exact: [-38, 37] -> 7 bits; A2Q: ||q||_1 = 5, 5 * 2^(4-1) = 40 <= 2^6 - 1 -> 7;
    # data type: 3 * 2^(4+8-1-1) = 3072 <= 2^12 - 1 -> 13
    assert size_layer(op) == {"exact": 7, "a2q": 7, "datatype": 13}


@pytest.mark.parametrize("n,signed", [(1, False), (2, True), (4, False), (4, True), (8, False), (8, True)])
def test_a2q_bits_is_the_smallest_width_whose_budget_holds_the_norm(n, signed):
    for l1 in list(range(1, 300)) + [1023, 1024, 1025, 4095, 4096]:
        p = a2q_bits(l1, n, signed)
        assert l1 <= a2q_max_l1(p, n, signed) and l1 > a2q_max_l1(p - 1, n, signed)
        beta = math.log2(l1) + n - signed  # the paper's closed form, away from exact ties
        closed = beta + _phi(beta) + 1
        if abs(closed - round(closed)) > 1e-9:
            assert p == math.ceil(closed)


def test_datatype_bound_matches_closed_form_and_worst_case():
    for k, n, m, s in [(784, 1, 1, True), (784, 2, 2, True), (64, 4, 4, False), (600, 1, 2, False),
                       (16, 8, 8, True), (3, 3, 3, False)]:
        p = datatype_bits(k, n, m, s)
        alpha = math.log2(k) + n + m - 1 - s
        closed = alpha + _phi(alpha) + 1
        if abs(closed - round(closed)) > 1e-9:
            assert p == math.ceil(closed), (k, n, m, s)
    # binary: +-784 needs 11 bits. 4-bit unsigned x 4-bit signed, 64 terms: the bound takes
    # |x| <= 2^N, |w| <= 2^(M-1): 64 * 16 * 8 = 8192 = 2^13 -> 15 bits (one more than 64*15*8 needs)
    assert datatype_bits(784, 1, 1, True) == 11
    assert datatype_bits(64, 4, 4, False) == 15


def test_exact_never_exceeds_bounds_on_real_models():
    from conftest import SHARED, shared_model

    for key in SHARED:
        for op in compile_model(shared_model(key)).core:
            if isinstance(op, MatVec):
                b = op.acc_bounds
                assert b["exact"] <= b["a2q"] <= b["datatype"], (key, op.name, b)


@pytest.mark.parametrize("kind", ["w4a4_a2q", "w4a4_a2qplus"])
def test_a2q_models_recover_width_within_trained_target(kind):
    from quant_models.mlp import ACC_TARGETS

    graph = compile_model(own_model(kind))
    layers = [op for op in graph.core if isinstance(op, MatVec)]
    targets = ACC_TARGETS[kind]
    assert len(layers) == len(targets)
    for op, target in zip(layers, targets):
        assert op.acc_bounds["exact"] <= target, (op.name, op.acc_bounds, target)
        if kind == "w4a4_a2q":  # A2Q's L1 condition itself holds for the target
            assert op.acc_bounds["a2q"] <= target, (op.name, op.acc_bounds, target)
    # and the contract holds for the largest target, refused one bit below the widest layer
    compile_model(own_model(kind), CompileOptions(acc_bits=max(targets)))
    widest = max(op.acc_bounds["exact"] for op in layers)
    with pytest.raises(HwgenError, match="needs a .*-bit accumulator"):
        compile_model(own_model(kind), CompileOptions(acc_bits=widest - 1))


def test_golden_asserts_accumulator_width():
    from conftest import shared_model

    graph = compile_model(shared_model("TFC_2W2A"))
    first = graph.core[0]
    lo, hi = exact_range(first)
    c = int(np.argmax(np.maximum(hi, -lo - 1)))  # the channel that sets the width
    w = first.weights[c : c + 1]
    x = np.where(w > 0, 1, -1) if hi[c] >= -lo[c] - 1 else np.where(w > 0, -1, 1)  # its extreme
    run_core(graph, x)
    first.acc_type = IntType(first.acc_type.bits - 1, True)
    with pytest.raises(AccumulatorOverflow):
        run_core(graph, x)
