"""Timing closure and lean arithmetic: the bench designs compiled as the plan chooses now
(products of <= 4-bit operands and constant weights as shift-and-add, dot products pipelined for
the target's clock: 100 MHz on ECP5, 40 MHz on iCE40) and, with --configs legacy, as before
(--arith dsp --no-pipeline), placed and routed with the open flow. Post-route numbers only.

    python bench/timing_closure.py [--designs tfc_2w2a digits_a2q_64 ...] [--configs default legacy]
                                   [--json bench/results/timing_closure.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hwgen  # noqa: E402
from hwgen.errors import HwgenError  # noqa: E402
from unit_synth import synthesize_or_synth_only  # noqa: E402

# name: (model, auto-fold target cycles, device family)
DESIGNS = {
    "tfc_2w2a_1024": ("tests/fixtures/TFC_2W2A.onnx", 1024, "ecp5"),
    "digits_w4a4_1024": ("quant_models/onnx/digits_mlp_w4a4.onnx", 1024, "ecp5"),
    "digits_a2q_64": ("quant_models/onnx/digits_mlp_w4a4_a2q.onnx", 64, "ecp5"),
    "unsw_1024": ("tests/fixtures/unsw_nb15-mlp-w2a2.onnx", 1024, "ecp5"),
    "demo_ice40": ("quant_models/onnx/digits_mlp_w4a4_a2q.onnx", 1024, "ice40"),
}
CONFIGS = {"default": {}, "legacy": {"arith": "dsp", "clock_mhz": None}}
WORKDIR = os.path.join(ROOT, "build", "timing-closure")


def run(name: str, config: str) -> dict:
    model, cycles, target = DESIGNS[name]
    acc = hwgen.compile(os.path.join(ROOT, model), fold="auto", target_cycles=cycles, target=target,
                        **CONFIGS[config])
    out = os.path.join(WORKDIR, f"{name}-{config}")
    report = acc.write(out)
    row = {"design": name, "config": config, "target": target, "clock_target_mhz": report["clock_mhz"],
           "ii_cycles": report["ii_cycles"], "latency_cycles": report["latency_cycles"],
           "estimate": report["estimate"]}
    t0 = time.perf_counter()
    try:
        res = synthesize_or_synth_only(out, target=target, progress=lambda m: None)
        row.update({k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz")})
        row["threshold_luts"] = sum(m.get("luts") or 0 for m in res.get("per_module") or []
                                    if m["depth"] == 2 and (m.get("module") or "").find("Quant") >= 0)
        if res.get("pnr_error"):
            row["error"] = res["pnr_error"]
    except HwgenError as exc:
        row["error"] = str(exc)
    row["tool_seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{name:18s} {config:8s} {target:5s} II {row['ii_cycles']:>5} lat {row['latency_cycles']:>5}  "
          f"LUT {row.get('luts')}  FF {row.get('ffs')}  carry {row.get('carry')}  BRAM {row.get('brams')}  "
          f"DSP {row.get('dsps')}  Fmax {row.get('fmax_mhz')} MHz (target {row['clock_target_mhz']})  "
          f"[{row['tool_seconds']} s]" + (f"  ERROR {row['error']}" if "error" in row else ""), flush=True)
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    ap.add_argument("--configs", nargs="+", default=["default"], choices=list(CONFIGS))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "timing_closure.json"))
    args = ap.parse_args()
    rows = []
    if os.path.exists(args.json):  # keep rows of designs / configs not rerun
        with open(args.json) as f:
            rows = [r for r in json.load(f) if not (r["design"] in args.designs and r["config"] in args.configs)]
    for name in args.designs:
        for config in args.configs:
            rows.append(run(name, config))
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    print("\n| design | config | target | II | latency | LUT | FF | carry | BRAM | DSP | Fmax MHz (target) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["design"], r["config"])):
        print(f"| {r['design']} | {r['config']} | {r['target']} | {r['ii_cycles']} | {r['latency_cycles']} | "
              f"{r.get('luts')} | {r.get('ffs')} | {r.get('carry')} | {r.get('brams')} | {r.get('dsps')} | "
              f"{r.get('fmax_mhz')} ({r['clock_target_mhz']}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
