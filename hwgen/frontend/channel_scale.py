"""Per-channel activation scales (Brevitas' scaling_per_output_channel=True on an activation).

A quantizer with one scale s_c per channel gives integers q that stand for q * s_c. The hardware
stays exact as long as every consumer keeps channels apart until the next accumulator-to-quantizer
map, whose per-channel float scale (and so its thresholds) absorbs s_c: a depthwise conv's output o
is acc_o * s_c(o) * w_o, a max pool commutes with positive scales, a sum pool adds within a channel.
Each op's lowering says which input scale its output channels see (Lowering.channel_input_scale).
A dense layer sums channels of different scales, which no integer weights reproduce, and a residual
add aligns its inputs with one shift for all channels: the importer refuses those here, naming the
quantizer to make per-tensor.
"""
from __future__ import annotations

import numpy as np

from ..errors import HwgenError
from ..lowering import lowering_of

PER_TENSOR_HINT = "(Brevitas: scaling_per_output_channel=False)"


def activation_scale(node, scale: np.ndarray, shape) -> float | np.ndarray:
    """A Quant node's activation scale as the IR keeps it: a float when it is one for the whole tensor
    (a per-channel one whose channels are all equal is), else float32 [C]. `shape` is the quantized
    tensor's, batch first. Refused: scales that are not positive and finite (a max pool commutes only
    with positive ones), and scales that vary along another axis than the channels (axis 1)."""
    s = np.asarray(scale)
    flat = s.reshape(-1)
    bad = np.flatnonzero(~(np.isfinite(flat) & (flat > 0)))
    if flat.size == 0 or bad.size:
        what = "is empty" if flat.size == 0 else \
            f"{float(flat[bad[0]]):g}{f' (element {bad[0]})' if flat.size > 1 else ''} is not positive and finite"
        raise HwgenError(
            f"activation scale {what}; hwgen needs positive scales (with them the max of the integers is the max "
            "of the float values, as an integer max pool computes it): re-export with positive activation scales",
            node=node.name, op=node.op_type)
    if np.all(flat == flat[0]):
        return float(flat[0])
    rank = len(shape) if shape is not None else 0
    dims = (1,) * (rank - s.ndim) + s.shape  # numpy broadcasting aligns the scale to the right
    if rank < 2 or s.ndim > rank or dims[1] != shape[1] or any(d != 1 for i, d in enumerate(dims) if i != 1):
        raise HwgenError(
            f"activation scale of shape {list(s.shape)} varies along other axes than the channels (axis 1 of "
            f"the activation of shape {list(shape or [])}); hwgen takes per-tensor or per-channel activation "
            "scales only", node=node.name, op=node.op_type)
    return flat.astype(np.float32)


def through(op, scale, quantizer: str, node) -> float | np.ndarray:
    """The input scale each output channel of the IR op `op` (imported from ONNX `node`) sees, from the
    scale of its input: unchanged when per tensor; else its lowering's answer, or a refusal when an
    output combines channels of different scales. `quantizer` names the Quant node that set them."""
    if np.ndim(scale) == 0:
        return scale
    seen = lowering_of(op).channel_input_scale(op, np.asarray(scale, np.float32))
    if seen is None:
        raise HwgenError(
            f"its input has per-channel scales (activation quantizer '{quantizer}') and each of its outputs sums "
            "channels of different scales: integer weights cannot absorb per-channel input scales exactly, only "
            "ops that keep channels apart until the next quantizer can (depthwise convs, max and average pools); "
            f"give '{quantizer}' a per-tensor scale {PER_TENSOR_HINT}", node=node.name, op=node.op_type)
    return seen


def residual_scales_equal(add, quant_node, skip_scale, branch_scale, sum_scale) -> None:
    """A residual add of per-channel scales (any of the three) is exact in integers only when the
    skip's, the branch's and the sum's scales are equal in every channel: the add aligns its inputs
    with one shift for all channels. Refuse otherwise."""
    scales = [np.asarray(v, np.float32) for v in (skip_scale, branch_scale, sum_scale)]
    try:
        scales = np.broadcast_arrays(*scales)
    except ValueError:
        scales = None
    if scales is not None and all(np.array_equal(scales[0], v) for v in scales[1:]):
        return
    raise HwgenError(
        "residual add with per-channel scales that differ between the skip, the branch and the sum (quantizer "
        f"'{quant_node.name}'): hwgen aligns the two inputs with one shift for all channels, which is exact only "
        "when the three scales are equal in every channel; give the quantizers of both paths and the one after "
        f"the add per-tensor scales {PER_TENSOR_HINT}, or equal per-channel ones", node=add.name, op=add.op_type)
