"""QONNX graph -> hwgen IR.

The importer walks the (cleaned) graph from its input along the single data path:

    Head:   float pre-processing ... input quantizer
    layer:  MatMul/Gemm with quantized weights -> float ops -> activation quantizer
    Tail:   float ops after the last integer layer

Weight quantizers are folded to integer matrices here, quantizers of other constants (quantized
biases: Brevitas Int32Bias, QKeras) to the float values qonnx computes for them; the float ops
between an accumulator and the next quantizer stay float (FloatActivation) until the streamline
pass turns them into thresholds, so that the import itself is trivially faithful to the file.
A global average pool (GlobalAveragePool, or ReduceMean over H and W) becomes a GlobalSumPool, an
unpadded AveragePool a SumPool; a quantizer right after it becomes a FloatActivation on the sum
(sum * s / (k*k), as the reference), a Brevitas Trunc after it a Threshold on the sum (or part of
the next quantizer's; hwgen.frontend.trunc). DepthToSpace / SpaceToDepth (pixel shuffles) run on
the host: in the Tail, moved past the last quantizer when they come just before it.
A residual block's input h feeds two paths that meet at one Add (-> [Relu] -> quantizer): the Add
itself (an identity shortcut: h becomes its skip input) or a second chain of layers ending in a
quantizer (a projection shortcut, imported first, up to the Add: import_skip_chain); any other fork
is refused naming the node.
An activation quantizer may scale per channel where every consumer keeps channels apart (depthwise
convs, pools; hwgen.frontend.channel_scale): x_scale is then float32 [C].
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import HwgenError
from ..ir import (Add, Conv, FloatActivation, GlobalSumPool, Graph, SumPool, Head, MatVec, MaxPool, Quantizer,
                  Tail, TensorInfo, Threshold)
from ..ir.float_segment import make_segment

from ..ir.types import Bipolar, IntType, signed_bits_for, smallest_type
from .channel_scale import activation_scale, residual_scales_equal, through
from .load import load_qonnx
from .trunc import trunc_spec

QUANTIZERS = ("Quant", "BipolarQuant")
LINEAR = ("MatMul", "Gemm", "Conv")
# Per-channel elementwise float ops: allowed between an accumulator and the next quantizer.
ELEMENTWISE = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "Clip", "LeakyRelu",
               "Identity", "Sigmoid", "Tanh", "HardTanh", "Neg", "Pow", "Sqrt", "Abs")
SHAPE_ONLY = ("Reshape", "Flatten", "Identity", "Transpose", "Squeeze", "Unsqueeze")
# pure permutations of an N, C, H, W tensor (PixelShuffle / PixelUnshuffle): host-side only
PERMUTATIONS = ("DepthToSpace", "SpaceToDepth")
HEAD_OPS = ("Add", "Sub", "Mul", "Div", "Reshape", "Flatten", "Identity", "Transpose", "Squeeze",
            "Unsqueeze", "Relu") + PERMUTATIONS
TAIL_OPS = ELEMENTWISE + ("Softmax", "LogSoftmax", "ArgMax", "Reshape", "Flatten", "Squeeze",
                          "GlobalAveragePool", "ReduceMean", "MaxPool", "AveragePool") + PERMUTATIONS
# integer ops between quantizer and layer (ReduceMean: only the global mean over H and W; Trunc:
# only right after an average pool)
INTEGER_CORE = ("MaxPool", "GlobalAveragePool", "ReduceMean", "AveragePool", "Trunc", "Pad")
GLOBAL_POOLS = ("GlobalAveragePool", "ReduceMean")
POOLS = GLOBAL_POOLS + ("AveragePool",)
SUPPORTED = sorted(set(QUANTIZERS + LINEAR + ELEMENTWISE + HEAD_OPS + TAIL_OPS + INTEGER_CORE))


@dataclass(frozen=True)
class InputFormat:
    """How to quantize the float input of a model whose graph has no input quantizer."""

    bits: int
    scale: float
    signed: bool = True

    def quantizer(self) -> Quantizer:
        return Quantizer(scale=float(np.float32(self.scale)), bits=self.bits, signed=self.signed)


@dataclass
class _Weights:
    values: np.ndarray  # int64, layout as in the file
    scale: np.ndarray  # float32, broadcastable to values
    dtype: object


class _Importer:
    def __init__(self, wrapper, path: str, input_format: InputFormat | None):
        self.w = wrapper
        self.g = wrapper.graph
        self.path = path
        self.input_format = input_format
        self.inits = {t.name: numpy_helper.to_array(t) for t in self.g.initializer}
        self.opset = next((o.version for o in wrapper.model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.weights: dict[str, _Weights] = {}
        self.ops = []
        self.tensors: dict[str, TensorInfo] = {}
        self.notes: list[str] = []
        self.deferred: set[tuple[str, str]] = set()  # (tensor, Add node) skip connections
        self.skips: dict[str, tuple[str, float, object]] = {}  # Add node -> (tensor, scale, type)
        self.channel_quant: str | None = None  # the Quant node of the latest per-channel activation scale

    # --- helpers -------------------------------------------------------------------
    def consumers(self, tensor: str) -> list[onnx.NodeProto]:
        return [n for n in self.g.node if tensor in n.input]

    def next_node(self, tensor: str) -> onnx.NodeProto | None:
        nodes = [n for n in self.consumers(tensor) if (tensor, n.name) not in self.deferred]
        if len(nodes) > 1:
            names = ", ".join(f"{n.name} ({n.op_type})" for n in nodes)
            raise HwgenError(
                f"tensor '{tensor}' feeds several nodes ({names}); hwgen compiles one data path with "
                "residual blocks Add(f(h), g(h)): h feeds two chains of layers (g may be empty: an identity "
                "shortcut) that meet at one Add followed by a quantizer; restructure the model so"
            )
        return nodes[0] if nodes else None

    def sample_shape(self, tensor: str) -> tuple[int, ...]:
        shape = self.w.get_tensor_shape(tensor)
        if shape is None:
            raise HwgenError(f"tensor '{tensor}' has no inferred shape; the graph is not shape-complete")
        return tuple(int(d) for d in shape[1:])

    def const(self, node: onnx.NodeProto, index: int, what: str) -> np.ndarray:
        name = node.input[index] if index < len(node.input) else ""
        if name not in self.inits:
            raise HwgenError(f"{what} must be a constant initializer", node=node.name, op=node.op_type)
        return self.inits[name]

    def unsupported(self, node: onnx.NodeProto, where: str, allowed) -> HwgenError:
        return HwgenError(
            f"op {node.op_type} is not supported {where} (supported there: {', '.join(allowed)}); "
            "remove it from the model or move it before the input quantizer / after the last layer",
            node=node.name, op=node.op_type,
        )

    def segment(self, nodes, input_name: str, input_shape, output_name: str):
        """The float ops `nodes` as a FloatSegment, or a one-line error naming the node whose
        other operand is neither a constant nor computed inside the segment."""
        known = {input_name} | set(self.inits)
        for n in nodes:
            missing = [i for i in n.input if i and i not in known]
            if missing:
                src = next((m for m in self.g.node if missing[0] in m.output), None)
                what = f"the output of {src.op_type} '{src.name}'" if src is not None else "not a constant"
                raise HwgenError(
                    f"operand '{missing[0]}' ({what}) is neither a constant nor on the data path: hwgen "
                    "compiles a single data path whose float ops take constants (a second branch or a "
                    "computed operand here is not supported)", node=n.name, op=n.op_type)
            known.update(n.output)
        return make_segment(nodes, self.inits, input_name, input_shape, output_name, self.opset)

    # --- quantizers ----------------------------------------------------------------
    def quantizer_of(self, node: onnx.NodeProto) -> Quantizer:
        if node.op_type == "BipolarQuant":
            scale = self.const(node, 1, "the scale")
            if scale.size != 1:
                raise HwgenError("activation scales must be per-tensor", node=node.name, op=node.op_type)
            return Quantizer(scale=float(scale.reshape(())), bits=1, signed=True, bipolar=True)
        scale = self.const(node, 1, "the scale")
        zp = self.const(node, 2, "the zero point")
        bits = self.const(node, 3, "the bit width")
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        scale = activation_scale(node, scale, self.w.get_tensor_shape(node.input[0]))
        if np.ndim(scale):
            self.channel_quant = node.name
        if np.any(zp != 0):
            raise HwgenError("non-zero zero points are not supported; use a symmetric quantizer",
                             node=node.name, op=node.op_type)
        nbits = float(bits.reshape(()))
        if nbits != int(nbits) or nbits < 1:
            raise HwgenError(f"bit width {nbits} is not a positive integer", node=node.name, op=node.op_type)
        mode = attrs.get("rounding_mode", b"ROUND")
        mode = mode.decode() if isinstance(mode, bytes) else str(mode)
        signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
        return Quantizer(scale=scale, bits=int(nbits), signed=signed, narrow=narrow,
                         rounding_mode=mode, bipolar=(int(nbits) == 1 and signed))

    def fold_constant_quantizers(self) -> None:
        """A Quant / BipolarQuant of constants (a quantized bias: Brevitas Int32Bias, QKeras-style
        exports) is a constant: evaluate it with qonnx's own implementation, so the value is
        exactly the one the reference computes, and keep it as an initializer. A bias then
        imports exactly like a float constant bias (a float Add after the accumulator that
        streamlining folds into the thresholds, or the Tail's offset)."""
        from qonnx.custom_op.registry import getCustomOp

        for node in self.g.node:  # topological order: chains of constant quantizers fold too
            if node.op_type not in QUANTIZERS or node.output[0] in self.inits:
                continue
            names = [i for i in node.input if i]
            if not names or any(i not in self.inits for i in names):
                continue
            context = {i: self.inits[i] for i in names}
            try:
                getCustomOp(node).execute_node(context, self.g)
            except Exception as exc:
                raise HwgenError(f"cannot evaluate this quantizer of constants ({type(exc).__name__}: "
                                 f"{str(exc)[:120]})", node=node.name, op=node.op_type) from None
            self.inits[node.output[0]] = np.asarray(context[node.output[0]], dtype=np.float32)

    def fold_weight_quantizers(self) -> None:
        for node in self.g.node:
            if node.op_type not in QUANTIZERS or node.input[0] not in self.inits:
                continue
            w = self.inits[node.input[0]].astype(np.float32)
            scale = self.const(node, 1, "the weight scale").astype(np.float32)
            if node.op_type == "BipolarQuant":
                q = np.where(w / scale >= 0, 1, -1).astype(np.int64)
                self.weights[node.output[0]] = _Weights(q, scale, Bipolar)
                continue
            quant = self.quantizer_of_weights(node, scale)
            from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode

            y = w / scale
            y = y + np.float32(0)
            if quant.bipolar:
                q = np.where(y >= 0, 1, -1).astype(np.int64)
            else:
                lo = np.float32(min_int(quant.signed, quant.narrow, quant.bits))
                hi = np.float32(max_int(quant.signed, quant.narrow, quant.bits))
                y = np.where(y > hi, hi, y)
                y = np.where(y < lo, lo, y)
                q = resolve_rounding_mode(quant.rounding_mode)(y).astype(np.int64)
            self.weights[node.output[0]] = _Weights(q, scale, quant.out_type)

    def quantizer_of_weights(self, node, scale) -> Quantizer:
        zp = self.const(node, 2, "the zero point")
        if np.any(zp != 0):
            raise HwgenError("non-zero weight zero points are not supported; use a symmetric weight quantizer "
                             "(zero point 0)", node=node.name, op=node.op_type)
        bits = float(self.const(node, 3, "the bit width").reshape(()))
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        mode = attrs.get("rounding_mode", b"ROUND")
        signed = bool(attrs.get("signed", 1))
        return Quantizer(scale=1.0, bits=int(bits), signed=signed, narrow=bool(attrs.get("narrow", 0)),
                         rounding_mode=mode.decode() if isinstance(mode, bytes) else str(mode),
                         bipolar=(int(bits) == 1 and signed))

    # --- walking ----------------------------------------------------------------------
    def walk_float(self, tensor: str, allowed, where: str):
        """Follow float ops from `tensor` until a quantizer, a linear op or the graph output."""
        nodes = []
        node = self.next_node(tensor)
        while node is not None and node.op_type not in QUANTIZERS + LINEAR:
            if node.op_type not in allowed:
                raise self.unsupported(node, where, allowed)
            if node.op_type == "Transpose" and where != "before the input quantizer":
                raise self.unsupported(node, where, [a for a in allowed if a != "Transpose"])
            nodes.append(node)
            tensor = node.output[0]
            node = self.next_node(tensor)
        return nodes, tensor, node

    def import_head(self, graph_input: str):
        nodes, tensor, stop = self.walk_float(graph_input, HEAD_OPS, "before the input quantizer")
        in_shape = self.sample_shape(graph_input)
        segment = None
        if stop is not None and stop.op_type in QUANTIZERS and stop.input[0] == tensor:
            if self.input_format is not None:
                raise HwgenError(
                    f"the model already quantizes its input (node '{stop.name}'); "
                    "--input-bits/--input-scale are only for models without an input quantizer")
            quant = self.quantizer_of(stop)
            if quant.per_channel:
                raise HwgenError(
                    "the input quantizer's scale is per-channel; hwgen quantizes the input with one scale "
                    "(on the host, before the first layer): use a per-tensor input quantizer",
                    node=stop.name, op=stop.op_type)
            if nodes:
                segment = self.segment(nodes, graph_input, in_shape, tensor)
            out = stop.output[0]
        elif stop is not None and stop.op_type in LINEAR:
            if nodes:
                segment = self.segment(nodes, graph_input, in_shape, tensor)
            quant = self.implicit_input_quantizer(graph_input, segment, in_shape)
            out = tensor
        else:
            what = "reaches the output" if stop is None else f"reaches {stop.op_type} '{stop.name}'"
            raise HwgenError(
                f"the graph input {what} without a quantized MatMul/Gemm/Conv: this is a float "
                "model; quantize it with Brevitas (QuantLinear/QuantConv, QuantIdentity on the "
                "input) and export with export_qonnx")
        shape = self.sample_shape(out)
        spatial = len(shape) == 3
        self.ops.append(Head(name="Head", inputs=[graph_input], outputs=[out], segment=segment,
                             quantizer=quant, input_shape=in_shape, to_nhwc=spatial))
        self.tensors[graph_input] = TensorInfo(in_shape, None)
        ir_shape = (shape[1], shape[2], shape[0]) if spatial else (int(np.prod(shape)),)
        self.tensors[out] = TensorInfo(ir_shape, quant.out_type)
        return out, quant

    def implicit_input_quantizer(self, graph_input, segment, in_shape) -> Quantizer:
        """No input quantizer: take the format from the user, or from a datatype annotation."""
        if self.input_format is not None:
            self.notes.append(f"input quantized on the host as {self.input_format}")
            return self.input_format.quantizer()
        dt = self.w.get_tensor_datatype(graph_input)
        if not dt.is_integer() or dt.bitwidth() > 12:
            raise HwgenError(
                "the graph input has no quantizer before the first layer and no integer datatype "
                "annotation; say how inputs are quantized with --input-bits N --input-scale S "
                "[--input-unsigned]")
        values = np.arange(int(dt.min()), int(dt.max()) + 1)
        if dt.name == "BIPOLAR":
            values = np.array([-1, 1])
        probe = np.broadcast_to(values.reshape(-1, *([1] * len(in_shape))), (len(values), *in_shape))
        out = probe.astype(np.float32) if segment is None else segment.run(probe.astype(np.float32))
        flat = out.reshape(len(values), -1)
        if not np.all(flat == flat[:, :1]):
            raise HwgenError(
                f"the input is annotated {dt.name} but the pre-processing before the first layer is "
                "not the same for every element; give --input-bits/--input-scale for its output")
        levels = np.unique(flat[:, 0])
        scale = 1.0 if np.all(levels == np.round(levels)) else float(np.min(np.diff(levels)))
        ints = levels / np.float32(scale)
        if not np.all(ints == np.round(ints)):
            raise HwgenError(f"the pre-processed {dt.name} input values {levels.tolist()} are not on an "
                             "integer grid; give --input-bits/--input-scale")
        t = smallest_type(int(ints.min()), int(ints.max()))
        self.notes.append(f"input annotated {dt.name}; after pre-processing it is {t} x {scale:g}")
        return Quantizer(scale=scale, bits=t.bits, signed=t.signed)

    def linear_weights(self, node):
        w_name = node.input[1] if len(node.input) > 1 else ""
        if w_name not in self.weights:
            raise HwgenError(
                "weights are not quantized (no Quant/BipolarQuant on the weight initializer); use "
                "a Brevitas QuantLinear / QuantConv2d", node=node.name, op=node.op_type)
        wq = self.weights[w_name]
        return wq, wq.values, np.broadcast_to(wq.scale, wq.values.shape)

    def import_matvec(self, node, x: str, x_scale: float, x_type, flatten_from):
        attrs = _attrs(node)
        if node.input[0] != x:
            raise HwgenError("the data input must be the first operand", node=node.name, op=node.op_type)
        wq, q, s = self.linear_weights(node)
        if node.op_type == "MatMul" or not attrs.get("transB", 0):
            q, s = q.T, s.T  # -> [out, in]
        if node.op_type == "Gemm":
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
                raise HwgenError("Gemm with alpha/beta != 1 or transA is not supported",
                                 node=node.name, op=node.op_type)
        if not np.all(s == s[:, :1]):
            raise HwgenError("weight scales vary along the input dimension", node=node.name, op=node.op_type)
        in_len = self.tensors[x].elements
        if q.shape[1] != in_len:
            raise HwgenError(f"weights expect {q.shape[1]} inputs, the layer gets {in_len}",
                             node=node.name, op=node.op_type)
        if flatten_from is not None:  # ONNX flattened C,H,W; the wire carries H,W,C
            h, w, c = flatten_from
            q = q.reshape(-1, c, h, w).transpose(0, 2, 3, 1).reshape(len(q), -1)
        acc, bias_nodes, out = self.bias_split(node, (1, -1))
        op = MatVec(name=node.name, inputs=[x], outputs=[acc], weights=np.ascontiguousarray(q),
                    in_type=x_type, w_type=wq.dtype, input_scale=x_scale,
                    weight_scale=np.ascontiguousarray(s[:, 0]).astype(np.float32))
        op.input_scale = through(op, x_scale, self.channel_quant, node)
        self.tensors[acc] = TensorInfo((q.shape[0],), None)
        return op, acc, bias_nodes, out

    def bias_split(self, node, bias_shape):
        """The accumulator is the pure dot product; a bias input becomes a float Add after it."""
        out = node.output[0]
        index = 2
        if len(node.input) <= index or not node.input[index]:
            return out, [], out
        acc = out + "__acc"
        bias = self.const(node, index, "the bias").astype(np.float32).reshape(bias_shape)
        bname = node.input[index] + "__hwgen_bias"
        self.inits[bname] = bias
        return acc, [onnx.helper.make_node("Add", [acc, bname], [out], name=node.name + "_bias")], out

    def import_conv(self, node, x: str, x_scale: float, x_type, extra_pads):
        attrs = _attrs(node)
        shape = self.tensors[x].shape
        if len(shape) != 3:
            raise HwgenError("Conv needs a spatial (N, C, H, W) input", node=node.name, op=node.op_type)
        wq, q, s = self.linear_weights(node)
        if q.ndim != 4:
            raise HwgenError("only 2-D convolutions are supported", node=node.name, op=node.op_type)
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise HwgenError(f"dilated convolutions are not supported (dilations {list(attrs['dilations'])}): "
                             "hwgen's sliding window reads dense k x k patches; use dilation 1",
                             node=node.name, op=node.op_type)
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise HwgenError("auto_pad is not supported; export with explicit pads", node=node.name, op=node.op_type)
        sc = s.reshape(len(s), -1)
        if not np.all(sc == sc[:, :1]):
            raise HwgenError("weight scales must be per output channel", node=node.name, op=node.op_type)
        pt, pl, pb, pr = _pads(attrs.get("pads", [0, 0, 0, 0]))
        et, el, eb, er = extra_pads
        groups = int(attrs.get("group", 1))
        h, w, c = shape
        if q.shape[1] * groups != c:
            raise HwgenError(f"weights expect {q.shape[1] * groups} input channels, the layer gets {c}",
                             node=node.name, op=node.op_type)
        acc, bias_nodes, out = self.bias_split(node, (1, -1, 1, 1))
        op = Conv(name=node.name, inputs=[x], outputs=[acc],
                  weights=np.ascontiguousarray(q.transpose(0, 2, 3, 1)), in_type=x_type, w_type=wq.dtype,
                  input_scale=x_scale, weight_scale=np.ascontiguousarray(sc[:, 0]).astype(np.float32),
                  in_shape=(h, w, c), kernel=tuple(int(k) for k in q.shape[2:]),
                  stride=tuple(int(v) for v in attrs.get("strides", [1, 1])),
                  pads=(pt + et, pl + el, pb + eb, pr + er), groups=groups)
        op.input_scale = through(op, x_scale, self.channel_quant, node)
        self.tensors[acc] = TensorInfo(op.out_shape, None)
        return op, acc, bias_nodes, out

    def import_maxpool(self, node, x: str, x_type) -> MaxPool:
        attrs = _attrs(node)
        shape = self.tensors[x].shape
        if len(shape) != 3 or attrs.get("ceil_mode", 0) or any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise HwgenError("MaxPool needs an N, C, H, W input, floor mode and no dilation",
                             node=node.name, op=node.op_type)
        kernel = tuple(int(k) for k in attrs["kernel_shape"])
        op = MaxPool(name=node.name, inputs=[x], outputs=[node.output[0]], in_shape=shape, kernel=kernel,
                     stride=tuple(int(v) for v in attrs.get("strides", [1, 1])),  # ONNX's default: 1
                     pads=_pads(attrs.get("pads", [0, 0, 0, 0])), dtype=x_type)
        self.tensors[node.output[0]] = TensorInfo(op.out_shape, x_type)
        return op

    def global_pool_check(self, node, x: str) -> None:
        """GlobalAveragePool, or ReduceMean over exactly H and W (nn.AdaptiveAvgPool2d(1),
        x.mean((2, 3)) in PyTorch's exports), of an N, C, H, W tensor."""
        shape = self.tensors[x].shape
        if node.op_type == "ReduceMean":
            attrs = _attrs(node)
            axes = attrs.get("axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                axes = self.const(node, 1, "the axes").reshape(-1).tolist()
            rank = len(shape) + 1
            axes = sorted(int(a) % rank for a in axes) if axes else None
            if axes != [2, 3] or rank != 4:
                what = "all axes" if axes is None else f"axes {axes}"
                raise HwgenError(
                    f"ReduceMean over {what} of a rank-{rank} tensor is not supported between layers; "
                    "hwgen maps only the mean over H and W of an N, C, H, W tensor (axes [2, 3], as "
                    "nn.AdaptiveAvgPool2d(1) or x.mean((2, 3)) export it) onto hardware: use that, or "
                    "move the reduction after the last quantizer, where it runs on the host",
                    node=node.name, op=node.op_type)
        if len(shape) != 3:
            raise HwgenError(f"{node.op_type} needs an N, C, H, W input", node=node.name, op=node.op_type)

    def avgpool_window(self, node, x: str) -> tuple[tuple[int, int], tuple[int, int]]:
        """(kernel, stride) of an AveragePool that is an integer window sum: N, C, H, W, 2-D, no
        padding, no dilation (ceil_mode only where it changes nothing)."""
        attrs = _attrs(node)
        shape = self.tensors[x].shape
        if len(shape) != 3 or len(attrs.get("kernel_shape", [])) != 2:
            raise HwgenError("AveragePool needs an N, C, H, W input and a 2-D kernel", node=node.name, op=node.op_type)
        kernel = tuple(int(k) for k in attrs["kernel_shape"])
        stride = tuple(int(v) for v in attrs.get("strides", [1, 1]))  # ONNX's default: 1
        pads = [int(p) for p in attrs.get("pads", [0, 0, 0, 0])]
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
        if any(pads) or auto_pad not in ("NOTSET", "VALID"):
            what = f"pads {pads}" if any(pads) else f"auto_pad {auto_pad}"
            raise HwgenError(
                f"AveragePool with padding ({what}) is not supported: hwgen maps an average pool onto an "
                "integer window sum, and a padded border window averages fewer real pixels; use padding=0 "
                "(e.g. nn.AvgPool2d(k, s) or TruncAvgPool2d without padding), or pool after the last "
                "quantizer, where it runs on the host", node=node.name, op=node.op_type)
        if any(d != 1 for d in attrs.get("dilations", [1, 1])):
            raise HwgenError("dilated average pools are not supported; use dilation 1",
                             node=node.name, op=node.op_type)
        h, w, _ = shape
        if kernel[0] > h or kernel[1] > w or min(kernel + stride) < 1:
            raise HwgenError(f"AveragePool kernel {list(kernel)} does not fit the {h}x{w} input",
                             node=node.name, op=node.op_type)
        if attrs.get("ceil_mode", 0) and ((h - kernel[0]) % stride[0] or (w - kernel[1]) % stride[1]):
            raise HwgenError("AveragePool with ceil_mode=1 and partial border windows is not supported; "
                             "use ceil_mode=0", node=node.name, op=node.op_type)
        return kernel, stride

    def import_pool(self, node, x: str, x_scale: float, x_type):
        """Average pool -> integer sums: GlobalSumPool (GlobalAveragePool, ReduceMean over H and W) or
        SumPool (AveragePool, k x k windows). Then, by what follows:
          a layer (or the output): the 1/(k*k) moves into its input scale;
          a quantizer (e.g. a QuantIdentity after AvgPool2d): the requantization of sum * s / (k*k)
          becomes a FloatActivation (a Threshold after streamlining) on the signed sum;
          a Trunc (Brevitas TruncAvgPool2d / TruncAdaptiveAvgPool2d): see import_trunc."""
        if node.op_type in GLOBAL_POOLS:
            self.global_pool_check(node, x)
            h, w, c = self.tensors[x].shape
            count, out_shape = h * w, (c,)
        else:
            kernel, stride = self.avgpool_window(node, x)
            h, w, c = self.tensors[x].shape
            count = kernel[0] * kernel[1]
            out_shape = ((h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1, c)
        lo, hi = x_type.min * count, x_type.max * count
        mean_scale = np.float32(x_scale) / np.float32(count)
        mean_scale = mean_scale if np.ndim(mean_scale) else float(mean_scale)
        out = node.output[0]
        nxt = self.next_node(out)
        trunc = None
        if nxt is not None and nxt.op_type == "Trunc":
            if np.ndim(x_scale):
                raise HwgenError(
                    f"a Trunc after an average pool of per-channel scales (activation quantizer "
                    f"'{self.channel_quant}'): hwgen's Trunc takes one scale per tensor; give "
                    f"'{self.channel_quant}' a per-tensor scale", node=nxt.name, op=nxt.op_type)
            opsets = {o.domain: o.version for o in self.w.model.opset_import}
            trunc = trunc_spec(nxt, self.inits, opsets, mean_scale)
        after = self.next_node(nxt.output[0]) if trunc is not None else nxt
        # a Threshold follows (the Trunc's or a quantizer's): it takes signed sums, as after an accumulator
        thresholded = (trunc is not None and not trunc.scale_only(lo, hi)) or \
            (after is not None and after.op_type in QUANTIZERS)
        out_type = IntType(signed_bits_for(lo, hi), signed=True) if thresholded else smallest_type(lo, hi)
        if node.op_type in GLOBAL_POOLS:
            op = GlobalSumPool(name=node.name, inputs=[x], outputs=[out], in_shape=(h, w, c), in_type=x_type,
                               out_type=out_type)
        else:
            op = SumPool(name=node.name, inputs=[x], outputs=[out], in_shape=(h, w, c), kernel=kernel,
                         stride=stride, in_type=x_type, out_type=out_type)
        through(op, x_scale, self.channel_quant, node)
        self.ops.append(op)
        self.tensors[out] = TensorInfo(out_shape, out_type)
        if trunc is not None:
            return self.import_trunc(nxt, trunc, out, out_type, (lo, hi))
        if nxt is None or nxt.op_type not in QUANTIZERS:
            return out, mean_scale, out_type
        quant = self.quantizer_of(nxt)
        n_name = out + "__hwgen_pool_size"
        self.inits[n_name] = np.array(count, dtype=np.float32)
        mean = out + "__hwgen_mean"
        seg = self.segment([onnx.helper.make_node("Div", [out, n_name], [mean], name=node.name + "_mean")],
                           out, (c,), mean)
        y = nxt.output[0]
        self.ops.append(FloatActivation(
            name=nxt.name, inputs=[out], outputs=[y], scale=np.broadcast_to(np.float32(x_scale), (c,)).copy(),
            segment=seg, quantizer=quant, onnx_nodes=[node.name], segment_shape=(c,)))
        self.tensors[y] = TensorInfo(out_shape, quant.out_type)
        return y, quant.scale, quant.out_type

    def import_trunc(self, node, spec, s: str, s_type, s_range):
        """A Trunc on the integer sums s (hwgen.frontend.trunc: out = f(s) * out_scale, f monotone):
          the identity on the sums' range (f(s) * out_scale == s * scale, e.g. Brevitas' RoundTo8bit
          on sums of fewer than 8 bits): no op;
          a quantizer after it: folded into that quantizer's FloatActivation on s (its float ops
          compute f exactly), so streamlining makes one Threshold of both;
          else: a Threshold on s reproducing f on the sums' whole range (a shift-and-clip
          requantizer after the requantize pass)."""
        lo, hi = s_range
        y = node.output[0]
        shape = self.tensors[s].shape
        c = shape[-1]
        nxt = self.next_node(y)
        quant = self.quantizer_of(nxt) if nxt is not None and nxt.op_type in QUANTIZERS else None
        if spec.scale_only(lo, hi):
            scale = spec.rescaled()
            self.notes.append(f"Trunc '{node.name}' changes nothing on its input range: no hardware")
            self.ops[-1].outputs = [y]
            self.tensors[y] = self.tensors.pop(s)
            if quant is None:
                return y, scale, s_type
            q = nxt.output[0]
            self.ops.append(FloatActivation(
                name=nxt.name, inputs=[y], outputs=[q], scale=np.full(c, np.float32(scale), np.float32),
                segment=None, quantizer=quant, onnx_nodes=[node.name], segment_shape=(c,)))
            self.tensors[q] = TensorInfo(shape, quant.out_type)
            return q, quant.scale, quant.out_type
        if quant is not None:
            x_in = y + "__hwgen_trunc_in"
            nodes = spec.segment_nodes(x_in, y, self.inits, node.name + "__hwgen")
            seg = make_segment(nodes, self.inits, x_in, (c,), y, max(self.opset, 13))
            q = nxt.output[0]
            self.ops.append(FloatActivation(
                name=nxt.name, inputs=[s], outputs=[q],
                scale=np.full(c, np.float32(2.0 ** -spec.shift), np.float32), segment=seg, quantizer=quant,
                onnx_nodes=[node.name], segment_shape=(c,)))
            self.tensors[q] = TensorInfo(shape, quant.out_type)
            return q, quant.scale, quant.out_type
        thresholds, base, out_type = spec.staircase(lo, hi)
        self.ops.append(Threshold(
            name=node.name, inputs=[s], outputs=[y], thresholds=np.tile(thresholds, (c, 1)),
            decreasing=np.zeros(c, bool), in_type=s_type, out_type=out_type, out_base=base,
            out_scale=spec.out_scale))
        self.tensors[y] = TensorInfo(shape, out_type)
        return y, spec.out_scale, out_type

    def zero_pads(self, node) -> tuple[int, int, int, int]:
        """A constant zero Pad on H and W only, to be folded into the next Conv."""
        attrs = _attrs(node)
        pads = attrs.get("pads")
        if pads is None:
            pads = self.const(node, 1, "the pads").tolist()
        value = 0.0
        if len(node.input) > 2 and node.input[2]:
            value = float(self.const(node, 2, "the pad value").reshape(()))
        pads = [int(p) for p in pads]
        if attrs.get("mode", b"constant") not in (b"constant", "constant") or value != 0.0 or \
                len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5]:
            raise HwgenError("only constant zero padding of H and W (before a Conv) is supported",
                             node=node.name, op=node.op_type)
        return pads[2], pads[3], pads[6], pads[7]

    def run(self) -> Graph:
        graph_input = next(i.name for i in self.g.input if i.name not in self.inits)
        graph_output = self.g.output[0].name
        self.fold_weight_quantizers()
        self.fold_constant_quantizers()
        x, quant = self.import_head(graph_input)
        _, graph_output = self.walk_path(x, quant.scale, quant.out_type, graph_output)
        out_shape = tuple(int(d) for d in (self.w.get_tensor_shape(graph_output) or [0, 0])[1:])
        self.tensors[graph_output] = TensorInfo(out_shape, None)
        self.check_unused(graph_output)
        graph = Graph(name=_model_name(self.path), ops=self.ops, tensors=self.tensors,
                      input=graph_input, output=graph_output, source=self.path, notes=self.notes)
        graph.validate()
        return graph

    def walk_path(self, x: str, x_scale, x_type, graph_output: str, join: str | None = None):
        """Import the data path from the integer tensor x (scale x_scale, type x_type) until the graph
        output, or with `join` (the name of a residual Add) until the next node is that Add.
        Returns ((x, x_scale, x_type) at the join or None, the graph output tensor)."""
        flatten_from = None  # (H, W, C) when x was flattened from a spatial tensor
        pads = (0, 0, 0, 0)  # a Pad waiting for its Conv
        while True:
            self.fork_residual(x, x_scale, x_type)
            node = self.next_node(x)
            if join is not None and node is not None and node.name == join:
                return (x, x_scale, x_type), graph_output
            if node is not None and node.op_type in ("Mul", "Div", "Add") and self.residual_end(node):
                x, x_scale, x_type = self.import_residual(node, x, x_scale, x_type)
                continue
            if node is not None and node.op_type in ("Reshape", "Flatten", "Identity", "Squeeze"):
                out_shape = self.sample_shape(node.output[0])
                shape = self.tensors[x].shape
                if len(shape) == 3 and len(out_shape) == 1 and shape[0] * shape[1] > 1:
                    flatten_from = shape  # the next MatVec reorders its columns
                elif len(shape) == 3 and len(out_shape) == 3:
                    raise HwgenError("reshaping a feature map is not supported", node=node.name, op=node.op_type)
                self.tensors[node.output[0]] = TensorInfo((int(np.prod(out_shape)),) if len(out_shape) == 1
                                                          else self.tensors[x].shape, self.tensors[x].dtype)
                self.ops[-1].outputs = [node.output[0]]
                del self.tensors[x]
                x = node.output[0]
                continue
            if node is not None and node.op_type == "MaxPool":
                op = self.import_maxpool(node, x, x_type)
                x_scale = through(op, x_scale, self.channel_quant, node)
                self.ops.append(op)
                x = op.outputs[0]
                continue
            if node is not None and node.op_type in POOLS:
                x, x_scale, x_type = self.import_pool(node, x, x_scale, x_type)
                continue
            if node is not None and node.op_type == "Trunc":
                raise HwgenError(
                    "a Trunc is supported only right after an average pool (AveragePool, GlobalAveragePool "
                    "or ReduceMean over H and W: Brevitas TruncAvgPool2d / TruncAdaptiveAvgPool2d), where "
                    "it truncates the pool's integer sums", node=node.name, op=node.op_type)
            if node is not None and node.op_type == "Pad":
                pads = self.zero_pads(node)
                nxt = self.next_node(node.output[0])
                if nxt is None or nxt.op_type != "Conv":
                    raise HwgenError("a Pad must be followed by a Conv", node=node.name, op=node.op_type)
                self.tensors[node.output[0]] = self.tensors.pop(x)
                self.ops[-1].outputs = [node.output[0]]
                x = node.output[0]
                continue
            if node is None:  # a quantizer feeds the graph output directly
                x_int = x + "__int"
                self.ops[-1].outputs = [x_int]
                self.tensors[x_int] = self.tensors.pop(x)
                x = x_int
                self.ops.append(self.host_tail(x, x_scale, None, graph_output))
                break
            if node.op_type not in LINEAR:
                if node.op_type in QUANTIZERS:
                    raise HwgenError("two quantizers in a row are not supported", node=node.name, op=node.op_type)
                x_nodes, end, stop = self.walk_float(x, TAIL_OPS, "after the last quantizer")
                if stop is not None:
                    perm = next((n for n in x_nodes if n.op_type in PERMUTATIONS), None)
                    if perm is not None:
                        raise self.permutation_inside(perm, stop)
                    raise self.unsupported(stop, "between a quantizer and a layer", ["Reshape", "Flatten"])
                self.ops.append(self.host_tail(x, x_scale, x_nodes, end))
                graph_output = end
                break
            if node.op_type == "Conv":
                op, acc, bias_nodes, out = self.import_conv(node, x, x_scale, x_type, pads)
                pads = (0, 0, 0, 0)
            else:
                op, acc, bias_nodes, out = self.import_matvec(node, x, x_scale, x_type, flatten_from)
            flatten_from = None
            self.ops.append(op)
            where = f"between layer '{node.name}' and its activation quantizer"
            float_nodes, end, stop = self.walk_float(out, TAIL_OPS, where)
            seg_nodes = bias_nodes + float_nodes
            seg_shape = (op.out_channels, 1, 1) if isinstance(op, Conv) else (op.out_channels,)
            if stop is not None and stop.op_type in QUANTIZERS and stop.input[0] == end:
                moved = [n for n in float_nodes if n.op_type in PERMUTATIONS]
                if moved:  # a permutation commutes with elementwise ops: run it after the quantizer
                    float_nodes, end = self.without_permutations(float_nodes, end)
                    seg_nodes = bias_nodes + float_nodes
                pool = self.pool_before_quantizer(float_nodes, stop, moved)
                if pool is not None:  # max(Q(g(.))) = Q(g(max(.))): pool the quantizer's integers
                    float_nodes, end = self.rewired(float_nodes, end, {pool.name})
                    seg_nodes = bias_nodes + float_nodes
                bad = [n for n in float_nodes if n.op_type not in ELEMENTWISE]
                if bad:
                    raise self.unsupported(bad[0], where, ELEMENTWISE)
                quant = self.quantizer_of(stop)
                segment = self.segment(seg_nodes, acc, seg_shape, end) \
                    if seg_nodes else None
                x = stop.output[0]
                q = x + "__hwgen_unpermuted" if moved else x + "__hwgen_unpooled" if pool is not None else x
                self.ops.append(FloatActivation(
                    name=stop.name, inputs=[acc], outputs=[q], scale=op.float_scale, segment=segment,
                    quantizer=quant, onnx_nodes=[n.name for n in float_nodes], segment_shape=seg_shape))
                self.tensors[q] = TensorInfo(self.tensors[acc].shape, quant.out_type)
                x_scale, x_type = quant.scale, quant.out_type
                if pool is not None:
                    pooled = onnx.NodeProto()
                    pooled.CopyFrom(pool)
                    pooled.output[0] = x
                    op = self.import_maxpool(pooled, q, x_type)
                    x_scale = through(op, x_scale, stop.name, pool)
                    self.ops.append(op)
                if moved:  # the quantizer's integers go to the host, which permutes them
                    tail_nodes, end, stop = self.walk_float(x, TAIL_OPS, "after the last quantizer")
                    if stop is not None:
                        raise self.permutation_inside(moved[0], stop)
                    self.ops.append(self.host_tail(q, x_scale, self.rechain(moved, q, x) + tail_nodes, end))
                    graph_output = end
                    break
                continue
            if stop is not None:
                raise HwgenError(
                    f"layer '{node.name}' feeds {stop.op_type} '{stop.name}' without an activation "
                    "quantizer in between; quantize the activation (e.g. QuantReLU / QuantIdentity)",
                    node=stop.name, op=stop.op_type)
            if end == acc:  # the layer feeds the output itself: its accumulator needs a name (and shape) of its own
                op.outputs = [acc + "__acc"]
                self.tensors[op.outputs[0]] = self.tensors.pop(acc)
                acc = op.outputs[0]
            self.ops.append(self.host_tail(acc, op.float_scale, seg_nodes, end))
            graph_output = end
            break
        return None, graph_output

    # --- pixel shuffles (DepthToSpace / SpaceToDepth) ----------------------------------------
    @staticmethod
    def permutation_inside(perm, stop) -> HwgenError:
        return HwgenError(
            f"{perm.op_type} (a pixel shuffle) is not supported inside the integer path (it reaches "
            f"{stop.op_type} '{stop.name}'): hwgen runs DepthToSpace / SpaceToDepth only on the host, after "
            "the last quantizer; move it there (e.g. last conv -> quant -> PixelShuffle -> output, or last "
            "conv -> PixelShuffle -> quant -> output) or run the layers after it on the host",
            node=perm.name, op=perm.op_type)

    def without_permutations(self, nodes, end: str):
        """The float ops between a layer and its quantizer without their permutations (which move past
        the quantizer, into the host tail), rewired; and the new name of the quantizer's input. Ops
        after a permutation must treat every element alike (scalar constants only), else moving the
        permutation would change what they do."""
        perms = [n for n in nodes if n.op_type in PERMUTATIONS]
        for n in nodes[nodes.index(perms[0]) + 1:]:
            per_channel = [i for i in n.input if i in self.inits and np.asarray(self.inits[i]).size > 1]
            if n.op_type not in PERMUTATIONS and per_channel:
                perm = perms[0]
                raise HwgenError(
                    f"{n.op_type} '{n.name}' after {perm.op_type} '{perm.name}' has per-element constants "
                    f"('{per_channel[0]}'): hwgen runs {perm.op_type} on the host after the last quantizer, "
                    f"which needs the ops between them to use scalars only; move {perm.op_type} after "
                    f"{n.op_type} in the model", node=perm.name, op=perm.op_type)
        return self.rewired(nodes, end, {n.name for n in perms})

    # --- a MaxPool between a layer and its activation quantizer --------------------------------
    def pool_before_quantizer(self, nodes, quant_node, moved):
        """The MaxPool among the float ops between a layer and its quantizer (conv -> BN -> MaxPool ->
        QuantReLU), or None. It moves after the quantizer, onto integers: a quantizer is non-decreasing,
        so max(Q(g(v))) = Q(g(max(v))) when every op g between the pool and the quantizer is
        non-decreasing too, in every channel (Relu, a positive per-channel scale, a BatchNorm of positive
        gamma, ...). Anything else is refused, naming the op."""
        pools = [n for n in nodes if n.op_type == "MaxPool"]
        if not pools:
            return None
        pool = pools[0]
        fix = ("put the MaxPool after the activation quantizer (conv -> BN -> activation -> MaxPool, "
               "as FINN's CNV does)")
        if len(pools) > 1 or moved:
            other = pools[1] if len(pools) > 1 else moved[0]
            raise HwgenError(f"a MaxPool and {other.op_type} '{other.name}' between one layer and its "
                             f"quantizer '{quant_node.name}' are not supported; {fix}",
                             node=pool.name, op=pool.op_type)
        x = pool.output[0]
        for n in nodes[nodes.index(pool) + 1:]:
            if not self.nondecreasing(n, x):
                raise HwgenError(
                    f"MaxPool '{pool.name}' runs before {n.op_type} '{n.name}', which is not non-decreasing in "
                    f"every channel (a negative scale turns the channel's max into a min), and then the activation "
                    f"quantizer '{quant_node.name}': hwgen pools the quantizer's integers, which is exact only "
                    f"when everything between the pool and the quantizer is non-decreasing; {fix}",
                    node=pool.name, op=pool.op_type)
            x = n.output[0]
        return pool

    def nondecreasing(self, node, x: str) -> bool:
        """Whether the float op `node` is a non-decreasing function of its input x in every element
        (its other operands constants)."""
        op = node.op_type
        if op in ("Relu", "Clip", "Identity", "HardTanh", "Sigmoid", "Tanh"):
            return node.input[0] == x
        if op == "LeakyRelu":
            return _attrs(node).get("alpha", 0.01) >= 0
        others = [i for i in node.input[1:] if i] if node.input[0] == x else None
        if others is None or any(i not in self.inits for i in others):
            return op in ("Add", "Mul") and len(node.input) == 2 and node.input[1] == x \
                and node.input[0] in self.inits and (op == "Add" or np.all(self.inits[node.input[0]] >= 0))
        if op in ("Add", "Sub"):
            return True
        if op == "Mul":
            return bool(np.all(self.inits[others[0]] >= 0))
        if op == "Div":
            return bool(np.all(self.inits[others[0]] > 0))
        if op == "BatchNormalization":
            gamma, var = self.inits[node.input[1]], self.inits[node.input[4]]
            return bool(np.all(gamma / np.sqrt(var + _attrs(node).get("epsilon", 1e-5)) >= 0))
        return False

    def rewired(self, nodes, end: str, drop: set[str]):
        """`nodes` without those named in `drop` (single-input ops, each replaced by a wire from its input
        to its output), as copies; and the new name of `end`."""
        rename, kept = {}, []
        for n in nodes:
            if n.name in drop:
                rename[n.output[0]] = rename.get(n.input[0], n.input[0])
                continue
            copy = onnx.NodeProto()
            copy.CopyFrom(n)
            for k, name in enumerate(copy.input):
                copy.input[k] = rename.get(name, name)
            kept.append(copy)
        return kept, rename.get(end, end)

    @staticmethod
    def rechain(perms, first: str, last: str) -> list:
        """Copies of the permutations `perms` chained from tensor `first` to tensor `last`."""
        out = []
        src = first
        for k, n in enumerate(perms):
            copy = onnx.NodeProto()
            copy.CopyFrom(n)
            copy.input[0] = src
            copy.output[0] = last if k == len(perms) - 1 else f"{n.output[0]}__hwgen_moved"
            src = copy.output[0]
            out.append(copy)
        return out

    def fork_residual(self, x: str, scale: float, dtype) -> None:
        """x feeds a layer and a later Add: keep it as the skip input of that Add (an identity
        shortcut). x feeds two paths of layers that meet at one Add (a projection shortcut): import
        the shorter path (the skip chain) now, up to the Add, and keep its end as the Add's skip input;
        the caller then walks the other path (the body) from x."""
        nodes = [n for n in self.consumers(x) if (x, n.name) not in self.deferred]
        adds = [n for n in nodes if n.op_type == "Add"]
        if len(nodes) == 2 and len(adds) == 1:
            self.deferred.add((x, adds[0].name))
            self.skips[adds[0].name] = (x, scale, dtype)
        elif len(nodes) == 2 and not adds:
            self.import_skip_chain(x, scale, dtype, nodes)

    def data_inputs(self, node) -> list[str]:
        """node's inputs that are computed (not constants, quantized weights or empty)."""
        return [i for i in node.input if i and i not in self.inits and i not in self.weights]

    def branch_path(self, x: str, first, names: str) -> tuple[list, onnx.NodeProto]:
        """The nodes from `first` (a consumer of x) up to the Add they feed, and that Add: each node
        takes one computed input and feeds exactly one node; else a HwgenError naming where not."""
        path, node = [], first
        while True:
            data = self.data_inputs(node)
            if node.op_type == "Add" and len(data) == 2:
                return path, node
            if len(data) != 1:
                raise self.fork_error(x, names, f"{node.op_type} '{node.name}' on one path takes {len(data)} "
                                      "computed inputs", node)
            path.append(node)
            nxt = self.consumers(node.output[0])
            if len(nxt) != 1:
                what = "the graph output" if not nxt else ", ".join(f"{n.name} ({n.op_type})" for n in nxt)
                raise self.fork_error(x, names, f"'{node.output[0]}' of {node.op_type} '{node.name}' on one path "
                                      f"feeds {what}", node)
            node = nxt[0]

    @staticmethod
    def fork_error(x: str, names: str, why: str, node) -> HwgenError:
        return HwgenError(
            f"tensor '{x}' feeds several nodes ({names}) and {why}: hwgen compiles one data path with residual "
            "blocks Add(f(h), g(h)) whose two paths f and g are chains of layers (each tensor feeding one node) "
            "meeting at one Add; restructure this branch so (e.g. a ResNet block with an identity or a "
            "projection shortcut)", node=node.name, op=node.op_type)

    def import_skip_chain(self, x: str, scale, dtype, nodes) -> None:
        """x feeds two chains that meet at one Add (a ResNet projection shortcut): import the shorter
        one (the skip chain g: e.g. a 1x1 stride-2 conv, BatchNorm, quantizer) up to the Add, whose
        skip input becomes g's quantized output; the body (the other chain) follows from x."""
        names = ", ".join(f"{n.name} ({n.op_type})" for n in nodes)
        (p0, add0), (p1, add1) = (self.branch_path(x, n, names) for n in nodes)
        if add0.name != add1.name:
            raise self.fork_error(x, names, f"its paths end at two different Adds ('{add0.name}', '{add1.name}')",
                                  add1)
        for p in (p0, p1):
            scaled = len(p) > 1 and p[-1].op_type in ("Mul", "Div") and p[-2].op_type in QUANTIZERS
            if p[-1].op_type not in QUANTIZERS and not scaled:
                raise HwgenError(
                    f"the path {p[0].name} ... {p[-1].name} from '{x}' reaches this residual Add from {p[-1].op_type} "
                    f"'{p[-1].name}', not from an activation quantizer: hwgen adds two quantized tensors; quantize "
                    "both paths' outputs (e.g. QuantReLU / QuantIdentity after the BatchNorm)", node=add0.name, op="Add")
        ends_quantized = [p for p in (p0, p1) if p[-1].op_type in QUANTIZERS]
        if not ends_quantized:
            raise HwgenError(f"both paths from '{x}' scale their output before this residual Add ('{p0[-1].name}', "
                             f"'{p1[-1].name}'); hwgen scales one of them (h + dt * f(h)): fold the other's scale "
                             "into its quantizer", node=add0.name, op="Add")
        skip = min(ends_quantized, key=len)
        body = p1 if skip is p0 else p0
        for p in (skip, body):
            if p[0].op_type in SHAPE_ONLY + ("Pad",):
                raise HwgenError(f"a residual path may not begin with {p[0].op_type}: hwgen keeps the fork tensor "
                                 f"'{x}' for both paths (pad inside the Conv, reshape after the Add)",
                                 node=p[0].name, op=p[0].op_type)
        self.deferred.add((x, body[0].name))
        end, _ = self.walk_path(x, scale, dtype, self.g.output[0].name, join=add0.name)
        self.deferred.discard((x, body[0].name))
        self.deferred.add((x, skip[0].name))
        if end is None:  # not reached: branch_path checked the path ends at the Add
            raise HwgenError(f"the skip path from '{x}' does not reach this residual Add", node=add0.name, op="Add")
        self.skips[add0.name] = end
        self.notes.append(f"residual Add '{add0.name}' has a projection shortcut: skip path {skip[0].name} ... "
                          f"{skip[-1].name} ({len(skip)} nodes), body {body[0].name} ... {body[-1].name} "
                          f"({len(body)} nodes)")

    def residual_end(self, node) -> onnx.NodeProto | None:
        """The Add that closes a residual, reached from `node` through at most one scalar Mul/Div."""
        add = node
        if node.op_type in ("Mul", "Div"):
            if len(node.input) < 2 or node.input[1] not in self.inits or self.inits[node.input[1]].size != 1:
                return None
            add = self.next_node(node.output[0])
        return add if add is not None and add.op_type == "Add" and add.name in self.skips else None

    def import_residual(self, node, x: str, x_scale: float, x_type):
        """skip + dt * x -> [Relu] -> Quant becomes an integer Add with power-of-two alignment shifts.

        A Relu before an unsigned quantizer changes nothing (the quantizer clamps negative values to 0
        as well; Brevitas' QuantReLU after a residual add exports as Relu -> Quant). The three scales
        (skip, dt * x, sum) must be powers of two, or all equal (e.g. bnn_pynq's QuantBasicBlock, whose
        branches share one QuantReLU: then the reference's float32 sum is the integer sum times the
        scale to within a few ulp, and its quantizer recovers that integer exactly)."""
        from ..ir.types import log2_exact

        add = self.residual_end(node)
        dt = 1.0
        if node.op_type in ("Mul", "Div"):
            c = float(self.inits[node.input[1]].reshape(()))
            dt = c if node.op_type == "Mul" else 1.0 / c
        skip, skip_scale, skip_type = self.skips.pop(add.name)
        quant_node = self.next_node(add.output[0])
        relu = None
        if quant_node is not None and quant_node.op_type == "Relu":
            relu, quant_node = quant_node, self.next_node(quant_node.output[0])
        if quant_node is None or quant_node.op_type != "Quant":
            raise HwgenError("a residual Add must be followed by a quantizer (one quantized domain "
                             "for the sum; a Relu may come between them if the quantizer is unsigned)",
                             node=add.name, op="Add")
        quant = self.quantizer_of(quant_node)
        if relu is not None and quant.signed:
            raise HwgenError(f"a Relu between a residual Add and a signed quantizer ('{quant_node.name}') is "
                             "not supported; use an unsigned quantizer (e.g. QuantReLU) after the add",
                             node=relu.name, op="Relu")
        scales = (np.float32(skip_scale), np.float32(x_scale) * np.float32(dt), np.float32(quant.scale))
        if any(np.ndim(v) for v in scales):
            residual_scales_equal(add, quant_node, *scales)
            exps = [0, 0, 0]
        elif scales[0] == scales[1] == scales[2]:
            exps = [0, 0, 0]
        else:
            exps = [log2_exact(float(v)) for v in scales]
        if None in exps:
            raise HwgenError(
                f"residual add with scales {skip_scale:g}, {x_scale:g} x dt {dt:g} -> {quant.scale:g}: "
                "hwgen needs power-of-two scales (and dt), or three equal ones, so the add is exact in integers",
                node=add.name, op="Add")
        low = min(exps)
        out = quant_node.output[0]
        op = Add(name=add.name, inputs=[skip, x], outputs=[out], a_shift=exps[0] - low, b_shift=exps[1] - low,
                 out_shift=exps[2] - low, a_type=skip_type, b_type=x_type, out_type=quant.out_type,
                 out_scale=quant.scale, rounding_mode=quant.rounding_mode)
        self.ops.append(op)
        self.tensors[out] = TensorInfo(self.tensors[x].shape, quant.out_type)
        return out, quant.scale, quant.out_type

    def host_tail(self, x: str, scale, nodes, end: str) -> Tail:
        """Integers on x -> float (x * scale) -> the remaining float ops, run on the host."""
        shape = self.tensors[x].shape
        spatial = len(shape) == 3
        seg_shape = (shape[2], shape[0], shape[1]) if spatial else shape
        segment = self.segment(nodes, x, seg_shape, end) if nodes else None
        channels = shape[-1]
        scale = np.broadcast_to(np.asarray(scale, np.float32), (channels,)).copy()
        return Tail(name="Tail", inputs=[x], outputs=[end], scale=scale, segment=segment, nchw=spatial)

    def check_unused(self, graph_output: str) -> None:
        if graph_output != self.g.output[0].name:
            raise HwgenError(f"the data path ends in '{graph_output}', not in the graph output "
                             f"'{self.g.output[0].name}'")


def _attrs(node) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pads(p) -> tuple[int, int, int, int]:
    """ONNX [top, left, bottom, right] for 2-D."""
    p = [int(v) for v in p]
    return (p[0], p[1], p[2], p[3]) if len(p) == 4 else (0, 0, 0, 0)


def _model_name(path: str) -> str:
    import os
    import re

    base = os.path.splitext(os.path.basename(path))[0]
    name = re.sub(r"[^0-9a-zA-Z_]", "_", base)
    return name if name[:1].isalpha() else "m_" + name


def import_onnx(path: str, input_format: InputFormat | None = None) -> Graph:
    """Read a QONNX file and return the imported (not yet streamlined) IR graph."""
    wrapper = load_qonnx(path)
    known = set(SUPPORTED) | {"Shape", "Gather", "Unsqueeze", "Concat", "Constant"}
    for node in wrapper.graph.node:
        if node.op_type not in known:
            raise HwgenError(
                f"op {node.op_type} is not supported by hwgen (supported: {', '.join(SUPPORTED)})",
                node=node.name, op=node.op_type)
    return _Importer(wrapper, path, input_format).run()
