"""MaxPool: max over k x k windows of an integer NHWC tensor (type unchanged), on a MaxPoolUnit
(sliding window with the type's minimum as padding, then a running max per channel group).

It has no folding of its own: its SIMD (channels per beat) is the incoming beat width when that
keeps it off the critical path, else the fewest channels per beat that do. Cycles per image:
max(Ho*Wo*kh*kw, H*W) * C/SIMD (one window beat per cycle) plus the line-buffer fill.
"""
from __future__ import annotations

import numpy as np

from ..golden.numeric import windows
from ..ir import MaxPool
from ..rtl.maxpool import MaxPoolUnit
from ..rtl.timing import ReduceModel, window_models
from .base import Lowering, register


@register
class MaxPoolLowering(Lowering):
    op_type = MaxPool
    unit_types = (MaxPoolUnit,)
    fold_hint = "takes the beat width of the stream before it (no folding of its own)"

    def golden(self, op: MaxPool, x):
        fill = np.iinfo(np.int64).min
        return windows(x.astype(np.int64), op.kernel, op.stride, op.pads, fill).max(axis=(3, 4))

    def reference_scale(self, op: MaxPool, scales):
        return scales[op.inputs[0]]

    def cycles(self, op: MaxPool, pe: int, simd: int) -> int:
        h, w, c = op.in_shape
        (kh, kw) = op.kernel
        ho, wo, _ = op.out_shape
        return max(ho * wo * kh * kw, h * w) * (c // simd)

    def plan(self, op: MaxPool, planner) -> None:
        h, w, c = op.in_shape
        ho, wo, _ = op.out_shape
        simd = planner.pool_simd(c, lambda s: self.cycles(op, 1, s))
        unit = MaxPoolUnit.from_op(op, simd=simd)
        planner.feed(op.name, planner.format_of(op.dtype, h * w * c, simd))
        planner.push(op.name, unit, op, unit.cycles)
        planner.fmt = planner.format_of(op.dtype, ho * wo * c, simd)

    def timing_models(self, unit: MaxPoolUnit) -> list:
        return window_models(unit.swg) + [ReduceModel(unit.taps, unit.CF)]

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        rows.append({"name": op.name, "op": "MaxPool", "pe": None, "simd": u.simd, "cycles": stage.cycles,
                     "in_shape": list(op.in_shape), "out_shape": list(u.out_shape), "kernel": list(op.kernel),
                     "stride": list(op.stride), "fill_cycles": u.fill_cycles, "acc_bits": None,
                     "rom_bits": 0, "buffer_bits": u.buffer_bits, "memory_bits": u.buffer_bits, "estimate": self.cost(u, target)})

    def estimate(self, unit: MaxPoolUnit, target: str):
        from ..cost import units

        return units.maxpool(unit, target)
