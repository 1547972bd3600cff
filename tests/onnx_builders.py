"""Small hand-built QONNX graphs for tests: each exercises one importer or pass feature."""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

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
