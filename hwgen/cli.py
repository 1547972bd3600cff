"""hwgen command line: inspect, run, compile, verify.

Every user error (bad file, unsupported op, bad option) is one line on stderr and exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from .errors import HwgenError

EPILOG = """examples:
  hwgen inspect model.onnx                       per-layer types, MACs, accumulator widths
  hwgen run model.onnx --input x.npy --output y.npy
  hwgen compile model.onnx -o build/ --fold auto --target-cycles 64
  hwgen verify build/ --sim verilator --vectors 200
  hwgen synth build/ --target ice40              Yosys + nextpnr: LUTs, FFs, BRAM, Fmax
  hwgen report build/                            report.md / report.html with plots
"""


def _add_compile_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compilation")
    g.add_argument("--acc-bits", type=int, metavar="P", help="fail if a layer needs a wider accumulator")
    g.add_argument("--acc-policy", default="exact", choices=["exact", "a2q", "datatype", "fixed32"],
                   help="accumulator width the hardware uses (default: exact)")
    g.add_argument("--kernel-bank", default="auto", choices=["auto", "off", "force"],
                   help="Sub-bit kernel banks for binary 3x3 convs. auto (default): where a layer's "
                        "kernels are at most 2^tau codewords; stores tau/9 bits per weight, but a folded "
                        "bank costs 2-6x the LUTs of a plain binary conv (bench/README.md); "
                        "off: plain binary convs; force: fail if a layer cannot be banked")
    g.add_argument("--no-ode-blocks", action="store_true",
                   help="keep weight-shared residual steps unrolled")
    _add_input_format(p)


def _add_input_format(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input format (only for models without an input quantizer)")
    g.add_argument("--input-bits", type=int, metavar="N", help="bits of the quantized input")
    g.add_argument("--input-scale", type=float, metavar="S", help="float value of one input step")
    g.add_argument("--input-unsigned", action="store_true", help="the input is unsigned")


def _option_kwargs(args) -> dict:
    """The compile options of the command line as keyword arguments of hwgen.compile."""
    from .frontend import InputFormat

    fmt = None
    if args.input_bits is not None or args.input_scale is not None:
        if args.input_bits is None or args.input_scale is None:
            raise HwgenError("--input-bits and --input-scale go together")
        if args.input_bits < 1 or args.input_scale <= 0:
            raise HwgenError("--input-bits must be >= 1 and --input-scale > 0")
        fmt = InputFormat(bits=args.input_bits, scale=args.input_scale, signed=not args.input_unsigned)
    acc = getattr(args, "acc_bits", None)
    if acc is not None and acc < 2:
        raise HwgenError("--acc-bits must be at least 2")
    return dict(input_format=fmt, acc_bits=acc, acc_policy=args.acc_policy, kernel_bank=args.kernel_bank,
                ode_blocks=not args.no_ode_blocks)


def _compile(args):
    from .compiler import CompileOptions, compile_model

    t0 = time.perf_counter()
    graph = compile_model(args.model, CompileOptions(**_option_kwargs(args)))
    return graph, time.perf_counter() - t0


def cmd_inspect(args) -> int:
    from .summary import INSPECT_COLUMNS, format_table, layer_rows

    graph, seconds = _compile(args)
    rows = layer_rows(graph)
    head, tail = graph.head, graph.tail
    print(f"model {graph.source}: {len(rows)} layers, imported and streamlined in {seconds:.2f} s")
    print(f"input  {graph.input} {list(head.input_shape)} float -> host pre-processing "
          f"({', '.join(head.segment.op_types) if head.segment else 'none'}) -> {head.quantizer.describe()}")
    print(format_table(rows, INSPECT_COLUMNS))
    if tail is not None:
        print(f"output {graph.output}: host post-processing "
              f"({', '.join(tail.segment.op_types) if tail.segment else 'scale only'})")
    for note in graph.notes:
        print("note:", note)
    if args.json:
        doc = {"model": graph.source, "input": graph.input, "output": graph.output,
               "input_quantizer": head.quantizer.describe(), "import_seconds": round(seconds, 3),
               "layers": rows}
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=2)
        print(f"wrote {args.json}")
    return 0


def load_input(path: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:
        raise HwgenError(f"{path}: cannot read a .npy array ({type(exc).__name__})") from None
    if x.dtype.kind not in "fiub":
        raise HwgenError(f"{path}: expected a numeric array, got dtype {x.dtype}")
    if tuple(x.shape) == tuple(shape):
        x = x[None]
    if tuple(x.shape[1:]) != tuple(shape):
        raise HwgenError(
            f"{path}: input shape {list(x.shape)} does not match the model input "
            f"[batch, {', '.join(map(str, shape))}]")
    return x.astype(np.float32)


def cmd_run(args) -> int:
    from .golden import run

    graph, _ = _compile(args)
    x = load_input(args.input, graph.head.input_shape)
    y = run(graph, x)
    np.save(args.output, y)
    print(f"ran {len(x)} inputs through {graph.name}: output {list(y.shape)} -> {args.output}")
    return 0


def cmd_compile(args) -> int:
    from .api import compile as compile_accelerator
    from .summary import format_table

    t0 = time.perf_counter()
    acc = compile_accelerator(args.model, fold=args.fold, target_cycles=args.target_cycles, target=args.target,
                              top=args.top or "hwgen_top", **_option_kwargs(args),
                              progress=lambda name: print(f"  pass {name} done", flush=True))
    print(f"[1/2] imported, lowered, folded ({args.fold}"
          + (f", target {args.target_cycles} cycles" if args.target_cycles else "")
          + f") and scheduled {acc.graph.source} in {time.perf_counter() - t0:.2f} s", flush=True)
    t0 = time.perf_counter()
    report = acc.write(args.output)
    print(f"[2/2] emitted {args.output}/{report['verilog']} in {time.perf_counter() - t0:.2f} s", flush=True)
    rows = [{**r, **{f"est_{k}": v for k, v in (r.get("estimate") or {}).items()}} for r in report["layers"]]
    cols = [("name", "layer"), ("op", "op"), ("pe", "PE"), ("simd", "SIMD"), ("cycles", "cycles"),
            ("acc_bits", "acc bits"), ("acc_bits_a2q", "A2Q"), ("acc_bits_datatype", "dtype"),
            ("memory_bits", "memory bits"), ("memory_style", "memory"), ("arithmetic", "arith"),
            ("est_lut", "LUT~"), ("est_ff", "FF~"), ("est_bram", "BRAM~"), ("est_dsp", "DSP~")]
    print(format_table(rows, cols))
    io = report["io"]
    est = report.get("estimate") or {}
    print(f"II {report['ii_cycles']} cycles, latency ~{report['latency_cycles']} cycles; "
          f"input {io['input']['beats_per_inference']} beats x {io['input']['payload_bits']} bits, "
          f"output {io['output']['beats_per_inference']} beats x {io['output']['payload_bits']} bits")
    if est:
        print(f"estimate on {report['target']} (before synthesis; ~ columns above): {est.get('lut')} LUT, "
              f"{est.get('ff')} FF, {est.get('carry')} carry, {est.get('bram')} BRAM, {est.get('dsp')} DSP "
              "(plumbing included)")
    for note in report.get("notes", []):
        if note.startswith("fold:") and "cannot meet" in note:
            print("note:", note)
    print(f"wrote {args.output}/report.json")
    return 0


def cmd_verify(args) -> int:

    from sim.verify import verify_dir

    from .builddir import check_build

    check_build(args.build_dir)
    if args.vectors < 1:
        raise HwgenError("--vectors must be at least 1")
    result = verify_dir(args.build_dir, simulator=args.sim, vectors=args.vectors, seed=args.seed,
                        waves=args.waves, progress=lambda m: print(m, flush=True))
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwgen",
        description="Quantized neural networks (Brevitas -> QONNX) to verified FPGA accelerators, "
                    "open tools only.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("inspect", help="per-layer table: types, MACs, weight bits, accumulator widths",
                       description="Import and streamline MODEL and print one row per layer with the "
                                   "exact, A2Q-bound and data-type-bound accumulator widths.")
    p.add_argument("model", help="QONNX model file (.onnx)")
    p.add_argument("--json", metavar="OUT.json", help="also write the table as JSON")
    _add_compile_options(p)
    p.set_defaults(func=cmd_inspect)

    p = sub.add_parser("run", help="run the bit-exact golden model on float inputs",
                       description="Run MODEL's integer golden model (with host pre/post-processing) on "
                                   "float inputs and write the outputs the ONNX model would give.")
    p.add_argument("model", help="QONNX model file (.onnx)")
    p.add_argument("--input", required=True, metavar="X.npy", help="float inputs, batch first")
    p.add_argument("--output", required=True, metavar="Y.npy", help="where to write the outputs")
    _add_compile_options(p)
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("compile", help="compile to Verilog plus report.json",
                       description="Compile MODEL to a streaming accelerator: DIR/<top>.v, DIR/report.json "
                                   "(the hardware plan: layers, folding, II, latency, stream formats, resource "
                                   "estimates), DIR/graph.json + graph.npz (the IR for the golden model) and "
                                   "DIR/manifest.json (file hashes: verify and synth refuse an edited build).")
    p.add_argument("model", help="QONNX model file (.onnx)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="output directory")
    p.add_argument("--fold", default="full", metavar="full|auto|FILE.json",
                   help="full: every layer parallel (II = 1); auto: least hardware meeting --target-cycles; "
                        "FILE.json: {layer: {pe: P, simd: S}}")
    p.add_argument("--target-cycles", type=int, metavar="C", help="with --fold auto: cycles per inference")
    p.add_argument("--top", default=None, metavar="NAME", help="Verilog top module name")
    p.add_argument("--target", default="ecp5", choices=["ecp5", "ice40"],
                   help="device family the resource estimates are for (default ecp5)")
    _add_compile_options(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("verify", help="simulate DIR's Verilog against the golden model (cocotb)",
                       description="Drive random and accumulator-extreme vectors with random stalls through "
                                   "the compiled design and compare every output bit-exactly.")
    p.add_argument("build_dir", metavar="DIR", help="a directory written by `hwgen compile`")
    p.add_argument("--sim", default="icarus", choices=["icarus", "verilator"], help="simulator")
    p.add_argument("--vectors", type=int, default=100, metavar="N", help="random vectors (default 100)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed for vectors and stalls")
    p.add_argument("--waves", action="store_true", help="leave a VCD in DIR for GTKWave")
    p.set_defaults(func=cmd_verify)

    from .flows.cli import add_subcommands  # hwgen synth, hwgen report

    add_subcommands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except HwgenError as exc:
        print(f"hwgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
