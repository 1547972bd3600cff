"""Small hand-built QONNX graphs for tests: each exercises one importer or pass feature."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

# the upstream-architecture builders and their export helpers live in quant_models.upstream (the bench uses them
# too); re-exported for the tests that import them from here
from quant_models.upstream import (brevitas_a2q_resnet18, brevitas_espcn, brevitas_export,  # noqa: F401
                                   brevitas_export_faithful, brevitas_resnet_blocks, randomize_bn)

QDOMAIN = "qonnx.custom_op.general"


class GraphBuilder:
    def __init__(self, in_features, name: str = "test"):
        self.nodes, self.inits, self.n = [], [], 0
        self.name = name
        shape = [1, *in_features] if isinstance(in_features, tuple) else [1, in_features]
        self.input = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
        self.cur = "x"

    def const(self, value, prefix="c") -> str:
        self.n += 1
        name = f"{prefix}{self.n}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.float32), name))
        return name

    def op(self, op_type, *inputs, domain="", **attrs) -> str:
        self.n += 1
        out = f"t{self.n}"
        self.nodes.append(helper.make_node(op_type, [self.cur, *inputs], [out], name=f"{op_type}_{self.n}",
                                           domain=domain, **attrs))
        self.cur = out
        return out

    def quant(self, scale, bits, signed=True, narrow=False):
        return self.op("Quant", self.const(scale), self.const(0.0), self.const(bits), domain=QDOMAIN,
                       signed=int(signed), narrow=int(narrow), rounding_mode="ROUND")

    def bipolar(self, scale=1.0):
        return self.op("BipolarQuant", self.const(scale), domain=QDOMAIN)

    def linear(self, w_int, w_scale, bits=4, bias=None):
        """MatMul (or Gemm with bias) whose weights go through a Quant node: [out, in] ints."""
        w = np.asarray(w_int, np.float32) * np.asarray(w_scale, np.float32).reshape(-1, 1)
        self.n += 1
        wname, qname = f"W{self.n}", f"Wq{self.n}"
        self.inits.append(numpy_helper.from_array(w.astype(np.float32), wname))
        s = np.asarray(w_scale, np.float32).reshape(-1, 1) if np.size(w_scale) > 1 else np.float32(w_scale)
        self.nodes.append(helper.make_node(
            "Quant", [wname, self.const(s), self.const(0.0), self.const(bits)], [qname],
            name=f"WQuant_{self.n}", domain=QDOMAIN, signed=1, narrow=0, rounding_mode="ROUND"))
        if bias is None:
            self.n += 1
            tname = f"WT{self.n}"
            self.nodes.append(helper.make_node("Transpose", [qname], [tname], perm=[1, 0], name=f"Tr_{self.n}"))
            return self.op("MatMul", tname)
        return self.op("Gemm", qname, self.const(bias), transB=1)

    def conv(self, w_int, w_scale, bits=4, stride=1, pad=1, groups=1, bias=None):
        """Conv whose [out, in/g, kh, kw] weights go through a Quant node."""
        w_int = np.asarray(w_int, np.float32)
        scale = np.asarray(w_scale, np.float32).reshape(-1, 1, 1, 1) if np.size(w_scale) > 1 \
            else np.float32(w_scale)
        self.n += 1
        wname, qname = f"W{self.n}", f"Wq{self.n}"
        self.inits.append(numpy_helper.from_array((w_int * scale).astype(np.float32), wname))
        self.nodes.append(helper.make_node(
            "Quant", [wname, self.const(scale), self.const(0.0), self.const(bits)], [qname],
            name=f"WQuant_{self.n}", domain=QDOMAIN, signed=1, narrow=0, rounding_mode="ROUND"))
        extra = [self.const(bias)] if bias is not None else []
        kh, kw = w_int.shape[2:]
        return self.op("Conv", qname, *extra, kernel_shape=[kh, kw], strides=[stride, stride],
                       pads=[pad] * 4, group=groups)

    def batchnorm(self, gamma, beta, mean, var, eps=1e-5):
        return self.op("BatchNormalization", self.const(gamma), self.const(beta), self.const(mean),
                       self.const(var), epsilon=eps)

    def model(self, opset=13) -> onnx.ModelProto:
        out = helper.make_tensor_value_info(self.cur, TensorProto.FLOAT, None)
        graph = helper.make_graph(self.nodes, self.name, [self.input], [out], initializer=self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(QDOMAIN, 1)])
        m.ir_version = 8
        return m

    def save(self, path) -> str:
        onnx.save(self.model(), str(path))
        return str(path)


def random_mlp(path, *, seed=0, sizes=(16, 12, 8), w_bits=4, a_bits=3, negative_bn=True,
               input_quant=True, bias_last=True, w_scale_pow2=True) -> str:
    """input quant -> [linear -> BN -> ReLU -> quant] x n -> linear (+bias) -> output."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(sizes[0], name=f"mlp{seed}")
    if input_quant:
        b.quant(2.0 ** -a_bits, a_bits, signed=False)
    for i, (k, c) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.integers(-(2 ** (w_bits - 1)), 2 ** (w_bits - 1), size=(c, k))
        scale = 2.0 ** rng.integers(-4, 0, size=c) if w_scale_pow2 else rng.uniform(0.01, 0.2, size=c)
        last = i == len(sizes) - 2
        b.linear(w, scale, bits=w_bits, bias=rng.normal(size=c) if (last and bias_last) else None)
        if last:
            break
        gamma = rng.uniform(0.5, 2.0, size=c) * (np.where(rng.random(c) < 0.3, -1, 1) if negative_bn else 1)
        b.batchnorm(gamma, rng.normal(size=c), rng.normal(size=c) * 2, rng.uniform(0.5, 4, size=c))
        b.op("Relu")
        b.quant(2.0 ** rng.integers(-3, 1), a_bits, signed=False)
    return b.save(path)


def random_cnn(path, *, seed=0, a_bits=3, w_bits=3, depthwise=True, pool="max", bias=False) -> str:
    """quant -> conv3x3 -> BN -> ReLU -> quant -> [depthwise conv3x3 stride 2 -> BN -> ReLU ->
    quant] -> MaxPool 2 or GlobalAveragePool -> flatten -> linear(+bias)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((2, 8, 8), name=f"cnn{seed}")
    b.quant(2.0 ** -a_bits, a_bits, signed=False)

    def block(cin, cout, groups, stride):
        w = rng.integers(-(2 ** (w_bits - 1)), 2 ** (w_bits - 1), size=(cout, cin // groups, 3, 3))
        b.conv(w, 2.0 ** rng.integers(-3, 0, size=cout), bits=w_bits, stride=stride, groups=groups,
               bias=rng.normal(size=cout) if bias else None)
        gamma = rng.uniform(0.2, 1.0, cout) * np.where(rng.random(cout) < 0.25, -1, 1)
        b.batchnorm(gamma, rng.normal(size=cout), rng.normal(size=cout) * 3, rng.uniform(1, 8, cout))
        b.op("Relu")
        b.quant(2.0 ** rng.integers(-2, 1), a_bits, signed=False)

    block(2, 6, 1, 1)
    if depthwise:
        block(6, 6, 6, 2)
    if pool == "max":
        b.op("MaxPool", kernel_shape=[2, 2], strides=[2, 2])
    else:
        b.op("GlobalAveragePool")
    b.op("Flatten", axis=1)
    n = {"max": 6 * (2 if depthwise else 4) ** 2, "gap": 6}[pool]
    b.linear(rng.integers(-3, 4, (5, n)), 0.25, bits=3, bias=rng.normal(size=5))
    return b.save(path)


def residual_cnn(path, *, seed=0, steps=2, shared=True, dt=0.5, shared_bn=True) -> str:
    """A dsODENet-style net: stem conv -> h; N x [h + dt * f(h)] with f = depthwise conv ->
    BN -> ReLU -> quant -> pointwise conv -> BN -> quant (scale of h); GAP -> linear.
    shared=False gives each step its own weights (the unrolled ResNet)."""
    rng = np.random.default_rng(seed)
    c = 4
    b = GraphBuilder((1, 8, 8), name=f"res{seed}")
    b.quant(2.0 ** -3, 3, signed=False)
    b.conv(rng.integers(-3, 4, (c, 1, 3, 3)), 0.25, bits=3)
    b.batchnorm(rng.uniform(0.3, 1, c), rng.normal(size=c), rng.normal(size=c), rng.uniform(1, 4, c))
    h = b.quant(0.25, 4, signed=True)

    def params():
        return (rng.integers(-3, 4, (c, 1, 3, 3)), rng.integers(-3, 4, (c, c, 1, 1)),
                [rng.uniform(0.3, 1, c), rng.normal(size=c), rng.normal(size=c), rng.uniform(1, 4, c)],
                [rng.uniform(0.1, 0.5, c) * np.where(rng.random(c) < 0.3, -1, 1), rng.normal(size=c),
                 rng.normal(size=c), rng.uniform(1, 4, c)])

    p = params()
    for _ in range(steps):
        if not shared:
            p = params()
        elif not shared_bn:  # same conv weights, fresh BatchNorm statistics per step
            p = p[:2] + params()[2:]
        dw, pw, bn1, bn2 = p
        b.conv(dw, 0.25, bits=3, groups=c)
        b.batchnorm(*bn1)
        b.op("Relu")
        b.quant(0.25, 3, signed=False)
        b.conv(pw, 0.25, bits=3, pad=0)
        b.batchnorm(*bn2)
        b.quant(0.25, 4, signed=True)
        b.op("Mul", b.const(dt))
        b.op("Add", h)
        h = b.quant(0.25, 4, signed=True)
    b.op("GlobalAveragePool")
    b.op("Flatten", axis=1)
    b.linear(rng.integers(-3, 4, (3, c)), 0.5, bits=3, bias=rng.normal(size=3))
    return b.save(path)


def projection_cnn(path, *, seed=0, size=8, cin=2, c=4, cout=8, scales=(0.25, 0.25, 0.25), skip_first=False,
                   skip_kernel=1, body_kernel=3) -> str:
    """A ResNet projection block: quant -> stem conv3x3 -> BN -> ReLU -> quant = h (c channels);
    body f = conv k x k stride 2 -> BN -> ReLU -> quant -> conv k x k -> BN -> ReLU -> quant (k =
    body_kernel, scale scales[0]); skip g = conv skip_kernel x skip_kernel stride 2 -> BN -> ReLU ->
    quant (scales[1]);
    Add(f, g) (Add(g, f) with skip_first) -> ReLU -> quant (scales[2]) -> GAP -> linear(+bias)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((cin, size, size), name=f"proj{seed}")
    b.quant(2.0 ** -3, 3, signed=False)

    def conv_bn_quant(ci, co, k, stride, scale, bits=3):
        b.conv(rng.integers(-3, 4, (co, ci, k, k)), 2.0 ** rng.integers(-3, 0, size=co), bits=3, stride=stride,
               pad=k // 2)
        b.batchnorm(rng.uniform(0.3, 1, co) * np.where(rng.random(co) < 0.2, -1, 1), rng.normal(size=co),
                    rng.normal(size=co), rng.uniform(1, 4, co))
        b.op("Relu")
        return b.quant(scale, bits, signed=False)

    h = conv_bn_quant(cin, c, 3, 1, 0.25)
    conv_bn_quant(c, cout, body_kernel, 2, 0.25)
    f = conv_bn_quant(cout, cout, body_kernel, 1, scales[0])
    b.cur = h
    g = conv_bn_quant(c, cout, skip_kernel, 2, scales[1])
    if skip_first:
        b.op("Add", f)
    else:
        b.cur = f
        b.op("Add", g)
    b.op("Relu")
    b.quant(scales[2], 3, signed=False)
    b.op("GlobalAveragePool")
    b.op("Flatten", axis=1)
    b.linear(rng.integers(-3, 4, (3, cout)), 0.25, bits=3, bias=rng.normal(size=3))
    return b.save(path)


def bipolar_cnn(path, *, seed=0, patterns=8, cin=6, cout=16, size=6) -> str:
    """Binary input -> bipolar 3x3 conv (kernels drawn from `patterns` sign patterns) -> BN ->
    BipolarQuant -> second such conv -> BN -> BipolarQuant -> flatten -> linear."""
    rng = np.random.default_rng(seed)
    book = rng.choice([-1.0, 1.0], size=(patterns, 3, 3))
    b = GraphBuilder((cin, size, size), name=f"bin{seed}")
    b.bipolar()

    def conv(ci, co):
        w = book[rng.integers(0, patterns, size=(co, ci))]
        self_scale = b.const(1.0)
        b.n += 1
        wname, qname = f"W{b.n}", f"Wq{b.n}"
        b.inits.append(numpy_helper.from_array(w.astype(np.float32), wname))
        b.nodes.append(helper.make_node("BipolarQuant", [wname, self_scale], [qname], name=f"WQ_{b.n}", domain=QDOMAIN))
        b.op("Conv", qname, kernel_shape=[3, 3], pads=[1, 1, 1, 1])
        b.batchnorm(rng.uniform(0.5, 1, co) * np.where(rng.random(co) < 0.3, -1, 1), rng.normal(size=co),
                    rng.normal(size=co) * 2, rng.uniform(1, 4, co))
        b.bipolar()

    conv(cin, cout)
    conv(cout, cout)
    b.op("Flatten", axis=1)
    b.linear(rng.integers(-3, 4, (4, cout * size * size)), 0.25, bits=3, bias=rng.normal(size=4))
    return b.save(path)


# --- quantized biases, global mean pools (tests/test_quant_bias.py, tests/test_reducemean.py) ---

def quant_const(b: GraphBuilder, value, scale, bits, signed=True) -> str:
    """A Quant node on a constant initializer (a quantized bias); returns its output name
    without moving the builder's current tensor."""
    b.n += 1
    vname, out = f"B{b.n}", f"Bq{b.n}"
    b.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), vname))
    b.nodes.append(helper.make_node(
        "Quant", [vname, b.const(scale), b.const(0.0), b.const(bits)], [out], name=f"BQuant_{b.n}",
        domain=QDOMAIN, signed=int(signed), narrow=0, rounding_mode="ROUND"))
    return out


def qkeras_mlp(path, *, seed=0, sizes=(12, 10, 8, 5), w_bits=4, a_bits=4, b_bits=8,
               pow2=True, softmax=True) -> str:
    """The shape QKeras models have after qonnx's converter: a float graph input (no input
    quantizer: the input format comes from --input-bits/--input-scale), then per layer
    MatMul(x, Quant(W[in, out])) -> Add(Quant(bias)) -> Relu -> Quant, and the last layer's
    MatMul -> Add(Quant(bias)) -> Softmax. pow2=False gives non-power-of-two weight and bias
    scales (float ties possible)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(sizes[0], name=f"qkeras{seed}")
    for i, (k, c) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = rng.integers(-(2 ** (w_bits - 1)) + 1, 2 ** (w_bits - 1), size=(k, c)).astype(np.float32)
        ws = np.float32(2.0 ** -int(rng.integers(2, 5))) if pow2 else np.float32(rng.uniform(0.02, 0.2))
        b.n += 1
        wname, qname = f"W{b.n}", f"Wq{b.n}"
        b.inits.append(numpy_helper.from_array(w * ws, wname))
        b.nodes.append(helper.make_node(
            "Quant", [wname, b.const(ws), b.const(0.0), b.const(w_bits)], [qname], name=f"WQuant_{b.n}",
            domain=QDOMAIN, signed=1, narrow=1, rounding_mode="ROUND"))
        b.op("MatMul", qname)
        bs = np.float32(2.0 ** -int(rng.integers(3, 6))) if pow2 else np.float32(rng.uniform(0.01, 0.1))
        bias = rng.normal(size=c) * 0.5
        b.op("Add", quant_const(b, bias, bs, b_bits))
        if i == len(sizes) - 2:
            if softmax:
                b.op("Softmax", axis=-1)
            break
        b.op("Relu")
        b.quant(2.0 ** -int(rng.integers(1, 3)), a_bits, signed=False)
    return b.save(path)


def pool_cnn(path, *, seed=0, pool="ReduceMean", axes=(2, 3), keepdims=1, requant=True, a_bits=3,
             size=4, opset=18) -> str:
    """quant -> conv3x3 -> BN -> ReLU -> quant -> global mean (ReduceMean over `axes` or
    GlobalAveragePool) -> [quant] -> flatten -> linear (+ bias)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((2, size, size), name=f"pool{seed}")
    b.quant(2.0 ** -a_bits, a_bits, signed=False)
    b.conv(rng.integers(-3, 4, size=(6, 2, 3, 3)), 2.0 ** rng.integers(-3, 0, size=6), bits=3)
    b.batchnorm(rng.uniform(0.2, 1.0, 6) * np.where(rng.random(6) < 0.25, -1, 1), rng.normal(size=6),
                rng.normal(size=6) * 3, rng.uniform(1, 8, 6))
    b.op("Relu")
    b.quant(2.0 ** -1, a_bits, signed=False)
    if pool == "ReduceMean":
        if opset >= 18:
            b.op("ReduceMean", b.const_int(list(axes)), keepdims=keepdims)
        else:
            b.op("ReduceMean", axes=list(axes), keepdims=keepdims)
    else:
        b.op("GlobalAveragePool")
    if requant:
        b.quant(2.0 ** -2, 4, signed=False)
    if keepdims:
        b.op("Flatten", axis=1)
    b.linear(rng.integers(-3, 4, (5, 6)), 0.25, bits=3, bias=rng.normal(size=5))
    return b.save_opset(path, opset)


def _const_int(self, value, prefix="ci") -> str:
    self.n += 1
    name = f"{prefix}{self.n}"
    self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), name))
    return name


def _save_opset(self, path, opset) -> str:
    onnx.save(self.model(opset=opset), str(path))
    return str(path)


GraphBuilder.const_int = _const_int
GraphBuilder.save_opset = _save_opset


def brevitas_bias_model(path, *, kind="mlp", seed=0, pow2=True) -> str:
    """Brevitas layers with bias_quant=Int32Bias (the bias quantized to 32 bits with scale
    input scale x weight scale), random weights and BatchNorm statistics, exported to QONNX.

    mlp: QuantIdentity -> QuantLinear(16, 12) -> BN -> QuantReLU -> QuantLinear(12, 5)
    cnn: QuantIdentity -> QuantConv2d(2, 6, 3, pad 1) -> BN -> QuantReLU -> QuantConv2d(6, 6, 3,
         stride 2) -> BN -> QuantReLU -> flatten -> QuantLinear(6*2*2, 4)
    pow2: power-of-two (FixedPoint) scales, so the reference's float arithmetic is exact; else
    Brevitas's default float scales."""
    import torch
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8ActPerTensorFloat, Int8WeightPerTensorFixedPoint,
                                Int8WeightPerTensorFloat, Uint8ActPerTensorFixedPoint, Uint8ActPerTensorFloat)
    from brevitas.quant.scaled_int import Int32Bias
    from torch import nn

    torch.manual_seed(seed)
    wq = {"weight_quant": Int8WeightPerTensorFixedPoint if pow2 else Int8WeightPerTensorFloat,
          "weight_bit_width": 4, "bias": True, "bias_quant": Int32Bias}
    inq = QuantIdentity(act_quant=Int8ActPerTensorFixedPoint if pow2 else Int8ActPerTensorFloat, bit_width=5,
                        return_quant_tensor=True)

    def relu():
        return QuantReLU(act_quant=Uint8ActPerTensorFixedPoint if pow2 else Uint8ActPerTensorFloat, bit_width=3,
                         return_quant_tensor=True)

    if kind == "mlp":
        model = nn.Sequential(inq, QuantLinear(16, 12, **wq), nn.BatchNorm1d(12), relu(), QuantLinear(12, 5, **wq))
        example = torch.randn(1, 16)
    else:
        model = nn.Sequential(inq, QuantConv2d(2, 6, 3, padding=1, **wq), nn.BatchNorm2d(6), relu(),
                              QuantConv2d(6, 6, 3, stride=2, **wq), nn.BatchNorm2d(6), relu(), nn.Flatten(),
                              QuantLinear(6 * 2 * 2, 4, **wq))
        example = torch.randn(1, 2, 5, 5)
    randomize_bn(model, seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (QuantLinear, QuantConv2d)):
                m.bias.copy_(torch.randn(m.bias.shape) * 0.5)
    return brevitas_export(model, example, path)


def brevitas_pool_model(path, *, seed=0, pow2=True) -> str:
    """QuantIdentity -> QuantConv2d(2, 6, 3) -> BN -> QuantReLU -> AdaptiveAvgPool2d(1) (exported
    as ReduceMean over H, W) -> QuantIdentity -> flatten -> QuantLinear(6, 4) with a float bias."""
    import torch
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
    from brevitas.quant import (Int8ActPerTensorFixedPoint, Int8ActPerTensorFloat, Int8WeightPerTensorFixedPoint,
                                Int8WeightPerTensorFloat, Uint8ActPerTensorFixedPoint, Uint8ActPerTensorFloat)
    from torch import nn

    torch.manual_seed(seed)
    act = Int8ActPerTensorFixedPoint if pow2 else Int8ActPerTensorFloat
    wq = {"weight_quant": Int8WeightPerTensorFixedPoint if pow2 else Int8WeightPerTensorFloat, "weight_bit_width": 4}
    model = nn.Sequential(
        QuantIdentity(act_quant=act, bit_width=4, return_quant_tensor=True),
        QuantConv2d(2, 6, 3, padding=1, bias=False, **wq), nn.BatchNorm2d(6),
        QuantReLU(act_quant=Uint8ActPerTensorFixedPoint if pow2 else Uint8ActPerTensorFloat, bit_width=3,
                  return_quant_tensor=True),
        nn.AdaptiveAvgPool2d(1),
        QuantIdentity(act_quant=act, bit_width=5, return_quant_tensor=True),
        nn.Flatten(), QuantLinear(6, 4, bias=True, **wq))
    randomize_bn(model, seed)
    return brevitas_export(model, torch.randn(1, 2, 6, 6), path)


def tie_mlp(path, *, seed=0, k=6, hidden=16, out=6) -> str:
    """A model made to hit float32 ties in qonnx's reference: non-power-of-two scales everywhere,
    a BipolarQuant right after an accumulator of {-1, 0, 1} weights (exactly 0 for many inputs,
    which float32 sums of rounded products turn into +-tiny), and a layer whose exact value
    acc * 0.3 / 0.6 = acc / 2 lands on x.5 rounding boundaries for every odd accumulator."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder(k, name=f"ties{seed}")
    b.quant(0.1, 4, signed=True)
    b.linear(rng.integers(-1, 2, size=(hidden, k)), 0.3, bits=2)
    b.bipolar(1.0)
    b.linear(rng.integers(-1, 2, size=(hidden, hidden)), 0.3, bits=2)
    b.quant(0.6, 4, signed=True)
    b.linear(rng.integers(-3, 4, size=(out, hidden)), 0.7, bits=3)
    return b.save(path)


# --- average pools, Trunc, pixel shuffles (tests/test_avgpool.py, tests/test_data_movement.py) ---

def _save_qonnx_version(b: GraphBuilder, path, opset: int, qonnx_version: int) -> str:
    """Save with the qonnx domain's opset `qonnx_version` (which picks Trunc_v1 or Trunc_v2)."""
    m = b.model(opset=opset)
    for o in m.opset_import:
        if o.domain == QDOMAIN:
            o.version = qonnx_version
    onnx.save(m, str(path))
    return str(path)


def avgpool_cnn(path, *, seed=0, kernel=(2, 2), stride=(2, 2), size=(6, 6), a_bits=3, signed=False,
                after="linear", trunc=None, opset=13, pool_attrs=None) -> str:
    """quant -> conv3x3 (2 -> 4) -> BN -> [ReLU] -> quant (INT or UINT a_bits, scale 1/2) -> AveragePool
    (kernel, stride; None: no strides attribute) -> [Trunc] -> `after`: "linear" (flatten -> linear),
    "quant" (quant INT4 1/4 -> flatten -> linear), "conv" (conv1x1 -> output) or "output".

    trunc: dict(version=1|2, shift=t, out_bits, rounding_mode, signed, narrow, zeropt, scale_ratio):
    the Trunc's input scale is the pool's mean scale (1/2 / (kh*kw)) times scale_ratio (default 1),
    its output scale that times 2^t (v2) or in_bits - out_bits = t (v1). Power-of-two scales
    everywhere (with a 2x2 or 4x1 kernel every float is exact), so golden == reference bit for bit."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((2, *size), name=f"avgpool{seed}")
    b.quant(2.0 ** -3, 3, signed=False)
    b.conv(rng.integers(-3, 4, size=(4, 2, 3, 3)), 2.0 ** rng.integers(-3, 0, size=4), bits=3)
    b.batchnorm(rng.uniform(0.2, 1.0, 4) * np.where(rng.random(4) < 0.25, -1, 1), rng.normal(size=4),
                rng.normal(size=4) * 3, rng.uniform(1, 8, 4))
    if not signed:
        b.op("Relu")
    b.quant(0.5, a_bits, signed=signed)
    attrs = {"kernel_shape": list(kernel)}
    if stride is not None:
        attrs["strides"] = list(stride)
    attrs.update(pool_attrs or {})
    b.op("AveragePool", **attrs)
    n = kernel[0] * kernel[1]
    version = 1
    if trunc is not None:
        t = dict(version=2, shift=0, out_bits=8, rounding_mode="FLOOR", signed=False, narrow=False, zeropt=0.0,
                 scale_ratio=1.0)
        t.update(trunc)
        version = t["version"]
        scale = np.float32(0.5 / n * t["scale_ratio"])
        in_bits = a_bits + int(np.ceil(np.log2(n)))
        if version == 2:
            b.op("Trunc", b.const(scale), b.const(t["zeropt"]), b.const(in_bits),
                 b.const(np.float32(scale * 2.0 ** t["shift"])), b.const(t["out_bits"]), domain=QDOMAIN,
                 rounding_mode=t["rounding_mode"], signed=int(t["signed"]), narrow=int(t["narrow"]))
        else:
            b.op("Trunc", b.const(scale), b.const(t["zeropt"]), b.const(in_bits), b.const(in_bits - t["shift"]),
                 domain=QDOMAIN, rounding_mode=t["rounding_mode"])
    h, w = size
    kh, kw = kernel
    sh, sw = stride or (1, 1)
    pixels = ((h - kh) // sh + 1) * ((w - kw) // sw + 1)
    if after == "quant":
        b.quant(0.25, 4, signed=True)
    if after in ("linear", "quant"):
        b.op("Flatten", axis=1)
        b.linear(rng.integers(-3, 4, (3, 4 * pixels)), 0.25, bits=3, bias=rng.normal(size=3))
    elif after == "conv":
        b.conv(rng.integers(-3, 4, size=(3, 4, 1, 1)), 0.25, bits=3, pad=0)
    return _save_qonnx_version(b, path, opset, version)


def pixel_shuffle_cnn(path, *, seed=0, op="DepthToSpace", mode=None, block=2, where="after", between=(),
                      then=None, opset=13) -> str:
    """quant -> conv3x3 (2 -> 8 channels) -> BN, then
      where "after":  ReLU -> quant -> `op` (DepthToSpace with `mode`, or SpaceToDepth) -> ...
      where "before": `op` -> `between` ("relu", "mul" (a scalar), "add" (a per-channel constant)) -> quant -> ...
    and `then`: None (the output), "conv" (a conv1x1 -> output: the shuffle is then between two layers)
    or "quant_conv" (a quantizer and a conv1x1)."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder((2, 4, 4), name=f"shuffle{seed}")
    b.quant(2.0 ** -3, 3, signed=False)
    b.conv(rng.integers(-3, 4, size=(8, 2, 3, 3)), 2.0 ** rng.integers(-3, 0, size=8), bits=3)
    b.batchnorm(rng.uniform(0.2, 1.0, 8) * np.where(rng.random(8) < 0.25, -1, 1), rng.normal(size=8),
                rng.normal(size=8) * 3, rng.uniform(1, 8, 8))
    attrs = {"blocksize": block}
    if mode is not None:
        attrs["mode"] = mode
    channels = 8 // block ** 2 if op == "DepthToSpace" else 8 * block ** 2
    if where == "before":
        b.op(op, **attrs)
        for what in between:
            if what == "relu":
                b.op("Relu")
            elif what == "mul":
                b.op("Mul", b.const(np.float32(0.5)))
            elif what == "add":
                b.op("Add", b.const(rng.normal(size=(1, channels, 1, 1)).astype(np.float32)))
        b.quant(0.5, 3, signed=True)
    else:
        b.op("Relu")
        b.quant(0.5, 3, signed=False)
        b.op(op, **attrs)
    if then == "quant_conv":
        b.quant(0.5, 3, signed=True)
    if then in ("conv", "quant_conv"):
        b.conv(rng.integers(-3, 4, size=(3, channels, 1, 1)), 0.25, bits=3, pad=0)
    return b.save_opset(path, opset)


def brevitas_trunc_pool_model(path, *, seed=0, pool="avg", kernel=2, stride=2, act_bits=8, trunc="round",
                              after="linear", size=6) -> str:
    """QuantIdentity -> QuantConv2d(2, 4, 3, padding 1) -> BN -> QuantReLU(act_bits) -> TruncAvgPool2d(kernel,
    stride) or TruncAdaptiveAvgPool2d(1) (trunc_quant RoundTo8bit "round" or TruncTo8bit "floor") ->
    [QuantIdentity (after == "quant")] -> flatten -> QuantLinear with a bias. Fixed-point (power-of-two)
    scales, random weights and BatchNorm statistics. With 8-bit activations the sums have more than 8
    bits and the Trunc really shifts; with 4 bits it only changes the scale."""
    import torch
    from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU, TruncAdaptiveAvgPool2d, TruncAvgPool2d
    from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
    from brevitas.quant.scaled_int import RoundTo8bit, TruncTo8bit
    from torch import nn

    torch.manual_seed(seed)
    wq = {"weight_quant": Int8WeightPerTensorFixedPoint, "weight_bit_width": 4}
    tq = {"round": RoundTo8bit, "floor": TruncTo8bit}[trunc]
    if pool == "avg":
        p = TruncAvgPool2d(kernel, stride=stride, trunc_quant=tq)
        pixels = ((size - kernel) // stride + 1) ** 2
    else:
        p = TruncAdaptiveAvgPool2d((1, 1), trunc_quant=tq)
        pixels = 1
    layers = [QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=4, return_quant_tensor=True),
              QuantConv2d(2, 4, 3, padding=1, bias=False, **wq), nn.BatchNorm2d(4),
              QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=act_bits, return_quant_tensor=True), p]
    if after == "quant":
        layers.append(QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=5, return_quant_tensor=True))
    layers += [nn.Flatten(), QuantLinear(4 * pixels, 3, bias=True, **wq)]
    model = nn.Sequential(*layers)
    randomize_bn(model, seed)
    return brevitas_export(model, torch.randn(1, 2, size, size), path)
