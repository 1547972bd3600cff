"""Synthesize one streaming unit (any wiring.Component with streams `i` and `o`) through the same
open flow as a whole accelerator (hwgen.flows.synthesize, serial harness around the core), so
two units can be compared at equal throughput. Shared by bench/subbit.py, bench/ode.py and bench/qor.py."""
from __future__ import annotations

import json
import os
import time

from amaranth.back import verilog

from hwgen.errors import HwgenError
from hwgen.flows import synthesize


def synthesize_or_synth_only(build_dir: str, *, target: str, timeout: float | None = None, **kw) -> dict:
    """hwgen.flows.synthesize (place and route); if the design does not fit the device or a tool
    times out, the yosys-only numbers instead, with `pnr_error` saying why (Fmax then None)."""
    try:
        return synthesize(build_dir, target=target, timeout=timeout, **kw)
    except HwgenError as exc:
        path = os.path.join(build_dir, f"synth-{target}.json")
        if "does not fit" in str(exc) and os.path.isfile(path):
            with open(path) as f:
                res = json.load(f)
        else:
            res = synthesize(build_dir, target=target, stage="synth", **kw)
        res["pnr_error"] = str(exc).split(". ")[0]
        return res


def synth_unit(unit, name: str, out_dir: str, *, target: str = "ecp5", cycles: int | None = None,
               extra: dict | None = None, timeout: float | None = None, stage: str | None = None) -> dict:
    """Emit `unit` as module `name` into out_dir, run the flow, return its numbers."""
    os.makedirs(out_dir, exist_ok=True)
    text = verilog.convert(unit, name=name, emit_src=False,
                           ports=[unit.i.payload, unit.i.valid, unit.i.ready,
                                  unit.o.payload, unit.o.valid, unit.o.ready])
    with open(os.path.join(out_dir, f"{name}.v"), "w") as f:
        f.write(text)
    io = {"input": {"payload_bits": len(unit.i.payload)}, "output": {"payload_bits": len(unit.o.payload)}}
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"top": name, "verilog": f"{name}.v", "io": io, "layers": []}, f)
    t0 = time.perf_counter()
    if stage == "synth":
        res = synthesize(out_dir, target=target, stage="synth", progress=lambda m: None)
    else:
        res = synthesize_or_synth_only(out_dir, target=target, timeout=timeout, progress=lambda m: None)
    row = {"unit": name, "target": target, "cycles_per_image": cycles,
           **{k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz", "fits", "pnr_error")},
           "tool_seconds": round(time.perf_counter() - t0, 1)}
    row.update(extra or {})
    return row
