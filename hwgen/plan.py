"""The hardware plan: what the schedule pass decided for every layer, in one typed object.

A `HardwarePlan` lists the design's stages in stream order (each the unit that implements one IR
op, or plumbing: width converters and FIFOs), the stream formats at its ports, II and latency from
the timing models, and per-stage resource estimates for the target. The RTL top instantiates the
stages as planned; report.json is `plan.to_dict()` (schema below, versioned by SCHEMA_VERSION).

report.json schema (version 2):
  schema_version          int, 2
  top, verilog            top module name, Verilog file name
  model, source           model name, ONNX path it came from
  target                  device family the estimates are for ("ecp5" | "ice40")
  clock_mhz               the clock target pipeline depths were chosen for (null: none)
  ii_cycles               cycles between inferences, back to back (timing model steady state)
  ii_cycles_bound         the busiest stage's cycles per inference
  latency_cycles          first input beat to last output beat of one inference alone
  line_rows_extra         rows every line buffer holds beyond its window's kh + sh - 1 (0 unless the II
                          missed its bound without them)
  layers[]                one row per IR layer (ODE-body and residual-branch layers included):
                          name, op, unit, pe, simd, cycles, acc_bits (+ exact/a2q/datatype bounds),
                          memory_bits, weights_in, stream_in/stream_out {element_bits,
                          elements_per_beat, beats} (top-level stages), pipeline_latency,
                          ..., estimate {lut, ff, carry, bram, dsp, lutram}, memory_style
                          (bram | lutram | logic | none) and arithmetic (dsp | lut) as estimated
  plumbing[]              width converters / FIFOs: name, op, memory_bits, ..., estimate
  estimate                total {lut, ff, carry, bram, dsp, lutram} (sum of the rows)
  memory_bits_total       ROM + buffer bits of every row
  io                      clock, reset, input/output stream formats (StreamFormat.as_dict)
  notes[]                 what the passes decided (e.g. a folding target that was not met)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 2


@dataclass(frozen=True)
class StreamFormat:
    """How a tensor travels on a stream."""

    element_bits: int
    signed: bool
    bipolar: bool
    elements: int  # per inference
    per_beat: int

    @property
    def beats(self) -> int:
        return self.elements // self.per_beat

    @property
    def payload_bits(self) -> int:
        return self.element_bits * self.per_beat

    def as_dict(self) -> dict:
        return {
            "element_bits": self.element_bits,
            "signed": self.signed,
            "bipolar": self.bipolar,
            "elements": self.elements,
            "elements_per_beat": self.per_beat,
            "beats_per_inference": self.beats,
            "payload_bits": self.payload_bits,
            "bit_order": f"element i occupies payload bits [i*{self.element_bits}, (i+1)*{self.element_bits})"
                         "; beat j carries elements [j*elements_per_beat, (j+1)*elements_per_beat)",
        }

    @classmethod
    def of(cls, dtype, elements: int, per_beat: int) -> "StreamFormat":
        """The format of `elements` values of IR type `dtype`, `per_beat` to a beat."""
        from .ir.types import BipolarType

        bip = isinstance(dtype, BipolarType)
        return cls(dtype.wire_bits, bool(dtype.signed) and not bip, bip, elements, per_beat)


DEFAULT_CLOCK_MHZ = {"ecp5": 100.0, "ice40": 40.0}


@dataclass(frozen=True)
class ClockTarget:
    """The device family and clock a plan is made for; lowerings pick pipeline depths and where
    products go from it. mhz None: no pipelining beyond each unit's base pipeline."""

    target: str = "ecp5"
    mhz: float | None = None
    arith: str = "auto"  # products: "auto" (the lowering's rule), "lut" or "dsp" for every layer
    activation: str = "auto"  # multi-threshold activations: "auto" (cheaper unit), "thresholds", "requant"
    backpressure: bool = True  # False: the output is never stalled (the top ties its ready high)
    # rows every sliding window's line buffer holds beyond the kh + sh - 1 one patch beat per cycle
    # needs: the writer then takes the next rows while the reader works on an output row, instead of
    # stalling its producer (hwgen.passes.schedule adds them where the II misses its bound)
    line_rows_extra: int = 0


@dataclass
class Stage:
    """One unit in the chain, and the IR op it implements (None for plumbing)."""

    name: str
    unit: Any  # an amaranth wiring.Component with streams i and o
    op: Any = None
    cycles: int = 1  # busy cycles per inference (no stalls)
    in_fmt: StreamFormat | None = None  # the stream it takes
    out_fmt: StreamFormat | None = None  # the stream it gives

    def facts(self) -> dict:
        """What every stage's report row says about the stage itself (unit, beats, pipeline)."""
        fmt = lambda f: None if f is None else {"element_bits": f.element_bits, "elements_per_beat": f.per_beat,
                                                "beats": f.beats}
        return {"unit": type(self.unit).__name__, "stream_in": fmt(self.in_fmt), "stream_out": fmt(self.out_fmt),
                "pipeline_latency": getattr(self.unit, "latency", None)}


@dataclass
class HardwarePlan:
    """Everything the schedule decided; the RTL top and every report read it."""

    model: str
    source: str
    target: str
    stages: list[Stage]
    in_fmt: StreamFormat
    out_fmt: StreamFormat
    ii_cycles: int | float
    ii_bound: int
    latency_cycles: int | None
    layers: list[dict] = field(default_factory=list)
    plumbing: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    clock_mhz: float | None = None
    backpressure: bool = True  # False: o.ready is ignored, the consumer takes every beat when valid
    line_rows_extra: int = 0  # line-buffer rows beyond each window's kh + sh - 1 (ClockTarget)

    @property
    def estimate(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for r in self.layers + self.plumbing:
            for k, v in (r.get("estimate") or {}).items():
                total[k] = total.get(k, 0) + v
        return total

    def to_dict(self, *, top: str, verilog: str) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "top": top,
            "verilog": verilog,
            "model": self.model,
            "source": self.source,
            "target": self.target,
            "clock_mhz": self.clock_mhz,
            "ii_cycles": self.ii_cycles,
            "ii_cycles_bound": self.ii_bound,
            "latency_cycles": self.latency_cycles,
            "line_rows_extra": self.line_rows_extra,
            "layers": self.layers,
            "plumbing": self.plumbing,
            "estimate": self.estimate,
            "memory_bits_total": sum(r["memory_bits"] or 0 for r in self.layers + self.plumbing),
            "io": {
                "clock": "clk", "reset": "rst (synchronous, active high)",
                "input": {"port": "i", **self.in_fmt.as_dict()},
                "output": {"port": "o", **self.out_fmt.as_dict(), "backpressure": self.backpressure},
            },
            "notes": list(self.notes),
        }
