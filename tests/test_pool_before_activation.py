"""A MaxPool between a layer and its activation quantizer (conv -> BN -> MaxPool -> QuantReLU, the order
many PyTorch models use): hwgen moves the pool after the quantizer, onto integers, which is exact because a
quantizer is non-decreasing; with a channel-decreasing op between the pool and the quantizer (a BatchNorm
with a negative gamma after the pool) it would not be, and the import refuses, naming the pool and the op.
References: qonnx's execute_onnx (hwgen check) and, for the RTL, the golden model in Icarus."""
import numpy as np
import pytest

pytest.importorskip("brevitas")

import hwgen  # noqa: E402
from hwgen.check import check_model  # noqa: E402
from hwgen.compiler import compile_model  # noqa: E402
from hwgen.errors import HwgenError  # noqa: E402
from hwgen.ir import MaxPool, Threshold  # noqa: E402
from quant_models.fuzz import FuzzSpec, LayerSpec, export  # noqa: E402

# conv 3x3 pad 1 -> BN (half the gammas negative) -> MaxPool 2x2 -> QuantHardTanh (signed 3 bit), float
# scales; then conv 2x2 -> BN -> MaxPool -> QuantReLU 2 bit; dense
POOL_FIRST = FuzzSpec(
    seed=3, kind="cnn", input_shape=(2, 9, 8), input_bits=4, pow2=False, bn_negative=0.5,
    convs=(LayerSpec(out=4, batchnorm=True, act="hardtanh", act_bits=3, act_signed=True, padding=1, pool=True,
                     pool_first=True),
           LayerSpec(out=3, batchnorm=True, act="relu", act_bits=2, kernel=2, pool=True, pool_first=True)),
    linears=(LayerSpec(out=4, act="none"),))


def test_pool_before_the_quantizer_pools_its_integers(tmp_path):
    path = export(POOL_FIRST, tmp_path / "pool_first.onnx")
    graph = compile_model(path)
    kinds = [type(op).__name__ for op in graph.core]
    assert kinds.count("MaxPool") == 2
    assert kinds[:3] == kinds[3:6] == ["Conv", "Threshold", "MaxPool"], kinds  # each pool reads an activation's integers
    for op in graph.core:
        if isinstance(op, MaxPool):
            producer = next(p for p in graph.core if op.inputs[0] in p.outputs)
            assert isinstance(producer, Threshold) and producer.outputs[0].endswith("__hwgen_unpooled"), producer
    r = check_model(path, vectors=200, seed=0)
    assert r.ok and r.mismatches == 0, r.table()
    t = r.totals()
    assert t["exact"] > 0.99 * sum(t.values()), t


def _conv_pool_bn(tmp_path, *, negative_gamma: bool) -> str:
    """QuantIdentity -> QuantConv2d -> MaxPool2d -> BatchNorm2d -> QuantReLU -> flatten -> QuantLinear."""
    import torch
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    from onnx_builders import brevitas_export
    from torch import nn

    torch.manual_seed(0)
    bn = nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.weight.copy_(torch.tensor([0.5, -1.0 if negative_gamma else 1.0, 2.0, 0.8]))
        bn.bias.copy_(torch.tensor([0.1, -0.2, 0.0, 0.3]))
        bn.running_mean.copy_(torch.tensor([0.2, -0.1, 0.0, 0.4]))
        bn.running_var.copy_(torch.tensor([1.0, 0.5, 2.0, 0.7]))
    model = nn.Sequential(
        QuantIdentity(bit_width=4, return_quant_tensor=True),
        QuantConv2d(2, 4, 3, weight_bit_width=4), nn.MaxPool2d(2), bn,
        QuantReLU(bit_width=3, return_quant_tensor=True), nn.Flatten(),
        QuantLinear(4 * 3 * 3, 5, bias=False, weight_bit_width=4))
    return brevitas_export(model, torch.rand(1, 2, 8, 8), tmp_path / "conv_pool_bn.onnx")


def test_pool_before_a_positive_batchnorm_is_exact(tmp_path):
    path = _conv_pool_bn(tmp_path, negative_gamma=False)
    r = check_model(path, vectors=200, seed=0)
    assert r.ok and r.mismatches == 0, r.table()


def test_pool_before_a_negative_batchnorm_is_refused_naming_both(tmp_path):
    path = _conv_pool_bn(tmp_path, negative_gamma=True)
    with pytest.raises(HwgenError, match=r"MaxPool '[^']+' runs before BatchNormalization '[^']+', which is not "
                                         r"non-decreasing in every channel.*put the MaxPool after the activation "
                                         r"quantizer") as exc:
        compile_model(path)
    assert exc.value.op == "MaxPool"


@pytest.mark.slow
def test_pool_before_the_quantizer_verifies_in_icarus(tmp_path):
    acc = hwgen.compile(export(POOL_FIRST, tmp_path / "pool_first.onnx"), fold="auto", target_cycles=64)
    acc.write(tmp_path / "build")
    r = acc.verify(sim="icarus", vectors=6, seed=1)
    assert r.ok and r.failed == 0 and r.passed == r.vectors, r.summary()
    assert np.isclose(r.ii_measured, acc.plan.ii_cycles) and r.latency_measured == acc.plan.latency_cycles
