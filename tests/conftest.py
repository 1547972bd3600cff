import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
OWN_MODELS = os.path.join(ROOT, "quant_models", "onnx")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SHARED = {
    "TFC_1W1A": ("TFC_1W1A.onnx", (1, 28, 28), "unit"),
    "TFC_2W2A": ("TFC_2W2A.onnx", (1, 28, 28), "unit"),
    "UNSW_w2a2": ("unsw_nb15-mlp-w2a2.onnx", (600,), "bipolar"),
}
OWN_KINDS = ("w2a2", "w4a4", "w1a1", "w4a4_a2q", "w4a4_a2qplus")


def shared_model(key):
    return os.path.join(FIXTURES, SHARED[key][0])


def own_model(kind):
    return os.path.join(OWN_MODELS, f"digits_mlp_{kind}.onnx")


def random_inputs(kind, shape, n, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    if kind == "bipolar":
        return rng.choice(np.array([-1.0, 1.0], np.float32), size=(n, *shape))
    return rng.random((n, *shape), dtype=np.float32)


@pytest.fixture
def tmp_onnx(tmp_path):
    return lambda name="m.onnx": str(tmp_path / name)
