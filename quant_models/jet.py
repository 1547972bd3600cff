"""Jet-tagging-style MLPs for the peer comparison (bench/peers.py): `python -m quant_models.jet`.

The hls4ml / FINN / da4ml jet-tagging benchmark is a 16-64-32-32-5 MLP on 16 jet features.
No dataset download is allowed here, so scikit-learn's digits stand in: every 8x8 image is
sum-pooled 2x2 to 4x4 = 16 features (divided by 64, so in [0, 1]) and only classes 0-4 are
kept (5 classes).

Quantization (w4a6): input QuantIdentity 8-bit unsigned with a constant scale 1/256, weights
Int4 per tensor with a power-of-two scale, hidden activations QuantReLU 6-bit unsigned with a
learned power-of-two scale, no biases and no BatchNorm, float logits (no output quantizer).
Every scale is a power of two, so each layer is: integer dot product, then an arithmetic shift
with round-half-to-even, then clip to [0, 63] -- something every peer tool can express.

Writes `jet_w4a6.onnx` (16-64-32-32-5), `jet_small_w4a6.onnx` (16-16-5), their `.pt` state
dicts and `accuracy_jet.json`. Deterministic for a given `--seed` and `--epochs`.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from brevitas.core.scaling import ScalingImplType
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from quant_models.train import accuracy, export, seed_everything, train

ONNX_DIR = Path(__file__).parent / "onnx"
WEIGHT_BITS, ACT_BITS, INPUT_BITS = 4, 6, 8
NETS = {
    "jet_w4a6": (16, 64, 32, 32, 5),
    "jet_small_w4a6": (16, 16, 5),
}


class Uint8InputQuant(Uint8ActPerTensorFixedPoint):
    """Fixed 8-bit unsigned input quantizer with scale 1/256 (max_val / 2**bit_width)."""
    bit_width = INPUT_BITS
    scaling_impl_type = ScalingImplType.CONST
    max_val = 1.0


class JetMLP(nn.Module):
    """input quant -> [QuantLinear (no bias) -> QuantReLU 6-bit] x hidden -> QuantLinear -> logits."""

    def __init__(self, widths: tuple[int, ...]):
        super().__init__()
        self.widths = tuple(widths)
        self.input_quant = QuantIdentity(act_quant=Uint8InputQuant, return_quant_tensor=True)
        layers: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-2], widths[1:-1]):
            layers += [
                QuantLinear(n_in, n_out, bias=False, weight_quant=Int8WeightPerTensorFixedPoint,
                            weight_bit_width=WEIGHT_BITS),
                QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=ACT_BITS,
                          return_quant_tensor=True),
            ]
        self.hidden = nn.Sequential(*layers)
        self.out = QuantLinear(widths[-2], widths[-1], bias=False,
                               weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=WEIGHT_BITS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(self.input_quant(x)))


def load_jet_split(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): digits 0-4, 2x2 sum-pooled to 16 features / 64."""
    x, y = load_digits(return_X_y=True)
    keep = y < 5
    x = x[keep].reshape(-1, 4, 2, 4, 2).sum(axis=(2, 4)).reshape(-1, 16)
    x = (x / 64.0).astype(np.float32)
    y = y[keep].astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=0.25, random_state=seed, stratify=y)
    return x_train, y_train, x_test, y_test


def load_trained(name: str, folder: Path | str = ONNX_DIR) -> nn.Module:
    """Rebuild net `name` (a key of NETS) and load its `.pt` state dict, in eval mode."""
    model = JetMLP(NETS[name])
    model.load_state_dict(torch.load(Path(folder) / f"{name}.pt", weights_only=True))
    return model.eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ONNX_DIR)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = load_jet_split(args.seed)
    results = {}
    for name, widths in NETS.items():
        start = time.perf_counter()
        seed_everything(args.seed)
        model = train(JetMLP(widths), x_train, y_train, args.epochs)
        acc = accuracy(model, x_test, y_test)
        stem = args.out / name
        torch.save(model.state_dict(), stem.with_suffix(".pt"))
        export(model, torch.from_numpy(x_test[:1]), stem.with_suffix(".onnx"))
        results[name] = {"test_accuracy": acc, "widths": list(widths), "weight_bits": WEIGHT_BITS,
                         "act_bits": ACT_BITS, "input_bits": INPUT_BITS, "epochs": args.epochs,
                         "seed": args.seed, "train_samples": len(x_train), "test_samples": len(x_test),
                         "dataset": "sklearn digits 0-4, 2x2 sum-pooled to 16 features"}
        print(f"{name}: {acc:.4f} ({time.perf_counter() - start:.1f} s)")
    (args.out / "accuracy_jet.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
