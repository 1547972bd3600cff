"""dsODENet blocks vs the unrolled N-copy hardware.

For N = 2, 4, 8: parameters of the ODE model vs the unrolled ResNet (whole net and block) and
digits accuracy of both (quant_models/onnx/accuracy_ode.json); for the block: LUT / FF / BRAM /
Fmax / cycles of the ODEBlockUnit running N steps vs the unrolled hardware, via the open flow.
The unrolled hardware is taken as N copies of a one-step block (same body, own state buffer,
as each unrolled step needs a skip buffer for h), i.e. N x the 1-step unit's resources, with
its latency that of N chained steps.

    python bench/ode.py [--targets ecp5] [--json bench/results/ode.json]
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from unit_synth import synth_unit  # noqa: E402

from hwgen.ir import Conv, ODEBlock  # noqa: E402
from hwgen.passes import compile_model  # noqa: E402
from hwgen.passes.fold import fold_graph  # noqa: E402
from hwgen.rtl.ode_block import ODEBlockUnit  # noqa: E402


def block_of(n: int, target_cycles: int) -> ODEBlock:
    graph = compile_model(os.path.join(ROOT, "quant_models", "onnx", f"digits_odenet_n{n}.onnx"))
    fold_graph(graph, ("auto", target_cycles))
    return next(op for op in graph.core if isinstance(op, ODEBlock))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["ecp5"])
    ap.add_argument("--steps", nargs="+", type=int, default=[2, 4, 8])
    ap.add_argument("--step-cycles", type=int, default=2048,
                    help="fold target per Euler step (the inference target is N times this, so every N gets "
                         "the same body hardware)")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "bench-ode"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "ode.json"))
    args = ap.parse_args()
    acc = json.load(open(os.path.join(ROOT, "quant_models", "onnx", "accuracy_ode.json")))
    rows = []
    for target in args.targets:
        for n in args.steps:
            block = block_of(n, args.step_cycles * n)
            one = copy.copy(block)
            one.steps = 1
            weight_bits = sum(int(op.weights.size * op.w_type.bits) for op in block.body if isinstance(op, Conv))
            ode_unit, step_unit = ODEBlockUnit.from_op(block), ODEBlockUnit.from_op(one)
            ode = synth_unit(ode_unit, f"ode_n{n}", os.path.join(args.workdir, f"ode_n{n}-{target}"), target=target,
                             cycles=int(ode_unit.cycles), extra={"latency": int(ode_unit.latency)})
            step = synth_unit(step_unit, f"ode_step_n{n}", os.path.join(args.workdir, f"step_n{n}-{target}"),
                              target=target, cycles=int(step_unit.cycles), extra={"latency": int(step_unit.latency)})
            row = {
                "steps": n, "target": target,
                "params_ode": acc[f"digits_odenet_n{n}"]["params_total"],
                "params_resnet": acc[f"digits_resnet_n{n}"]["params_total"],
                "params_block_ode": acc[f"digits_odenet_n{n}"]["params_block"],
                "params_block_resnet": acc[f"digits_resnet_n{n}"]["params_block"],
                "accuracy_ode": acc[f"digits_odenet_n{n}"]["test_accuracy"],
                "accuracy_resnet": acc[f"digits_resnet_n{n}"]["test_accuracy"],
                "weight_bits_ode": weight_bits, "weight_bits_unrolled": weight_bits * n,
                "ode": ode, "one_step": step,
                "unrolled_estimate": {k: (step[k] * n if isinstance(step.get(k), (int, float)) and k in
                                          ("luts", "ffs", "carry", "brams", "dsps") else step.get(k))
                                      for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz")},
                "unrolled_latency": int(step_unit.latency) * n,
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(rows, f, indent=2)
    print("\n| N | params ODE / ResNet (whole) | block params | acc ODE / ResNet | weight bits ODE / unrolled |"
          " ODE block LUT / FF / BRAM / Fmax | unrolled (N x 1 step) LUT / FF / BRAM | latency ODE / unrolled |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        o, u = r["ode"], r["unrolled_estimate"]
        print(f"| {r['steps']} | {r['params_ode']} / {r['params_resnet']} | {r['params_block_ode']} / "
              f"{r['params_block_resnet']} | {r['accuracy_ode']:.3f} / {r['accuracy_resnet']:.3f} | "
              f"{r['weight_bits_ode']} / {r['weight_bits_unrolled']} | {o['luts']} / {o['ffs']} / {o['brams']} / "
              f"{o['fmax_mhz']} | {u['luts']} / {u['ffs']} / {u['brams']} | {o['latency']} / {r['unrolled_latency']} |")
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
