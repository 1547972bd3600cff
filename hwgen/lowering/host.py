"""Ops that run on the host, not in hardware: the Head (float input -> input quantizer ->
integers), the Tail (integers -> float post-processing) and FloatActivation (the float map from
an accumulator to the next quantizer, which exists only until streamlining replaces it)."""
from __future__ import annotations

import numpy as np

from ..ir import FloatActivation, Head, Tail
from ..ir.float_segment import scale_then_segment
from .base import Lowering, register


@register
class HeadLowering(Lowering):
    op_type = Head

    def golden(self, op: Head, x):
        y = op.quantizer.to_int(x if op.segment is None else op.segment.run(x))
        if op.to_nhwc:
            return y.transpose(0, 2, 3, 1)
        return y.reshape(len(x), -1)

    def reference_scale(self, op: Head, scales):
        return np.float32(op.quantizer.scale)


@register
class TailLowering(Lowering):
    op_type = Tail

    def golden(self, op: Tail, x):
        y = np.asarray(x, np.float32) * np.asarray(op.scale, np.float32)
        if op.nchw:
            y = y.transpose(0, 3, 1, 2)
        return y if op.segment is None else op.segment.run(y)


@register
class FloatActivationLowering(Lowering):
    op_type = FloatActivation

    def golden(self, op: FloatActivation, acc):
        return op.quantizer.to_int(scale_then_segment(op.scale, op.segment, acc, op.segment_shape))

    def reference_scale(self, op: FloatActivation, scales):
        return np.float32(op.quantizer.scale)
