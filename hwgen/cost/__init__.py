"""Resource estimates (LUT, FF, carry, BRAM, DSP, LUT RAM) of hwgen's units per target, before any
tool runs.

    from hwgen.cost import Resources, units
    units.matvec(mv_unit, "ice40")      # -> Resources(lut=..., ff=..., carry=..., bram=..., dsp=...)

resources.py   the Resources value (+, -, * int, as_dict, zero)
primitives.py  memories (yosys memory_libmap's block RAM / LUT RAM / logic rule), multipliers and
               DSP rules, adders, comparators, muxes, popcounts, FIFOs, per target
units.py       one function per RTL unit class, built from the primitives

Calibration against yosys: bench/calibrate_estimates.py; whole designs: bench/estimate_vs_synth.py.
"""
from . import primitives, units
from .resources import FIELDS, Resources

__all__ = ["FIELDS", "Resources", "primitives", "units"]
