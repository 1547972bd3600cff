"""dsODENet-lite (Kawakami et al., arXiv 2107.12824) and its unrolled-ResNet baseline on digits.

`digits_odenet_n<N>`:

    1x8x8 -> 4-bit unsigned input quantizer (scale 1/16)
          -> stem QuantConv2d 3x3 1->16 (pad 1, no bias) -> BN -> quant_h      = h
          -> N Euler steps  h <- quant_h(h + dt * f(h)),  dt = 1/N
          -> global average pool -> flatten -> QuantLinear(16, 10) + float bias (float logits)
             (nn.AdaptiveAvgPool2d(1): the exporter writes ReduceMean, zoo.export_model turns it
             into the equivalent GlobalAveragePool)

    f(h) = depthwise QuantConv2d 3x3 (groups 16, pad 1, no bias) -> BN -> ReLU -> 4-bit unsigned
           quant -> pointwise QuantConv2d 1x1 16->16 (no bias) -> BN -> quant_h

quant_h is ONE signed 4-bit QuantIdentity with a learned power-of-two scale s_h, used after the
stem, at the end of f and after every residual add: h, f(h) and the sum all live in the same
quantized domain, so with dt a power of two the add is an integer add with shifts. The ODE
block uses the same f modules for all N steps (the export's N copies of f share weights and
BatchNorm statistics); `digits_resnet_n<N>` is the same graph with an independent f (weights
and BatchNorm) per step, still scaled by dt, so weight sharing is the only difference.

All weights are 4-bit per-tensor power-of-two fixed point (as the MLP/CNN w4a4 models).
"""

from pathlib import Path

import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear, QuantReLU
from brevitas.quant import Int8ActPerTensorFixedPoint, Int8WeightPerTensorFixedPoint, Uint8ActPerTensorFixedPoint
from torch import nn

from quant_models.mlp import ONNX_DIR, Uint4InputQuant

ODE_STEPS = (2, 4, 8)
ODE_ARCHS = ("odenet", "resnet")
WIDTH = 16
W_BITS = 4  # weights
H_BITS = 4  # signed state h (and f(h), and the sums)
A_BITS = 4  # unsigned activation inside f


def _wq() -> dict:
    return dict(weight_quant=Int8WeightPerTensorFixedPoint, weight_bit_width=W_BITS)


class ODEFunc(nn.Module):
    """The weights of f: BN(pw(relu_quant(BN(dw(h))))); the network applies the shared quant_h."""

    def __init__(self):
        super().__init__()
        self.dw = QuantConv2d(WIDTH, WIDTH, 3, padding=1, groups=WIDTH, bias=False, **_wq())
        self.bn1 = nn.BatchNorm2d(WIDTH)
        self.act = QuantReLU(act_quant=Uint8ActPerTensorFixedPoint, bit_width=A_BITS)
        self.pw = QuantConv2d(WIDTH, WIDTH, 1, bias=False, **_wq())
        self.bn2 = nn.BatchNorm2d(WIDTH)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.pw(self.act(self.bn1(self.dw(h)))))


class DigitsODENet(nn.Module):
    """arch "odenet": one f for all `steps` Euler steps; "resnet": one f per step."""

    def __init__(self, arch: str, steps: int):
        super().__init__()
        if arch not in ODE_ARCHS:
            raise ValueError(f"unknown arch {arch!r}, expected one of {ODE_ARCHS}")
        if steps < 1 or steps & (steps - 1):
            raise ValueError(f"steps must be a power of two (dt = 1/steps is a shift), got {steps}")
        self.arch, self.steps, self.dt = arch, steps, 1.0 / steps
        self.input_quant = QuantIdentity(act_quant=Uint4InputQuant)
        self.stem = QuantConv2d(1, WIDTH, 3, padding=1, bias=False, **_wq())
        self.stem_bn = nn.BatchNorm2d(WIDTH)
        self.quant_h = QuantIdentity(act_quant=Int8ActPerTensorFixedPoint, bit_width=H_BITS)
        self.block = nn.ModuleList(ODEFunc() for _ in range(1 if arch == "odenet" else steps))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = QuantLinear(WIDTH, 10, bias=True, **_wq())

    def step_funcs(self) -> list[nn.Module]:
        """The f of every step: the same module N times for the ODE, N modules for the ResNet."""
        return [self.block[0]] * self.steps if self.arch == "odenet" else list(self.block)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.quant_h(self.stem_bn(self.stem(self.input_quant(x))))
        for f in self.step_funcs():
            h = self.quant_h(h + self.quant_h(f(h)) * self.dt)
        return self.fc(torch.flatten(self.pool(h), 1))


def build_odenet(arch: str, steps: int) -> nn.Module:
    """Untrained `digits_<arch>_n<steps>`."""
    return DigitsODENet(arch, steps)


def model_name(arch: str, steps: int) -> str:
    return f"digits_{arch}_n{steps}"


def parse_name(name: str) -> tuple[str, int]:
    """`digits_odenet_n4` -> ("odenet", 4)."""
    prefix, _, n = name.rpartition("_n")
    arch = prefix.removeprefix("digits_")
    if arch not in ODE_ARCHS or not n.isdigit():
        raise ValueError(f"not an ODE/ResNet model name: {name!r}")
    return arch, int(n)


def parameter_counts(model: DigitsODENet) -> dict[str, int]:
    """Trainable parameters (weights, BN affine, learned quantizer scales): total and block."""
    return {"total": sum(p.numel() for p in model.parameters()),
            "block": sum(p.numel() for p in model.block.parameters())}


def load_trained_odenet(name: str, folder: Path | str = ONNX_DIR) -> nn.Module:
    """Rebuild `name` (e.g. `digits_odenet_n4`, `digits_resnet_n2`) and load `<name>.pt`, eval mode."""
    model = build_odenet(*parse_name(name))
    model.load_state_dict(torch.load(Path(folder) / f"{name}.pt", weights_only=True))
    return model.eval()
