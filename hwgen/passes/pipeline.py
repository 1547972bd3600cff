"""The compiler's passes, in order. Each keeps the graph bit-exact (tests check every one)."""
from __future__ import annotations

from dataclasses import dataclass

from ..frontend import InputFormat, import_onnx
from ..ir import Graph
from .accumulators import size_accumulators
from .streamline import streamline


@dataclass(frozen=True)
class CompileOptions:
    input_format: InputFormat | None = None
    acc_bits: int | None = None  # user contract: no accumulator wider than this
    acc_policy: str = "exact"  # exact | a2q | datatype | fixed32: the width the hardware uses


PASSES = ("streamline", "size_accumulators")


def lower(graph: Graph, options: CompileOptions = CompileOptions()) -> Graph:
    graph = streamline(graph)
    graph = size_accumulators(graph, options.acc_bits, options.acc_policy)
    return graph


def compile_model(path: str, options: CompileOptions = CompileOptions()) -> Graph:
    """ONNX file -> streamlined, sized IR graph."""
    return lower(import_onnx(path, options.input_format), options)
