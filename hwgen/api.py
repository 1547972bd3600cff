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


class Accelerator:
    """A compiled model: the IR graph (golden model) and its hardware plan."""

    def __init__(self, graph: Graph, plan: HardwarePlan, *, top: str = "hwgen_top"):
        self.graph, self.plan, self.top = graph, plan, top
        self.build_dir: str | None = None

    # -- the golden model ---------------------------------------------------------------------
    def predict(self, x) -> np.ndarray:
        """Float inputs (batch first, the model's input shape) -> the model's float outputs, with the
        integer core computed exactly as the hardware does."""
        from .golden import run

        x = np.asarray(x, dtype=np.float32)
        shape = tuple(self.graph.head.input_shape)
        if x.shape == shape:
            x = x[None]
        if x.shape[1:] != shape:
            raise HwgenError(f"input shape {list(x.shape)} does not match the model input [batch, "
                             f"{', '.join(map(str, shape))}]")
        return run(self.graph, x)

    def predict_int(self, ints) -> np.ndarray:
        """Integer stream values into the core (the input quantizer's output) -> the core's integer
        outputs: what the hardware's streams carry."""
        from .golden import run_core

        return run_core(self.graph, np.asarray(ints, dtype=np.int64))[self.graph.core[-1].outputs[0]]

    # -- artefacts ------------------------------------------------------------------------------
    def write(self, directory, *, progress: Callable[[str], None] | None = None) -> dict:
        """Write the build directory (Verilog, report.json, IR, manifest); returns the report."""
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
    if fold == "auto":
        if target_cycles is None:
            raise HwgenError("fold='auto' needs target_cycles (cycles per inference per layer)")
        return ("auto", target_cycles)
    if target_cycles is not None:
        raise HwgenError("target_cycles goes with fold='auto'")
    return fold


def compile(model, *, fold: Any = "full", target_cycles: int | None = None, target: str = "ecp5",
            top: str = "hwgen_top", acc_bits: int | None = None, acc_policy: str = "exact",
            kernel_bank: str = "auto", ode_blocks: bool = True, input_format: InputFormat | None = None,
            progress: Callable[[str], None] | None = None) -> Accelerator:
    """Compile a QONNX model (a path, an onnx.ModelProto or a qonnx ModelWrapper) to an Accelerator.

    fold: "full" (every layer parallel), "auto" with target_cycles (the fewest lanes meeting it),
    a {layer: {"pe": P, "simd": S}} dict or the path of such a JSON file.
    target: the device family the plan's resource estimates are for ("ecp5" or "ice40").
    """
    from .passes.schedule import schedule
    from .rtl.build import check_top

    if target not in TARGETS:
        raise HwgenError(f"unknown target {target!r}; use one of {', '.join(TARGETS)}")
    check_top(top)
    options = CompileOptions(input_format=input_format, acc_bits=acc_bits, acc_policy=acc_policy,
                             kernel_bank=kernel_bank, ode_blocks=ode_blocks, fold=fold_spec(fold, target_cycles))
    graph = compile_model(model, options, progress=progress)
    plan = schedule(graph, target=target)
    return Accelerator(graph, plan, top=top)
