"""The host's share of a model as two plain ONNX files, so a third-party host (onnxruntime, C++,
a DMA driver) needs neither hwgen nor qonnx next to the accelerator:

    host_pre.onnx   the model's float input -> the integers the core's input stream carries
                    (the Head: float pre-processing, the input quantizer, NCHW -> NHWC)
    host_post.onnx  the core's integer outputs -> the model's float output
                    (the Tail: x * scale, NHWC -> NCHW, the float ops after the last layer)

Both are built from the original model's nodes (the Head / Tail FloatSegments) plus a few standard
ops for the quantizer, so onnxruntime computes exactly what hwgen's golden model computes
(tests/test_host_onnx.py: host_pre -> golden core -> host_post == Accelerator.predict, bit for bit).

Tensors: host_pre's output "core_in" and host_post's input "core_out" are int64 [N, E], E the
elements of one inference in stream order (the flattened NHWC tensor, channels fastest): the
golden model's integers, Bipolar as -1 / +1. The stream itself carries their wire bits (two's
complement in element_bits; Bipolar as 1 = +1, 0 = -1): packing them into beats is
report.json "io"'s bit_order. Run with graph optimisations disabled for bit-exactness (hwgen
does); the default level gave the same results on the models tested.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .errors import HwgenError
from .ir import Graph

HOST_PRE, HOST_POST = "host_pre.onnx", "host_post.onnx"
CORE_IN, CORE_OUT = "core_in", "core_out"
DEFAULT_OPSET = 13  # when the model's own nodes do not fix one
ROUND_OPSET = 11    # ONNX Round (half to even, qonnx's ROUND) exists from opset 11

# qonnx rounding mode -> (ONNX op, offset added to |y| first, applied to |y| with the sign put back),
# as qonnx.custom_op.general.intquant.resolve_rounding_mode computes them in NumPy
_ROUNDING = {
    "ROUND": ("Round", None, False), "HALF_EVEN": ("Round", None, False),
    "CEIL": ("Ceil", None, False), "FLOOR": ("Floor", None, False),
    "UP": ("Ceil", None, True), "DOWN": ("Floor", None, True),
    "HALF_UP": ("Floor", 0.5, True), "HALF_DOWN": ("Ceil", -0.5, True),
}


class _Builder:
    """Nodes and initializers under names that cannot clash with the model's own."""

    def __init__(self, taken: set[str]):
        self.taken = set(taken)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def name(self, base: str) -> str:
        n, k = f"hwgen_{base}", 1
        while n in self.taken:
            k += 1
            n = f"hwgen_{base}_{k}"
        self.taken.add(n)
        return n

    def const(self, base: str, value) -> str:
        n = self.name(base)
        self.inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def op(self, op_type: str, inputs: list[str], base: str, out: str | None = None, **attrs) -> str:
        out = out or self.name(base)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=self.name(f"{base}_node"), **attrs))
        return out


def _segment_parts(segment) -> tuple[list, list, int | None]:
    """(nodes, initializers, opset) of a FloatSegment's model; only standard-domain nodes."""
    if segment is None:
        return [], [], None
    m = onnx.load_from_string(segment.model_bytes)
    for n in m.graph.node:
        if n.domain not in ("", "ai.onnx"):
            raise HwgenError(f"cannot write the host processing as plain ONNX: op {n.domain}.{n.op_type} "
                             "is not a standard ONNX op", node=n.name or None, op=n.op_type)
    opset = next((o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
    return list(m.graph.node), list(m.graph.initializer), opset


def _names(nodes, inits) -> set[str]:
    return ({t for n in nodes for t in (*n.input, *n.output)} | {n.name for n in nodes}
            | {i.name for i in inits})


def _with_opset(nodes, inits, opset: int, need: int, where: str) -> tuple[list, list, int]:
    """The segment's nodes valid at opset >= need: unchanged when none of their ops changed
    between the two versions (the same schema), else through onnx's version converter."""
    if opset >= need:
        return nodes, inits, opset
    same = all(onnx.defs.get_schema(n.op_type, opset).since_version
               == onnx.defs.get_schema(n.op_type, need).since_version for n in nodes)
    if same:
        return nodes, inits, need
    from onnx import version_converter

    produced = {t for n in nodes for t in n.output}
    consumed = {t for n in nodes for t in n.input if t}
    known = {i.name for i in inits}
    def io(names):
        return [helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in sorted(names)]

    g = helper.make_graph(nodes, "seg", io(consumed - produced - known), io(produced - consumed), initializer=inits)
    old = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    try:
        m = version_converter.convert_version(old, need)
    except Exception as exc:  # noqa: BLE001 - any converter failure gets the same one-line error
        ops = sorted({n.op_type for n in nodes})
        raise HwgenError(f"cannot write {where}: the model is ONNX opset {opset}, the quantizer needs "
                         f"Round (opset {need}), and onnx could not convert {', '.join(ops)} "
                         f"({type(exc).__name__})", op="Round") from None
    return list(m.graph.node), list(m.graph.initializer), need


def _quantize(b: _Builder, x: str, quantizer) -> str:
    """qonnx Quant / BipolarQuant on x as Head.golden computes it (Quantizer.to_int): x / scale,
    clamp to the integer range, round; BipolarQuant: +1 where x / scale >= 0, else -1."""
    y = x
    if quantizer.bipolar:
        if quantizer.scale != 1.0:
            y = b.op("Div", [y, b.const("in_scale", np.float32(quantizer.scale))], "scaled")
        neg = b.op("Less", [y, b.const("zero", np.float32(0.0))], "negative")
        return b.op("Where", [neg, b.const("minus_one", np.int64(-1)), b.const("plus_one", np.int64(1))], "bipolar")
    from qonnx.custom_op.general.intquant import max_int, min_int

    y = b.op("Div", [y, b.const("in_scale", np.float32(quantizer.scale))], "scaled")
    hi = np.float32(max_int(quantizer.signed, quantizer.narrow, quantizer.bits))
    lo = np.float32(min_int(quantizer.signed, quantizer.narrow, quantizer.bits))
    y = b.op("Min", [y, b.const("max_int", hi)], "clamp_hi")
    y = b.op("Max", [y, b.const("min_int", lo)], "clamp_lo")
    mode = quantizer.rounding_mode.upper()
    rule = _ROUNDING.get(mode)
    if rule is None:
        raise HwgenError(f"cannot write host_pre.onnx: rounding mode {quantizer.rounding_mode!r} of the input "
                         "quantizer has no ONNX equivalent here", op="Quant")
    op_type, offset, sign_abs = rule
    if not sign_abs:
        y = b.op(op_type, [y], "rounded")
    else:
        sign = b.op("Sign", [y], "sign")
        mag = b.op("Abs", [y], "magnitude")
        if offset is not None:
            mag = b.op("Add", [mag, b.const("half", np.float32(offset))], "offset")
        y = b.op("Mul", [sign, b.op(op_type, [mag], "rounded")], "rounded_signed")
    return b.op("Cast", [y], "levels", to=TensorProto.INT64)


def _model(nodes, inits, opset: int, inp, out, doc: str) -> onnx.ModelProto:
    """The checked model of `nodes` (in topological order)."""
    graph = helper.make_graph(nodes, "hwgen_host", [inp], [out], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="hwgen", doc_string=doc)
    model.ir_version = min(model.ir_version, 8)  # as FloatSegment: runs on older onnxruntimes too
    onnx.checker.check_model(model)
    return model


def host_pre_model(graph: Graph) -> onnx.ModelProto:
    """Float input [N, *input_shape] -> int64 core_in [N, E] (what the Head hands the core)."""
    head = graph.head
    nodes, inits, opset = _segment_parts(head.segment)
    mode = head.quantizer.rounding_mode.upper()
    need = ROUND_OPSET if (not head.quantizer.bipolar and mode in ("ROUND", "HALF_EVEN")) else 9
    if opset is None:
        opset = DEFAULT_OPSET
    nodes, inits, opset = _with_opset(nodes, inits, opset, need, "host_pre.onnx")
    b = _Builder(_names(nodes, inits) | {graph.input, CORE_IN})
    x = head.segment.output_name if head.segment is not None else graph.input
    q = _quantize(b, x, head.quantizer)
    if head.to_nhwc:
        q = b.op("Transpose", [q], "nhwc", perm=[0, 2, 3, 1])
    b.op("Reshape", [q, b.const("flat", np.array([0, -1], np.int64))], "flat", out=CORE_IN)
    elements = graph.tensors[head.outputs[0]].elements
    inp = helper.make_tensor_value_info(graph.input, TensorProto.FLOAT, ["N", *head.input_shape])
    out = helper.make_tensor_value_info(CORE_IN, TensorProto.INT64, ["N", elements])
    return _model(nodes + b.nodes, inits + b.inits, opset, inp, out,
                  f"hwgen host pre-processing of {graph.name}: float input -> the core's input integers "
                  f"(int64 [N, {elements}], stream order; quantizer {head.quantizer.describe()})")


def host_post_model(graph: Graph) -> onnx.ModelProto:
    """int64 core_out [N, E] (the core's output integers) -> the model's float output."""
    last = graph.core[-1].outputs[0]
    info = graph.tensors[last]
    tail = graph.tail
    if tail is not None and tail.inputs[0] != last:
        raise HwgenError(f"cannot write host_post.onnx: the Tail reads {tail.inputs[0]}, not the core's "
                         f"output {last}")
    segment = tail.segment if tail is not None else None
    nodes, inits, opset = _segment_parts(segment)
    b = _Builder(_names(nodes, inits) | {graph.output, CORE_OUT, last})
    y = b.op("Reshape", [CORE_OUT, b.const("core_shape", np.array([0, *info.shape], np.int64))], "shaped")
    y = b.op("Cast", [y], "as_float", to=TensorProto.FLOAT)
    if tail is not None:  # Tail.golden: x * scale, NHWC -> NCHW, then the float ops
        y = b.op("Mul", [y, b.const("out_scale", np.asarray(tail.scale, np.float32))], "scaled")
        if tail.nchw:
            y = b.op("Transpose", [y], "nchw", perm=[0, 3, 1, 2])
    own = list(b.nodes)
    b.nodes.clear()
    if segment is not None:
        own.append(helper.make_node("Identity", [y], [segment.input_name], name=b.name("segment_in_node")))
        y = segment.output_name
    if y != graph.output:
        b.op("Identity", [y], "out", out=graph.output)
    inp = helper.make_tensor_value_info(CORE_OUT, TensorProto.INT64, ["N", info.elements])
    out = helper.make_tensor_value_info(graph.output, TensorProto.FLOAT, ["N", *graph.tensors[graph.output].shape])
    return _model(own + nodes + b.nodes, inits + b.inits, opset or DEFAULT_OPSET, inp, out,
                  f"hwgen host post-processing of {graph.name}: the core's output integers "
                  f"(int64 [N, {info.elements}], stream order) -> the model's float output")


def write_host_models(graph: Graph, out_dir: str | os.PathLike) -> list[str]:
    """Write host_pre.onnx and host_post.onnx into out_dir (atomically); their file names."""
    from .builddir import write_atomic

    out = Path(out_dir)
    write_atomic(out / HOST_PRE, host_pre_model(graph).SerializeToString())
    write_atomic(out / HOST_POST, host_post_model(graph).SerializeToString())
    return [HOST_PRE, HOST_POST]
