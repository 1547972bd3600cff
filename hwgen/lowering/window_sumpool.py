"""SumPool: sums over kh x kw windows (stride, no padding) of an integer NHWC tensor, on a
SumPoolUnit (sliding window, then a running sum per channel group). AveragePool imports as this;
the 1/(kh*kw) moves into the next layer's input scale or the next quantizer's thresholds.

It has no folding of its own: its SIMD (channels per beat) is the incoming beat width when that
keeps it off the critical path, else the fewest channels per beat that do (as MaxPool). Cycles per
image: max(Ho*Wo*kh*kw, H*W) * C/SIMD (one window beat per cycle) plus the line-buffer fill.
"""
from __future__ import annotations

import numpy as np

from ..golden.numeric import windows
from ..ir.ops import SumPool
from ..rtl.window_sumpool import SumPoolUnit
from .base import register
from .maxpool import WindowPoolLowering


@register
class SumPoolLowering(WindowPoolLowering):
    op_type = SumPool
    unit_types = (SumPoolUnit,)

    def in_out_types(self, op: SumPool) -> tuple:
        return op.in_type, op.out_type

    def output_range(self, op: SumPool):
        n, c = op.kernel[0] * op.kernel[1], op.in_shape[2]
        return np.full(c, op.in_type.min * n, np.int64), np.full(c, op.in_type.max * n, np.int64)

    def float_sum_terms(self, op: SumPool) -> int:
        return op.kernel[0] * op.kernel[1]

    def golden(self, op: SumPool, x):
        return windows(x.astype(np.int64), op.kernel, op.stride, (0, 0, 0, 0), 0).sum(axis=(3, 4))

    def reference_scale(self, op: SumPool, scales):
        return np.float32(scales[op.inputs[0]] / np.float32(op.kernel[0] * op.kernel[1]))

    def reference_value(self, op: SumPool, values, scales):
        """The reference holds the mean: sum * s / (kh*kw), in float32 like it."""
        n = np.float32(op.kernel[0] * op.kernel[1])
        return (values.astype(np.float32) * np.float32(scales[op.inputs[0]])) / n

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        rows.append({"name": op.name, "op": "SumPool", "pe": None, "simd": u.simd, "cycles": stage.cycles,
                     "in_shape": list(op.in_shape), "out_shape": list(u.out_shape), "kernel": list(op.kernel),
                     "stride": list(op.stride), "fill_cycles": u.fill_cycles, "acc_bits": u.out_bits,
                     "rom_bits": 0, "buffer_bits": u.buffer_bits, "memory_bits": u.buffer_bits,
                     "estimate": self.cost(u, target)})

    def estimate(self, unit: SumPoolUnit, target: str):
        from ..cost import units

        return units.window_sumpool(unit, target)
