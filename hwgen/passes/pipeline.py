"""The compiler's passes, in order. Each keeps the graph bit-exact (tests check every one)."""
from __future__ import annotations

from dataclasses import dataclass

from ..frontend import InputFormat, import_onnx
from ..ir import Graph
from .accumulators import size_accumulators
from .kernel_bank import recognise_kernel_banks
from .ode_block import recognise_ode_blocks
from .streamline import streamline


@dataclass(frozen=True)
class CompileOptions:
    input_format: InputFormat | None = None
    acc_bits: int | None = None  # user contract: no accumulator wider than this
    acc_policy: str = "exact"  # exact | a2q | datatype | fixed32: the width the hardware uses
    kernel_bank: str = "auto"  # auto | off | force: Sub-bit kernel banks for binary 3x3 convs
    ode_blocks: bool = True  # fold weight-shared residual steps into ODE blocks


PASSES = ("streamline", "size_accumulators", "recognise_kernel_banks", "recognise_ode_blocks")


def lower(graph: Graph, options: CompileOptions = CompileOptions()) -> Graph:
    graph = streamline(graph)
    graph = size_accumulators(graph, options.acc_bits, options.acc_policy)
    graph = recognise_kernel_banks(graph, options.kernel_bank)
    if options.ode_blocks:
        graph = recognise_ode_blocks(graph)
    graph.validate()
    return graph


def compile_model(path: str, options: CompileOptions = CompileOptions()) -> Graph:
    """ONNX file -> streamlined, sized IR graph."""
    return lower(import_onnx(path, options.input_format), options)
