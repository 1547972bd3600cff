"""dsODENet blocks: weight-shared residual steps fold into one ODEBlock; the N-step block equals
N chained copies of f (the unrolled graph) and the qonnx reference; copies that differ stay."""
import numpy as np
import pytest
from onnx_builders import residual_cnn

from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.golden import execute, run
from hwgen.ir import Add, ODEBlock
from hwgen.compiler import CompileOptions, compile_model


@pytest.mark.parametrize("steps,dt", [(2, 0.5), (4, 0.25), (8, 0.125)])
def test_shared_steps_fold_into_one_block(tmp_onnx, steps, dt):
    path = residual_cnn(tmp_onnx(), seed=steps, steps=steps, dt=dt)
    graph = compile_model(path)
    unrolled = compile_model(path, CompileOptions(ode_blocks=False))
    blocks = [op for op in graph.core if isinstance(op, ODEBlock)]
    assert len(blocks) == 1 and not any(isinstance(op, Add) for op in graph.core)
    block = blocks[0]
    assert (block.steps, block.dt_shift) == (steps, int(-np.log2(dt)))
    assert [op.kind for op in block.body] == ["Conv", "Threshold", "Conv", "Threshold", "Add"]
    x = np.random.default_rng(0).uniform(-0.2, 1.2, (300, 1, 8, 8)).astype(np.float32)
    a, b = execute(graph, x), execute(unrolled, x)
    assert np.array_equal(a[block.outputs[0]], b[block.outputs[0]])  # N-step block == N copies
    match = compare_with_reference(graph, path, x)
    assert all(v == 1.0 for v in match.values()), match
    np.testing.assert_array_equal(run(graph, x), run_reference(path, x))


@pytest.mark.parametrize("kwargs,reason", [({"shared": False}, "other weights"),
                                           ({"shared_bn": False}, "other thresholds")])
def test_differing_copies_are_not_folded_and_say_why(tmp_onnx, kwargs, reason):
    path = residual_cnn(tmp_onnx(), steps=3, **kwargs)
    graph = compile_model(path)
    assert not any(isinstance(op, ODEBlock) for op in graph.core)
    assert any("not folded" in n and reason in n for n in graph.notes), graph.notes
