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
from .base import Lowering, pipelined, register, window_rows
from .conv import require_window_fits


class WindowPoolLowering(Lowering):
    """What every windowed pool (a sliding window, then a running reduction per channel group) shares:
    its cycles, its plan (SIMD from the incoming beats) and its timing models. A subclass names its
    unit class (`unit_types[0]`, built with `from_op`) and its input / output types."""
    fold_hint = "takes the beat width of the stream before it (no folding of its own)"

    def in_out_types(self, op) -> tuple:
        raise NotImplementedError

    def pads(self, op) -> tuple:
        """(top, left, bottom, right): a pool without padding unless its op says otherwise."""
        return (0, 0, 0, 0)

    def channel_input_scale(self, op, scale):
        """Each output channel is a max / sum over one input channel's window (a max commutes with a
        positive scale)."""
        return scale

    def cycles(self, op, pe: int, simd: int) -> int:
        h, w, c = op.in_shape
        kh, kw = op.kernel
        ho, wo, _ = op.out_shape
        return max(ho * wo * kh * kw, h * w) * (c // simd)

    def plan(self, op, planner) -> None:
        h, w, c = op.in_shape
        ho, wo, _ = op.out_shape
        in_type, out_type = self.in_out_types(op)
        require_window_fits(op, self.pads(op))
        simd = planner.pool_simd(c, lambda s: self.cycles(op, 1, s))
        unit = self.unit_types[0].from_op(op, simd=simd, rows=window_rows(op, planner.clock),
                                          registered_read=pipelined(planner.clock))
        planner.feed(op.name, planner.format_of(in_type, h * w * c, simd))
        planner.push(op.name, unit, op, unit.cycles)
        planner.fmt = planner.format_of(out_type, ho * wo * c, simd)

    def timing_models(self, unit) -> list:
        return window_models(unit.swg) + [ReduceModel(unit.taps, unit.CF)]


@register
class MaxPoolLowering(WindowPoolLowering):
    op_type = MaxPool
    unit_types = (MaxPoolUnit,)

    def in_out_types(self, op: MaxPool) -> tuple:
        return op.dtype, op.dtype

    def pads(self, op: MaxPool) -> tuple:
        return op.pads

    def golden(self, op: MaxPool, x):
        fill = np.iinfo(np.int64).min
        return windows(x.astype(np.int64), op.kernel, op.stride, op.pads, fill).max(axis=(3, 4))

    def reference_scale(self, op: MaxPool, scales):
        return scales[op.inputs[0]]

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        rows.append({"name": op.name, "op": "MaxPool", "pe": None, "simd": u.simd, "cycles": stage.cycles,
                     "in_shape": list(op.in_shape), "out_shape": list(u.out_shape), "kernel": list(op.kernel),
                     "stride": list(op.stride), "fill_cycles": u.fill_cycles, "acc_bits": None,
                     "rom_bits": 0, "buffer_bits": u.buffer_bits, "memory_bits": u.buffer_bits, "estimate": self.cost(u, target)})

    def estimate(self, unit: MaxPoolUnit, target: str):
        from ..cost import units

        return units.maxpool(unit, target)
