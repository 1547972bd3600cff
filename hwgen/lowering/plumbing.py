"""Stream plumbing the schedule inserts between layers: width converters (where consecutive beat
widths differ), FIFOs (in front of a MatVec that replays its input, or of an ODE block) and skid
buffers (between two units whose ready paths would otherwise chain, when pipelining to a clock).
They implement no IR op; their lowerings give their timing models and costs."""
from __future__ import annotations

from ..rtl.fifo import StreamFIFO
from ..rtl.skid import SkidBuffer
from ..rtl.timing import FifoModel, SkidModel, WidthConverterModel
from ..rtl.width_converter import WidthConverter
from .base import Lowering, register


@register
class WidthConverterLowering(Lowering):
    unit_types = (WidthConverter,)

    def timing_models(self, unit: WidthConverter) -> list:
        if unit.n_in == unit.n_out:
            return []
        return [WidthConverterModel(unit.n_in, unit.n_out, unit.mid, unit.registered_ready)]

    def cuts_ready_path(self, unit: WidthConverter, target: str) -> bool:
        return unit.registered_ready

    def always_ready(self, unit: WidthConverter) -> bool:
        return unit.n_in == unit.n_out  # wiring only

    def registered_ready_twin(self, unit: WidthConverter, in_beats: int):
        """A converter that splits words can register its input ready at the price of an idle cycle
        per word (WidthConverter.registered_ready); one that only gathers cannot."""
        if unit.registered_ready or unit.splits <= 1:
            return None
        twin = WidthConverter(element_bits=unit.b, in_elems=unit.n_in, out_elems=unit.n_out, registered_ready=True)
        return twin, twin.cycles(in_beats)

    def estimate(self, unit: WidthConverter, target: str):
        from ..cost import units

        return units.width_converter(unit, target)


@register
class FifoLowering(Lowering):
    unit_types = (StreamFIFO,)

    def timing_models(self, unit: StreamFIFO) -> list:
        return [FifoModel(unit.depth)]

    def cuts_ready_path(self, unit: StreamFIFO, target: str) -> bool:
        """On ECP5 only (the iCE40 measurement is in Planner._cut_ready_path)."""
        return target != "ice40"

    def estimate(self, unit: StreamFIFO, target: str):
        from ..cost import units

        return units.fifo(unit, target)


@register
class SkidLowering(Lowering):
    unit_types = (SkidBuffer,)
    only_cuts_ready = True

    def timing_models(self, unit: SkidBuffer) -> list:
        return [SkidModel()]

    def cuts_ready_path(self, unit: SkidBuffer, target: str) -> bool:
        return True

    def estimate(self, unit: SkidBuffer, target: str):
        from ..cost import units

        return units.skid(unit, target)
