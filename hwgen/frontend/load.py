"""Read an ONNX file and bring it to the canonical QONNX form the importer expects.

Every way a file can be unusable (missing, not ONNX, truncated, no single input/output)
becomes a HwgenError with one line that says what is wrong.
"""
from __future__ import annotations

import os

import onnx

from ..errors import HwgenError

QONNX_DOMAINS = {"onnx.brevitas", "qonnx.custom_op.general", "finn.custom_op.general"}


def load_qonnx(path: str):
    """Load `path`, run qonnx's clean-up (constant folding of Shape/Gather chains, shape
    inference, readable names) and return a qonnx ModelWrapper."""
    if os.path.isdir(path):
        inside = sorted(n for n in os.listdir(path) if n.endswith(".onnx"))[:3] if os.access(path, os.R_OK) else []
        hint = f" (it holds {', '.join(inside)})" if inside else ""
        raise HwgenError(f"{path}: is a directory, not an ONNX model file{hint}")
    if not os.path.exists(path):
        raise HwgenError(f"{path}: no such file")
    if not os.path.isfile(path):
        raise HwgenError(f"{path}: not a regular file (give the .onnx model file)")
    try:
        model = onnx.load(path)
    except Exception as exc:  # protobuf raises DecodeError, RuntimeWarning, ...
        raise HwgenError(
            f"{path}: not a readable ONNX file ({type(exc).__name__}: {str(exc)[:120]}); "
            "export it with brevitas.export.export_qonnx or check the download is complete"
        ) from None
    if len(model.graph.node) == 0:
        raise HwgenError(f"{path}: the ONNX graph is empty (truncated or not an ONNX model file)")
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    for node in model.graph.node:  # older exports use the brevitas domain name
        if node.op_type in ("Quant", "BipolarQuant", "Trunc") and node.domain in QONNX_DOMAINS:
            node.domain = "qonnx.custom_op.general"
    wrapper = ModelWrapper(model)
    inputs = [i.name for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer}]
    if len(inputs) != 1 or len(model.graph.output) != 1:
        raise HwgenError(
            f"{path}: hwgen compiles graphs with one input and one output; this one has "
            f"{len(inputs)} inputs and {len(model.graph.output)} outputs"
        )
    try:
        wrapper = cleanup_model(wrapper)
    except Exception as exc:
        raise HwgenError(
            f"{path}: qonnx could not clean up the graph ({type(exc).__name__}: {str(exc)[:160]}); "
            "is it a valid QONNX export?"
        ) from None
    return wrapper
