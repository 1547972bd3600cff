"""The Python API: one call from a QONNX model to a compiled accelerator you can run, write,
verify and synthesize. The command line (hwgen.cli) is a thin layer over it.

    import hwgen
    acc = hwgen.compile("model.onnx", fold="auto", target_cycles=1024, target="ecp5")
    acc.plan                    # the HardwarePlan: per-layer units, folding, cycles, estimates
    y = acc.predict(x)          # golden model, float in / float out (like `hwgen run`)
    acc.write("build/")         # Verilog + report.json + the IR
    acc.verify(sim="verilator", vectors=100)   # cocotb, bit-exact against the golden model
    acc.synth(target="ecp5")    # yosys + nextpnr: LUT/FF/BRAM/DSP, Fmax
"""
from __future__ import annotations

import os
import tempfile
from typing import Any, Callable

import numpy as np

from .compiler import CompileOptions, compile_model
from .errors import HwgenError
from .frontend import InputFormat
from .ir import Graph
from .plan import HardwarePlan

TARGETS = ("ecp5", "ice40")


def check_inputs(x, shape, where: str = "input") -> np.ndarray:
    """x as a float32 array [batch, *shape] (a single input of `shape` gets a batch axis), or a
    HwgenError naming what is wrong: not numeric, wrong shape, an empty batch, NaN or inf (also
    values beyond float32's range, which become inf)."""
    shape = tuple(int(d) for d in shape)
    want = f"[batch, {', '.join(map(str, shape))}]"
    try:
        arr = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested lists, ...
        raise HwgenError(f"{where}: not an array of numbers ({str(exc).splitlines()[0][:100]})") from None
    if arr.dtype.kind not in "fiub":
        raise HwgenError(f"{where}: expected a numeric array, got dtype {arr.dtype}")
    if arr.shape == shape:
        arr = arr[None]
    if arr.ndim != len(shape) + 1 or tuple(arr.shape[1:]) != shape:
        raise HwgenError(f"{where}: input shape {list(arr.shape)} does not match the model input {want}")
    if arr.shape[0] == 0:
        raise HwgenError(f"{where}: empty batch (shape {list(arr.shape)}); give at least one input {want}")
    with np.errstate(over="ignore", invalid="ignore"):
        out = arr.astype(np.float32)
    bad = ~np.isfinite(out)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        v = arr[first]
        what = "NaN" if np.isnan(v) else ("inf" if np.isinf(v) else f"{float(v):g}, beyond float32's range,")
        raise HwgenError(f"{where}: {int(bad.sum())} non-finite value(s): {what} at index {list(first)}; "
                         "the model takes finite float inputs")
    return out


class Accelerator:
    """A compiled model: the IR graph (golden model) and its hardware plan."""

    def __init__(self, graph: Graph, plan: HardwarePlan, *, top: str = "hwgen_top"):
        self.graph, self.plan, self.top = graph, plan, top
        self.build_dir: str | None = None
        self.fit_report = None  # hwgen.fit.FitReport when hwgen.fit chose this design

    # -- the golden model ---------------------------------------------------------------------
    def predict(self, x) -> np.ndarray:
        """Float inputs (batch first, the model's input shape) -> the model's float outputs, with the
        integer core computed exactly as the hardware does."""
        from .golden import run

        return run(self.graph, check_inputs(x, self.graph.head.input_shape))

    def predict_int(self, ints) -> np.ndarray:
        """Integer stream values into the core (the input quantizer's output) -> the core's integer
        outputs: what the hardware's streams carry."""
        from .golden import run_core

        return run_core(self.graph, np.asarray(ints, dtype=np.int64))[self.graph.core[-1].outputs[0]]

    # -- artefacts ------------------------------------------------------------------------------
    def write(self, directory, *, progress: Callable[[str], None] | None = None) -> dict:
        """Write the build directory (Verilog, AXI4-Stream wrapper, FuseSoC core, host_pre/host_post.onnx,
        report.json, IR, manifest; hwgen.builddir lists them); returns the report."""
        from .rtl.build import build_accelerator

        report = build_accelerator(self.graph, directory, top=self.top, plan=self.plan)
        self.build_dir = os.fspath(directory)
        if progress:
            progress(f"wrote {self.build_dir}/{report['verilog']}")
        return report

    def _dir(self) -> str:
        if self.build_dir is None:
            self.write(tempfile.mkdtemp(prefix="hwgen-build-"))
        return self.build_dir

    def verify(self, *, sim: str = "verilator", vectors: int = 100, seed: int = 0,
               progress: Callable[[str], None] | None = None, **kw):
        """Simulate the Verilog with cocotb against the golden model (sim.verify.VerifyResult)."""
        from sim.verify import verify_dir

        return verify_dir(self._dir(), simulator=sim, vectors=vectors, seed=seed, progress=progress, **kw)

    def synth(self, *, target: str | None = None, progress: Callable[[str], None] | None = None, **kw) -> dict:
        """Yosys + nextpnr on the build (hwgen.flows.synthesize): resources, Fmax, tool times."""
        from .flows import synthesize

        return synthesize(self._dir(), target=target or self.plan.target, progress=progress or (lambda _: None),
                          **kw)

    def report(self) -> dict:
        """The plan as report.json holds it."""
        return self.plan.to_dict(top=self.top, verilog=f"{self.top}.v")

    def __repr__(self) -> str:
        est = self.plan.estimate
        return (f"<hwgen.Accelerator {self.graph.name}: {len(self.plan.layers)} layers, II {self.plan.ii_cycles} "
                f"cycles, latency {self.plan.latency_cycles}, est. {est.get('lut', '?')} LUT / "
                f"{est.get('bram', '?')} BRAM on {self.plan.target}>")


def fold_spec(fold: Any, target_cycles: int | None) -> Any:
    """The folding spec for fold_graph from the API/CLI pair (fold, target_cycles)."""
    if fold in ("auto", "auto-latency"):
        if target_cycles is None:
            raise HwgenError(f"fold='{fold}' needs target_cycles (cycles per inference per layer)")
        return ("auto", target_cycles) if fold == "auto" else ("auto", target_cycles, "stream")
    if target_cycles is not None:
        raise HwgenError("target_cycles goes with fold='auto' or 'auto-latency'")
    return fold


ACTIVATIONS = ("auto", "thresholds", "requant")


def compile(model, *, fold: Any = "full", target_cycles: int | None = None, target: str = "ecp5",
            clock_mhz: float | str | None = "auto", arith: str = "auto", activation: str = "auto",
            backpressure: bool = True, top: str = "hwgen_top", acc_bits: int | None = None, acc_policy: str = "exact",
            kernel_bank: str = "auto", ode_blocks: bool = True, input_format: InputFormat | None = None,
            progress: Callable[[str], None] | None = None) -> Accelerator:
    """Compile a QONNX model (a path, an onnx.ModelProto or a qonnx ModelWrapper) to an Accelerator.

    fold: "full" (every layer parallel), "auto" with target_cycles (the fewest lanes meeting it),
    "auto-latency" (the same, with consecutive dense layers oriented so each reads its input as it is
    made: lower latency for some more lanes), a {layer: {"pe": P, "simd": S}} dict or the path of
    such a JSON file.
    target: the device family the plan's resource estimates are for ("ecp5" or "ice40").
    clock_mhz: the clock the plan pipelines for (registered ROM outputs, products, adder trees cut
    every few levels; more latency, same II); "auto" (default): 100 MHz on ECP5, 40 MHz on iCE40;
    None: no pipelining beyond each unit's base pipeline.
    arith: where products go: "auto" (shift-and-add in LUTs for constant weights and operands of 4
    bits or fewer, `*` that synthesis may put in DSPs otherwise), "lut" or "dsp" for every layer.
    activation: how multi-threshold activations of 4 bits or more are built: "auto" (per layer, the
    cheaper of comparisons against stored thresholds and a requantizer proved exact), "thresholds",
    or "requant" (wherever a requantizer was proved exact).
    backpressure: False when the consumer takes every output beat in the cycle it is valid (o.ready
    is then ignored): the ready paths and skid buffers behind the output go wherever the units take
    a beat every cycle (all of them in a fully parallel design: a free-running pipeline, as
    hls4ml's io_parallel); folded layers keep their handshakes among themselves.
    """
    check_options(target=target, top=top, clock_mhz=clock_mhz, arith=arith, activation=activation,
                  backpressure=backpressure)
    options = CompileOptions(input_format=input_format, acc_bits=acc_bits, acc_policy=acc_policy,
                             kernel_bank=kernel_bank, ode_blocks=ode_blocks, fold=fold_spec(fold, target_cycles))
    graph = compile_model(model, options, progress=progress)
    return plan_accelerator(graph, target_cycles=target_cycles if fold == "auto" else None, target=target,
                            clock_mhz=clock_mhz, arith=arith, activation=activation, backpressure=backpressure,
                            top=top)


def check_options(*, target: str = "ecp5", top: str = "hwgen_top", clock_mhz: float | str | None = "auto",
                  arith: str = "auto", activation: str = "auto", backpressure: bool = True) -> None:
    """compile's plan options, or a HwgenError naming the bad one."""
    from .rtl.build import check_top

    if target not in TARGETS:
        raise HwgenError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    check_top(top)
    if clock_mhz != "auto" and clock_mhz is not None and not (isinstance(clock_mhz, (int, float)) and 0 < clock_mhz <= 1000):
        raise HwgenError(f"clock_mhz must be 'auto', None or a number in (0, 1000], got {clock_mhz!r}")
    if arith not in ("auto", "lut", "dsp"):
        raise HwgenError(f"arith must be 'auto', 'lut' or 'dsp', got {arith!r}")
    if activation not in ACTIVATIONS:
        raise HwgenError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    if not isinstance(backpressure, bool):
        raise HwgenError(f"backpressure must be True or False, got {backpressure!r}")


def plan_accelerator(graph: Graph, *, target_cycles: int | None = None, target: str = "ecp5",
                     clock_mhz: float | str | None = "auto", arith: str = "auto", activation: str = "auto",
                     backpressure: bool = True, top: str = "hwgen_top") -> Accelerator:
    """The Accelerator of a lowered and folded graph (compile_model's output): its HardwarePlan for
    `target`; target_cycles (an auto folding's target) adds a note when the II misses it.
    Options as compile (check_options)."""
    from .passes.schedule import schedule

    plan = schedule(graph, target=target, clock_mhz=clock_mhz, arith=arith, activation=activation,
                    backpressure=backpressure)
    if target_cycles is not None:
        note = target_note(plan, target_cycles)
        if note:
            plan.notes.append(note)
    return Accelerator(graph, plan, top=top)


def _num(x) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def target_note(plan: HardwarePlan, target_cycles: int) -> str | None:
    """A note when the scheduled design's II misses the folding target: the stages slower than
    the target or, when every stage meets it, that the stream plumbing sets the II."""
    ii = plan.ii_cycles
    if ii is None or ii <= target_cycles:
        return None
    head = (f"schedule: II {_num(ii)} cycles misses the target of {target_cycles} cycles per inference "
            f"by {_num(round(ii - target_cycles, 2))}")
    slow = [st for st in plan.stages if (st.cycles or 0) > target_cycles]
    if slow:
        names = ", ".join(f"{st.name} ({st.cycles})" for st in slow[:6])
        more = f" and {len(slow) - 6} more" if len(slow) > 6 else ""
        return f"{head}: stage(s) slower than the target, in cycles per inference: {names}{more}"
    slowest = max(plan.stages, key=lambda st: st.cycles or 0)
    return (f"{head} although every stage meets it (slowest: {slowest.name}, {slowest.cycles} cycles): "
            "the stream plumbing between the stages (width converters, FIFO depths, handshakes) sets the II")
