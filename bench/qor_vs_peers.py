"""Quality of results against the issue's rows and against a peer, on one open flow (yowasp yosys +
nextpnr-ecp5 for LFE5U-85F, nextpnr-ice40 for UP5K), post-route numbers only, side by side:
the bench designs as the plan builds them now ("default": pipelined for 100 MHz on ECP5 / 40 MHz
on iCE40, skid buffers, requantizers, shift-and-add / CSE arithmetic) and, with --configs legacy,
as before that work (--arith dsp --no-pipeline --activation thresholds), with --configs
no_backpressure as default but with an output that is never stalled (--no-backpressure: the
interface of da4ml's and hls4ml's io_parallel pipelines); and da4ml 0.6's Verilog for the small
jet net (the `da4ml` row, in a wrapper whose input ready is 1 and whose output ready is ignored;
da4ml is one of hwgen's dependencies on Linux x86_64).

    python bench/qor_vs_peers.py [--designs jet_small_full digits_a2q_64 ...] [--configs default legacy]
                                 [--json bench/results/qor_vs_peers.json] [--seeds 1 2 3] [--tmg-ripup]

Per row: II, latency, LUT / FF / carry / BRAM / DSP, Fmax (and the clock target; with --seeds the
best of a seed sweep, every seed's Fmax in the row), the commit measured, the LUTs of the
activation units (Threshold / requantizer) and of the MatVec / conv units they follow (per-module
synthesis), tool time. Rows of designs or configs not rerun are kept from the JSON.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import hwgen  # noqa: E402
from hwgen.errors import HwgenError  # noqa: E402
from results_file import ResultsFile  # noqa: E402
from unit_synth import synthesize_or_synth_only  # noqa: E402


def _cnv_w1a1() -> str:
    from quant_models.cnv import cnv_onnx  # exported with seeded random weights on first use (build/)

    return cnv_onnx()


# name: (model path or a function giving it, compile options, device family)
DESIGNS = {
    "tfc_2w2a_1024": ("tests/fixtures/TFC_2W2A.onnx", {"fold": "auto", "target_cycles": 1024}, "ecp5"),
    "tfc_2w2a_64": ("tests/fixtures/TFC_2W2A.onnx", {"fold": "auto", "target_cycles": 64}, "ecp5"),
    "digits_w4a4_1024": ("quant_models/onnx/digits_mlp_w4a4.onnx", {"fold": "auto", "target_cycles": 1024}, "ecp5"),
    "digits_a2q_64": ("quant_models/onnx/digits_mlp_w4a4_a2q.onnx", {"fold": "auto", "target_cycles": 64}, "ecp5"),
    "digits_a2q_64_fixed32": ("quant_models/onnx/digits_mlp_w4a4_a2q.onnx",
                              {"fold": "auto", "target_cycles": 64, "acc_policy": "fixed32"}, "ecp5"),
    "unsw_1024": ("tests/fixtures/unsw_nb15-mlp-w2a2.onnx", {"fold": "auto", "target_cycles": 1024}, "ecp5"),
    "unsw_a2q_1024": ("tests/fixtures/unsw_nb15-mlp-w2a2.onnx",
                      {"fold": "auto", "target_cycles": 1024, "acc_policy": "a2q"}, "ecp5"),
    "jet_small_full": ("quant_models/onnx/jet_small_w4a6.onnx", {"fold": "full"}, "ecp5"),
    "jet_full": ("quant_models/onnx/jet_w4a6.onnx", {"fold": "full"}, "ecp5"),
    "cnv_w1a1_16k": (_cnv_w1a1, {"fold": "auto", "target_cycles": 16384}, "ecp5"),
    "demo_ice40": ("quant_models/onnx/digits_mlp_w4a4_a2q.onnx", {"fold": "auto", "target_cycles": 1024}, "ice40"),
}
CONFIGS = {"default": {}, "legacy": {"arith": "dsp", "clock_mhz": None, "activation": "thresholds"},
           "no_backpressure": {"backpressure": False}}
PEERS = {"da4ml": "jet_small_full"}  # peer row -> the design whose model it builds
WORKDIR = os.path.join(ROOT, "build", "qor-vs-peers")
ACTIVATION_UNITS = ("ThresholdUnit", "RequantUnit")
DOT_UNITS = ("MatVecUnit", "ConvUnit", "KernelBankConvUnit")


def _unit_luts(acc, res: dict) -> tuple[int, int]:
    """LUTs of the activation units and of the dot-product units (per-module synthesis)."""
    kinds = {f"s{k}_{st.name}": type(st.unit).__name__ for k, st in enumerate(acc.plan.stages)}
    act = dot = 0
    for m in res.get("per_module") or []:
        if m.get("depth") != 2:
            continue
        kind = kinds.get((m.get("module") or "").split(".")[-1])
        if kind in ACTIVATION_UNITS:
            act += m.get("luts") or 0
        elif kind in DOT_UNITS:
            dot += m.get("luts") or 0
    return act, dot


def _commit() -> str | None:
    """The hwgen commit the row was measured at (rows of several commits share the JSON)."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def run(name: str, config: str, seeds: list[int] | None = None, timing_ripup: bool = False) -> dict:
    model, options, target = DESIGNS[name]
    path = model() if callable(model) else os.path.join(ROOT, model)
    t0 = time.perf_counter()
    acc = hwgen.compile(path, target=target, **options, **CONFIGS[config])
    compile_s = time.perf_counter() - t0
    out = os.path.join(WORKDIR, f"{name}-{config}")
    report = acc.write(out)
    row = {"design": name, "config": config, "target": target, "clock_target_mhz": report["clock_mhz"],
           "ii_cycles": report["ii_cycles"], "latency_cycles": report["latency_cycles"],
           "estimate": report["estimate"], "compile_seconds": round(compile_s, 1), "commit": _commit(),
           **({"timing_ripup": True} if timing_ripup else {})}
    t0 = time.perf_counter()
    try:
        res = synthesize_or_synth_only(out, target=target, seeds=seeds, progress=lambda m: None,
                                       **({"timing_ripup": True} if timing_ripup else {}))
        row.update({k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz", "seed", "bram_outreg")})
        if res.get("seed_sweep"):
            row["seed_sweep"] = {r["seed"]: r["fmax_mhz"] for r in res["seed_sweep"]}
        row["activation_luts"], row["dot_luts"] = _unit_luts(acc, res)
        if res.get("pnr_error"):
            row["error"] = res["pnr_error"]
    except HwgenError as exc:
        row["error"] = str(exc)
    row["tool_seconds"] = round(time.perf_counter() - t0, 1)
    _print(row)
    return row


def run_peer(peer: str) -> dict:
    """da4ml 0.6's fully parallel Verilog of the same network (bench/peers.py builds and wraps it)."""
    import peers
    from hwgen.compiler import CompileOptions, compile_model

    model = os.path.join(ROOT, DESIGNS[PEERS[peer]][0])
    graph = compile_model(model, CompileOptions())
    name = os.path.splitext(os.path.basename(model))[0]
    _, out, _, _ = peers.da4ml_build(name, graph, latency_cutoff=5.0)
    w_out = graph.core[-1].acc_type.bits
    build = peers.da4ml_synth_dir(name, out, w_out)
    res = peers.synth(build, None)
    row = {"design": PEERS[peer], "config": peer, "target": "ecp5", "clock_target_mhz": None, "ii_cycles": 1,
           "latency_cycles": None, **{k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz")},
           "tool_seconds": res.get("tool_seconds")}
    _print(row)
    return row


def _print(row: dict) -> None:
    print(f"{row['design']:22s} {row['config']:8s} {row['target']:5s} II {row['ii_cycles']!s:>6} "
          f"lat {row['latency_cycles']!s:>6}  LUT {row.get('luts')}  FF {row.get('ffs')}  carry {row.get('carry')}  "
          f"BRAM {row.get('brams')}  DSP {row.get('dsps')}  Fmax {row.get('fmax_mhz')} MHz "
          f"(target {row['clock_target_mhz']}{', seeds ' + str(row['seed_sweep']) if row.get('seed_sweep') else ''})  act/dot LUT {row.get('activation_luts')}/{row.get('dot_luts')}  "
          f"[{row.get('tool_seconds')} s]" + (f"  ERROR {row['error']}" if "error" in row else ""), flush=True)


def table(rows: list[dict]) -> str:
    lines = ["| design | config | target | II | latency | LUT | FF | carry | BRAM | DSP | Fmax MHz (target) "
             "| act. / dot LUT |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["design"], r["config"])):
        lines.append(f"| {r['design']} | {r['config']} | {r['target']} | {r['ii_cycles']} | {r['latency_cycles']} | "
                     f"{r.get('luts')} | {r.get('ffs')} | {r.get('carry')} | {r.get('brams')} | {r.get('dsps')} | "
                     f"{r.get('fmax_mhz')} ({r['clock_target_mhz']})"
                     + (f" seed {r['seed']} of {len(r['seed_sweep'])}" if r.get("seed_sweep") else "")
                     + f" | {r.get('activation_luts')} / "
                     f"{r.get('dot_luts')} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    ap.add_argument("--configs", nargs="+", default=["default"], choices=list(CONFIGS) + list(PEERS))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "qor_vs_peers.json"))
    ap.add_argument("--seeds", type=int, nargs="+",
                    help="place and route each design once per seed and keep the best Fmax (hwgen synth "
                         "--seeds; the row lists every seed's Fmax); default: seed 1 only")
    ap.add_argument("--tmg-ripup", action="store_true",
                    help="ECP5: router2's timing-driven rip-up (hwgen synth --tmg-ripup); only for designs "
                         "that can meet their clock target (nextpnr gives up after 1,000 passes otherwise)")
    args = ap.parse_args()
    results = ResultsFile(args.json, key=lambda r: (r["design"], r["config"]))
    for name in args.designs:
        for config in args.configs:
            if config in PEERS:
                if PEERS[config] != name:
                    continue
                results.put(run_peer(config))
            else:
                results.put(run(name, config, args.seeds, args.tmg_ripup))
    rows = results.rows
    print()
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
