"""KernelBankConv (Sub-bit NNs): a binary 3x3 conv whose kernels are tau-bit codebook indices,
on a KernelBankConvUnit (codeword responses once per input channel, gathered per output).

Folding: PE output channels gathered per cycle; SIMD = kh*kw*S with S input channels per beat,
S a divisor of Cin (the unit reads S back as gcd(SIMD, Cin)). Cycles per image:
Ho*Wo * max(kh*kw, Cout/PE) * Cin/S, at least the sliding window's.
"""
from __future__ import annotations

import math

import numpy as np

from ..golden.numeric import check_acc, windows
from ..ir import KernelBankConv
from ..rtl.kernel_bank import KernelBankConvUnit
from ..rtl.timing import MatVecModel, ReduceModel, window_models
from .base import divisors, pipelined, register, window_rows
from .conv import ConvLowering, conv_row, window_cycles
from .dot import dot_row


@register
class KernelBankConvLowering(ConvLowering):
    op_type = KernelBankConv
    unit_types = (KernelBankConvUnit,)

    def golden(self, op: KernelBankConv, x):
        """The Sub-bit dataflow: stage 1 convolves every input channel's window with each of the
        2^tau codewords once; stage 2 lets each output channel gather the responses its indices
        name and accumulate them over input channels. Padding taps are 0 (masked in hardware)."""
        p = windows(x.astype(np.int64), op.kernel, op.stride, op.pads, 0)  # [B, Ho, Wo, 3, 3, Cin]
        responses = np.einsum("bhwijc,kij->bhwck", p, op.codebook, optimize=True)  # [B, Ho, Wo, Cin, 2^tau]
        cin = np.arange(op.indices.shape[1])
        gathered = responses[..., cin[None, :], op.indices]  # [B, Ho, Wo, Cout, Cin]
        return check_acc(op, gathered.sum(-1))

    def weight_bits(self, op: KernelBankConv) -> int:
        return int(op.indices.size * op.tau + op.codebook.size)

    # -- folding ----------------------------------------------------------------------------
    def valid_simd(self, op: KernelBankConv) -> list[int]:
        kh, kw = op.kernel
        cin = op.in_shape[2]
        return [kh * kw * s for s in divisors(cin) if math.gcd(kh * kw * s, cin) == s]

    def simd_rule(self, op: KernelBankConv) -> str:
        kh, kw = op.kernel
        return (f"be {kh}*{kw} times the input channels per beat, a divisor of its {op.in_shape[2]} "
                "input channels (kernel bank: SIMD counts window taps)")

    def fold_lanes(self, op: KernelBankConv, pe: int, simd: int) -> int:
        """Stage 1 computes 2^tau kh*kw-tap codeword responses for each of the S channels of a beat,
        whatever PE is; stage 2 picks one of 2^tau responses per (output, channel): in taps,
        S * 2^tau * kh*kw + PE * S * 2^tau. Not PE x SIMD: at equal PE x SIMD a narrow beat and more PE
        cost far less (CNV's 64-channel conv at 131k cycles: S 32, PE 1 -> S 4, PE 8)."""
        kh, kw = op.kernel
        s = math.gcd(simd, op.in_shape[2])
        return s * (2 ** op.tau) * (kh * kw + pe)

    def cycles(self, op: KernelBankConv, pe: int, simd: int) -> int:
        ho, wo, _ = op.out_shape
        kh, kw = op.kernel
        s = math.gcd(simd, op.in_shape[2])
        cf = op.in_shape[2] // s
        return max(ho * wo * max(kh * kw * cf, (op.out_channels // pe) * cf), window_cycles(op, s))

    # -- planning ---------------------------------------------------------------------------
    def build(self, op: KernelBankConv, clock=None) -> KernelBankConvUnit:
        return KernelBankConvUnit.from_op(op, rows=window_rows(op, clock), registered_read=pipelined(clock))

    def input_beat(self, unit: KernelBankConvUnit) -> int:
        return unit.simd

    # -- the unit ---------------------------------------------------------------------------
    def cuts_ready_path(self, unit: KernelBankConvUnit, target: str) -> bool:
        """Its stage 2 advances under one enable from its output ready (no skid register)."""
        return False

    def timing_models(self, unit: KernelBankConvUnit) -> list:
        return window_models(unit.swg) + [ReduceModel(unit.T, unit.CF), MatVecModel(unit.NF, unit.SF)]

    def report_rows(self, stage, rows, plumbing, target) -> None:
        op, u = stage.op, stage.unit
        extra = conv_row(op, u, stage.cycles)
        extra.update(tau=u.tau, index_bits=u.index_bits, codebook_bits=u.codebook_bits,
                     channels_per_beat=u.simd, weight_bits=u.index_bits + u.codebook_bits)
        rows.append(dot_row(op, kind="KernelBankConv", pe=u.pe, simd=op.simd, cycles=stage.cycles,
                            acc_bits=u.acc_bits, memory_bits=u.rom_bits + u.buffer_bits,
                            weights_in="rom" if u.folded else "wiring", estimate=self.cost(u, target), **extra))

    def estimate(self, unit: KernelBankConvUnit, target: str):
        from ..cost import units

        return units.kernel_bank(unit, target)
