"""A keyword-spotting MLP of the MLPerf Tiny shape (KWS-W3A3), in Brevitas, with seeded random
weights and random BatchNorm statistics, exported as QONNX: `python -m quant_models.kws [PATH]`.

    10 x 49 MFCC features (flattened: 490) -> 8-bit signed input quantizer (QuantIdentity,
      power-of-two scale 2^-7 at init: inputs in [-1, 1))
      -> [QuantLinear (3-bit weights, no bias) -> BatchNorm1d -> QuantReLU 3-bit] x 3, 256 wide
      -> QuantLinear 256 -> 12 (3-bit weights) with a float bias: float logits

Every scale is a power of two (weights per tensor, activations per tensor; the quantizers of the
digits MLP zoo, `mlp.py`), so the exported integer arithmetic is exact in float32. Untrained:
torch's default Linear init under `torch.manual_seed(seed)`, then random BatchNorm statistics
and affine parameters (`zoo.randomize_batchnorm`) that spread each layer's pre-activations over
the 3-bit ReLU's eight levels (about 20 % of the channels with a negative BatchNorm scale).

`kws_onnx()` returns a cached export under build/models/ (gitignored; made on first use, a few
seconds); `export_kws(path)` writes one where you like.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from torch import nn

from quant_models.zoo import cached_export, export_model, randomize_batchnorm

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "build" / "models"
FRAMES, MFCC = 49, 10
N_FEATURES = FRAMES * MFCC  # 490
HIDDEN = (256, 256, 256)
N_CLASSES = 12
INPUT_BITS, WEIGHT_BITS, ACT_BITS = 8, 3, 3
VERSION = 1  # bump when the definition below changes: the cache file name carries it
CALIBRATION_INPUTS = 256


class KwsMLP(nn.Module):
    """490 -> 256 -> 256 -> 256 -> 12, W3A3 with an 8-bit input; QuantTensors between layers."""

    def __init__(self):
        super().__init__()
        self.input_quant = QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=INPUT_BITS,
                                         return_quant_tensor=True)
        widths = (N_FEATURES, *HIDDEN)
        self.hidden = nn.Sequential(*[
            nn.Sequential(
                QuantLinear(n_in, n_out, bias=False, weight_quant=Int8WeightPerTensorFixedPoint,
                            weight_bit_width=WEIGHT_BITS),
                nn.BatchNorm1d(n_out),
                QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=ACT_BITS, return_quant_tensor=True))
            for n_in, n_out in zip(widths, widths[1:])])
        self.out = QuantLinear(HIDDEN[-1], N_CLASSES, bias=True, weight_quant=Int8WeightPerTensorFixedPoint,
                               weight_bit_width=WEIGHT_BITS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(self.input_quant(x.flatten(1))))


def random_features(n: int, seed: int = 0) -> np.ndarray:
    """n float32 inputs [n, 490] ~ normal(0, 0.4) (most within the input quantizer's [-1, 1))."""
    return (0.4 * np.random.default_rng(seed).standard_normal((n, N_FEATURES))).astype(np.float32)


def build_kws(seed: int = 0) -> nn.Module:
    """KWS-W3A3 with seeded random weights and random BatchNorm statistics, in eval mode."""
    torch.manual_seed(seed)
    model = KwsMLP().eval()
    with torch.no_grad():  # the 3-bit ReLU's step (a power of two learned from its init)
        step = float(model.hidden[0][2](torch.zeros(1, 1)).scale)
    levels = 2 ** ACT_BITS - 1
    x = torch.from_numpy(random_features(CALIBRATION_INPUTS, seed + 1))
    randomize_batchnorm(model, x, seed + 2, target_mean=0.5 * levels * step, target_std=0.5 * levels * step)
    return model.eval()


def example_input() -> torch.Tensor:
    """The [1, 490] input the export traces with."""
    return torch.from_numpy(random_features(1, 0))


def export_kws(path: str | Path, seed: int = 0) -> Path:
    """Export KWS-W3A3 (seed `seed`) to `path` as QONNX; returns the path."""
    path = Path(path)
    export_model(build_kws(seed), example_input(), path)
    return path


def kws_onnx(seed: int = 0) -> Path:
    """The cached export build/models/kws_w3a3_v<VERSION>_seed<seed>.onnx, made if missing."""
    return cached_export(CACHE_DIR / f"kws_w3a3_v{VERSION}_seed{seed}.onnx", lambda: (build_kws(seed), example_input()))


if __name__ == "__main__":
    out = export_kws(sys.argv[1]) if len(sys.argv) > 1 else kws_onnx()
    print(out)
