"""hwgen.cost's estimates of whole designs against the open flow's numbers.

Three models at two foldings each, compiled like `hwgen compile --fold auto --target-cycles C`;
per stage of the accelerator (hwgen.rtl.top.plan; residual blocks, ODE blocks and convolutions
count their inner units through their own cost functions, width converters and FIFOs are stages
too) the unit's estimate, summed, plus the serial harness that hwgen.flows wraps around the core;
then hwgen.flows.synthesize(build_dir, target=...) with place and route. A design that does not
fit the device keeps its yosys numbers and is labelled "yosys only"; the resource numbers compared
(LUT4, FF, carry, BRAM, DSP, ECP5 LUT RAM) are the synthesized netlist's cell counts either way.

    python bench/estimate_vs_synth.py [--targets ecp5 ice40] [--designs mlp-1024 ...] [--fresh]
                                      [--json bench/results/estimate_vs_synth.json]

Synthesis results are reused while the Verilog is unchanged (build/estimate-vs-synth/); --fresh
runs the tools again. Prints a Markdown table with the error per resource.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", message=".*created but never used")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from hwgen.cost import Resources  # noqa: E402
from hwgen.errors import HwgenError  # noqa: E402

from calibrate_estimates import COST_OF, compile_design, force_arith  # noqa: E402

DESIGNS = {
    "mlp-1024": ("digits_mlp_w4a4", "quant_models/onnx/digits_mlp_w4a4.onnx", 1024),
    "mlp-64": ("digits_mlp_w4a4", "quant_models/onnx/digits_mlp_w4a4.onnx", 64),
    "tfc-1024": ("TFC_2W2A", "tests/fixtures/TFC_2W2A.onnx", 1024),
    "tfc-512": ("TFC_2W2A", "tests/fixtures/TFC_2W2A.onnx", 512),
    "cnn-1024": ("digits_cnn_w4a4", "quant_models/onnx/digits_cnn_w4a4.onnx", 1024),
    "cnn-2048": ("digits_cnn_w4a4", "quant_models/onnx/digits_cnn_w4a4.onnx", 2048),
}
WORKDIR = os.path.join(ROOT, "build", "estimate-vs-synth")
PAIRS = (("lut", "luts"), ("ff", "ffs"), ("carry", "carry"), ("bram", "brams"), ("dsp", "dsps"),
         ("lutram", "lutram"))


def serial_harness(w_in: int, w_out: int) -> Resources:
    """rtl_templates/serial_harness.v: six registered pins, the valid / full flags and the two shift
    registers (W_IN + W_OUT + 8 FFs); the output register loads or shifts (a LUT4 per bit)."""
    return Resources(lut=w_out + 8, ff=w_in + w_out + 8)


def stage_estimates(stages, target: str) -> list[dict]:
    rows = []
    for k, st in enumerate(stages):
        est = COST_OF[type(st.unit)](st.unit, target)
        rows.append({"stage": k, "name": st.name, "unit": type(st.unit).__name__, "estimate": est})
    return rows


def _err(est: int, real: int) -> float | None:
    if real == 0:
        return 0.0 if est == 0 else None
    return round(100.0 * (est - real) / real, 1)


def _yosys_numbers(out: str, target: str) -> dict:
    """The yosys numbers of a flow whose place and route did not finish (stat.json is written)."""
    from hwgen.flows.scripts import load_report, make_plan
    from hwgen.flows.synth import _resources

    plan = make_plan(out, target=target, stage="synth")
    total, core, per_module = _resources(plan, load_report(out))
    return {**{k: total[k] for k in ("luts", "ffs", "carry", "brams", "dsps", "lutram")}, "core": core,
            "per_module": per_module}


def synth(out: str, target: str, fresh: bool, pnr_timeout: float, run_tools: bool = True) -> tuple[dict | None, str]:
    """(numbers, flow label): place and route when the design fits (and nextpnr finishes within
    pnr_timeout seconds), else the yosys numbers of the same run. Reuses the result of an earlier
    run on the same Verilog; (None, "not run") when there is none and run_tools is False."""
    from hwgen.flows import synthesize

    text = open(os.path.join(out, json.load(open(os.path.join(out, "report.json")))["verilog"])).read()
    digest = hashlib.sha256(text.encode()).hexdigest()
    stamp = os.path.join(out, f"evs-{target}.json")
    if not fresh and os.path.isfile(stamp):
        cached = json.load(open(stamp))
        if cached.get("digest") == digest:
            return cached["result"], cached["flow"]
    if not run_tools:
        return None, "not run"
    t0 = time.perf_counter()
    try:
        res = synthesize(out, target=target, progress=lambda m: None, timeout=pnr_timeout)
        flow = "pnr"
    except HwgenError as exc:
        msg = str(exc).split(". ")[0]
        path = os.path.join(out, f"synth-{target}.json")
        if "does not fit" in msg and os.path.isfile(path):
            res = json.load(open(path))
            flow = "yosys only (does not fit)"
        elif msg.startswith("nextpnr did not finish"):
            res = _yosys_numbers(out, target)
            flow = f"yosys only (nextpnr > {pnr_timeout:.0f} s)"
        elif msg.startswith("yosys did not finish"):
            res = synthesize(out, target=target, stage="synth", progress=lambda m: None)
            flow = "yosys only"
        else:
            raise
        res["pnr_error"] = msg
    res["bench_seconds"] = round(time.perf_counter() - t0, 1)
    json.dump({"digest": digest, "flow": flow, "result": res}, open(stamp, "w"))
    return res, flow


def run(key: str, target: str, fresh: bool, no_synth: bool, pnr_timeout: float, arith: str) -> dict | None:
    from hwgen.rtl.build import build_accelerator

    model, path, cycles = DESIGNS[key]
    graph = compile_design(path, cycles, {})
    out = os.path.join(WORKDIR, f"{key}-{target}" + ("" if arith == "plan" else f"-{arith}"))
    try:
        from hwgen.passes.schedule import schedule

        hw = schedule(graph, target=target)
        if arith != "plan":
            force_arith(hw, arith)
        report = build_accelerator(graph, out, plan=hw, target=target)
        stages, in_fmt, out_fmt = hw.stages, hw.in_fmt, hw.out_fmt
    except ImportError:  # older tree: no plan objects
        from hwgen.rtl.top import plan

        report = build_accelerator(graph, out)
        stages, in_fmt, out_fmt = plan(graph)
    srows = stage_estimates(stages, target)
    core = sum((r["estimate"] for r in srows), Resources())
    harness = serial_harness(in_fmt.payload_bits, out_fmt.payload_bits)
    total = core + harness
    arith_used = sorted({getattr(getattr(st.unit, "mv", st.unit), "arith", "dsp") for st in stages
                         if hasattr(getattr(st.unit, "mv", st.unit), "w_bits")})
    row = {"design": key, "model": model, "target_cycles": cycles, "target": target,
           "arith": arith, "products": "/".join(arith_used),
           "ii_cycles": report.get("ii_cycles"), "estimate": total.as_dict(), "estimate_core": core.as_dict(),
           "estimate_harness": harness.as_dict()}
    res, flow = synth(out, target, fresh, pnr_timeout, run_tools=not no_synth)
    if res is None:
        row["flow"] = flow
        for r in srows:
            r["estimate"] = r["estimate"].as_dict()
        row["stages"] = srows
        return row
    real = {yk: int(res.get(yk) or 0) for _, yk in PAIRS}
    row.update(flow=flow, fits=res.get("fits"), pnr_error=res.get("pnr_error"), fmax_mhz=res.get("fmax_mhz"),
               synth=real, core=res.get("core"), utilisation=res.get("utilisation"),
               tool_seconds=res.get("tool_seconds"),
               error_pct={ek: _err(total.as_dict()[ek], real[yk]) for ek, yk in PAIRS})
    mods = {m["module"]: m for m in res.get("per_module") or []}
    top = report.get("top", "hwgen_top")
    for r in srows:
        m = mods.get(f"{top}.s{r['stage']}_{r['name']}")
        r["estimate"] = r["estimate"].as_dict()
        if m:
            r["synth"] = {yk: int(m.get(yk) or 0) for _, yk in PAIRS}
    row["stages"] = srows
    return row


def fmt(row: dict, ek: str, yk: str) -> str:
    e = row["estimate"][ek]
    if "synth" not in row:
        return f"{e} / -"
    y = row["synth"][yk]
    err = row["error_pct"][ek]
    return f"{e} / {y}" + (f" ({err:+.0f}%)" if err is not None else "")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["ecp5", "ice40"], choices=["ecp5", "ice40"])
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    ap.add_argument("--fresh", action="store_true", help="run the tools even when the Verilog is unchanged")
    ap.add_argument("--no-synth", action="store_true",
                    help="run no tool: estimates, beside the tool results of earlier runs where there are any")
    ap.add_argument("--arith", default="plan", choices=["plan", "dsp", "lut"],
                    help="products as the plan writes them, or forced to `*` (dsp) / shift-and-add (lut)")
    ap.add_argument("--pnr-timeout", type=float, default=180.0,
                    help="seconds nextpnr may take before the design keeps its yosys numbers only")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "estimate_vs_synth.json"))
    args = ap.parse_args()
    rows = []
    for target in args.targets:
        for key in args.designs:
            print(f"[{target}] {key}", flush=True)
            rows.append(run(key, target, args.fresh, args.no_synth, args.pnr_timeout, args.arith))
    # keep the rows of other targets / arithmetic modes from earlier runs
    done_keys = {(r["design"], r["target"], r.get("arith", "plan")) for r in rows}
    if os.path.isfile(args.json):
        try:
            old = json.load(open(args.json))
        except ValueError:
            old = []
        rows = [r for r in old if (r["design"], r["target"], r.get("arith", "plan")) not in done_keys] + rows
    rows.sort(key=lambda r: (r["target"], list(DESIGNS).index(r["design"]) if r["design"] in DESIGNS else 99))
    print("\n| design | target | products | flow | LUT est / real | FF | carry | BRAM | DSP | LUT RAM |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        cells = " | ".join(fmt(r, ek, yk) for ek, yk in PAIRS)
        print(f"| {r['design']} | {r['target']} | {r.get('products', '')} | {r.get('flow')} | {cells} |")
    done = [r for r in rows if "synth" in r]
    if done:
        print("\n| target | designs | mean abs LUT err % | max abs LUT err % | mean abs FF err % | BRAM exact "
              "| DSP exact |")
        print("|---|---|---|---|---|---|---|")
        for target in sorted({r["target"] for r in done}):
            sel = [r for r in done if r["target"] == target]
            if not sel:
                continue
            le = [abs(r["error_pct"]["lut"]) for r in sel if r["error_pct"]["lut"] is not None]
            fe = [abs(r["error_pct"]["ff"]) for r in sel if r["error_pct"]["ff"] is not None]
            print(f"| {target} | {len(sel)} | {sum(le) / max(len(le), 1):.1f} | {max(le, default=0):.1f} | "
                  f"{sum(fe) / max(len(fe), 1):.1f} | "
                  f"{sum(r['estimate']['bram'] == r['synth']['brams'] for r in sel)}/{len(sel)} | "
                  f"{sum(r['estimate']['dsp'] == r['synth']['dsps'] for r in sel)}/{len(sel)} |")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=1)
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
