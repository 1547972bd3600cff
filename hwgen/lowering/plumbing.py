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

    def estimate(self, unit: WidthConverter, target: str):
        from ..cost import units

        return units.width_converter(unit, target)


@register
class FifoLowering(Lowering):
    unit_types = (StreamFIFO,)

    def timing_models(self, unit: StreamFIFO) -> list:
        return [FifoModel(unit.depth)]

    def estimate(self, unit: StreamFIFO, target: str):
        from ..cost import units

        return units.fifo(unit, target)


@register
class SkidLowering(Lowering):
    unit_types = (SkidBuffer,)

    def timing_models(self, unit: SkidBuffer) -> list:
        return [SkidModel()]

    def estimate(self, unit: SkidBuffer, target: str):
        from ..cost import units

        return units.skid(unit, target)
