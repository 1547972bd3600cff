"""Brevitas definitions of the 64-64-64-10 digits MLPs.

Every layer is input quantizer -> [QuantLinear -> BatchNorm1d -> activation quantizer] x 2
-> QuantLinear(64, 10) with a float bias and no output quantizer (float logits).

All scales are powers of two (weights per tensor, or per output channel for A2Q; activations
per tensor), so the integer arithmetic of an exported graph is exact in float32 and the
rescaling between layers is a shift.
"""

from pathlib import Path

import torch
from brevitas.core.restrict_val import PowerOfTwoRestrictValue
from brevitas.core.scaling import ScalingImplType
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import (
    Int8WeightPerTensorFixedPoint,
    SignedBinaryActPerTensorConst,
    SignedBinaryWeightPerTensorConst,
    Uint8ActPerTensorFixedPoint,
)
from brevitas.quant.scaled_int import (
    Int8AccumulatorAwareWeightQuant,
    Int8AccumulatorAwareZeroCenterWeightQuant,
)
from torch import nn

MLP_KINDS = ("w2a2", "w4a4", "w1a1", "w4a4_a2q", "w4a4_a2qplus")

# kind -> (weight bits, hidden activation bits, input bits)
BITS = {
    "w2a2": (2, 2, 4),
    "w4a4": (4, 4, 4),
    "w1a1": (1, 1, 1),
    "w4a4_a2q": (4, 4, 4),
    "w4a4_a2qplus": (4, 4, 4),
}

# Signed accumulator width P that A2Q / A2Q+ guarantee per QuantLinear (first to last).
# A 64-input dot product of 4-bit unsigned inputs and 4-bit weights needs 14 bits in the
# worst case (64 * 15 * 7 = 6720), so P = 12 is a real bound (plain w4a4 training happens to
# land at 11-12 bits; A2Q keeps ~96.7 % test accuracy down to P = 10, A2Q+ down to P = 9).
# P is not stored in the ONNX file; tests compare the width recovered from it to these.
ACC_TARGETS = {
    "w4a4_a2q": [12, 12, 12],
    "w4a4_a2qplus": [12, 12, 12],
}
_A2Q_QUANT = {
    "w4a4_a2q": Int8AccumulatorAwareWeightQuant,
    "w4a4_a2qplus": Int8AccumulatorAwareZeroCenterWeightQuant,
}

WIDTHS = (64, 64, 64, 10)
ONNX_DIR = Path(__file__).parent / "onnx"


class Uint4InputQuant(Uint8ActPerTensorFixedPoint):
    """Fixed 4-bit unsigned input quantizer with scale 1/16 (pixels are multiples of 1/16).

    With power-of-two integer scaling the scale is max_val / 2**bit_width; a constant
    scale keeps the input encoding independent of training.
    """
    bit_width = 4
    scaling_impl_type = ScalingImplType.CONST
    max_val = 1.0


def _weight_quant(kind: str, layer: int) -> dict:
    """QuantLinear keyword arguments for the weight quantizer of `layer` (0-based)."""
    if kind == "w1a1":
        # Constant scale 1 (the default 0.1 is not a power of two): weights are exactly +-1.
        return dict(weight_quant=SignedBinaryWeightPerTensorConst, weight_scaling_const=1.0)
    if kind in _A2Q_QUANT:
        # A2Q learns a per-channel float post-clipping scale by default; restricting it to a
        # power of two keeps the integer-exact export and does not affect the L1 bound, which
        # constrains the integer weights only.
        return dict(
            weight_quant=_A2Q_QUANT[kind],
            weight_bit_width=BITS[kind][0],
            weight_accumulator_bit_width=ACC_TARGETS[kind][layer],
            weight_restrict_scaling_impl=PowerOfTwoRestrictValue)
    return dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=BITS[kind][0])


def _activation(kind: str) -> nn.Module:
    """Hidden activation: sign for w1a1, else an unsigned power-of-two-scaled QuantReLU."""
    if kind == "w1a1":
        return QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    return QuantReLU(
        act_quant=Uint8ActPerTensorFixedPoint, bit_width=BITS[kind][1], return_quant_tensor=True)


class QuantMLP(nn.Module):
    """Quantized 64-64-64-10 MLP; the quantized tensors flow between layers as QuantTensors,
    which A2Q needs (its weight bound depends on the input bit width and sign)."""

    def __init__(self, kind: str):
        super().__init__()
        if kind not in MLP_KINDS:
            raise ValueError(f"unknown kind {kind!r}, expected one of {MLP_KINDS}")
        self.kind = kind
        # w1a1 follows FINN's TFC_1W1A: x in [0, 1] -> 2x - 1 -> sign (BipolarQuant).
        self.bipolar_input = kind == "w1a1"
        self.input_quant = QuantIdentity(
            act_quant=SignedBinaryActPerTensorConst if self.bipolar_input else Uint4InputQuant,
            return_quant_tensor=True)
        self.hidden = nn.Sequential(*[
            nn.Sequential(
                QuantLinear(n_in, n_out, bias=False, **_weight_quant(kind, layer)),
                nn.BatchNorm1d(n_out),
                _activation(kind)) for layer, (n_in, n_out) in enumerate(zip(WIDTHS, WIDTHS[1:-1]))
        ])
        self.out = QuantLinear(WIDTHS[-2], WIDTHS[-1], bias=True, **_weight_quant(kind, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bipolar_input:
            x = 2 * x - 1
        return self.out(self.hidden(self.input_quant(x)))


def build_mlp(kind: str) -> nn.Module:
    """Untrained quantized MLP of the given kind (one of MLP_KINDS)."""
    return QuantMLP(kind)


def build_float_mlp() -> nn.Module:
    """Unquantized MLP of the same shape: the accuracy baseline."""
    return nn.Sequential(
        nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
        nn.Linear(64, 64), nn.BatchNorm1d(64), nn.ReLU(),
        nn.Linear(64, 10))


def load_trained(kind: str, folder: Path | str = ONNX_DIR) -> nn.Module:
    """Rebuild `kind` and load `digits_mlp_<kind>.pt` from `folder`, in eval mode."""
    model = build_mlp(kind)
    model.load_state_dict(torch.load(Path(folder) / f"digits_mlp_{kind}.pt", weights_only=True))
    return model.eval()
