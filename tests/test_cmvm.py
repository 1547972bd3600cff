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


def test_node_ranges_are_exact_where_an_input_repeats():
    """(x << 3) - x over x in [0, 255] spans [0, 1785]: interval arithmetic would say [-255, 2040]
    and build a wider adder."""
    g = build_graph(np.array([[7]]), 0, 255, cse=False)
    (node,) = g.nodes
    assert (node.lo, node.hi) == (0, 7 * 255)
    assert g.matrix().tolist() == [[7]]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_da4ml_graph_is_exact_and_the_cheaper_graph_is_kept(seed):
    from hwgen.rtl import cmvm_da4ml

    if not cmvm_da4ml.available():
        pytest.skip("da4ml is not installed (it is a dependency on Linux x86_64)")
    rng = np.random.default_rng(seed)
    W = rng.integers(-7, 8, size=(12, 10))
    W[3] = 0
    lo, hi = (0, 255) if seed != 1 else (-32, 31)
    X = np.concatenate([rng.integers(lo, hi + 1, size=(100, 10)), np.where(W > 0, hi, lo)[:4],
                        np.where(W > 0, lo, hi)[:4]])
    expected = X.astype(object) @ W.T.astype(object)
    graphs = [cmvm_da4ml.solve_graph(W, lo, hi, every=2, method=m) for m in cmvm_da4ml.METHODS]
    for g in graphs:
        assert g.solver == "da4ml" and g.matrix().tolist() == W.tolist()
        np.testing.assert_array_equal(_evaluate(g, X), expected)
    best = build_graph(W, lo, hi, every=2)
    assert sum(best.adders()) <= min(sum(g.adders()) for g in graphs)
    np.testing.assert_array_equal(_evaluate(best, X), expected)


def test_jet_layer_takes_the_da4ml_graph():
    """On the jet model's first layer (16 x 16, 4-bit weights, 8-bit input) da4ml's two-stage graph
    has fewer adder bits than the best of hwgen's CSE trials: the cheaper one is kept."""
    from hwgen.rtl import cmvm, cmvm_da4ml

    if not cmvm_da4ml.available():
        pytest.skip("da4ml is not installed (it is a dependency on Linux x86_64)")
    import hwgen

    acc = hwgen.compile("quant_models/onnx/jet_small_w4a6.onnx", fold="full")
    unit = acc.plan.stages[0].unit
    ours = [cmvm.own_graph(cmvm.weight_digits(unit.weights), unit.K, unit.in_type.min, unit.in_type.max,
                           every=2, trial=t) for t in range(cmvm.TRIALS)]
    assert (unit.graph.solver, sum(unit.graph.adders())) == ("da4ml", 1727)
    assert min(sum(g.adders()) for g in ours) == 1817
