"""Simulation speed: inferences per second of the cocotb bench on Icarus vs Verilator, for TFC
compiled with one folding (vectors include the bench's adversarial ones; stalls on).

    python bench/sim_speed.py [--vectors 200] [--json bench/results/sim_speed.json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from hwgen.compiler import compile_model  # noqa: E402
from hwgen.passes.fold import fold_graph  # noqa: E402
from hwgen.rtl.build import build_accelerator  # noqa: E402
from sim.verify import verify_dir  # noqa: E402

MODELS = {"TFC_1W1A": "tests/fixtures/TFC_1W1A.onnx", "TFC_2W2A": "tests/fixtures/TFC_2W2A.onnx"}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=int, default=200)
    ap.add_argument("--target-cycles", type=int, default=1024)
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "sim_speed.json"))
    args = ap.parse_args()
    rows = []
    for model, path in MODELS.items():
        graph = compile_model(os.path.join(ROOT, path))
        fold_graph(graph, ("auto", args.target_cycles))
        with tempfile.TemporaryDirectory() as out:
            report = build_accelerator(graph, out)
            for sim in ("icarus", "verilator"):
                log = []
                res = verify_dir(out, simulator=sim, vectors=args.vectors, seed=0, progress=log.append)
                build = next((float(m.group(1)) for line in log
                              if (m := re.search(r"build done in ([\d.]+) s", line))), None)
                run = next(float(m.group(1)) for line in log if (m := re.search(r"simulation done in ([\d.]+) s", line)))
                n = res.passed + res.failed
                row = {"model": model, "simulator": sim, "ii_cycles": report["ii_cycles"], "vectors": n,
                       "passed": res.passed, "failed": res.failed, "build_s": build, "simulation_s": run,
                       "inferences_per_s": round(n / run, 1),
                       "cycles_per_s": round(n * report["ii_cycles"] / run)}
                print(json.dumps(row), flush=True)
                rows.append(row)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=2)
    print("\n| model | simulator | II cycles | vectors | result | build s | simulation s | inferences/s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['simulator']} | {r['ii_cycles']} | {r['vectors']} | {r['passed']} passed, "
              f"{r['failed']} failed | {r['build_s']} | {r['simulation_s']} | {r['inferences_per_s']} |")
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
