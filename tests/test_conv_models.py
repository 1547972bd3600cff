"""The convolutional zoo (CNNs, Sub-bit CNNs, dsODENets and their ResNet baselines): golden ==
qonnx reference (integers exact) and == Brevitas's own forward (predictions) on digits."""
import os

import numpy as np
import pytest
from conftest import OWN_MODELS

from hwgen.frontend.reference import compare_with_reference
from hwgen.golden import run
from hwgen.ir import KernelBankConv, ODEBlock
from hwgen.compiler import CompileOptions, compile_model

torch = pytest.importorskip("torch")

CNNS = ["digits_cnn_w4a4", "digits_cnn_w1a1", "digits_subbit_tau4", "digits_subbit_tau5", "digits_subbit_tau6"]
ODES = [f"digits_{a}_n{n}" for a in ("odenet", "resnet") for n in (2, 4, 8)]


def _test_images():
    from quant_models.digits import load_digits_split

    _, _, x, _ = load_digits_split()
    return x.reshape(-1, 1, 8, 8)


def _brevitas(name):
    from quant_models.cnn import load_trained_cnn
    from quant_models.odenet import load_trained_odenet

    return load_trained_odenet(name) if name in ODES else load_trained_cnn(name)


@pytest.mark.parametrize("name", CNNS + ODES)
def test_golden_matches_qonnx_and_brevitas(name):
    path = os.path.join(OWN_MODELS, f"{name}.onnx")
    graph = compile_model(path, CompileOptions(kernel_bank="force" if "subbit" in name else "auto"))
    x = _test_images()
    match = compare_with_reference(graph, path, x)
    out = match.pop(graph.output)
    assert all(v == 1.0 for v in match.values()), match
    assert out > 0.99, out  # float logits: within float32 rounding of the reference
    ours = run(graph, x)
    with torch.no_grad():
        logits = _brevitas(name)(torch.from_numpy(x))
    logits = getattr(logits, "value", logits).numpy()
    np.testing.assert_allclose(ours, logits, rtol=1e-4, atol=1e-4)
    assert np.array_equal(ours.argmax(1), logits.argmax(1))
    if "subbit" in name:
        assert sum(isinstance(op, KernelBankConv) for op in graph.core) == 2
    if "odenet" in name:
        block = next(op for op in graph.core if isinstance(op, ODEBlock))
        assert block.steps == int(name[-1])
