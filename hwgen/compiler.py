"""The compiler driver: import, then an ordered list of passes, each checked.

    graph = import_onnx(path)                      (hwgen.frontend)
    for each pass in PIPELINE: graph = pass(graph, options); check(graph)
    plan = schedule(graph, target)                 (hwgen.passes.schedule)

Every pass keeps the graph bit-exact (tests compare the golden model with qonnx's reference
after the whole list); the check after each one catches a pass that breaks the graph's shape:
topological order, every tensor typed, and from accumulator sizing on, every tensor of the
hardware part an integer type with the shape its consumer expects.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from typing import Any, Callable

from .errors import HwgenError
from .frontend import InputFormat, import_onnx
from .ir import Graph
from .ir.types import BipolarType, IntType
from .lowering import walk
from .passes.accumulators import size_accumulators
from .passes.fold import fold_graph
from .passes.kernel_bank import recognise_kernel_banks
from .passes.ode_block import recognise_ode_blocks
from .passes.requantize import requantize
from .passes.streamline import streamline


@dataclass(frozen=True)
class CompileOptions:
    input_format: InputFormat | None = None
    acc_bits: int | None = None  # user contract: no accumulator wider than this
    acc_policy: str = "exact"  # exact | a2q | datatype | fixed32: the width the hardware uses
    kernel_bank: str = "auto"  # auto | off | force: Sub-bit kernel banks for binary 3x3 convs
    ode_blocks: bool = True  # fold weight-shared residual steps into ODE blocks
    fold: Any = None  # None: leave unfolded; "full", ("auto", cycles) or a {layer: {pe, simd}} spec


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Graph, CompileOptions], Graph]
    typed: bool  # after this pass every hardware tensor has its integer type


PIPELINE: tuple[Pass, ...] = (
    Pass("streamline", lambda g, o: streamline(g), typed=False),
    Pass("size_accumulators", lambda g, o: size_accumulators(g, o.acc_bits, o.acc_policy), typed=True),
    Pass("recognise_kernel_banks", lambda g, o: recognise_kernel_banks(g, o.kernel_bank), typed=True),
    Pass("recognise_ode_blocks", lambda g, o: recognise_ode_blocks(g) if o.ode_blocks else g, typed=True),
    Pass("requantize", lambda g, o: requantize(g), typed=True),
    Pass("fold", lambda g, o: fold_graph(g, o.fold) if o.fold is not None else g, typed=True),
)


def check_graph(graph: Graph, pass_name: str, *, typed: bool) -> None:
    """Structure (and, once `typed`, integer types and element counts) of the graph after a pass."""
    try:
        graph.validate()
    except AssertionError as exc:
        raise AssertionError(f"after pass {pass_name}: {exc}") from None
    if not typed:
        return
    for op, _ in walk(graph.core):
        for t in op.inputs + op.outputs:
            info = graph.tensors.get(t)
            if info is None:
                continue  # an ODE body's inner tensors are only named inside the block
            if not isinstance(info.dtype, (IntType, BipolarType)):
                raise AssertionError(f"after pass {pass_name}: tensor {t} of {op.name} ({op.kind}) is not "
                                     f"an integer type ({info.dtype})")
        want = getattr(op, "in_features", None)
        if want is not None and not hasattr(op, "in_shape"):
            got = graph.tensors[op.inputs[0]].elements
            if got != want:
                raise AssertionError(f"after pass {pass_name}: {op.name} takes {want} inputs, its input "
                                     f"tensor has {got} elements")


def lower(graph: Graph, options: CompileOptions = CompileOptions(), *,
          progress: Callable[[str], None] | None = None) -> Graph:
    """Run PIPELINE on an imported graph, checking it after every pass."""
    for p in PIPELINE:
        graph = p.run(graph, options)
        check_graph(graph, p.name, typed=p.typed)
        if progress:
            progress(p.name)
    return graph


def model_path(model) -> tuple[str, Callable[[], None]]:
    """A file path for `model` (a path, an onnx.ModelProto or a qonnx ModelWrapper) and a cleanup."""
    if isinstance(model, (str, os.PathLike)):
        return os.fspath(model), lambda: None
    proto = getattr(model, "model", model)  # ModelWrapper.model is the ModelProto
    if not hasattr(proto, "SerializeToString") or not hasattr(proto, "graph"):
        raise HwgenError(f"cannot compile a {type(model).__name__}: give a path to an .onnx file, an "
                         "onnx.ModelProto or a qonnx ModelWrapper")
    fd, path = tempfile.mkstemp(prefix="hwgen-model-", suffix=".onnx")
    with os.fdopen(fd, "wb") as f:
        f.write(proto.SerializeToString())
    return path, lambda: os.path.exists(path) and os.unlink(path)


def compile_model(model, options: CompileOptions = CompileOptions(), *,
                  progress: Callable[[str], None] | None = None) -> Graph:
    """ONNX model (path, ModelProto or ModelWrapper) -> streamlined, sized (and, with
    options.fold, folded) IR graph."""
    path, cleanup = model_path(model)
    try:
        graph = import_onnx(path, options.input_format)
    finally:
        cleanup()
    return lower(graph, options, progress=progress)
