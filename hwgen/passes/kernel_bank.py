"""Recognise Sub-bit kernel banks: binary 3x3 convs whose kernels use few distinct patterns.

QONNX has no codebook concept, so a sub-bit model arrives as an ordinary bipolar conv. If the
layer's (out, in) kernels use at most 2^tau distinct sign patterns with tau < 9, it becomes a
KernelBankConv: a codebook of 2^tau patterns and a tau-bit index per kernel. Worth it when
2^tau < out channels: each input window is then convolved with fewer kernels than before.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import HwgenError
from ..ir import Conv, Graph, KernelBankConv
from ..ir.types import BipolarType

MODES = ("auto", "off", "force")


def codebook_of(op: Conv) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(codebook [2^tau, kh, kw], indices [out, in], tau) or None when the layer cannot be a bank."""
    if not (isinstance(op.in_type, BipolarType) and isinstance(op.w_type, BipolarType)):
        return None
    if op.kernel != (3, 3) or op.groups != 1:
        return None
    kernels = op.weights.transpose(0, 3, 1, 2)  # [out, in, kh, kw]
    flat = kernels.reshape(-1, 9)
    patterns, index = np.unique(flat, axis=0, return_inverse=True)
    tau = max(1, math.ceil(math.log2(len(patterns))))
    if tau >= 9:
        return None
    book = np.concatenate([patterns, np.repeat(patterns[:1], 2**tau - len(patterns), axis=0)])
    return book.reshape(-1, 3, 3), index.reshape(kernels.shape[:2]).astype(np.int64), tau


def why_not(op: Conv) -> str:
    if not (isinstance(op.in_type, BipolarType) and isinstance(op.w_type, BipolarType)):
        return f"inputs {op.in_type} and weights {op.w_type} are not both bipolar"
    if op.kernel != (3, 3) or op.groups != 1:
        return f"kernel {op.kernel} with {op.groups} groups is not a dense 3x3 conv"
    distinct = len(np.unique(op.weights.transpose(0, 3, 1, 2).reshape(-1, 9), axis=0))
    return f"its kernels use {distinct} distinct 3x3 sign patterns (more than 256: tau would be 9)"


def recognise_kernel_banks(graph: Graph, mode: str = "auto") -> Graph:
    if mode not in MODES:
        raise HwgenError(f"unknown --kernel-bank mode '{mode}' (choose from {', '.join(MODES)})")
    if mode == "off":
        return graph
    for op in list(graph.ops):
        if not isinstance(op, Conv) or isinstance(op, KernelBankConv):
            continue
        bank = codebook_of(op)
        if bank is None:
            if mode == "force" and isinstance(op.w_type, BipolarType):
                raise HwgenError(f"--kernel-bank force: layer '{op.name}' cannot be a kernel bank: {why_not(op)}")
            continue
        book, index, tau = bank
        if mode == "auto" and 2**tau >= op.out_channels:
            graph.notes.append(f"{op.name}: {len(np.unique(index))} kernel patterns (tau = {tau}); kept as a "
                               f"plain conv since 2^tau >= {op.out_channels} output channels saves nothing")
            continue
        fields = {k: getattr(op, k) for k in op.__dataclass_fields__}
        bank_op = KernelBankConv(**fields, codebook=book, indices=index, tau=tau)
        graph.replace(op, [bank_op])
        graph.notes.append(f"{op.name}: kernel bank with {bank_op.patterns} patterns, tau = {tau} "
                           f"({tau}/9 bit per weight)")
    if mode == "force" and not any(isinstance(op, KernelBankConv) for op in graph.ops):
        raise HwgenError("--kernel-bank force: this model has no layer to bank (kernel banks are for binary "
                         "3x3 convs: bipolar inputs and weights, one group); use --kernel-bank auto or off")
    return graph
