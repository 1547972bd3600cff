"""Resources: what a unit needs on an FPGA, in the cells yosys reports.

    lut     LUT4 cells of logic (iCE40 SB_LUT4, ECP5 LUT4; the LUTs inside ECP5 carry cells and
            LUT RAM are not counted here, like `hwgen.flows.parse.classify_cells`)
    ff      flip-flops (SB_DFF*, TRELLIS_FF)
    carry   carry cells (iCE40 SB_CARRY: one per bit; ECP5 CCU2C: one per two bits)
    bram    block RAMs in the target's unit (iCE40 SB_RAM40_4K 4 kbit, ECP5 DP16KD 18 kbit)
    dsp     multiplier blocks (iCE40 SB_MAC16, ECP5 MULT18X18D)
    lutram  ECP5 LUT RAM cells (TRELLIS_DPR16X4, 16 x 4 bits; each takes a slice pair's LUTs)
"""
from __future__ import annotations

from dataclasses import dataclass, fields

FIELDS = ("lut", "ff", "carry", "bram", "dsp", "lutram")


@dataclass(frozen=True)
class Resources:
    lut: int = 0
    ff: int = 0
    carry: int = 0
    bram: int = 0
    dsp: int = 0
    lutram: int = 0

    @classmethod
    def zero(cls) -> "Resources":
        return cls()

    def __add__(self, other: "Resources") -> "Resources":
        if not isinstance(other, Resources):
            return NotImplemented
        return Resources(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def __radd__(self, other):  # sum([...]) starts from 0
        if other == 0:
            return self
        return self.__add__(other)

    def __sub__(self, other: "Resources") -> "Resources":
        if not isinstance(other, Resources):
            return NotImplemented
        return Resources(*(getattr(self, f.name) - getattr(other, f.name) for f in fields(self)))

    def __mul__(self, k: int) -> "Resources":
        if isinstance(k, bool) or not isinstance(k, int):
            return NotImplemented
        return Resources(*(getattr(self, f.name) * k for f in fields(self)))

    __rmul__ = __mul__

    def score(self, bram: float = 64) -> float:
        """One number for the plan's choices between implementations of one unit: LUT + carry
        cells, a DSP block counted as 64 of them and a block RAM as `bram` (scarce, and a whole
        cell even when barely used)."""
        return self.lut + self.carry + 64 * self.dsp + bram * self.bram

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_yosys(cls, numbers: dict) -> "Resources":
        """From hwgen.flows numbers (luts, ffs, carry, brams, dsps, lutram)."""
        return cls(lut=int(numbers.get("luts") or 0), ff=int(numbers.get("ffs") or 0),
                   carry=int(numbers.get("carry") or 0), bram=int(numbers.get("brams") or 0),
                   dsp=int(numbers.get("dsps") or 0), lutram=int(numbers.get("lutram") or 0))

    def __str__(self) -> str:
        s = f"{self.lut} LUT, {self.ff} FF, {self.carry} carry, {self.bram} BRAM, {self.dsp} DSP"
        return s + (f", {self.lutram} LUTRAM" if self.lutram else "")
