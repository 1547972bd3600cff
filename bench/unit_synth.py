"""Synthesize one streaming unit (any wiring.Component with streams `i` and `o`) through the same
open flow as a whole accelerator (hwgen.flows.synthesize, serial harness around the core), so
two units can be compared at equal throughput. Shared by bench/subbit.py and bench/ode.py."""
from __future__ import annotations

import json
import os
import time

from amaranth.back import verilog

from hwgen.flows import synthesize


def synth_unit(unit, name: str, out_dir: str, *, target: str = "ecp5", cycles: int | None = None,
               extra: dict | None = None) -> dict:
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
    res = synthesize(out_dir, target=target, progress=lambda m: None)
    row = {"unit": name, "target": target, "cycles_per_image": cycles,
           **{k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz")},
           "tool_seconds": round(time.perf_counter() - t0, 1)}
    row.update(extra or {})
    return row
