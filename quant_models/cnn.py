"""Brevitas definitions of the small digits CNNs (`digits_cnn_<kind>`, kind in CNN_KINDS).

    1x8x8 -> input quantizer -> QuantConv2d 3x3 16 (pad 1, no bias) -> BN -> act quant
          -> QuantConv2d 3x3 32 (pad 1, no bias) -> BN -> act quant -> MaxPool 2x2
          -> flatten -> QuantLinear(32*4*4, 10) with a float bias (float logits)

The MaxPool comes after the activation quantizer, so it pools quantized integers (the max
commutes with a positive scale). Quantizers are those of the MLP zoo (`mlp.py`): power-of-two
fixed-point scales for w4a4 (4-bit unsigned input with scale 1/16, 4-bit per-tensor weights,
4-bit unsigned QuantReLU), and for w1a1 the FINN TFC_1W1A recipe (x -> 2x - 1 -> sign,
weights +-1 with constant scale 1, sign activations).
"""

from pathlib import Path

import numpy as np
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from brevitas.quant import SignedBinaryActPerTensorConst
from torch import nn

from quant_models.mlp import ONNX_DIR, Uint4InputQuant, _activation, _weight_quant

CNN_KINDS = ("w4a4", "w1a1")
CHANNELS = (1, 16, 32)
IMAGE = (1, 8, 8)
N_CLASSES = 10
FLAT = CHANNELS[-1] * 4 * 4  # 32 channels x 4 x 4 after the 2x2 max pool


def to_images(x: np.ndarray) -> np.ndarray:
    """digits rows [N, 64] -> images [N, 1, 8, 8] (row-major, as scikit-learn stores them)."""
    return np.ascontiguousarray(x.reshape(-1, *IMAGE))


class QuantCNN(nn.Module):
    """Quantized 2-conv digits CNN; quantized tensors flow between layers as QuantTensors."""

    def __init__(self, kind: str):
        super().__init__()
        if kind not in CNN_KINDS:
            raise ValueError(f"unknown kind {kind!r}, expected one of {CNN_KINDS}")
        self.kind = kind
        self.bipolar_input = kind == "w1a1"
        self.input_quant = QuantIdentity(
            act_quant=SignedBinaryActPerTensorConst if self.bipolar_input else Uint4InputQuant,
            return_quant_tensor=True)
        self.conv1 = QuantConv2d(CHANNELS[0], CHANNELS[1], 3, padding=1, bias=False, **_weight_quant(kind, 0))
        self.bn1 = nn.BatchNorm2d(CHANNELS[1])
        self.act1 = _activation(kind)
        self.conv2 = QuantConv2d(CHANNELS[1], CHANNELS[2], 3, padding=1, bias=False, **_weight_quant(kind, 1))
        self.bn2 = nn.BatchNorm2d(CHANNELS[2])
        self.act2 = _activation(kind)
        self.pool = nn.MaxPool2d(2)
        self.fc = QuantLinear(FLAT, N_CLASSES, bias=True, **_weight_quant(kind, 2))

    def features(self, x: torch.Tensor):
        """Everything before the classifier: the pooled [N, 32, 4, 4] activations."""
        if self.bipolar_input:
            x = 2 * x - 1
        x = self.act1(self.bn1(self.conv1(self.input_quant(x))))
        return self.pool(self.act2(self.bn2(self.conv2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.features(x), 1))


def build_cnn(kind: str) -> nn.Module:
    """Untrained quantized CNN of the given kind (one of CNN_KINDS)."""
    return QuantCNN(kind)


def build_float_cnn() -> nn.Module:
    """Unquantized CNN of the same shape: the accuracy baseline."""
    return nn.Sequential(
        nn.Conv2d(CHANNELS[0], CHANNELS[1], 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS[1]), nn.ReLU(),
        nn.Conv2d(CHANNELS[1], CHANNELS[2], 3, padding=1, bias=False), nn.BatchNorm2d(CHANNELS[2]), nn.ReLU(),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(FLAT, N_CLASSES))


def load_trained_cnn(name: str, folder: Path | str = ONNX_DIR) -> nn.Module:
    """Rebuild `name` and load `<name>.pt` from `folder`, in eval mode.

    `name` is a file stem (`digits_cnn_w4a4`, `digits_cnn_w1a1`, `digits_subbit_tau5`) or a
    bare CNN kind (`w4a4`). The sub-bit models are exported as ordinary w1a1 CNNs whose
    second conv uses only 2^tau kernel patterns, so they rebuild as `QuantCNN("w1a1")`.
    """
    if name in CNN_KINDS:
        name = f"digits_cnn_{name}"
    if name.startswith("digits_cnn_"):
        kind = name[len("digits_cnn_"):]
    elif name.startswith("digits_subbit_tau"):
        kind = "w1a1"
    else:
        raise ValueError(f"unknown CNN model {name!r}")
    model = build_cnn(kind)
    model.load_state_dict(torch.load(Path(folder) / f"{name}.pt", weights_only=True))
    return model.eval()
