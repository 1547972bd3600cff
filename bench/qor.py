"""Quality of results per accumulator policy: the same model and folding compiled with
--acc-policy exact | a2q | datatype | fixed32, synthesized with the open flows.

For each model x policy x target: LUT4, FF, carry cells, BRAM, DSP, post-route Fmax, and the
accumulator widths used. Writes JSON and a bar plot (LUTs per policy).

    python bench/qor.py [--targets ecp5 ice40] [--models digits_w4a4 digits_w4a4_a2q unsw]
                        [--target-cycles 1024] [--json bench/results/qor.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hwgen.errors import HwgenError  # noqa: E402
from hwgen.ir import Dot  # noqa: E402
from hwgen.compiler import CompileOptions, compile_model  # noqa: E402
from hwgen.passes.fold import fold_graph  # noqa: E402
from hwgen.rtl.build import build_accelerator  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unit_synth import synthesize_or_synth_only  # noqa: E402

MODELS = {
    "digits_w4a4": "quant_models/onnx/digits_mlp_w4a4.onnx",
    "digits_w4a4_a2q": "quant_models/onnx/digits_mlp_w4a4_a2q.onnx",
    "digits_w2a2": "quant_models/onnx/digits_mlp_w2a2.onnx",
    "unsw": "tests/fixtures/unsw_nb15-mlp-w2a2.onnx",
}
POLICIES = ("exact", "a2q", "datatype", "fixed32")


def run_one(model, policy, target, target_cycles, workdir):
    graph = compile_model(os.path.join(ROOT, MODELS[model]), CompileOptions(acc_policy=policy))
    fold_graph(graph, ("auto", target_cycles))
    out = os.path.join(workdir, f"{model}-{policy}-{target_cycles}")
    report = build_accelerator(graph, out)
    dots = [op for op in graph.core if isinstance(op, Dot)]
    acc_bits = [op.acc_type.bits for op in dots]
    row = {"model": model, "policy": policy, "target": target, "target_cycles": target_cycles,
           "ii_cycles": report["ii_cycles"], "acc_bits": acc_bits}
    t0 = time.perf_counter()
    try:  # a design that does not fit keeps its synthesis numbers (no Fmax) and says why
        res = synthesize_or_synth_only(out, target=target, progress=lambda m: None)
        row.update({k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz")})
        row["mac_units"] = mac_resources(res, {op.name for op in dots})
        if res.get("pnr_error"):
            row["error"] = res["pnr_error"]
    except HwgenError as exc:
        row["error"] = str(exc)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{model:16s} {policy:9s} {target:6s} acc {acc_bits}  LUT {row.get('luts')}  FF {row.get('ffs')}  "
          f"carry {row.get('carry')}  Fmax {row.get('fmax_mhz')}  ({row['seconds']} s)"
          + (f"  ERROR {row['error']}" if "error" in row else ""), flush=True)
    return row


def mac_resources(synth: dict, dot_layers: set[str]) -> dict:
    """LUT / FF / carry of the MatVec / Conv units alone (yosys per-module statistics), where the
    accumulators live; thresholds and stream plumbing excluded."""
    total = {"luts": 0, "ffs": 0, "carry": 0}
    for mod in synth.get("per_module") or []:
        if mod["depth"] == 2 and mod.get("layer") in dot_layers:
            for k in total:
                total[k] += mod.get(k) or 0
    return total


def key(row: dict) -> tuple:
    return row["model"], row["policy"], row["target"], row["target_cycles"]


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({r["target"] for r in rows})
    # totals (threshold ROMs included, where yosys' BRAM-vs-logic choice flips) and the MAC units'
    # carry cells (where the accumulator width shows directly)
    metrics = [("LUT4 (whole design)", lambda r: r.get("luts") or 0),
               ("carry cells (MAC units)", lambda r: (r.get("mac_units") or {}).get("carry") or 0)]
    fig, axes = plt.subplots(len(metrics), len(targets), figsize=(6 * len(targets), 3.6 * len(metrics)),
                             squeeze=False)
    for col, target in enumerate(targets):
        groups = list(dict.fromkeys((r["model"], r["target_cycles"]) for r in rows if r["target"] == target))
        width = 0.8 / len(POLICIES)
        for row_i, (label, value) in enumerate(metrics):
            ax = axes[row_i][col]
            for i, policy in enumerate(POLICIES):
                vals = [next((value(r) for r in rows if (r["model"], r["target_cycles"]) == g
                              and r["policy"] == policy and r["target"] == target), 0) for g in groups]
                ax.bar([j + i * width for j in range(len(groups))], vals, width, label=policy)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(groups))],
                          [f"{m}\nII {c}" for m, c in groups], rotation=15)
            ax.set_ylabel(label)
            ax.set_title(f"{target}: {label} per accumulator policy")
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["digits_w4a4", "digits_w4a4_a2q", "unsw"], choices=list(MODELS))
    ap.add_argument("--targets", nargs="+", default=["ecp5", "ice40"], choices=["ecp5", "ice40", "xilinx"])
    ap.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES))
    ap.add_argument("--target-cycles", type=int, default=1024)
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "bench-qor"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "qor.json"))
    ap.add_argument("--fresh", action="store_true",
                    help="start a new JSON instead of updating the rows of earlier runs (other models / targets)")
    args = ap.parse_args()
    rows = []
    if not args.fresh and os.path.isfile(args.json):
        with open(args.json) as f:
            rows = [r for r in json.load(f) if "target_cycles" in r]
    for target in args.targets:
        for model in args.models:
            for policy in args.policies:
                new = run_one(model, policy, target, args.target_cycles, args.workdir)
                rows = [r for r in rows if key(r) != key(new)] + [new]
                os.makedirs(os.path.dirname(args.json), exist_ok=True)
                with open(args.json, "w") as f:
                    json.dump(rows, f, indent=2)
    rows.sort(key=lambda r: (r["target_cycles"], r["target"], r["model"], POLICIES.index(r["policy"])))
    plot(rows, os.path.splitext(args.json)[0] + ".png")
    print("| model | target | cycles | policy | acc bits | LUT4 | FF | carry | BRAM | Fmax MHz | MAC units LUT / FF / carry |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        mac = r.get("mac_units") or {}
        print(f"| {r['model']} | {r['target']} | {r['target_cycles']} | {r['policy']} | "
              f"{'/'.join(map(str, r['acc_bits']))} | {r.get('luts')} | {r.get('ffs')} | {r.get('carry')} | "
              f"{r.get('brams')} | {r.get('fmax_mhz')} | {mac.get('luts')} / {mac.get('ffs')} / {mac.get('carry')} |")
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
