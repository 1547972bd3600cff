"""The integer side of QONNX's Quant / BipolarQuant, step for step as qonnx executes it.

Reproducing qonnx's exact float32 operation order (divide, add zero point, clamp, round)
is what makes our integers equal the reference's, ties included.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .types import Bipolar, DataType, IntType


@dataclass(frozen=True)
class Quantizer:
    """y_int = round(clamp(x / scale + zero_point)); the hardware carries y_int - zero_point."""

    # what one integer stands for, kept as the float32 value(s) the ONNX file holds: per tensor, or
    # per channel (float32 [C], channels last) for an activation whose consumers keep channels apart
    # (hwgen.frontend.channel_scale)
    scale: float | np.ndarray
    bits: int
    signed: bool
    narrow: bool = False
    rounding_mode: str = "ROUND"
    bipolar: bool = False  # BipolarQuant, or a 1-bit signed Quant (qonnx treats both as sign)

    @property
    def per_channel(self) -> bool:
        return np.ndim(self.scale) > 0

    @property
    def out_type(self) -> DataType:
        if self.bipolar:
            return Bipolar
        return IntType(self.bits, self.signed, self.narrow and self.signed)

    def to_int(self, x: np.ndarray) -> np.ndarray:
        """Float input -> integer levels (int64), the exact values qonnx's Quant would scale."""
        x = np.asarray(x, dtype=np.float32)
        if self.bipolar:
            y = x if self.scale == 1.0 else x / np.float32(self.scale)
            return np.where(y >= 0.0, 1, -1).astype(np.int64)
        from qonnx.custom_op.general.intquant import max_int, min_int, resolve_rounding_mode

        y = x / np.asarray(self.scale, np.float32)
        y = y + np.float32(0.0)
        lo = np.float32(min_int(self.signed, self.narrow, self.bits))
        hi = np.float32(max_int(self.signed, self.narrow, self.bits))
        y = np.where(y > hi, hi, y)
        y = np.where(y < lo, lo, y)
        y = resolve_rounding_mode(self.rounding_mode)(y)
        return y.astype(np.int64)

    def to_float(self, q: np.ndarray) -> np.ndarray:
        """Integer levels -> the float32 tensor the reference graph carries after this quantizer."""
        return np.asarray(q, dtype=np.float32) * np.asarray(self.scale, np.float32)

    def describe(self) -> str:
        if self.per_channel:
            s = np.asarray(self.scale)
            return f"{self.out_type} x per-channel scales {float(s.min()):g}..{float(s.max()):g}"
        return f"{self.out_type} x {self.scale:g}"
