"""What one IR op kind means and how it becomes hardware, in one object.

A `Lowering` owns, for its op kind:
  golden         the bit-exact NumPy semantics (hwgen.golden runs it)
  folding        which (PE, SIMD) are legal and what they cost in cycles (passes/fold searches it)
  plan           which streaming unit(s) implement it and in which stream format (the schedule
                 asks it while walking the graph)
  timing         the handshake token model of its unit (hwgen.rtl.timing steps it)
  report         the facts a report row shows about its unit
  reference      what one output integer stood for in the float reference graph

Plumbing (width converters, FIFOs) and composite units (residual blocks) have lowerings too,
keyed by their unit class only. Modules elsewhere never dispatch on op kinds: they look up the
lowering (`lowering_of(op)` / `lowering_of_unit(unit)`) and ask it. Adding an op kind means one
IR dataclass (hwgen/ir/ops.py), one lowering module here (registered with `@register`), its unit
(hwgen/rtl/) and a test.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Iterable

from ..errors import HwgenError
from ..rtl.util import divisors  # noqa: F401  (re-exported: the legal foldings' building block)

if TYPE_CHECKING:  # pragma: no cover
    from ..ir import Op


class Lowering:
    """Defaults describe an op with no hardware of its own (host-side ops)."""

    op_type: ClassVar[type | None] = None  # the IR dataclass (None for plumbing)
    unit_types: ClassVar[tuple[type, ...]] = ()  # the Amaranth component classes it builds

    # -- semantics --------------------------------------------------------------------------
    def golden(self, op, *inputs):
        raise HwgenError(f"the golden model has no reference for {op.kind}", node=op.name, op=op.kind)

    def reference_scale(self, op, scales: dict):
        """Float value of one output integer in the reference graph (None: not comparable)."""
        return None

    def output_range(self, op):
        """Per-channel (lo, hi) int64 arrays bounding the op's output over every input its input type
        allows (what streamlining and requantizers must be exact on); None when not known."""
        return None

    def channel_input_scale(self, op, scale):
        """Given per-channel scales of the op's input (float32 [C]: an activation quantizer scaled per
        channel), the input scale each of its output channels is made of ([C_out]); None when an output
        combines channels of different scales, which integer hardware cannot absorb exactly (the importer
        refuses the model there: hwgen.frontend.channel_scale)."""
        return None

    def float_sum_terms(self, op) -> int | None:
        """For an op the float reference computes as a plain float32 sum of its inputs (a pool's
        mean), the number of terms per output; None otherwise (hwgen check's float-error bound)."""
        return None

    def children(self, op) -> list:
        """Ops nested inside this one (an ODE block's body)."""
        return []

    # -- folding ----------------------------------------------------------------------------
    foldable: ClassVar[bool] = False
    fold_hint: ClassVar[str] = "has no folding"

    def valid_pe(self, op) -> list[int]:
        return [1]

    def valid_simd(self, op) -> list[int]:
        return [1]

    def cycles(self, op, pe: int, simd: int) -> int:
        """Cycles per inference of one pass through the op at this folding (no stalls)."""
        return 1

    def full_folding(self, op) -> tuple[int, int]:
        return 1, 1

    def default_folding(self, op) -> tuple[int, int]:
        return 1, self.valid_simd(op)[0]

    def simd_rule(self, op) -> str:
        return f"divide {op.name}'s inputs"

    def fold_lanes(self, op, pe: int, simd: int) -> int:
        """What auto folding minimises among the foldings meeting its target: the hardware that
        grows with the folding, in lanes (a PE x SIMD product each, for a plain dot product)."""
        return pe * simd

    # Latency-aware folding (hwgen.passes.fold, orientation "stream"): a dense layer whose first
    # output needs its whole input vector overlaps with its producer only if it reads each input
    # beat once, as it arrives (PE = all outputs); that layer then gives its outputs at the end.
    needs_whole_input: ClassVar[bool] = False  # one output needs every input (a dense layer)

    def drain_cycles(self, op, pe: int, simd: int) -> int:
        """Cycles the op folded so still needs after its last input beat arrives."""
        return 0

    def streams_output(self, op, pe: int) -> bool:
        """Whether the op folded to `pe` spreads its output beats over its cycles (a consumer can start
        on the first ones) rather than giving them all at the end."""
        return True

    # -- planning ---------------------------------------------------------------------------
    def bound(self, op, planner) -> int:
        """Cycles per inference this op's unit needs (sets the design's II bound)."""
        return 1

    def plan(self, op, planner) -> None:
        """Append this op's stage(s) to `planner` (hwgen.rtl.top.Planner)."""
        raise HwgenError(f"no RTL for {op.kind} yet", node=op.name, op=op.kind)

    # -- the unit ---------------------------------------------------------------------------
    def timing_models(self, unit) -> list:
        """Token models of the unit's handshakes (hwgen.rtl.timing); [] for pure wiring."""
        raise TypeError(f"no timing model for {type(unit).__name__}")

    def cuts_ready_path(self, unit, target: str) -> bool:
        """Whether the unit's input ready is a register, so that no combinational ready path runs
        through it (the planner's rule for skid buffers, passes.schedule.Planner._cut_ready_path).
        A layer's unit advances under one enable from its output ready: never."""
        return False

    only_cuts_ready: ClassVar[bool] = False  # plumbing that exists only to cut a ready path (a skid)

    def always_ready(self, unit) -> bool:
        """Whether the unit, its output never stalled, takes an input beat every cycle: its input
        ready is then constant 1 and no ready path runs through it. Without output backpressure the
        planner drops the ready cuts behind a run of such units (Planner.drop_idle_cuts) and sets
        their `never_stalled`, which their elaborate must honour (rtl.util.output_ready)."""
        return False

    def registered_ready_twin(self, unit, in_beats: int):
        """The unit rebuilt so that `cuts_ready_path` holds at no cost in registers, with its busy
        cycles for `in_beats` input beats, as (unit, cycles); None when it has no such form."""
        return None

    def report_rows(self, stage, rows: list, plumbing: list, target: str) -> None:
        """Append the report rows of one planned stage (layers to `rows`, plumbing to `plumbing`),
        each with its resource estimate on `target`."""
        plumbing.append({**plumbing_row(stage.name, stage.unit), "estimate": self.cost(stage.unit, target)})

    def estimate(self, unit, target: str):
        """Resources (hwgen.cost.Resources) of the unit on `target` ("ice40" | "ecp5")."""
        from ..cost import Resources

        return Resources.zero()

    def cost(self, unit, target: str) -> dict | None:
        """The estimate as a report dict (None while no cost model is installed)."""
        try:
            return self.estimate(unit, target).as_dict()
        except ImportError:
            return None

    def own_cost(self, unit, inner_units, target: str) -> dict | None:
        """A composite unit's estimate less its inner units' (those have report rows of their own)."""
        try:
            total = self.estimate(unit, target)
            for u in inner_units:
                total = total - lowering_of_unit(u).estimate(u, target)
            return total.as_dict()
        except ImportError:
            return None

    def inspect_row(self, op, graph, block=None) -> dict | None:
        """`hwgen inspect`'s row for this op (None: not a compute layer)."""
        return None


def pipelined(clock) -> bool:
    """Whether the plan pipelines to a clock target (hwgen.plan.ClockTarget with a frequency): the
    lowerings then add their pipeline registers and registered enables."""
    return clock is not None and clock.mhz is not None


def window_rows(op, clock) -> int | None:
    """The rows of the line buffer of a window over op's input (op: in_shape H x W x C, kernel,
    stride): None (the window's own kh + sh - 1) unless the plan asks for extra rows
    (ClockTarget.line_rows_extra); never more than the image's H rows."""
    extra = 0 if clock is None else clock.line_rows_extra
    if not extra:
        return None
    return min(op.kernel[0] + op.stride[0] - 1 + extra, op.in_shape[0])


def plumbing_row(name: str, u) -> dict:
    row = {"name": name, "op": type(u).__name__, "memory_bits": getattr(u, "memory_bits", 0)}
    if hasattr(u, "n_in"):
        row.update(element_bits=u.b, in_elements=u.n_in, out_elements=u.n_out)
    if hasattr(u, "depth"):
        row.update(width=u.width, depth=u.depth)
    return row


_BY_OP: dict[type, Lowering] = {}
_BY_UNIT: dict[type, Lowering] = {}


def register(cls: type[Lowering]) -> type[Lowering]:
    """Class decorator: make one instance the lowering of its op type and unit types."""
    inst = cls()
    if cls.op_type is not None:
        if cls.op_type in _BY_OP:
            raise RuntimeError(f"two lowerings for {cls.op_type.__name__}")
        _BY_OP[cls.op_type] = inst
    for t in cls.unit_types:
        _BY_UNIT[t] = inst
    return cls


def lowering_of(op: "Op") -> Lowering:
    """The lowering of an IR op: its own class's, else its nearest base class's."""
    for t in type(op).__mro__:
        found = _BY_OP.get(t)
        if found is not None:
            return found
    raise HwgenError(f"hwgen has no lowering for {type(op).__name__}", node=getattr(op, "name", None),
                     op=type(op).__name__)


def lowering_of_unit(unit: Any) -> Lowering:
    found = _BY_UNIT.get(type(unit))
    if found is None:
        raise TypeError(f"no lowering owns the unit {type(unit).__name__}")
    return found


def walk(ops: Iterable, parent=None):
    """(op, enclosing op or None) for every op, nested ones (ODE bodies) after their parent."""
    for op in ops:
        yield op, parent
        yield from walk(lowering_of(op).children(op), op)
