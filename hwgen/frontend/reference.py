"""The independent reference: qonnx's own executor on the cleaned model, batched.

Used by tests and benches to check the golden model; hwgen itself never runs it.
"""
from __future__ import annotations

import numpy as np

from .load import load_qonnx


def reference_model(path: str, batch: int):
    """The cleaned model with batch size `batch` (qonnx's ChangeBatchSize + shape inference)."""
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    model = load_qonnx(path)
    model = model.transform(ChangeBatchSize(batch))
    return model.transform(InferShapes())


def run_reference(path: str, x: np.ndarray, *, full_context: bool = False):
    """qonnx execute_onnx on a batch; returns the output, or every tensor when full_context."""
    from qonnx.core.onnx_exec import execute_onnx

    x = np.asarray(x, dtype=np.float32)
    model = reference_model(path, len(x))
    iname = model.graph.input[0].name
    ctx = execute_onnx(model, {iname: x}, return_full_exec_context=full_context)
    return ctx if full_context else ctx[model.graph.output[0].name]


def compare_with_reference(graph, path: str, x: np.ndarray) -> dict[str, float]:
    """Fraction of elements where golden == reference, for every tensor both have.

    Integers are compared the way the reference carries them (q * scale, float32, NCHW), so
    the comparison is exact; the graph output is compared as is.
    """
    from ..golden import execute
    from ..lowering import lowering_of

    ref = run_reference(path, x, full_context=True)
    gold = execute(graph, x)
    result, scale = {}, {}
    for op in graph.ops:
        name = op.outputs[0]
        low = lowering_of(op)
        s = low.reference_scale(op, scale)
        if s is not None:
            scale[name] = s
        ref_name = name[: -len("__int")] if name.endswith("__int") else name
        if ref_name not in ref:
            continue
        g = gold[name]
        if s is not None:  # integers: compare as the reference carries them (q * scale, NCHW)
            value = getattr(low, "reference_value", None)
            g = value(op, g, scale) if value else g.astype(np.float32) * s
            if g.ndim == 4:
                g = g.transpose(0, 3, 1, 2)
        r = np.asarray(ref[ref_name]).reshape(len(x), -1)
        result[name] = float(np.mean(r == g.reshape(len(x), -1)))
    return result
