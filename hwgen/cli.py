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
"""


def _add_compile_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compilation")
    g.add_argument("--acc-bits", type=int, metavar="P", help="fail if a layer needs a wider accumulator")
    g.add_argument("--acc-policy", default="exact", choices=["exact", "a2q", "datatype", "fixed32"],
                   help="accumulator width the hardware uses (default: exact)")
    g.add_argument("--kernel-bank", default="auto", choices=["auto", "off", "force"],
                   help="Sub-bit kernel banks for binary 3x3 convs (default: auto)")
    g.add_argument("--no-ode-blocks", action="store_true",
                   help="keep weight-shared residual steps unrolled")
    _add_input_format(p)


def _add_input_format(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input format (only for models without an input quantizer)")
    g.add_argument("--input-bits", type=int, metavar="N", help="bits of the quantized input")
    g.add_argument("--input-scale", type=float, metavar="S", help="float value of one input step")
    g.add_argument("--input-unsigned", action="store_true", help="the input is unsigned")


def _options(args):
    from .frontend import InputFormat
    from .passes import CompileOptions

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
    return CompileOptions(input_format=fmt, acc_bits=acc, acc_policy=args.acc_policy,
                          kernel_bank=args.kernel_bank, ode_blocks=not args.no_ode_blocks)


def _compile(args):
    from .passes import compile_model

    t0 = time.perf_counter()
    graph = compile_model(args.model, _options(args))
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
