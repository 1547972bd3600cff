"""Integer data types of IR tensors.

Bipolar is its own type because it is 1 bit on the wire but means -1 / +1: the hardware
uses XNOR-popcount for it, and the golden model must see the values -1 and +1.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IntType:
    """A two's complement (signed) or plain binary (unsigned) integer of `bits` bits.

    `narrow` signed types exclude the most negative value (Brevitas' narrow_range).
    """

    bits: int
    signed: bool
    narrow: bool = False

    def __post_init__(self):
        if self.bits < 1:
            raise ValueError(f"an integer type needs at least 1 bit, got {self.bits}")

    @property
    def min(self) -> int:
        if not self.signed:
            return 0
        return -(2 ** (self.bits - 1)) + (1 if self.narrow else 0)

    @property
    def max(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.signed else 2**self.bits - 1

    @property
    def wire_bits(self) -> int:
        return self.bits

    def __str__(self) -> str:
        return ("INT" if self.signed else "UINT") + str(self.bits) + ("n" if self.narrow else "")


@dataclass(frozen=True)
class BipolarType:
    """1 bit on the wire: 0 means -1, 1 means +1."""

    @property
    def bits(self) -> int:
        return 1

    @property
    def signed(self) -> bool:
        return True

    @property
    def min(self) -> int:
        return -1

    @property
    def max(self) -> int:
        return 1

    @property
    def wire_bits(self) -> int:
        return 1

    def __str__(self) -> str:
        return "BIPOLAR"


Bipolar = BipolarType()
DataType = IntType | BipolarType


def smallest_type(lo: int, hi: int) -> IntType:
    """The narrowest integer type holding every value in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if lo >= 0:
        return IntType(max(1, int(hi).bit_length()), signed=False)
    bits = max((-lo - 1).bit_length(), max(hi, 0).bit_length()) + 1
    return IntType(bits, signed=True)


def signed_bits_for(lo: int, hi: int) -> int:
    """Width of a signed accumulator holding [lo, hi] (accumulators are always signed)."""
    return smallest_type(min(int(lo), -1), int(hi)).bits


def to_wire(values: np.ndarray, dtype: DataType) -> np.ndarray:
    """Integer values -> the unsigned bit patterns the hardware carries."""
    v = np.asarray(values, dtype=np.int64)
    if isinstance(dtype, BipolarType):
        return (v > 0).astype(np.int64)
    return v & ((1 << dtype.bits) - 1)


def from_wire(bits: np.ndarray, dtype: DataType) -> np.ndarray:
    """Unsigned bit patterns -> integer values (inverse of to_wire)."""
    b = np.asarray(bits, dtype=np.int64)
    if isinstance(dtype, BipolarType):
        return 2 * b - 1
    if dtype.signed:
        return np.where(b >= (1 << (dtype.bits - 1)), b - (1 << dtype.bits), b)
    return b


def check_in_range(values: np.ndarray, dtype: DataType) -> bool:
    v = np.asarray(values)
    if isinstance(dtype, BipolarType):
        return bool(np.all((v == 1) | (v == -1)))
    return bool(v.size == 0 or (v.min() >= dtype.min and v.max() <= dtype.max))


def log2_exact(x: float) -> int | None:
    """k if x == 2**k exactly, else None (power-of-two scales make float integer math exact)."""
    if x <= 0 or not math.isfinite(x):
        return None
    m, e = math.frexp(x)
    return e - 1 if m == 0.5 else None
