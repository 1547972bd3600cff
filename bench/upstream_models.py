"""Models from other people's code: the upstream architectures from brevitas_examples (quant_models/upstream.py:
bnn_pynq CNV and the TFC / SFC / LFC family, MobileNetV1, bnn_pynq resnet18_4w4a, the A2Q / A2Q+ CIFAR
ResNet-18, their identity-shortcut blocks, the super-resolution ESPCN with and without A2Q), each with the
seeded random weights and BatchNorm statistics, the inputs and the input format its test uses
(tests/test_upstream_models.py, tests/test_upstream_bnn_pynq.py, tests/test_data_movement.py), exported
into build/upstream_models/<model>/ and run through `hwgen check` in chunks of 100 inputs. Per model:

  layers        Dot ops (Conv / Gemm / MatMul) in check's lowered graph (the importer and the passes of
                hwgen compile up to accumulator sizing), residual Adds, projection shortcuts
  A2Q acc bits  every accumulator-aware layer's exact accumulator width against its trained target, the
                targets as the tests take them (A2Q ResNet-18 / blocks: every block conv, the 8-bit stem and
                linear are not A2Q; ESPCN: each layer's Brevitas quantizer, conv1 IO-targeted at 32 bits)
  check         exact / tie / float / downstream / mismatch element counts over --vectors inputs
  RTL           with --verilator: hwgen.compile with the test's auto folding (2^14 cycles per inference for
                CNV / MobileNet / ResNet-18, 2^12 for the blocks and ESPCN, the FC family as
                test_upstream_bnn_pynq.FC_VERILATOR), written to build/upstream_models/<model>/rtl and
                verified in Verilator as the tests do (seed 1, cxx_opt -O0, their vectors and
                adversarial limits): passed / failed / vectors, plan and measured II and latency;
                without --verilator these fields are null

    python bench/upstream_models.py [--models cnv_1w1a tfc_1w1a ...] [--vectors 500] [--verilator]
                                    [--json bench/results/upstream_models.json]
    python bench/upstream_models.py --models tfc_1w1a quant_espcn_x2_w4a4_a2q_13b --vectors 100 \\
                                    --json /tmp/upstream_try.json     # a quick look (about a minute)

On a busy 2-core machine check takes 40 s (ESPCN 8x8) to 6 minutes (CNV, ResNet-18) per model at 500
inputs, a Verilator build several minutes more for the big models. Rows of models not rerun are kept in
the JSON; the JSON is rewritten after every model. Exit status 1 when a model of this run has a check
mismatch, an RTL failure or an error.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import partial
from typing import Callable

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402

from hwgen.check import check_model, prepare  # noqa: E402
from hwgen.frontend import InputFormat  # noqa: E402
from quant_models import upstream  # noqa: E402
from quant_models.upstream import espcn_inputs, rgb8_inputs, unit_inputs  # noqa: E402  (the tests' inputs)
from results_file import ResultsFile  # noqa: E402

WORKDIR = os.path.join(ROOT, "build", "upstream_models")
RGB8 = InputFormat(bits=8, scale=2.0 ** -8, signed=False)  # tests/test_upstream_models.RGB8: "8b RGB", no quantizer
BLOCKS = {"channels": 32, "blocks": 2, "size": 16}  # tests/test_upstream_models.BLOCKS
CHUNK = 100  # check's reference keeps every intermediate tensor: 100 inputs at a time


# -- A2Q targets, as the tests take them -----------------------------------------------------------------

def _block_convs_target(bits):
    """Every Conv but the first (the 8-bit stem) has the target `bits`; the linear is not A2Q."""
    def targets(dots):
        convs = [op for op in dots if op.kind == "Conv"]
        return {op.name: bits for op in convs[1:]}
    return targets


def _espcn_targets(name):
    """test_espcn_a2q_accumulators_and_check: each layer's Brevitas weight quantizer's accumulator_bit_width
    (None where it needs no quantized input: not A2Q), in layer order, against the graph's Dot ops."""
    def targets(dots):
        import torch
        from brevitas_examples.super_resolution.models import get_model_by_name

        torch.manual_seed(1)  # the same model as brevitas_espcn's
        model = get_model_by_name(name)
        upstream.randomize_bn(model, 1)
        convs = [m for m in model.modules() if hasattr(m, "weight_quant") and hasattr(m, "input_quant")]
        bits = [m.weight_quant.quant_injector.accumulator_bit_width if m.weight_quant.requires_quant_input else None
                for m in convs]
        if len(bits) != len(dots):
            raise RuntimeError(f"{len(bits)} Brevitas layers against {len(dots)} Dot ops in the graph")
        return {op.name: int(b) for op, b in zip(dots, bits) if b is not None}
    return targets


# -- the models ------------------------------------------------------------------------------------------

@dataclass
class Model:
    what: str
    build: Callable[[str], str]  # directory -> exported .onnx path
    inputs: Callable[[int], np.ndarray]  # n -> inputs as the test makes them (quant_models.upstream's generators)
    input_format: InputFormat | None
    target_cycles: int  # the *_verifies_in_verilator test's auto folding
    verify: dict = field(default_factory=lambda: {"vectors": 3})  # its verify keywords
    a2q: Callable | None = None  # Dot ops -> {layer name: trained accumulator width}
    test: str = ""


MODELS: dict[str, Model] = {}
for _n in ("cnv_1w1a", "cnv_1w2a", "cnv_2w2a"):
    MODELS[_n] = Model(f"bnn_pynq {_n} (CNV), 3x32x32", lambda d, n=_n: upstream.bnn_pynq_cnv(n, d),
                       partial(unit_inputs, shape=(3, 32, 32)), None, 2 ** 14,
                       test="test_upstream_models.py::test_cnv_*")
# test_upstream_bnn_pynq.FC_VERILATOR: name, auto folding target; verified with 10 vectors, adversarial limit 4
for _n, _target in (("tfc_1w1a", 1024), ("tfc_1w2a", 1024), ("tfc_2w2a", 1024), ("sfc_1w1a", 1024),
                    ("lfc_1w1a", 4096)):
    MODELS[_n] = Model(f"bnn_pynq {_n}, 1x28x28", lambda d, n=_n: upstream.bnn_pynq_fc(n, d),
                       partial(unit_inputs, shape=(1, 28, 28)), None, _target, {"vectors": 10, "adversarial_limit": 4},
                       test="test_upstream_bnn_pynq.py")
_MOBILENET = (3, upstream.MOBILENET_SIZE, upstream.MOBILENET_SIZE)
MODELS["mobilenet_v1"] = Model(
    f"MobileNetV1 w{upstream.MOBILENET_WIDTH} 4b, per-channel activations, 3x{upstream.MOBILENET_SIZE}^2",
    lambda d: upstream.mobilenet_v1(d), partial(rgb8_inputs, shape=_MOBILENET), RGB8, 2 ** 14,
    test="test_upstream_models.py::test_mobilenet_v1_upstream")
MODELS["mobilenet_v1_per_tensor"] = Model(
    f"MobileNetV1 w{upstream.MOBILENET_WIDTH} 4b, per-tensor activations, 3x{upstream.MOBILENET_SIZE}^2",
    lambda d: upstream.mobilenet_v1(d, per_channel_acts=False), partial(rgb8_inputs, shape=_MOBILENET), RGB8,
    2 ** 14, test="test_upstream_models.py::test_mobilenet_v1_per_tensor_activations")
MODELS["resnet18_4w4a"] = Model("bnn_pynq resnet18_4w4a, 3x32x32", lambda d: upstream.bnn_pynq_resnet18_4w4a(d),
                                partial(rgb8_inputs, shape=(3, 32, 32)), RGB8, 2 ** 14,
                                test="test_upstream_models.py::test_resnet18_4w4a")
for _n, _plus in (("a2q_resnet18_13b", False), ("a2q_plus_resnet18_13b", True)):
    MODELS[_n] = Model(f"A2Q{'+' if _plus else ''} CIFAR ResNet-18 W4A4, 13-bit target, 3x32x32",
                       lambda d, p=_plus: upstream.brevitas_a2q_resnet18(os.path.join(d, "resnet18.onnx"),
                                                                         acc_bits=13, plus=p),
                       partial(rgb8_inputs, shape=(3, 32, 32)), RGB8, 2 ** 14, a2q=_block_convs_target(13),
                       test="test_upstream_models.py::test_a2q_resnet18_*")
for _n, _bits, _plus in (("resnet_blocks", None, False), ("resnet_blocks_a2q", 13, False),
                         ("resnet_blocks_a2q_plus", 13, True)):
    MODELS[_n] = Model(
        f"{BLOCKS['blocks']} identity blocks x {BLOCKS['channels']} ch"
        + ("" if _bits is None else f", A2Q{'+' if _plus else ''} {_bits}-bit target") + f", 3x{BLOCKS['size']}^2",
        lambda d, b=_bits, p=_plus: upstream.brevitas_resnet_blocks(os.path.join(d, "blocks.onnx"), a2q_bits=b,
                                                                    plus=p, **BLOCKS),
        partial(rgb8_inputs, shape=(3, BLOCKS["size"], BLOCKS["size"])), RGB8, 2 ** 12,
        a2q=None if _bits is None else _block_convs_target(_bits),
        test="test_upstream_models.py::test_resnet_identity_blocks")
for _n in ("quant_espcn_x2_w4a4_a2q_13b", "quant_espcn_x2_w4a4_a2q_plus_13b", "quant_espcn_x2_w8a8_a2q_16b",
           "quant_espcn_x2_w8a8_a2q_plus_16b"):
    MODELS[_n] = Model(f"ESPCN x2 {_n.split('_')[3]} {_n.split('_', 4)[4]}, faithful export, 3x8x8",
                       lambda d, n=_n: upstream.brevitas_espcn(os.path.join(d, "espcn.onnx"), name=n, seed=1, size=8,
                                                               faithful=True),
                       partial(espcn_inputs, seed=1), None, 2 ** 12, {"vectors": 3, "adversarial_limit": 8},
                       a2q=_espcn_targets(_n),
                       test="test_upstream_models.py::test_espcn_a2q_*")
# test_data_movement.test_espcn_from_brevitas_examples's model (seed 0; that test compiles it unfolded and has no
# Verilator run: --verilator folds it as the A2Q variants)
MODELS["quant_espcn_x2_w4a4_base"] = Model(
    "ESPCN x2 w4a4 base, 3x8x8", lambda d: upstream.brevitas_espcn(os.path.join(d, "espcn.onnx"), seed=0, size=8),
    partial(espcn_inputs, seed=0), None, 2 ** 12, {"vectors": 3, "adversarial_limit": 8},
    test="test_data_movement.py::test_espcn_from_brevitas_examples")


# -- one model --------------------------------------------------------------------------------------------

def structure(p, a2q) -> dict:
    """Layers, residual Adds and A2Q widths of check's lowered graph."""
    from hwgen.ir import Add, Conv, Dot
    from hwgen.lowering.residual import residual_body

    core = p.graph.core
    dots = [op for op in core if isinstance(op, Dot)]
    adds = [op for op in core if isinstance(op, Add)]
    steps = [residual_body(op, core) for op in adds]
    row = {"layers": len(dots), "convs": sum(isinstance(op, Conv) for op in dots),
           "depthwise_convs": sum(isinstance(op, Conv) and op.groups > 1 for op in dots),
           "residual_adds": len(adds),
           "projection_shortcuts": sum(s is not None and any(isinstance(op, Conv) for op in s.skip) for s in steps),
           "a2q_layers": None}
    if a2q is not None:
        targets = a2q(dots)
        row["a2q_layers"] = [{"layer": op.name, "exact": op.acc_bounds.get("exact"), "a2q": op.acc_bounds.get("a2q"),
                              "datatype": op.acc_bounds.get("datatype"), "target": targets[op.name]}
                             for op in dots if op.name in targets]
        row["a2q_within_target"] = all(r["exact"] <= r["target"] for r in row["a2q_layers"])
    return row


def run_check(path, x, fmt, p) -> tuple[dict, list]:
    """check_model on x in chunks of CHUNK (as test_upstream_models._check): totals, mismatching tensors."""
    def progress(done, total, r):
        print(f"  check {done}/{total}: " + ", ".join(f"{k} {v}" for k, v in r.totals().items()), flush=True)

    r = check_model(path, x, input_format=fmt, prepared=p, chunk=CHUNK, progress=progress)
    bad = [{"tensor": t.tensor, "node": t.node, "mismatch": t.counts["mismatch"], "examples": t.examples[:3]}
           for t in r.tensors if t.counts["mismatch"]]
    return r.totals(), bad


def run_verilator(path, m: Model, build_dir: str) -> dict:
    """The *_verifies_in_verilator test's compile and verification, recorded instead of asserted."""
    import hwgen

    acc = hwgen.compile(str(path), fold="auto", target_cycles=m.target_cycles, input_format=m.input_format)
    rtl = {"target_cycles": m.target_cycles, "ii_plan": acc.plan.ii_cycles, "latency_plan": acc.plan.latency_cycles,
           "build_dir": os.path.relpath(build_dir, ROOT), **m.verify}
    print(f"  compiled: auto {m.target_cycles}, plan II {rtl['ii_plan']}, latency {rtl['latency_plan']}", flush=True)
    acc.write(build_dir)
    r = acc.verify(sim="verilator", seed=1, cxx_opt="-O0", progress=lambda s: print(f"  {s}", flush=True), **m.verify)
    rtl.update({"passed": r.passed, "failed": r.failed, "vectors": r.vectors, "ok": r.ok,
                "ii_measured": r.ii_measured, "latency_measured": r.latency_measured,
                "timing_mismatches": list(r.timing_mismatches)})
    print(f"  verilator: {r.summary()} ({r.vectors} vectors; II measured {r.ii_measured}, latency "
          f"{r.latency_measured})", flush=True)
    return rtl


def run(name: str, args) -> dict:
    m = MODELS[name]
    out = os.path.join(WORKDIR, name)
    os.makedirs(out, exist_ok=True)
    row = {"model": name, "what": m.what, "test": m.test, "vectors": args.vectors,
           "input_format": None if m.input_format is None else "RGB8 (8-bit unsigned x 2^-8)"}
    seconds = {}
    try:
        t0 = time.perf_counter()
        path = m.build(out)
        seconds["export"] = round(time.perf_counter() - t0, 1)
        row["onnx"] = os.path.relpath(path, ROOT)
        print(f"  exported {row['onnx']} ({seconds['export']} s)", flush=True)
        t0 = time.perf_counter()
        p = prepare(str(path), m.input_format)  # once: every chunk's check reuses it (the tests' prepared=)
        row.update(structure(p, m.a2q))
        seconds["prepare"] = round(time.perf_counter() - t0, 1)
        a2q = f", A2Q {a2q_cell(row)}" if row["a2q_layers"] is not None else ""
        print(f"  {row['layers']} layers ({row['convs']} conv, {row['depthwise_convs']} depthwise), "
              f"{row['residual_adds']} residual adds{a2q} ({seconds['prepare']} s)", flush=True)
        t0 = time.perf_counter()
        totals, bad = run_check(str(path), m.inputs(args.vectors), m.input_format, p)
        seconds["check"] = round(time.perf_counter() - t0, 1)
        row.update(totals)
        row["mismatch_tensors"] = bad
        row["rtl"] = None
        if args.verilator:
            t0 = time.perf_counter()
            try:
                row["rtl"] = run_verilator(path, m, os.path.join(out, "rtl"))
            except Exception as exc:  # noqa: BLE001 - a failed simulator build is a result too
                row["rtl"] = {"error": f"{type(exc).__name__}: " + "; ".join(str(exc).splitlines())[:500]}
                print(f"  verilator FAILED: {row['rtl']['error']}", flush=True)
                traceback.print_exc()
            seconds["verilator"] = round(time.perf_counter() - t0, 1)
    except Exception as exc:  # noqa: BLE001 - recorded, the other models still run
        row["error"] = f"{type(exc).__name__}: " + "; ".join(str(exc).splitlines())[:500]
        print(f"  FAILED: {row['error']}", flush=True)
        traceback.print_exc()
    seconds["total"] = round(sum(seconds.values()), 1)
    row["seconds"] = seconds
    return row


# -- table ---------------------------------------------------------------------------------------------------

def a2q_cell(row) -> str:
    """Per trained target: the widest exact accumulator / the target (number of layers)."""
    layers = row.get("a2q_layers")
    if not layers:
        return "-"
    by_target = {}
    for r in layers:
        by_target.setdefault(r["target"], []).append(r["exact"])
    return ", ".join(f"{max(v)}/{t} ({len(v)})" for t, v in sorted(by_target.items()))


def rtl_cell(row) -> str:
    rtl = row.get("rtl")
    if not rtl:
        return "-"
    if "error" in rtl:
        return "error"
    timing = "" if not rtl["timing_mismatches"] else " (timing mismatch)"
    return (f"{rtl['passed']}/{rtl['vectors']} pass, II {rtl['ii_measured']:g} / lat {rtl['latency_measured']} "
            f"(plan {rtl['ii_plan']} / {rtl['latency_plan']}){timing}" if rtl["ii_measured"] is not None else
            f"{rtl['passed']}/{rtl['vectors']} pass{timing}")


def failed(row) -> bool:
    rtl = row.get("rtl") or {}
    return bool(row.get("error") or row.get("mismatch") or "error" in rtl or (rtl and not rtl.get("ok")))


def table(rows) -> str:
    lines = [("| model | layers | residual adds | A2Q acc bits exact/target | exact | tie | float | downstream "
              "| mismatch | RTL |"), "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['model']} | error: {r['error'][:80]} | | | | | | | | |")
            continue
        layers = str(r["layers"]) + (f" ({r['depthwise_convs']} dw)" if r["depthwise_convs"] else "")
        adds = str(r["residual_adds"]) + (f" ({r['projection_shortcuts']} proj.)" if r["projection_shortcuts"] else "")
        lines.append(f"| {r['model']} | {layers} | {adds} | {a2q_cell(r)} | {r['exact']} | {r['tie']} | {r['float']} | "
                     f"{r['downstream']} | {r['mismatch']} | {rtl_cell(r)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS), metavar="MODEL",
                    help="models to run (default: all): " + ", ".join(MODELS))
    ap.add_argument("--vectors", type=int, default=500, help="check inputs per model (default 500, as the tests)")
    ap.add_argument("--verilator", action="store_true",
                    help="also compile with the test's auto folding and verify the RTL in Verilator")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "upstream_models.json"),
                    help="results file (default bench/results/upstream_models.json); rows of other models are kept")
    args = ap.parse_args(argv)
    if args.vectors < 1:
        ap.error("--vectors must be at least 1")

    order = {n: i for i, n in enumerate(MODELS)}
    results = ResultsFile(args.json, key=lambda r: r["model"], order=lambda r: order.get(r["model"], len(order)))
    for i, name in enumerate(args.models):
        print(f"[{i + 1}/{len(args.models)}] {name}: {MODELS[name].what}", flush=True)
        row = run(name, args)
        results.put(row)
        status = "FAILED" if failed(row) else "ok"
        print(f"[{i + 1}/{len(args.models)}] {name}: {status} ({row['seconds']['total']} s)", flush=True)
    rows = results.rows
    print()
    print(table(rows))
    print(f"\nwrote {args.json}")
    bad = [r["model"] for r in rows if r["model"] in args.models and failed(r)]
    if bad:
        print(f"mismatch, RTL failure or error: {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
