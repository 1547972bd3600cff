"""GlobalSumPool: sum over H x W per channel (GlobalAveragePool imports as this, the 1/(H*W)
moves into the next layer's scale), on a GlobalSumPoolUnit. Channels per beat as for MaxPool;
cycles per image H*W*C/SIMD."""
from __future__ import annotations

import numpy as np

from ..ir import GlobalSumPool
from ..rtl.sumpool import GlobalSumPoolUnit
from ..rtl.timing import ReduceModel
from .base import Lowering, register


@register
class GlobalSumPoolLowering(Lowering):
    op_type = GlobalSumPool
    unit_types = (GlobalSumPoolUnit,)
    fold_hint = "takes the beat width of the stream before it (no folding of its own)"

    def output_range(self, op: GlobalSumPool):
        h, w, c = op.in_shape
        return (np.full(c, op.in_type.min * h * w, np.int64), np.full(c, op.in_type.max * h * w, np.int64))

    def channel_input_scale(self, op: GlobalSumPool, scale):
        """Each output is one input channel's sum."""
        return scale

    def float_sum_terms(self, op: GlobalSumPool) -> int:
        return op.in_shape[0] * op.in_shape[1]

    def golden(self, op: GlobalSumPool, x):
        return x.astype(np.int64).sum(axis=(1, 2))

    def reference_scale(self, op: GlobalSumPool, scales):
        h, w, _ = op.in_shape
        return np.float32(scales[op.inputs[0]] / np.float32(h * w))

    def reference_value(self, op: GlobalSumPool, values, scales):
        """The reference holds the mean: sum * s / (H*W), computed in float32 like it."""
        return (values.astype(np.float32) * np.float32(scales[op.inputs[0]])) / np.float32(np.prod(op.in_shape[:2]))

    def cycles(self, op: GlobalSumPool, pe: int, simd: int) -> int:
        h, w, c = op.in_shape
        return h * w * (c // simd)

    def plan(self, op: GlobalSumPool, planner) -> None:
        h, w, c = op.in_shape
        simd = planner.pool_simd(c, lambda s: self.cycles(op, 1, s))
        unit = GlobalSumPoolUnit.from_op(op, simd=simd)
        planner.feed(op.name, planner.format_of(op.in_type, h * w * c, simd))
        planner.push(op.name, unit, op, unit.cycles)
        planner.fmt = planner.format_of(op.out_type, c, simd)

    def timing_models(self, unit: GlobalSumPoolUnit) -> list:
        return [ReduceModel(unit.H * unit.W, unit.CF)]

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        rows.append({"name": op.name, "op": "GlobalSumPool", "pe": None, "simd": u.simd, "cycles": stage.cycles,
                     "in_shape": list(op.in_shape), "acc_bits": u.out_bits,
                     "rom_bits": 0, "buffer_bits": u.buffer_bits, "memory_bits": u.buffer_bits, "estimate": self.cost(u, target)})

    def estimate(self, unit: GlobalSumPoolUnit, target: str):
        from ..cost import units

        return units.sumpool(unit, target)
