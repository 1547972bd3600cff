"""Compile time vs model size: import + streamline + fold + Verilog emission, for synthetic
MLPs (4-bit weights, 3-bit activations) from ~10k to ~300k weights and for TFC.

    python bench/compile_time.py [--json bench/results/compile_time.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests"))

from onnx_builders import random_mlp  # noqa: E402

from hwgen.compiler import compile_model  # noqa: E402
from hwgen.passes.fold import fold_graph  # noqa: E402
from hwgen.rtl.build import build_accelerator  # noqa: E402

SIZES = [(64, 128, 64, 10), (256, 128, 128, 10), (784, 64, 64, 64, 10), (784, 256, 256, 10),
         (1024, 256, 128, 10)]


def measure(path: str, fold, label: str, weights: int) -> dict:
    t0 = time.perf_counter()
    graph = compile_model(path)
    t1 = time.perf_counter()
    fold_graph(graph, fold)
    with tempfile.TemporaryDirectory() as out:
        report = build_accelerator(graph, out)
        size = os.path.getsize(os.path.join(out, report["verilog"]))
    t2 = time.perf_counter()
    row = {"model": label, "weights": weights, "fold": fold if isinstance(fold, str) else f"auto {fold[1]}",
           "import_s": round(t1 - t0, 2), "emit_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
           "ii_cycles": report["ii_cycles"], "verilog_bytes": size}
    print(f"{label:28s} {weights:7d} weights  fold {row['fold']:10s} import {row['import_s']:6.2f} s  "
          f"fold+emit {row['emit_s']:6.2f} s  II {row['ii_cycles']}", flush=True)
    return row


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "compile_time.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for sizes in SIZES:
            path = random_mlp(os.path.join(d, "m.onnx"), seed=1, sizes=sizes, w_bits=4, a_bits=3)
            weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
            label = "mlp " + "-".join(map(str, sizes))
            rows.append(measure(path, ("auto", 1024), label, weights))
            if weights <= 20000:
                rows.append(measure(path, "full", label, weights))
    tfc = os.path.join(ROOT, "tests", "fixtures", "TFC_2W2A.onnx")
    rows.append(measure(tfc, ("auto", 1024), "TFC_2W2A", 784 * 64 + 2 * 64 * 64 + 640))
    rows.append(measure(tfc, ("auto", 64), "TFC_2W2A", 784 * 64 + 2 * 64 * 64 + 640))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=2)
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
