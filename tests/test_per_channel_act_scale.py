"""Per-channel activation scales (issue 14: upstream MobileNetV1's QuantReLUs with
scaling_per_output_channel=True). Exact in integers wherever every consumer keeps channels apart until
the next quantizer (a depthwise conv, max and average pools, the host's tail): hwgen check against
qonnx with no mismatch, and the RTL against the golden model in Icarus. Refused with one line naming
the node and the quantizer: a dense consumer (a conv mixing channels, a linear layer), a residual add
of unequal per-channel scales, a per-channel input quantizer, scales that are not positive."""
import numpy as np
import pytest
from onnx_builders import GraphBuilder

import hwgen
from hwgen.check import check_model, prepare
from hwgen.errors import HwgenError

C, SIZE = 6, 8
DENSE = ("node '{node}' ({op}): its input has per-channel scales (activation quantizer '{quant}') and each of "
         "its outputs sums channels of different scales: integer weights cannot absorb per-channel input scales "
         "exactly, only ops that keep channels apart until the next quantizer can (depthwise convs, max and "
         "average pools); give '{quant}' a per-tensor scale (Brevitas: scaling_per_output_channel=False)")


def _scales(rng, c=C):
    """Per-channel scales, neither powers of two nor equal, as the broadcastable [1, C, 1, 1] Brevitas exports."""
    return rng.uniform(0.1, 0.6, c).astype(np.float32).reshape(1, c, 1, 1)


def _bn_relu(b, rng, c=C):
    b.batchnorm(rng.uniform(0.3, 1.0, c) * np.where(rng.random(c) < 0.25, -1, 1), rng.normal(size=c),
                rng.normal(size=c) * 2, rng.uniform(1, 4, c))
    b.op("Relu")


def _stem(b, rng, scale):
    """input quant -> conv 3x3 (2 -> C, non-power-of-two weight scales) -> BN -> ReLU -> quant(scale)."""
    b.quant(2.0 ** -3, 3, signed=False)
    b.conv(rng.integers(-3, 4, (C, 2, 3, 3)), rng.uniform(0.05, 0.3, C), bits=3)
    _bn_relu(b, rng)
    return b.quant(scale, 3, signed=False)


def per_channel_cnn(path, *, between=None, consumer="depthwise", seed=0) -> str:
    """stem with a per-channel activation scale -> [between: maxpool | avgpool | avgpool_quant (a per-tensor
    quantizer on the means)] -> consumer:
      depthwise  depthwise conv 3x3 stride 2 -> BN -> ReLU -> quant -> flatten -> linear (+ bias)
      chain      depthwise conv -> BN -> ReLU -> per-channel quant -> depthwise 1x1 -> BN -> ReLU -> quant
      pool       GlobalAveragePool -> output (the means of per-channel scales on the host)
      output     the quantized feature map is the output
      conv / grouped / linear  a 1x1 conv, a 2-group conv, flatten -> linear: dense, refused."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((2, SIZE, SIZE), name=f"pcs{seed}")
    _stem(b, rng, _scales(rng))
    if between == "maxpool":
        b.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    elif between in ("avgpool", "avgpool_quant"):
        b.op("AveragePool", kernel_shape=[2, 2], strides=[2, 2])
        if between == "avgpool_quant":
            b.quant(0.2, 4, signed=False)
    side = SIZE // 2 if between else SIZE
    if consumer in ("depthwise", "chain"):
        b.conv(rng.integers(-3, 4, (C, 1, 3, 3)), rng.uniform(0.05, 0.3, C), bits=3, groups=C, stride=2)
        _bn_relu(b, rng)
        if consumer == "chain":
            b.quant(_scales(rng), 3, signed=False)
            b.conv(rng.integers(-3, 4, (C, 1, 1, 1)), rng.uniform(0.2, 0.5, C), bits=3, groups=C, pad=0)
            _bn_relu(b, rng)
        b.quant(0.25, 3, signed=False)
        if consumer == "depthwise":
            b.op("Flatten", axis=1)
            b.linear(rng.integers(-3, 4, (5, C * (side // 2) ** 2)), 0.25, bits=3, bias=rng.normal(size=5))
    elif consumer == "pool":
        b.op("GlobalAveragePool")
    elif consumer in ("conv", "grouped"):
        groups = 2 if consumer == "grouped" else 1
        b.conv(rng.integers(-3, 4, (4, C // groups, 1, 1)), 0.25, bits=3, pad=0, groups=groups)
    elif consumer == "linear":
        b.op("Flatten", axis=1)
        b.linear(rng.integers(-3, 4, (5, C * side * side)), 0.25, bits=3)
    return b.save(path)


def _inputs(n=300, seed=1):
    return np.random.default_rng(seed).uniform(-0.1, 1.1, size=(n, 2, SIZE, SIZE)).astype(np.float32)


def _checked(path):
    """No mismatch, and (non-power-of-two scales) at most a few float32 ties in the quantized tensors."""
    r = check_model(path, _inputs())
    assert r.mismatches == 0, r.table()
    quantized = [t for t in r.tensors if t.kind == "quantizer"]
    assert sum(t.counts["exact"] for t in quantized) > 0.99 * sum(t.elements for t in quantized), r.table()
    return r


# -- exact where channels stay apart ------------------------------------------------------------------

@pytest.mark.parametrize("between", [None, "maxpool", "avgpool", "avgpool_quant"])
def test_depthwise_consumer_matches_qonnx(tmp_onnx, between):
    """conv -> BN -> per-channel QuantReLU -> [max / average pool] -> depthwise conv -> BN -> QuantReLU ->
    linear: the depthwise conv takes one input scale per output, the Threshold after the stem keeps the
    quantizer's scales per channel (what check compares the reference's integers on)."""
    path = per_channel_cnn(tmp_onnx(), between=between, seed=3)
    _checked(path)
    p = prepare(path)
    stem_act = next(a for a in p.activations.values() if a.quantizer.per_channel)
    assert np.asarray(p.graph.ops[2].out_scale).shape == (C,)
    dw = next(op for op in p.graph.ops if op.kind == "Conv" and op.groups == C)
    if between == "avgpool_quant":
        assert np.ndim(dw.input_scale) == 0  # the means' quantizer is per tensor again
    else:
        expect = stem_act.quantizer.scale / (4 if between == "avgpool" else 1)
        assert np.allclose(dw.input_scale, expect, rtol=1e-6)


@pytest.mark.parametrize("consumer", ["chain", "pool", "output"])
def test_per_channel_chain_and_host_tail(tmp_onnx, consumer):
    """Two per-channel quantizers in a row of depthwise convs; the means of a per-channel feature map
    (GlobalSumPool, then the host scales each channel); the feature map itself as the output, also through
    the build's host_post.onnx."""
    path = per_channel_cnn(tmp_onnx(), consumer=consumer, seed=4)
    _checked(path)
    if consumer == "output":
        import onnxruntime as ort

        from hwgen.golden import execute
        from hwgen.host_onnx import CORE_OUT, host_post_model

        g = hwgen.compile(path).graph
        assert np.asarray(g.tail.scale).shape == (C,) and len(np.unique(g.tail.scale)) == C
        values = execute(g, _inputs(20))
        post = ort.InferenceSession(host_post_model(g).SerializeToString(), providers=["CPUExecutionProvider"])
        (y,) = post.run(None, {CORE_OUT: values[g.core[-1].outputs[0]].reshape(20, -1)})
        np.testing.assert_array_equal(y, values[g.output])


def test_uniform_per_channel_scale_is_per_tensor(tmp_onnx):
    """A per-channel scale whose channels are all equal (an uncalibrated Brevitas model's) is a per-tensor
    one: a dense layer may follow it."""
    rng = np.random.default_rng(5)
    b = GraphBuilder((2, SIZE, SIZE), name="uniform")
    _stem(b, rng, np.full((1, C, 1, 1), 0.3, np.float32))
    b.conv(rng.integers(-3, 4, (4, C, 1, 1)), 0.25, bits=3, pad=0)
    path = b.save(tmp_onnx())
    p = prepare(path)
    assert not any(a.quantizer.per_channel for a in p.activations.values())
    _checked(path)


def test_brevitas_per_channel_quant_relu(tmp_path):
    """Brevitas QuantConv2d -> BN -> QuantReLU(scaling_per_output_channel=True, scales spread per channel)
    -> depthwise QuantConv2d -> BN -> QuantReLU -> QuantLinear, exported with export_qonnx."""
    pytest.importorskip("brevitas")
    import torch
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import Uint8ActPerTensorFloat
    from onnx_builders import brevitas_export, randomize_bn
    from torch import nn

    torch.manual_seed(0)
    per_channel = QuantReLU(act_quant=Uint8ActPerTensorFloat, bit_width=4, scaling_per_output_channel=True,
                            per_channel_broadcastable_shape=(1, C, 1, 1), scaling_stats_permute_dims=(1, 0, 2, 3),
                            return_quant_tensor=True)
    model = nn.Sequential(
        QuantIdentity(bit_width=8, return_quant_tensor=True),
        QuantConv2d(2, C, 3, padding=1, bias=False, weight_bit_width=4), nn.BatchNorm2d(C), per_channel,
        QuantConv2d(C, C, 3, stride=2, padding=1, groups=C, bias=False, weight_bit_width=4), nn.BatchNorm2d(C),
        QuantReLU(bit_width=4, return_quant_tensor=True), nn.Flatten(),
        QuantLinear(C * (SIZE // 2) ** 2, 5, bias=True, weight_bit_width=4))
    randomize_bn(model, 0)
    stats = per_channel.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.buffer  # eval scale
    with torch.no_grad():
        stats.mul_(2.0 ** (2 * torch.rand(stats.shape, generator=torch.Generator().manual_seed(1)) - 1))
    path = brevitas_export(model, torch.rand(1, 2, SIZE, SIZE), tmp_path / "pc.onnx")
    p = prepare(path)
    assert sum(a.quantizer.per_channel for a in p.activations.values()) == 1
    _checked(path)


# -- refused ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("consumer,between,node,op", [
    ("conv", None, "Conv_1", "Conv"), ("grouped", None, "Conv_1", "Conv"), ("linear", None, "MatMul_0", "MatMul"),
    ("conv", "maxpool", "Conv_1", "Conv"), ("linear", "avgpool", "MatMul_0", "MatMul")])
def test_dense_consumer_is_refused(tmp_onnx, consumer, between, node, op):
    """A layer whose outputs sum channels of different scales: named, with the quantizer to make per-tensor
    (also behind a max / average pool, which keep the scales per channel)."""
    path = per_channel_cnn(tmp_onnx(), consumer=consumer, between=between)
    with pytest.raises(HwgenError) as e:
        hwgen.compile(path)
    assert str(e.value) == DENSE.format(node=node, op=op, quant="Quant_3")


def _residual(path, branch_scale_factor):
    """stem (per-channel scale s) -> h; h + quant(depthwise(h), s * factor) -> quant(s) -> GlobalAveragePool."""
    rng = np.random.default_rng(6)
    b = GraphBuilder((2, SIZE, SIZE), name="res")
    s = _scales(rng)
    h = _stem(b, rng, s)
    b.conv(rng.integers(-3, 4, (C, 1, 3, 3)), rng.uniform(0.05, 0.3, C), bits=3, groups=C)
    b.batchnorm(rng.uniform(0.3, 1.0, C), rng.normal(size=C), rng.normal(size=C), rng.uniform(1, 4, C))
    b.quant(s * np.float32(branch_scale_factor), 4, signed=True)
    b.op("Add", h)
    b.quant(s, 4, signed=True)
    b.op("GlobalAveragePool")
    return b.save(path)


def test_residual_add_of_equal_per_channel_scales(tmp_onnx):
    path = _residual(tmp_onnx(), 1.0)
    assert "Add" in [op.kind for op in prepare(path).graph.ops]
    _checked(path)


def test_residual_add_of_unequal_per_channel_scales_is_refused(tmp_onnx):
    with pytest.raises(HwgenError) as e:
        hwgen.compile(_residual(tmp_onnx(), 0.5))
    assert str(e.value) == (
        "node 'Add_0' (Add): residual add with per-channel scales that differ between the skip, the branch and "
        "the sum (quantizer 'Quant_5'): hwgen aligns the two inputs with one shift for all channels, which is "
        "exact only when the three scales are equal in every channel; give the quantizers of both paths and the "
        "one after the add per-tensor scales (Brevitas: scaling_per_output_channel=False), or equal per-channel ones")


def test_per_channel_input_quantizer_is_refused(tmp_onnx):
    rng = np.random.default_rng(7)
    b = GraphBuilder((2, SIZE, SIZE), name="inq")
    b.quant(np.array([0.125, 0.25], np.float32).reshape(1, 2, 1, 1), 3, signed=False)
    b.conv(rng.integers(-3, 4, (C, 1, 3, 3)), 0.25, bits=3, groups=2)
    with pytest.raises(HwgenError, match=r"^node 'Quant_0' \(Quant\): the input quantizer's scale is per-channel; "
                                         r"hwgen quantizes the input with one scale"):
        hwgen.compile(b.save(tmp_onnx()))


@pytest.mark.parametrize("bad", [-0.2, 0.0])
def test_non_positive_scale_is_refused(tmp_onnx, bad):
    rng = np.random.default_rng(8)
    b = GraphBuilder((2, SIZE, SIZE), name="neg")
    s = _scales(rng)
    s[0, 2] = bad
    _stem(b, rng, s)
    b.conv(rng.integers(-3, 4, (C, 1, 3, 3)), 0.25, bits=3, groups=C)
    with pytest.raises(HwgenError) as e:
        hwgen.compile(b.save(tmp_onnx()))
    assert str(e.value) == (
        f"node 'Quant_3' (Quant): activation scale {bad:g} (element 2) is not positive and finite; hwgen needs "
        "positive scales (with them the max of the integers is the max of the float values, as an integer max pool "
        "computes it): re-export with positive activation scales")


# -- hardware -----------------------------------------------------------------------------------------

def test_per_channel_scales_verify_in_icarus(tmp_path):
    """conv -> per-channel quant -> MaxPool -> depthwise conv -> quant -> linear in Verilog: Icarus agrees with
    the golden model (whose thresholds carry the per-channel scales) on every vector."""
    path = per_channel_cnn(tmp_path / "m.onnx", between="maxpool", seed=9)
    acc = hwgen.compile(path)
    assert [op.kind for op in acc.graph.core][:4] == ["Conv", "Threshold", "MaxPool", "Conv"]
    acc.write(tmp_path / "build")
    r = acc.verify(sim="icarus", vectors=3, seed=2)
    assert r.ok and r.passed == r.vectors > 0, r.summary()
