"""The committed jet-tagging-style models (quant_models/jet.py) compile, match the qonnx
reference bit-exactly, and FINN's value bound is never narrower than hwgen's exact width."""
import os

import numpy as np
import pytest
from qonnx.core.datatype import DataType
from qonnx.util.basic import calculate_matvec_accumulator_range

from hwgen.frontend.reference import run_reference
from hwgen.golden import execute
from hwgen.ir import MatVec
from hwgen.compiler import compile_model

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONNX = os.path.join(ROOT, "quant_models", "onnx")

# model -> per layer: (in, out), hwgen exact accumulator bits, FINN-bound bits
EXPECTED = {
    "jet_w4a6": [((16, 64), 14, 14), ((64, 32), 14, 14), ((32, 32), 13, 13), ((32, 5), 13, 13)],
    "jet_small_w4a6": [((16, 16), 15, 15), ((16, 5), 13, 13)],
}


def finn_bits(op: MatVec) -> int:
    lo, hi = calculate_matvec_accumulator_range(op.weights.T.astype(np.float64), DataType[str(op.in_type)])
    return DataType.get_smallest_possible(lo if abs(lo) > hi else -hi - 1).bitwidth()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_jet_golden_matches_reference(name):
    path = os.path.join(ONNX, f"{name}.onnx")
    graph = compile_model(path)
    layers = [op for op in graph.core if isinstance(op, MatVec)]
    got = [((op.in_features, op.out_channels), op.acc_bounds["exact"], finn_bits(op)) for op in layers]
    assert got == EXPECTED[name]
    for _, exact, finn in got:
        assert finn >= exact
    assert str(layers[0].in_type) == "UINT8" and all(str(op.in_type) == "UINT6" for op in layers[1:])
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, (200, 16)) / 256.0).astype(np.float32)
    x[0] = 255 / 256  # every input at its maximum
    ref = run_reference(path, x)
    gold = execute(graph, x)[graph.output]
    assert np.array_equal(gold, ref)
