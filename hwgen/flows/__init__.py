"""Open FPGA flows for a build directory: yosys + nextpnr (iCE40, ECP5), yosys synth_xilinx.

    from hwgen.flows import synthesize
    synthesize("build/", target="ice40")          # -> build/synth-ice40.json
"""
from .devices import DEVICES, TARGETS
from .synth import summary_line, synthesize

__all__ = ["DEVICES", "TARGETS", "summary_line", "synthesize"]
