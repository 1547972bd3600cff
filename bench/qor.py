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
from hwgen.flows import synthesize  # noqa: E402
from hwgen.ir import Dot  # noqa: E402
from hwgen.passes import CompileOptions, compile_model  # noqa: E402
from hwgen.passes.fold import fold_graph  # noqa: E402
from hwgen.rtl.build import build_accelerator  # noqa: E402

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
    out = os.path.join(workdir, f"{model}-{policy}")
    report = build_accelerator(graph, out)
    acc_bits = [op.acc_type.bits for op in graph.core if isinstance(op, Dot)]
    row = {"model": model, "policy": policy, "target": target, "target_cycles": target_cycles,
           "ii_cycles": report["ii_cycles"], "acc_bits": acc_bits}
    t0 = time.perf_counter()
    try:
        res = synthesize(out, target=target, progress=lambda m: None)
        row.update({k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz")})
    except HwgenError as exc:  # e.g. does not fit: keep the numbers we have
        row["error"] = str(exc)
    row["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"{model:16s} {policy:9s} {target:6s} acc {acc_bits}  LUT {row.get('luts')}  FF {row.get('ffs')}  "
          f"carry {row.get('carry')}  Fmax {row.get('fmax_mhz')}  ({row['seconds']} s)"
          + (f"  ERROR {row['error']}" if "error" in row else ""), flush=True)
    return row


def plot(rows, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = sorted({r["target"] for r in rows})
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4), squeeze=False)
    for ax, target in zip(axes[0], targets):
        width = 0.8 / len(POLICIES)
        for i, policy in enumerate(POLICIES):
            vals = [next((r.get("luts") or 0 for r in rows if r["model"] == m and r["policy"] == policy
                          and r["target"] == target), 0) for m in models]
            ax.bar([j + i * width for j in range(len(models))], vals, width, label=policy)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(models))], models, rotation=15)
        ax.set_ylabel("LUT4")
        ax.set_title(f"{target}: LUTs per accumulator policy")
        ax.legend()
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
    args = ap.parse_args()
    rows = []
    for target in args.targets:
        for model in args.models:
            for policy in args.policies:
                rows.append(run_one(model, policy, target, args.target_cycles, args.workdir))
                os.makedirs(os.path.dirname(args.json), exist_ok=True)
                with open(args.json, "w") as f:
                    json.dump(rows, f, indent=2)
    plot(rows, os.path.splitext(args.json)[0] + ".png")
    print("| model | target | policy | acc bits | LUT4 | FF | carry | Fmax MHz |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['target']} | {r['policy']} | {'/'.join(map(str, r['acc_bits']))} | "
              f"{r.get('luts')} | {r.get('ffs')} | {r.get('carry')} | {r.get('fmax_mhz')} |")
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
