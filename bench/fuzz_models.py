"""Fuzz hwgen's importer and golden model with random small Brevitas models (quant_models.fuzz):
N specs drawn with a numpy Generator, each exported to QONNX and run through `hwgen check` (100
inputs, seed 0), every outcome counted:

  exact     0 mismatches and every element equal to qonnx's execute_onnx
  tie-only  0 mismatches, some tie / float / downstream differences (the reference's float32 effects)
  refused   a HwgenError (grouped by a short reason: its first clause, node names elided)
  mismatch  check found mismatches: a bug in hwgen (the spec is saved to reproduce it)
  crash     any other exception (the spec, the stage and the exception type are saved)

With --compile, every model check accepts is also compiled (hwgen.compile, fold auto, 32 cycles a
layer: the plan and its RTL units, no simulation); an exception there is a crash of stage "compile"
(a HwgenError there counts as refused).

    python bench/fuzz_models.py [--examples 200] [--seed 0] [--json bench/results/fuzz_models.json] [--compile]
    python bench/fuzz_models.py --spec '<a spec's JSON from the results>'   # reproduce one example

The test suite's counterpart, with hypothesis strategies instead of numpy, is tests/test_fuzz_models.py.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from hwgen.check import check_model  # noqa: E402
from hwgen.errors import HwgenError  # noqa: E402
from quant_models.fuzz import FuzzSpec, export, random_spec  # noqa: E402

OUTCOMES = ("exact", "tie-only", "refused", "mismatch", "crash")


def reason_key(exc: HwgenError) -> str:
    """A HwgenError's first clause without the node prefix, node names and numbers elided, so that
    one cause on different nodes is one key."""
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    msg = re.sub(r"^node '[^']*'( \([^)]*\))?: ", "", msg)
    msg = re.split(r";|: | \(|, ", msg, maxsplit=1)[0]
    msg = re.sub(r"'[^']*'", "'*'", msg)
    msg = re.sub(r"\b[A-Za-z]+_\d+\b", "*", msg)
    msg = re.sub(r"-?\d+(\.\d+)?(e-?\d+)?", "N", msg)
    return msg[:100]


def run_one(spec: FuzzSpec, compile_too: bool = False) -> dict:
    """The outcome of one spec: {"outcome", ...details}."""
    with tempfile.TemporaryDirectory() as d:
        stage = "export"
        try:
            path = export(spec, os.path.join(d, "fuzz.onnx"))
            stage = "check"
            r = check_model(path, vectors=100, seed=0)
            if compile_too and r.ok:
                stage = "compile"
                import hwgen

                hwgen.compile(path, fold="auto", target_cycles=32)
        except HwgenError as exc:
            return {"outcome": "refused", "stage": stage, "reason": reason_key(exc), "message": str(exc)}
        except Exception as exc:  # noqa: BLE001 - every other exception is a finding
            tb = traceback.extract_tb(exc.__traceback__)
            return {"outcome": "crash", "stage": stage, "type": type(exc).__name__, "message": str(exc)[:500],
                    "where": [f"{os.path.relpath(f.filename, ROOT)}:{f.lineno} {f.name}" for f in tb[-4:]],
                    "spec": spec.to_dict()}
    totals = r.totals()
    if not r.ok:
        bad = [{"tensor": t.tensor, "node": t.node, "op": t.op, "mismatch": t.counts["mismatch"],
                "examples": t.examples} for t in r.tensors if t.counts["mismatch"]]
        return {"outcome": "mismatch", "totals": totals, "tensors": bad, "spec": spec.to_dict()}
    return {"outcome": "exact" if totals["exact"] == sum(totals.values()) else "tie-only", "totals": totals}


def describe(spec: FuzzSpec) -> str:
    layers = [f"conv{c.kernel}s{c.stride}p{c.padding}w{c.weight_bits}a{c.act_bits}" + ("+pool" if c.pool else "")
              for c in spec.convs] + [f"fc{c.out}w{c.weight_bits}" + (f"a{c.act_bits}" if c.act != "none" else "")
                                      for c in spec.linears]
    return f"{spec.kind} {'x'.join(map(str, spec.input_shape))} in{spec.input_bits} {' '.join(layers)}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--examples", type=int, default=200, help="number of random models (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the numpy Generator drawing the specs")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "fuzz_models.json"),
                    help="where to write the results (default bench/results/fuzz_models.json)")
    ap.add_argument("--spec", help="run only this spec (JSON, as the results hold it)")
    ap.add_argument("--compile", action="store_true", help="also hwgen.compile each model check accepts")
    args = ap.parse_args(argv)

    if args.spec:
        specs = [FuzzSpec.from_dict(json.loads(args.spec))]
    else:
        rng = np.random.default_rng(args.seed)
        specs = [random_spec(rng) for _ in range(args.examples)]
    counts = {k: 0 for k in OUTCOMES}
    refused, mismatches, crashes = {}, [], []
    elements = {}
    t0 = time.perf_counter()
    for i, spec in enumerate(specs):
        t = time.perf_counter()
        res = run_one(spec, args.compile)
        counts[res["outcome"]] += 1
        for k, v in res.get("totals", {}).items():
            elements[k] = elements.get(k, 0) + v
        detail = ""
        if res["outcome"] == "refused":
            refused[res["reason"]] = refused.get(res["reason"], 0) + 1
            detail = f": {res['reason']}"
        elif res["outcome"] == "mismatch":
            mismatches.append(res)
            detail = ": " + ", ".join(f"{b['tensor']} {b['mismatch']}" for b in res["tensors"])
        elif res["outcome"] == "crash":
            crashes.append(res)
            detail = f": {res['stage']} {res['type']}: {res['message'][:120]}"
        elif res["outcome"] == "tie-only":
            detail = " (" + ", ".join(f"{k} {v}" for k, v in res["totals"].items() if k != "exact" and v) + ")"
        print(f"[{i + 1}/{len(specs)}] {describe(spec):60s} {res['outcome']}{detail} ({time.perf_counter() - t:.1f} s)",
              flush=True)

    doc = {"examples": len(specs), "seed": None if args.spec else args.seed, "compile": args.compile,
           "generated": len(specs),
           "counts": counts, "refused": dict(sorted(refused.items(), key=lambda kv: -kv[1])),
           "elements": elements, "mismatches": mismatches, "crashes": crashes,
           "seconds": round(time.perf_counter() - t0, 1)}
    print(f"\ngenerated {len(specs)}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + f" ({doc['seconds']} s)")
    for reason, n in doc["refused"].items():
        print(f"  refused {n:4d}  {reason}")
    for m in mismatches:
        print(f"  MISMATCH {json.dumps(m['tensors'])[:200]}\n    spec: {json.dumps(m['spec'])}")
    for c in crashes:
        print(f"  CRASH ({c['stage']}) {c['type']}: {c['message'][:200]}\n    at {c['where'][-1]}\n"
              f"    spec: {json.dumps(c['spec'])}")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)
            f.write("\n")
        print(f"wrote {args.json}")
    return 1 if mismatches or crashes else 0


if __name__ == "__main__":
    sys.exit(main())
