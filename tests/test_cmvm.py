"""Constant matrix-vector products as a shared shift-and-add graph (hwgen.rtl.cmvm): the graph is
exact on every input, CSE shares terms, and MatVecUnit(arith="cse") matches W @ x in simulation,
pipelined and with stalls."""
import numpy as np
import pytest

from hwgen.ir.types import IntType, signed_bits_for
from hwgen.rtl.cmvm import build_graph
from hwgen.rtl.matvec import MatVecUnit, Pipeline
from sim.amaranth_streams import pack_beats, run_stream


def _evaluate(g, X):
    """The graph's outputs for inputs X [n, K], in Python integers."""
    vals = {j: X[:, j].astype(object) for j in range(g.K)}
    for k, n in enumerate(g.nodes):
        a, b = vals[n.a] * (1 << n.sa), vals[n.b] * (1 << n.sb)
        vals[g.K + k] = a - b if n.sub else a + b
        assert all(n.lo <= v <= n.hi for v in vals[g.K + k]), "a node's value outside its computed range"
    zero = np.zeros(len(X), dtype=object)
    return np.stack([zero if o is None else o[2] * vals[o[0]] * (1 << o[1]) for o in g.outputs], 1)


@pytest.mark.parametrize("C,K,wbits,lo,hi,seed", [
    (16, 16, 4, 0, 255, 0),       # jet-like: 8-bit unsigned input, 4-bit weights
    (8, 24, 6, -32, 31, 1),       # signed input
    (5, 7, 2, -1, 1, 2),          # ternary-ish weights on a tiny input
    (12, 10, 8, 0, 63, 3),
])
def test_graph_exact_and_shared(C, K, wbits, lo, hi, seed):
    rng = np.random.default_rng(seed)
    W = rng.integers(-(1 << (wbits - 1)), 1 << (wbits - 1), size=(C, K))
    W[0] = 0  # a zero row
    W[:, 1] = 0  # an unused input
    X = np.concatenate([rng.integers(lo, hi + 1, size=(200, K)), np.full((1, K), lo), np.full((1, K), hi),
                        np.where(W > 0, hi, lo)[:3], np.where(W > 0, lo, hi)[:3]])
    plain = build_graph(W, lo, hi, cse=False)
    shared = build_graph(W, lo, hi)
    for g in (plain, shared):
        np.testing.assert_array_equal(_evaluate(g, X), X.astype(object) @ W.T.astype(object))
    assert shared.outputs[0] is None
    assert len(shared.nodes) < len(plain.nodes)  # common pairs were found


def test_graph_pipeline_stages():
    rng = np.random.default_rng(4)
    W = rng.integers(-8, 8, size=(16, 16))
    for every, stages in ((0, 0), (1, None), (3, None)):
        g = build_graph(W, 0, 255, every=every)
        depth = max(n.level for n in g.nodes)
        if every == 0:
            assert g.stages == 0 and g.registers() == []
        else:  # a register after every `every` levels; the deepest node's level sets the stages
            assert g.stages in (depth // every, (depth - 1) // every)
            assert g.registers()


@pytest.mark.parametrize("every", [0, 1, 3])
@pytest.mark.parametrize("in_type,w_type", [(IntType(8, False), IntType(4, True)), (IntType(5, True), IntType(3, True)),
                                            (IntType(3, True), IntType(4, True, True))])
def test_matvec_cse_unit(in_type, w_type, every):
    rng = np.random.default_rng(every + in_type.bits)
    C, K = 6, 9
    W = rng.integers(w_type.min, w_type.max + 1, size=(C, K))
    W[2] = 0
    X = np.concatenate([rng.integers(in_type.min, in_type.max + 1, size=(12, K)),
                        np.where(W > 0, in_type.max, in_type.min), np.where(W > 0, in_type.min, in_type.max)])
    pos, neg = np.where(W > 0, W, 0), np.where(W < 0, W, 0)
    hi = pos.sum(1) * in_type.max + neg.sum(1) * in_type.min
    lo = pos.sum(1) * in_type.min + neg.sum(1) * in_type.max
    bits = signed_bits_for(int(lo.min()), int(hi.max()))
    dut = MatVecUnit(weights=W, in_type=in_type, w_type=w_type, acc_bits=bits, pe=C, simd=K, arith="cse",
                     pipeline=Pipeline(tree_every=every))
    assert dut.extra_stages == dut.graph.stages
    exp = pack_beats(X @ W.T, IntType(bits, True), C)
    got, _ = run_stream(dut, pack_beats(X, in_type, K), len(exp), seed=every, p_valid=0.7, p_ready=0.5)
    assert got == exp


def test_cse_needs_constant_weights():
    with pytest.raises(ValueError, match="constant weights"):
        MatVecUnit(weights=np.ones((4, 4), int), in_type=IntType(4, False), w_type=IntType(2, True), acc_bits=8,
                   pe=2, simd=4, arith="cse")
