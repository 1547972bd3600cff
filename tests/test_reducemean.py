"""ReduceMean over H and W (nn.AdaptiveAvgPool2d(1), x.mean((2, 3)) in PyTorch's exports) imports
as the global sum pool, in any user model: into a layer (1/(H*W) in its input scale) or into a
quantizer (a Threshold on the signed sum). Other ReduceMeans are refused with one line."""
import numpy as np
import pytest
from onnx_builders import brevitas_pool_model, pool_cnn

import hwgen
from hwgen.check import check_model
from hwgen.cli import main
from hwgen.errors import HwgenError
from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.ir import GlobalSumPool, Threshold


def _x(shape, n=300, seed=0):
    return np.random.default_rng(seed).uniform(-0.2, 1.2, size=(n, *shape)).astype(np.float32)


def _exact(path, shape, n=300, seed=0):
    acc = hwgen.compile(path)
    x = _x(shape, n, seed)
    y, ref = acc.predict(x), run_reference(path, x)
    assert np.array_equal(y, ref.reshape(y.shape))
    match = compare_with_reference(acc.graph, path, x)
    assert all(v == 1.0 for v in match.values()), match
    return acc


def test_brevitas_adaptive_avg_pool_then_quant_identity(tmp_path):
    """QuantConv2d -> QuantReLU -> AdaptiveAvgPool2d(1) -> QuantIdentity -> flatten -> QuantLinear,
    exported as is (ReduceMean, no rewriting): bit-exact, Verilog builds, Icarus verifies."""
    pytest.importorskip("brevitas")
    import onnx

    path = brevitas_pool_model(tmp_path / "pool.onnx", seed=1)
    assert "ReduceMean" in [n.op_type for n in onnx.load(path).graph.node]
    acc = _exact(path, (2, 6, 6), n=500)
    kinds = [op.kind for op in acc.graph.ops]
    assert kinds == ["Head", "Conv", "Threshold", "GlobalSumPool", "Threshold", "MatVec", "Tail"]
    pool = next(op for op in acc.graph.ops if isinstance(op, GlobalSumPool))
    assert pool.out_type.signed  # the Threshold after it takes signed sums
    acc.write(tmp_path / "build")
    r = acc.verify(sim="icarus", vectors=3, seed=2)
    assert r.ok and r.passed == r.vectors > 0, r.summary()


@pytest.mark.parametrize("opset,axes,keepdims", [(18, (2, 3), 1), (13, (2, 3), 1), (18, (-2, -1), 1),
                                                 (18, (3, 2), 0), (13, (-1, -2), 0)])
@pytest.mark.parametrize("requant", [True, False])
def test_reducemean_forms(tmp_onnx, opset, axes, keepdims, requant):
    """axes as input (opset 18) or attribute (13), negative or unordered, with or without keepdims;
    followed by a quantizer or directly by the next layer."""
    path = pool_cnn(tmp_onnx(), seed=2, axes=axes, keepdims=keepdims, opset=opset, requant=requant)
    acc = _exact(path, (2, 4, 4))
    ops = acc.graph.ops
    i = next(k for k, op in enumerate(ops) if isinstance(op, GlobalSumPool))
    assert isinstance(ops[i + 1], Threshold) == requant


def test_global_average_pool_then_quantizer(tmp_onnx):
    _exact(pool_cnn(tmp_onnx(), seed=3, pool="GlobalAveragePool", opset=13), (2, 4, 4))


def test_non_power_of_two_pool_size_only_float_effects(tmp_onnx):
    """A 5x5 mean (1/25 is not a power of two): differences are float ties at most."""
    for requant in (True, False):
        path = pool_cnn(tmp_onnx(f"p{requant}.onnx"), seed=4, size=5, requant=requant)
        r = check_model(path, _x((2, 5, 5), n=400, seed=4))
        assert r.ok, r.table()


@pytest.mark.parametrize("axes,keepdims", [((1,), 1), ((2,), 1), ((1, 2, 3), 1), ((3,), 0), ((0, 2, 3), 1)])
def test_other_reducemeans_are_refused(tmp_onnx, axes, keepdims):
    path = pool_cnn(tmp_onnx(), seed=2, axes=axes, keepdims=keepdims, requant=False)
    with pytest.raises(HwgenError) as e:
        hwgen.compile(path)
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("node 'ReduceMean_0' (ReduceMean): ReduceMean over axes")
    assert "axes [2, 3]" in msg and "AdaptiveAvgPool2d(1)" in msg and "after the last quantizer" in msg


def test_refused_reducemean_on_the_command_line(tmp_onnx, capsys):
    path = pool_cnn(tmp_onnx(), seed=2, axes=(1,), requant=False)
    assert main(["inspect", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "ReduceMean_0" in err and "Traceback" not in err


def test_reducemean_after_the_last_quantizer_runs_on_the_host(tmp_onnx):
    """In the float tail any ReduceMean is fine: it runs on the host with the reference's engine."""
    from onnx_builders import GraphBuilder

    rng = np.random.default_rng(0)
    b = GraphBuilder((2, 4, 4), name="tailmean")
    b.quant(0.125, 3, signed=False)
    b.conv(rng.integers(-3, 4, size=(3, 2, 3, 3)), 0.25, bits=3)
    b.op("ReduceMean", b.const_int([1]), keepdims=1)  # over channels: not a hardware op, but on the host
    path = b.save_opset(tmp_onnx(), 18)
    acc = hwgen.compile(path)
    assert "ReduceMean" in acc.graph.tail.segment.op_types
    x = _x((2, 4, 4))
    np.testing.assert_array_equal(acc.predict(x), run_reference(path, x))
