"""Golden model == Brevitas's own forward (the model as trained, before export) on digits."""
import numpy as np
import pytest
from conftest import OWN_KINDS, own_model

from hwgen.golden import run
from hwgen.compiler import compile_model

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("kind", OWN_KINDS)
def test_golden_predictions_equal_brevitas_forward(kind):
    from quant_models.digits import load_digits_split
    from quant_models.mlp import load_trained

    _, _, x_test, y_test = load_digits_split()
    model = load_trained(kind)
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test))
    logits = getattr(logits, "value", logits).numpy()  # a QuantTensor if returned quantized
    ours = run(compile_model(own_model(kind)), x_test)
    np.testing.assert_allclose(ours, logits, rtol=1e-4, atol=1e-4)
    assert np.array_equal(ours.argmax(1), logits.argmax(1))
    assert (ours.argmax(1) == y_test).mean() > 0.75
