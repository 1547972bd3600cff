"""FINN's CNV-W1A1 (the BNN-PYNQ CIFAR-10 network) from brevitas_examples, with seeded random
weights and random BatchNorm statistics, exported as QONNX: `python -m quant_models.cnv [PATH]`.

The architecture is upstream's own definition (`brevitas_examples.bnn_pynq.models.CNV`, built
from `cfg/cnv_1w1a.ini` with `model_with_cfg("cnv_1w1a", pretrained=False)`: nothing is
downloaded):

    3x32x32 in [0, 1] -> 2x - 1 -> 8-bit signed input quantizer (Q1.7, scale 2^-7)
      -> [QuantConv2d 3x3 (no pad, no bias, binary weights) -> BatchNorm2d -> sign] x 6
         with 64, 64 (+ max pool 2), 128, 128 (+ max pool 2), 256, 256 channels:
         32 -> 30 -> 28 -> 14 -> 12 -> 10 -> 5 -> 3 -> 1
      -> flatten 256 -> [QuantLinear (binary) -> BatchNorm1d -> sign] 512, 512
      -> QuantLinear 512 -> 10 (binary) -> TensorNorm (a scalar BatchNorm: float logits)

Untrained, the weights are upstream's init (uniform(-1, 1), binarized by the quantizer) drawn
under `torch.manual_seed(seed)`; every BatchNorm (and the TensorNorm) gets random running
statistics and affine parameters (`zoo.randomize_batchnorm`): with the defaults (mean 0,
variance 1) the first layer's +-27-range accumulators would pass through unscaled and the sign
activations would say little about the thresholds. About 20 % of the channels get a negative
BatchNorm scale (decreasing thresholds).

`cnv_onnx()` returns a cached export under build/models/ (gitignored; made on first use, about
10-20 s); `export_cnv(path)` writes one where you like.

`tau=T` gives the Sub-bit variant: every 3x3 conv whose input is binary (layers 2-6) has its
kernels replaced by the nearest (Hamming distance) of a seeded random codebook of 2^T sign
patterns, as Sub-bit NNs' codebook conv stores them; hwgen's kernel-bank pass then recognises
them (`--kernel-bank auto`, the default). The first conv (8-bit input) stays plain binary.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from quant_models.zoo import cached_export, export_model, randomize_batchnorm

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "build" / "models"
INPUT_SHAPE = (3, 32, 32)
N_CLASSES = 10
CONFIG = "cnv_1w1a"  # brevitas_examples/bnn_pynq/cfg/cnv_1w1a.ini: W1 A1, 8-bit input, 10 classes, 3 channels
VERSION = 1  # bump when the definition below changes: the cache file name carries it
CALIBRATION_IMAGES = 32


def build_cnv(seed: int = 0, tau: int | None = None) -> torch.nn.Module:
    """Upstream CNV-W1A1 with seeded random weights and random BatchNorm / TensorNorm
    statistics, in eval mode; with `tau`, binary-input 3x3 kernels on a 2^tau-word codebook."""
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    torch.manual_seed(seed)
    model, cfg = model_with_cfg(CONFIG, pretrained=False)
    assert (cfg.getint("QUANT", "WEIGHT_BIT_WIDTH"), cfg.getint("QUANT", "ACT_BIT_WIDTH"),
            cfg.getint("QUANT", "IN_BIT_WIDTH"), cfg.getint("MODEL", "NUM_CLASSES"),
            cfg.getint("MODEL", "IN_CHANNELS")) == (1, 1, 8, N_CLASSES, INPUT_SHAPE[0]), "unexpected cnv_1w1a.ini"
    gen = torch.Generator().manual_seed(seed + 1)
    images = torch.rand((CALIBRATION_IMAGES, *INPUT_SHAPE), generator=gen)
    randomize_batchnorm(model, images, seed + 2)
    for m in model.modules():  # the scalar TensorNorm on the logits
        if isinstance(m, TensorNorm):
            m.running_mean.copy_(torch.randn(1, generator=gen))
            m.running_var.copy_(0.5 + 1.5 * torch.rand(1, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(1, generator=gen))
            m.bias.data.copy_(torch.rand(1, generator=gen) - 0.5)
    if tau is not None:
        project_on_codebook(model, tau, seed + 3)
    return model.eval()


def project_on_codebook(model: torch.nn.Module, tau: int, seed: int) -> None:
    """Every 3x3 QuantConv2d but the first (the one on the 8-bit input): each kernel's sign pattern
    becomes the nearest codeword of a random 2^tau-word codebook (magnitudes kept, so the binary
    quantizer sees the codeword's signs)."""
    from brevitas.nn import QuantConv2d

    from quant_models.subbit import random_codebook

    book = random_codebook(tau, torch.Generator().manual_seed(seed))  # [2^tau, 9] of +-1
    convs = [m for m in model.modules() if isinstance(m, QuantConv2d) and tuple(m.kernel_size) == (3, 3)]
    with torch.no_grad():
        for conv in convs[1:]:
            w = conv.weight  # [Cout, Cin, 3, 3]
            signs = torch.where(w >= 0, 1.0, -1.0).reshape(-1, 9)
            nearest = (signs @ book.T).argmax(1)  # most agreeing elements = least Hamming distance
            w.copy_((book[nearest] * w.abs().reshape(-1, 9).clamp_min(1e-3)).reshape(w.shape))


def example_input() -> torch.Tensor:
    """The [1, 3, 32, 32] input the export traces with."""
    return torch.rand((1, *INPUT_SHAPE), generator=torch.Generator().manual_seed(0))


def random_images(n: int, seed: int = 0) -> np.ndarray:
    """n float32 images [n, 3, 32, 32] uniform in [0, 1) (the model's input range)."""
    return np.random.default_rng(seed).random((n, *INPUT_SHAPE), dtype=np.float32)


def export_cnv(path: str | Path, seed: int = 0, tau: int | None = None) -> Path:
    """Export CNV-W1A1 (seed `seed`, Sub-bit codebook `tau`) to `path` as QONNX; returns the path."""
    path = Path(path)
    export_model(build_cnv(seed, tau), example_input(), path)
    return path


def cnv_onnx(seed: int = 0, tau: int | None = None) -> Path:
    """The cached export build/models/cnv_w1a1_v<VERSION>_seed<seed>[_tau<tau>].onnx, made if missing."""
    suffix = f"_tau{tau}" if tau is not None else ""
    return cached_export(CACHE_DIR / f"cnv_w1a1_v{VERSION}_seed{seed}{suffix}.onnx",
                         lambda: (build_cnv(seed, tau), example_input()))


if __name__ == "__main__":
    out = export_cnv(sys.argv[1]) if len(sys.argv) > 1 else cnv_onnx()
    print(out)
