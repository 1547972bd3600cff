"""Per model: layers, accumulator widths (exact / A2Q / data type), % exact match of the golden
model against qonnx's execute_onnx on random inputs, import + streamline time.

    python bench/foundation.py [--vectors 1000] [--json bench/results/foundation.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hwgen.frontend.reference import compare_with_reference  # noqa: E402
from hwgen.ir import MatVec  # noqa: E402
from hwgen.compiler import compile_model  # noqa: E402

MODELS = [
    ("TFC_1W1A", "tests/fixtures/TFC_1W1A.onnx", (1, 28, 28), "unit"),
    ("TFC_2W2A", "tests/fixtures/TFC_2W2A.onnx", (1, 28, 28), "unit"),
    ("UNSW-NB15 w2a2", "tests/fixtures/unsw_nb15-mlp-w2a2.onnx", (600,), "bipolar"),
] + [(f"digits {k}", f"quant_models/onnx/digits_mlp_{k}.onnx", (64,), "unit")
     for k in ("w2a2", "w4a4", "w1a1", "w4a4_a2q", "w4a4_a2qplus")]


def measure(name, path, shape, kind, vectors, seed):
    path = os.path.join(ROOT, path)
    t0 = time.perf_counter()
    graph = compile_model(path)
    seconds = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    x = (rng.choice(np.array([-1.0, 1.0], np.float32), (vectors, *shape)) if kind == "bipolar"
         else rng.random((vectors, *shape), dtype=np.float32))
    match = compare_with_reference(graph, path, x)
    layers = [op for op in graph.core if isinstance(op, MatVec)]
    return {
        "model": name, "file": os.path.relpath(path, ROOT), "vectors": vectors,
        "import_seconds": round(seconds, 3),
        "layers": [{"name": op.name, "shape": list(op.weights.shape), **{f"acc_bits_{k}": v for k, v in op.acc_bounds.items()}}
                   for op in layers],
        "exact_match_percent": {t: round(100 * v, 3) for t, v in match.items()},
        "min_exact_match_percent": round(100 * min(match.values()), 3),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "foundation.json"))
    args = ap.parse_args()
    results = [measure(*m, args.vectors, args.seed) for m in MODELS]
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(results, f, indent=2)
    print(f"| model | layers | acc bits exact | acc bits A2Q | acc bits data type | exact match vs qonnx ({args.vectors} vectors) | import s |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        col = lambda k: "/".join(str(l[f"acc_bits_{k}"]) for l in r["layers"])  # noqa: E731
        shapes = ", ".join("x".join(map(str, l["shape"][::-1])) for l in r["layers"])
        print(f"| {r['model']} | {shapes} | {col('exact')} | {col('a2q')} | {col('datatype')} | "
              f"{r['min_exact_match_percent']:.2f}% | {r['import_seconds']:.2f} |")
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
