"""Conv (2-D, NHWC, zero padding, groups): a ConvUnit, i.e. a sliding window feeding a MatVec.

Folding: PE output channels, SIMD a divisor of the dense patch length kh*kw*Cin (also for
grouped convs, whose matrix is dense with zeros). Cycles per image:
Ho*Wo * (Cout/PE) * (kh*kw*Cin/SIMD), at least the sliding window's Ho*Wo*kh*kw*Cin/W and
H*W*Cin/W with W = gcd(SIMD, Cin) (the window unit emits one beat of W channels per cycle).
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import HwgenError
from ..golden.numeric import check_acc, int_einsum, windows
from ..ir import Conv
from ..rtl.conv import ConvUnit
from ..rtl.timing import MatVecModel, window_models
from .base import divisors, lowering_of_unit, pipelined, register, window_rows
from .dot import DotLowering, dot_row


def patch_length(op: Conv) -> int:
    """kh*kw*Cin: the dense dot product length of a conv (zeros included for grouped convs)."""
    kh, kw = op.kernel
    return kh * kw * op.in_shape[2]


def window_cycles(op: Conv, channels_per_beat: int) -> int:
    """Cycles per image of a sliding window unit emitting `channels_per_beat` channels a cycle."""
    h, w, c = op.in_shape
    kh, kw = op.kernel
    ho, wo, _ = op.out_shape
    cf = c // channels_per_beat
    identity = (kh, kw) == (1, 1) and tuple(op.stride) == (1, 1) and not any(op.pads)
    if identity:
        return h * w * cf
    return max(ho * wo * kh * kw * cf, h * w * cf)


def require_window_fits(op, pads) -> None:
    """The sliding window (FINN's SWG) needs every pad smaller than the kernel on its side: a window
    of padding alone has no input pixel to wait for. ONNX allows it (a padded 1x1 conv's border holds
    only its bias), the golden model runs it, the hardware refuses it here with the node named."""
    kh, kw = op.kernel
    pt, pl, pb, pr = pads
    if max(pt, pb) >= kh or max(pl, pr) >= kw:
        raise HwgenError(f"padding (top, left, bottom, right) = {tuple(pads)} is not smaller than the "
                         f"{kh}x{kw} kernel, which hwgen's sliding window needs: export the layer with less "
                         "padding (a padded 1x1 convolution only adds a border of its bias values)", node=op.name, op=type(op).__name__)


def conv_row(op, u, cycles: int) -> dict:
    """Report facts every windowed conv unit (ConvUnit, KernelBankConvUnit) shares."""
    return {"in_shape": list(op.in_shape), "out_shape": list(u.out_shape), "kernel": list(op.kernel),
            "stride": list(op.stride), "groups": op.groups, "fill_cycles": u.fill_cycles,
            "rom_bits": u.rom_bits, "buffer_bits": u.buffer_bits}


@register
class ConvLowering(DotLowering):
    op_type = Conv
    unit_types = (ConvUnit,)

    def golden(self, op: Conv, x):
        p = windows(x.astype(np.int64), op.kernel, op.stride, op.pads, 0)  # zero padding, as ONNX
        b, ho, wo, kh, kw, c = p.shape
        g = op.groups
        p = p.reshape(b, ho, wo, kh, kw, g, c // g)
        w = op.weights.reshape(g, op.out_channels // g, kh, kw, c // g)
        acc = int_einsum("bhwijgc,goijc->bhwgo", p, w, kh * kw * (c // g)).reshape(b, ho, wo, op.out_channels)
        return check_acc(op, acc)

    def channel_input_scale(self, op: Conv, scale):
        """Output channel o reads the input channels of its group (o // (Cout/G)): a depthwise conv sees
        one scale per output; a group whose channels differ in scale has none."""
        groups = np.asarray(scale, np.float32).reshape(op.groups, -1)  # [G, Cin/G]
        if not np.all(groups == groups[:, :1]):
            return None
        return np.repeat(groups[:, 0], op.out_channels // op.groups)

    # -- folding ----------------------------------------------------------------------------
    def valid_simd(self, op: Conv) -> list[int]:
        return divisors(patch_length(op))

    def simd_rule(self, op: Conv) -> str:
        kh, kw = op.kernel
        return f"divide its patch of {kh}*{kw}*{op.in_shape[2]} = {patch_length(op)} inputs"

    def cycles(self, op: Conv, pe: int, simd: int) -> int:
        ho, wo, _ = op.out_shape
        mv = (op.out_channels // pe) * (patch_length(op) // simd)
        return max(ho * wo * mv, window_cycles(op, math.gcd(simd, op.in_shape[2])))

    def full_folding(self, op: Conv) -> tuple[int, int]:
        return op.out_channels, patch_length(op)

    # -- planning ---------------------------------------------------------------------------
    def bound(self, op: Conv, planner) -> int:
        return self.cycles(op, op.pe, op.simd)

    def build(self, op: Conv, clock=None) -> ConvUnit:
        require_window_fits(op, op.pads)
        folded = (op.out_channels // op.pe) * (patch_length(op) // op.simd) > 1
        return ConvUnit.from_op(op, arith=self.arithmetic(op, folded, clock), pipeline=self.pipeline(op, folded, clock),
                                rows=window_rows(op, clock), registered_read=pipelined(clock))

    def input_beat(self, unit) -> int:
        """Elements per input beat of the unit (its sliding window's channels per beat)."""
        return unit.window_simd

    def plan(self, op: Conv, planner) -> None:
        unit = self.build(op, planner.clock)
        planner.feed(op.name, planner.format_of(op.in_type, _hwc(op.in_shape), self.input_beat(unit)))
        planner.push(op.name, unit, op, unit.cycles)
        planner.fmt = planner.acc_format(op, _hwc(unit.out_shape), unit.pe)

    # -- the unit ---------------------------------------------------------------------------
    def timing_models(self, unit: ConvUnit) -> list:
        between = [model for u in unit.between for model in lowering_of_unit(u).timing_models(u)]
        mv = unit.mv
        return window_models(unit.swg) + between + [MatVecModel(mv.NF, mv.SF, mv.extra_stages,
                                                                 credits=mv.credits)]

    def cuts_ready_path(self, unit: ConvUnit, target: str) -> bool:
        """Its MatVec's input ready is a register (a registered enable, or credits): the output
        ready reaches nothing else inside the unit."""
        return unit.mv.cuts_ready_path

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        extra = conv_row(op, u, stage.cycles)
        extra.update(window_simd=u.window_simd, weights_dense=int(u.dense.size))
        rows.append(dot_row(op, kind="Conv", pe=u.pe, simd=u.simd, cycles=stage.cycles, acc_bits=u.acc_bits,
                            memory_bits=u.rom_bits + u.buffer_bits,
                            weights_in="rom" if u.folded else "constants", binary=u.mv.binary,
                            arithmetic=u.mv.arith, pipeline_stages=u.mv.extra_stages, estimate=self.cost(u, target),
                            **extra))

    def estimate(self, unit: ConvUnit, target: str):
        from ..cost import units

        return units.conv(unit, target)


def _hwc(shape) -> int:
    h, w, c = shape
    return h * w * c
