"""dsODENet blocks vs the unrolled N-copy hardware, both as real synthesized networks.

For N = 2, 4, 8: parameters of the ODE model vs the unrolled ResNet (whole net and block) and
digits accuracy of both (quant_models/onnx/accuracy_ode.json). For the hardware, the same ODE
model is compiled twice and synthesized through `hwgen synth`:

  * ODE: `hwgen compile` (the pass folds the N weight-sharing steps into one ODEBlock), folded
    auto for N x --step-cycles cycles per inference, so every N gets the same body hardware;
  * unrolled: `hwgen compile --no-ode-blocks` (N copies of the body, each with its residual Add
    and skip FIFO for h), with every copy folded exactly like the ODE body (same PE / SIMD), and
    the stem and classifier folded as in the ODE design.

Reported: whole-design LUT / FF / carry / BRAM / Fmax (post-route), the block's share (the
layers of the ODE block, or of the N unrolled steps, from yosys' per-module statistics), the
weight memory of the block, and II / latency from the compile report (the timing model the
RTL tests check against simulation). DSPs are off by default (`--dsp` to allow them) so that the
N = 8 unrolled design's 4-bit products fit the device and the LUT counts compare like with like.

    python bench/ode.py [--steps 2 4 8] [--targets ecp5] [--json bench/results/ode.json]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from unit_synth import synthesize_or_synth_only  # noqa: E402

from hwgen.flows import synthesize  # noqa: E402
from hwgen.compiler import CompileOptions, compile_model  # noqa: E402
from hwgen.passes.fold import fold_graph  # noqa: E402
from hwgen.rtl.build import build_accelerator  # noqa: E402

RESOURCES = ("luts", "ffs", "carry", "brams", "lutram", "dsps")


def compile_to(model: str, out_dir: str, fold, *, ode_blocks: bool) -> dict:
    graph = compile_model(model, CompileOptions(ode_blocks=ode_blocks))
    fold_graph(graph, fold)
    return build_accelerator(graph, out_dir)


def block_layers(report: dict) -> set[str]:
    """Names of the layers that make up the ODE block (or the N unrolled residual steps)."""
    names = set()
    for layer in report["layers"]:
        if layer["op"] == "ODEBlock":
            names |= {layer["name"], *layer["body"]}
        elif layer["op"] == "Add":
            names |= {layer["name"], *layer["residual_body"]}
    return names


def unrolled_folding(ode_report: dict, unrolled_report: dict) -> dict:
    """Fold every unrolled copy like the ODE body (depthwise like its depthwise conv, pointwise
    like its pointwise conv) and the stem / classifier like the ODE design."""
    ode = {layer["name"]: layer for layer in ode_report["layers"]}
    body = next(layer["body"] for layer in ode_report["layers"] if layer["op"] == "ODEBlock")
    body_convs = {("dw" if ode[n]["groups"] > 1 else "pw"): ode[n] for n in body if n in ode and ode[n]["op"] == "Conv"}
    inside = block_layers(unrolled_report)
    spec = {}
    for layer in unrolled_report["layers"]:
        if "pe" not in layer or layer["op"] not in ("Conv", "MatVec"):
            continue
        src = (body_convs["dw" if layer["groups"] > 1 else "pw"] if layer["name"] in inside
               else ode[layer["name"]])
        spec[layer["name"]] = {"pe": src["pe"], "simd": src["simd"]}
    return spec


def block_resources(synth: dict, layers: set[str]) -> dict:
    """Sum the per-module resources of the pipeline stages (and their stream plumbing) of `layers`."""
    total = dict.fromkeys(RESOURCES, 0)
    for mod in synth["per_module"]:
        if mod["depth"] != 2:
            continue
        stage = re.sub(r"_(conv|fifo)$", "", mod["module"].split(".")[-1].split("_", 1)[1])
        if stage in layers:
            for k in RESOURCES:
                total[k] += mod.get(k) or 0
    return total


def block_memory_bits(report: dict, layers: set[str]) -> dict:
    rows = [r for r in report["layers"] if r["name"] in layers]
    return {"weight_bits": sum(r.get("rom_bits", r.get("weight_bits", 0)) or 0 for r in rows if r["op"] != "Add"
                               and r["op"] != "ODEBlock"),
            "memory_bits": sum(r.get("memory_bits") or 0 for r in rows)}


def design_row(report: dict, synth: dict) -> dict:
    layers = block_layers(report)
    return {
        **{k: synth.get(k) for k in RESOURCES}, "fmax_mhz": synth.get("fmax_mhz"),
        "tool_seconds": synth.get("tool_seconds"), "pnr_error": synth.get("pnr_error"),
        "ii_cycles": report["ii_cycles"], "latency_cycles": report["latency_cycles"],
        "block": {**block_resources(synth, layers), **block_memory_bits(report, layers)},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["ecp5"], choices=["ecp5", "ice40"])
    ap.add_argument("--steps", nargs="+", type=int, default=[2, 4, 8])
    ap.add_argument("--step-cycles", type=int, default=2048,
                    help="fold target per Euler step (the inference target is N times this, so every N gets "
                         "the same body hardware)")
    ap.add_argument("--dsp", action="store_true", help="let yosys map multipliers to DSP blocks")
    ap.add_argument("--pnr-timeout", type=float, default=1500,
                    help="seconds per tool before falling back to yosys-only numbers (Fmax then unknown)")
    ap.add_argument("--unrolled-stage", choices=["pnr", "synth"], default="pnr",
                    help="synth: yosys only for the unrolled designs (their place and route takes long on "
                         "2 cores for N = 8); the ODE designs are always placed and routed")
    ap.add_argument("--fresh", action="store_true", help="start a new JSON instead of updating earlier rows")
    ap.add_argument("--reuse", action="store_true",
                    help="take synthesis results already in the work directory (from an interrupted run)")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "bench-ode"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "ode.json"))
    args = ap.parse_args()
    acc = json.load(open(os.path.join(ROOT, "quant_models", "onnx", "accuracy_ode.json")))
    rows = []
    if not args.fresh and os.path.isfile(args.json):
        with open(args.json) as f:
            rows = [r for r in json.load(f) if "ode" in r and "block" in r["ode"]]
    for target in args.targets:
        for n in args.steps:
            model = os.path.join(ROOT, "quant_models", "onnx", f"digits_odenet_n{n}.onnx")
            ode_dir = os.path.join(args.workdir, f"ode_n{n}")
            unr_dir = os.path.join(args.workdir, f"unrolled_n{n}")
            print(f"[N={n}] compile ODE and unrolled designs", flush=True)
            ode_rep = compile_to(model, ode_dir, ("auto", args.step_cycles * n), ode_blocks=True)
            first = compile_to(model, unr_dir, ("auto", args.step_cycles), ode_blocks=False)  # for its layer list
            spec = unrolled_folding(ode_rep, first)
            unr_rep = compile_to(model, unr_dir, spec, ode_blocks=False)
            designs = {}
            for label, d, rep in (("ode", ode_dir, ode_rep), ("unrolled", unr_dir, unr_rep)):
                print(f"[N={n}] synthesize {label} for {target}", flush=True)
                progress = lambda m: print("   ", m, flush=True)  # noqa: E731
                done = os.path.join(d, f"synth-{target}.json")
                if args.reuse and os.path.isfile(done):
                    with open(done) as f:
                        synth = json.load(f)
                    print(f"    reusing {done}", flush=True)
                elif label == "unrolled" and args.unrolled_stage == "synth":
                    synth = synthesize(d, target=target, dsp=args.dsp, stage="synth", progress=progress)
                else:
                    synth = synthesize_or_synth_only(d, target=target, dsp=args.dsp, timeout=args.pnr_timeout,
                                                     progress=progress)
                designs[label] = design_row(rep, synth)
            o, u = designs["ode"]["block"], designs["unrolled"]["block"]
            row = {
                "steps": n, "target": target, "dsp": args.dsp,
                "params_ode": acc[f"digits_odenet_n{n}"]["params_total"],
                "params_resnet": acc[f"digits_resnet_n{n}"]["params_total"],
                "params_block_ode": acc[f"digits_odenet_n{n}"]["params_block"],
                "params_block_resnet": acc[f"digits_resnet_n{n}"]["params_block"],
                "accuracy_ode": acc[f"digits_odenet_n{n}"]["test_accuracy"],
                "accuracy_resnet": acc[f"digits_resnet_n{n}"]["test_accuracy"],
                **designs,
                "ratios": {"block_luts": round(o["luts"] / u["luts"], 3), "block_ffs": round(o["ffs"] / u["ffs"], 3),
                           "weight_bits": round(o["weight_bits"] / u["weight_bits"], 3),
                           "latency": round(designs["ode"]["latency_cycles"] / designs["unrolled"]["latency_cycles"], 3)},
            }
            print(json.dumps(row), flush=True)
            rows = [r for r in rows if (r["steps"], r["target"]) != (n, target)] + [row]
            rows.sort(key=lambda r: (r["target"], r["steps"]))
            os.makedirs(os.path.dirname(args.json), exist_ok=True)
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=2)
    print_tables(rows)
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


def print_tables(rows: list[dict]) -> None:
    print("\n| N | params ODE / ResNet (whole) | block params ODE / ResNet | accuracy ODE / ResNet |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['steps']} | {r['params_ode']} / {r['params_resnet']} | {r['params_block_ode']} / "
              f"{r['params_block_resnet']} | {r['accuracy_ode']:.3f} / {r['accuracy_resnet']:.3f} |")
    print("\n| N | design | whole LUT / FF / carry / BRAM / LUTRAM | Fmax MHz | block LUT / FF / BRAM | "
          "block weight bits | II / latency cycles |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        for label in ("ode", "unrolled"):
            d, b = r[label], r[label]["block"]
            print(f"| {r['steps']} | {label} | {d['luts']} / {d['ffs']} / {d['carry']} / {d['brams']} / {d['lutram']} | "
                  f"{d['fmax_mhz']} | {b['luts']} / {b['ffs']} / {b['brams']} | {b['weight_bits']} | "
                  f"{d['ii_cycles']} / {d['latency_cycles']} |")
    print("\n| N | block LUT ODE/unrolled (aim <= 1.2/N) | block FF ODE/unrolled | weight bits ODE/unrolled | "
          "latency ODE/unrolled |")
    print("|---|---|---|---|---|")
    for r in rows:
        q = r["ratios"]
        print(f"| {r['steps']} | {q['block_luts']} ({1.2 / r['steps']:.3f}) | {q['block_ffs']} | {q['weight_bits']} | "
              f"{q['latency']} |")


if __name__ == "__main__":
    main()
