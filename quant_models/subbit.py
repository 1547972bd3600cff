"""Sub-bit binary CNNs (Wang et al., "Sub-bit Neural Networks", ICCV 2021, arXiv 2110.09195).

`digits_subbit_tau<tau>` is `digits_cnn_w1a1` (cnn.py) whose second conv (16 -> 32, 3x3) draws
each of its 32 x 16 binary 3x3 kernels from a per-layer codebook of only 2^tau of the 512
possible sign patterns, so a kernel costs tau / 9 bit instead of 1 bit.

Training (`SubBitCNN`): `CodebookConv2d` keeps real latent kernels W [out, in, 3, 3] and 2^tau
real codewords C [2^tau, 9], initialised as a random sample of 2^tau distinct +-1 patterns
(times CODEWORD_INIT).
Forward: B = sign(C); each latent kernel takes the codeword with the largest inner product
<W_oi, B_k>; the layer's weight is alpha_o * B[k(o, i)] with alpha_o = mean |W_o| per output
channel. Backward: straight-through estimators, to W (identity through the assignment) and to
C (through the codeword lookup and an identity sign), so the codebook is refined by the summed
gradient of the kernels that use each codeword.

The first conv (1 -> 16) stays the plain binary conv of `digits_cnn_w1a1`: it has only 16
kernels, so it uses at most 16 <= 2^4 patterns whatever it learns (the codebook constraint
would be vacuous there for every tau >= 4), and it keeps the comparison to the baseline to the
one layer that holds 512 of the 528 kernels. The classifier stays binary as in the baseline.

Export (`to_binary_cnn`): QONNX has no codebook, so the trained model becomes an ordinary
`QuantCNN("w1a1")` whose conv2 weights are the chosen codewords (+-1, constant scale 1), with
alpha folded into the following BatchNorm (weight * alpha, running_mean / alpha): the ONNX file
looks exactly like digits_cnn_w1a1, and hwgen recovers the codebook from the sign patterns.
"""

import math

import torch
from brevitas.quant_tensor import QuantTensor
from torch import nn

from quant_models.cnn import CHANNELS, QuantCNN

SUBBIT_TAUS = (4, 5, 6)
KERNEL = 3
# Magnitude of the initial real codewords (+-CODEWORD_INIT). At the scale of the latent weights
# (kaiming init, ~0.08 here) Adam (lr 1e-2) flips codeword signs during training, which refines
# the codebook; at 1.0 a flip needs ~100 consistent steps and the trained codebook stays the
# initial random sample (0 of 2^tau codewords changed in 40 epochs; accuracy comparable).
CODEWORD_INIT = 0.1


def _sign(x: torch.Tensor) -> torch.Tensor:
    """+-1 with sign(0) = +1 (as Brevitas's binary quantizers and QONNX BipolarQuant)."""
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def random_codebook(tau: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """2^tau distinct +-1 patterns of a 3x3 kernel, [2^tau, 9] (bit j of the pattern number is
    kernel element j, row-major)."""
    n = KERNEL * KERNEL
    codes = torch.randperm(2**n, generator=generator)[:2**tau]
    bits = (codes[:, None] >> torch.arange(n)) & 1
    return bits.float() * 2 - 1


class CodebookConv2d(nn.Module):
    """Binary 3x3 conv whose kernels are codewords of a learnable 2^tau-entry codebook."""

    def __init__(self, in_channels: int, out_channels: int, tau: int, padding: int = 1,
                 codeword_init: float = CODEWORD_INIT):
        super().__init__()
        if not 1 <= tau <= KERNEL * KERNEL:
            raise ValueError(f"tau must be in 1..9, got {tau}")
        self.in_channels, self.out_channels, self.tau, self.padding = in_channels, out_channels, tau, padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, KERNEL, KERNEL))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # as nn.Conv2d
        self.codewords = nn.Parameter(random_codebook(tau) * codeword_init)

    def codebook(self) -> torch.Tensor:
        """sign(C), [2^tau, 9], with an identity straight-through gradient to C."""
        c = self.codewords
        return c + (_sign(c) - c).detach()

    def assignment(self) -> torch.Tensor:
        """Index of the codeword with the largest inner product, per kernel: [out, in]."""
        scores = self.weight.detach().flatten(2) @ _sign(self.codewords.detach()).T
        return scores.argmax(-1)

    def alpha(self) -> torch.Tensor:
        """Per-output-channel scale mean |W|, [out]."""
        return self.weight.abs().mean((1, 2, 3))

    def quant_weight(self) -> torch.Tensor:
        """alpha_o * B[k(o, i)] [out, in, 3, 3]; gradients reach both W (identity) and C."""
        flat = self.weight.flatten(2)
        w = self.codebook()[self.assignment()] + (flat - flat.detach())
        return w.view_as(self.weight) * self.alpha().view(-1, 1, 1, 1)

    def forward(self, x) -> torch.Tensor:
        if isinstance(x, QuantTensor):
            x = x.value
        return nn.functional.conv2d(x, self.quant_weight(), padding=self.padding)

    @torch.no_grad()
    def binary_kernels(self) -> torch.Tensor:
        """The +-1 kernels the layer uses (its weight without alpha), [out, in, 3, 3]."""
        return _sign(self.codewords)[self.assignment()].view_as(self.weight).clone()


class SubBitCNN(QuantCNN):
    """digits_cnn_w1a1 with conv2 drawn from a 2^tau codebook (see the module docstring)."""

    def __init__(self, tau: int):
        super().__init__("w1a1")
        self.tau = tau
        self.conv2 = CodebookConv2d(CHANNELS[1], CHANNELS[2], tau)


def build_subbit(tau: int) -> SubBitCNN:
    """Untrained sub-bit CNN (the codebook is drawn from torch's global generator: seed first)."""
    return SubBitCNN(tau)


@torch.no_grad()
def to_binary_cnn(model: SubBitCNN) -> QuantCNN:
    """The exportable equivalent: a QuantCNN("w1a1") with conv2 = the chosen +-1 codewords and
    alpha folded into bn2 (gamma * alpha, mean / alpha; alpha > 0), in eval mode."""
    conv = model.conv2
    alpha = conv.alpha()
    if not torch.all(alpha > 0):
        raise ValueError("alpha must be positive to fold into the BatchNorm")
    state = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("conv2.")}
    state["conv2.weight"] = conv.binary_kernels()
    state["bn2.weight"] = state["bn2.weight"] * alpha
    state["bn2.running_mean"] = state["bn2.running_mean"] / alpha
    binary = QuantCNN("w1a1")
    binary.load_state_dict(state)
    return binary.eval()
