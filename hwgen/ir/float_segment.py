"""A piece of the user's float graph, kept as a tiny ONNX model and run by onnxruntime.

Float pre-processing (the Head), the float ops between an accumulator and the next
quantizer (before streamlining), and the float tail all execute with the same engine the
QONNX reference uses, node by node with graph optimisations off, so results match to the bit.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx


@dataclass
class FloatSegment:
    model_bytes: bytes
    input_name: str
    output_name: str
    _session: object = field(default=None, repr=False, compare=False)

    @property
    def graph(self) -> onnx.GraphProto:
        """The segment's ONNX graph (nodes and constant initializers), for passes that reason about its ops."""
        return onnx.load_from_string(self.model_bytes).graph

    @property
    def op_types(self) -> list[str]:
        return [n.op_type for n in self.graph.node]

    def run(self, x: np.ndarray) -> np.ndarray:
        if self._session is None:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
            opts.intra_op_num_threads = 1
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            self._session = ort.InferenceSession(
                self.model_bytes, sess_options=opts, providers=["CPUExecutionProvider"]
            )
        (y,) = self._session.run([self.output_name], {self.input_name: np.asarray(x, np.float32)})
        return y

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_session"] = None
        return state


def make_segment(
    nodes: list[onnx.NodeProto],
    initializers: dict[str, np.ndarray],
    input_name: str,
    input_shape: tuple[int, ...],
    output_name: str,
    opset: int,
    reference_batch: int = 1,
) -> FloatSegment:
    """Cut `nodes` out as a model with a free batch dimension on `input_name`.

    Reshape targets that spell out the exported batch size get 0 ("copy this dim") there,
    which keeps them valid for any batch; such a Reshape loses `allowzero=1` (today's torch
    exporter sets it: with it a 0 is a literal empty dimension, and onnxruntime refuses [0, -1]).
    """
    from onnx import helper, numpy_helper

    used = {i for n in nodes for i in n.input}
    inits, batch_free = [], set()
    for name in sorted(used & initializers.keys()):
        arr = initializers[name]
        if any(n.op_type == "Reshape" and n.input[1] == name for n in nodes):
            arr = arr.copy()
            if arr.size and arr[0] == reference_batch and not (arr[1:] == 0).any():
                arr[0] = 0
                batch_free.add(name)
        inits.append(numpy_helper.from_array(np.asarray(arr), name))
    nodes = [_without_allowzero(n) if n.op_type == "Reshape" and n.input[1] in batch_free else n for n in nodes]
    if not nodes:  # identity segment
        nodes = [helper.make_node("Identity", [input_name], [output_name + "__id"])]
        output_name = output_name + "__id"
    graph = helper.make_graph(
        list(nodes),
        "segment",
        [helper.make_tensor_value_info(input_name, onnx.TensorProto.FLOAT, ["N", *input_shape])],
        [helper.make_tensor_value_info(output_name, onnx.TensorProto.FLOAT, None)],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)
    return FloatSegment(model.SerializeToString(), input_name, output_name)


def _without_allowzero(node):
    """A copy of a Reshape node with allowzero 0 (a 0 in its target copies the input's dim)."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name != "allowzero"}
    return helper.make_node("Reshape", list(node.input), list(node.output), name=node.name, **attrs)


def scale_then_segment(
    scale: np.ndarray, segment: FloatSegment | None, q: np.ndarray, segment_shape: tuple[int, ...] = ()
) -> np.ndarray:
    """Integer tensor -> float the way the reference carries it: q * scale, then the float ops.

    Per-channel ops only: any [..., C] tensor is run as [M, *segment_shape] (e.g. [M, C, 1, 1]
    for ops written for NCHW) and brought back to its own shape.
    """
    x = np.asarray(q, dtype=np.float32) * np.asarray(scale, dtype=np.float32)
    if segment is None:
        return x
    if not segment_shape:
        return segment.run(x)
    y = segment.run(x.reshape(-1, *segment_shape))
    return y.reshape(x.shape)
