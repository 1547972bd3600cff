"""Small helpers shared by the RTL components (not components themselves).

Streams carry flat unsigned payloads; element i of a beat occupies payload bits
[i*element_bits, (i+1)*element_bits).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Value

from ..ir.types import BipolarType, signed_bits_for


def balanced_sum(terms: list) -> Value:
    """Sum as a balanced tree of `+` (a left-deep chain makes emission quadratic)."""
    terms = list(terms)
    if not terms:
        return Const(0, 1)
    while len(terms) > 1:
        nxt = [terms[i] + terms[i + 1] for i in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def popcount(bits: list) -> Value:
    """Number of set bits among 1-bit values, as an unsigned balanced tree."""
    if not bits:
        return Const(0, 1)
    return balanced_sum([b.as_unsigned() if isinstance(b, Value) else b for b in bits])


def is_bipolar(t) -> bool:
    return isinstance(t, BipolarType)


def element(payload: Value, index: int, bits: int, *, signed_: bool) -> Value:
    v = payload[index * bits:(index + 1) * bits]
    return v.as_signed() if signed_ else v.as_unsigned()


def truncate_signed(value: Value, bits: int) -> Value:
    """`value` as a `bits`-wide signed value: sign-extended, or wrapped like a `bits`-wide register."""
    v = value.as_signed()
    if len(v) < bits:
        return Cat(v, v[-1].replicate(bits - len(v))).as_signed()
    return v[:bits].as_signed()


def pack_ints(values, bits: int) -> int:
    """Pack unsigned bit patterns into one payload integer (element 0 in the low bits)."""
    word = 0
    mask = (1 << bits) - 1
    for i, v in enumerate(values):
        word |= (int(v) & mask) << (i * bits)
    return word


signed_width_for = signed_bits_for  # bits of a signed value holding [lo, hi] (one definition, in ir.types)


def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


__all__ = ["balanced_sum", "popcount", "is_bipolar", "element", "truncate_signed", "pack_ints",
           "signed_width_for", "divisors"]
