"""Random small Brevitas models for fuzzing hwgen's importer and golden model.

A `FuzzSpec` is a plain, JSON-able description of one model (every random choice is a field, so a
failing model is reproduced from its spec alone); `build(spec)` makes the Brevitas module with
seeded random weights, calibrated activation scales and randomized BatchNorm statistics, and
`export(spec, path)` writes it as QONNX. The choices are drawn elsewhere: by hypothesis strategies in
tests/test_fuzz_models.py and by a numpy Generator in bench/fuzz_models.py (`random_spec` here), so
this module imports neither hypothesis nor pytest.

Model shapes:
    mlp: [x -> 2x - 1] -> input QuantIdentity -> (QuantLinear -> [BN1d] -> act) x n-1 -> QuantLinear
         -> [BN1d] -> [act]
    cnn: [x -> 2x - 1] -> input QuantIdentity -> (QuantConv2d -> [BN2d] -> act -> [MaxPool2d 2x2]) x 1-2
         -> flatten -> QuantLinear -> [BN1d] -> [act]
Brevitas 0.13.4 has no QuantMaxPool2d: the pool is torch's nn.MaxPool2d, which Brevitas applies to
the QuantTensor (it stays quantized, so the export has a MaxPool between Quant nodes); `pool_first`
puts it before the activation quantizer instead (a max over float BatchNorm outputs: hwgen pools the
quantizer's integers, exact because a quantizer is non-decreasing).
"""
from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field

import numpy as np

BIASES = ("none", "float", "int8", "int16", "int32")
ACTS = ("relu", "identity", "hardtanh")  # "none": only the last layer (a float output)


@dataclass
class LayerSpec:
    """One QuantLinear / QuantConv2d with what follows it up to the next layer."""

    out: int  # output features / channels
    weight_bits: int = 4  # 1: binary +-scale weights (BipolarQuant in the export)
    weight_per_channel: bool = False  # scaling_per_output_channel (a binary layer: mean |w| per channel)
    weight_narrow: bool = True  # narrow_range of an integer weight quantizer (ignored when binary)
    bias: str = "none"  # BIASES: float, or Brevitas IntNBias (scale = input scale x weight scale)
    batchnorm: bool = False
    act: str = "relu"  # ACTS or "none"
    act_bits: int = 4  # 1: the sign (BipolarQuant); needs act_signed and not relu (see _check_one_bit)
    act_signed: bool = False  # identity / hardtanh only (relu is unsigned)
    act_narrow: bool = False  # ignored below 2 bits
    hardtanh_max: float = 2.0  # QuantHardTanh's max_val (min_val = -max_val, or 0 if unsigned)
    kernel: int = 3  # conv only
    stride: int = 1
    padding: int = 0
    pool: bool = False  # conv only: MaxPool2d(2) after the activation
    pool_first: bool = False  # ... or before it (on the float BatchNorm output)


@dataclass
class FuzzSpec:
    """A whole model: input, conv layers (cnn only), linear layers, scales, randomness."""

    seed: int = 0  # torch.manual_seed (weights) and the numpy Generator (BatchNorm, channel spreads)
    kind: str = "mlp"  # "mlp" | "cnn"
    input_shape: tuple = (8,)  # (features,) or (C, H, W)
    input_bits: int = 4  # 1: the sign of the input (BipolarQuant); needs input_signed
    input_signed: bool = False
    input_narrow: bool = False
    input_affine: bool = False  # x -> 2x - 1 before the input quantizer (inputs are uniform [0, 1))
    pow2: bool = True  # power-of-two (FixedPoint) scales everywhere; else Brevitas's float scales
    convs: tuple = ()  # LayerSpec per QuantConv2d
    linears: tuple = field(default_factory=lambda: (LayerSpec(out=4, act="none"),))  # per QuantLinear; the
    # last one's act may be "none" (a float output), the others need an activation quantizer
    bn_negative: float = 0.25  # fraction of BatchNorm channels with a negative gamma
    bn_zero_gamma: bool = False  # one BatchNorm channel with gamma = 0 (a constant channel)
    channel_spread: bool = True  # scale each output row of the float weights by 2^u, u in [-1, 1)
    exporter: str = "torchscript"  # export_qonnx's "torchscript" (dynamo=False, 10x faster) or "dynamo"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FuzzSpec":
        d = dict(d)
        d["input_shape"] = tuple(d["input_shape"])
        d["convs"] = tuple(LayerSpec(**c) for c in d.get("convs", ()))
        d["linears"] = tuple(LayerSpec(**c) for c in d.get("linears", ()))
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def conv_shapes(self) -> list[tuple[int, int, int]]:
        """(C, H, W) after each conv block (pool included); raises ValueError when a map would vanish."""
        c, h, w = self.input_shape
        out = []
        for layer in self.convs:
            h = (h + 2 * layer.padding - layer.kernel) // layer.stride + 1
            w = (w + 2 * layer.padding - layer.kernel) // layer.stride + 1
            if layer.pool:
                h, w = h // 2, w // 2
            if h < 1 or w < 1:
                raise ValueError(f"conv layers leave an empty {h}x{w} map: {self}")
            c = layer.out
            out.append((c, h, w))
        return out

    def flat_features(self) -> int:
        if self.kind == "mlp":
            return self.input_shape[0]
        c, h, w = self.conv_shapes()[-1] if self.convs else self.input_shape
        return c * h * w


# --- Brevitas quantizers ----------------------------------------------------------------------------

def _binary_weight_per_channel(pow2: bool):
    """Binary weights with a per-output-channel scale mean |w| (XNOR-Net style): Brevitas's
    SignedBinaryWeightPerTensorConst with statistics scaling instead of a constant."""
    from brevitas.core.function_wrapper import InplaceTensorClampSte
    from brevitas.core.restrict_val import FloatRestrictValue, PowerOfTwoRestrictValue
    from brevitas.core.scaling import ScalingImplType
    from brevitas.core.stats import StatsOp
    from brevitas.quant.binary import SignedBinaryWeightPerTensorConst

    return SignedBinaryWeightPerTensorConst.let(
        tensor_clamp_impl=InplaceTensorClampSte, scaling_impl_type=ScalingImplType.STATS,
        scaling_stats_op=StatsOp.AVE, scaling_per_output_channel=True,
        restrict_scaling_impl=PowerOfTwoRestrictValue if pow2 else FloatRestrictValue)


def _weight_kwargs(layer: LayerSpec, pow2: bool, rng: np.random.Generator) -> dict:
    from brevitas.quant.binary import SignedBinaryWeightPerTensorConst
    from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint, Int8WeightPerTensorFixedPoint
    from brevitas.quant.scaled_int import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat
    from brevitas.quant.scaled_int import Int8Bias, Int16Bias, Int32Bias

    if layer.weight_bits == 1:
        if layer.weight_per_channel:
            kw = {"weight_quant": _binary_weight_per_channel(pow2)}
        else:  # a constant scale: a power of two, or a seeded float one
            const = 2.0 ** int(rng.integers(-3, 1)) if pow2 else float(rng.uniform(0.05, 0.5))
            kw = {"weight_quant": SignedBinaryWeightPerTensorConst, "weight_scaling_const": const}
    else:
        quant = {(True, True): Int8WeightPerChannelFixedPoint, (True, False): Int8WeightPerTensorFixedPoint,
                 (False, True): Int8WeightPerChannelFloat, (False, False): Int8WeightPerTensorFloat}
        kw = {"weight_quant": quant[pow2, layer.weight_per_channel], "weight_bit_width": layer.weight_bits,
              "weight_narrow_range": layer.weight_narrow}
    bias = {"int8": Int8Bias, "int16": Int16Bias, "int32": Int32Bias}.get(layer.bias)
    kw["bias"] = layer.bias != "none"
    if bias is not None:
        kw["bias_quant"] = bias
    return kw


def _activation(kind: str, bits: int, signed: bool, narrow: bool, pow2: bool, hardtanh_max: float = 2.0):
    """The activation quantizer module (return_quant_tensor, so the next layer's IntNBias sees a scale)."""
    from brevitas.nn import QuantHardTanh, QuantIdentity, QuantReLU
    from brevitas.quant.binary import SignedBinaryActPerTensorConst
    from brevitas.quant.fixed_point import (Int8ActPerTensorFixedPoint, Int8ActPerTensorFixedPointMinMaxInit,
                                            Uint8ActPerTensorFixedPoint, Uint8ActPerTensorFixedPointMaxInit)
    from brevitas.quant.scaled_int import (Int8ActPerTensorFloat, Int8ActPerTensorFloatMinMaxInit,
                                           Uint8ActPerTensorFloat, Uint8ActPerTensorFloatMaxInit)

    signed = signed and kind != "relu"
    narrow = narrow and bits >= 2
    if bits == 1 and signed:  # the sign: a BipolarQuant
        return QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=True)
    kw = {"bit_width": bits, "narrow_range": narrow, "return_quant_tensor": True}
    if kind == "hardtanh":
        if signed:
            q = Int8ActPerTensorFixedPointMinMaxInit if pow2 else Int8ActPerTensorFloatMinMaxInit
            return QuantHardTanh(act_quant=q, min_val=-hardtanh_max, max_val=hardtanh_max, **kw)
        q = Uint8ActPerTensorFixedPointMaxInit if pow2 else Uint8ActPerTensorFloatMaxInit
        return QuantHardTanh(act_quant=q, max_val=hardtanh_max, **kw)
    if kind == "relu":
        return QuantReLU(act_quant=Uint8ActPerTensorFixedPoint if pow2 else Uint8ActPerTensorFloat, **kw)
    if signed:
        return QuantIdentity(act_quant=Int8ActPerTensorFixedPoint if pow2 else Int8ActPerTensorFloat, **kw)
    return QuantIdentity(act_quant=Uint8ActPerTensorFixedPoint if pow2 else Uint8ActPerTensorFloat, **kw)


# --- the model --------------------------------------------------------------------------------------

def _module_class():
    import torch
    from torch import nn

    class FuzzModel(nn.Module):
        """The generated layers in order, with the optional 2x - 1 in front of the input quantizer."""

        def __init__(self, affine: bool, layers: list):
            super().__init__()
            self.affine = affine
            self.layers = nn.ModuleList(layers)

        def forward(self, x):
            if self.affine:
                x = 2 * x - 1
            for layer in self.layers:
                x = layer(x)
            return getattr(x, "value", x) if not isinstance(x, torch.Tensor) else x

    return FuzzModel


def _layers(spec: FuzzSpec, rng: np.random.Generator) -> list:
    from brevitas.nn import QuantConv2d, QuantLinear
    from torch import nn

    mods = [_activation("identity", spec.input_bits, spec.input_signed, spec.input_narrow, spec.pow2)]
    c = spec.input_shape[0]
    for layer in spec.convs:
        mods.append(QuantConv2d(c, layer.out, layer.kernel, stride=layer.stride, padding=layer.padding,
                                **_weight_kwargs(layer, spec.pow2, rng)))
        if layer.batchnorm:
            mods.append(nn.BatchNorm2d(layer.out))
        if layer.pool and layer.pool_first:
            mods.append(nn.MaxPool2d(2))
        mods.append(_activation(layer.act, layer.act_bits, layer.act_signed, layer.act_narrow, spec.pow2,
                                layer.hardtanh_max))
        if layer.pool and not layer.pool_first:
            mods.append(nn.MaxPool2d(2))
        c = layer.out
    if spec.kind == "cnn":
        mods.append(nn.Flatten())
    n = spec.flat_features()
    for i, layer in enumerate(spec.linears):
        mods.append(QuantLinear(n, layer.out, **_weight_kwargs(layer, spec.pow2, rng)))
        if layer.batchnorm:
            mods.append(nn.BatchNorm1d(layer.out))
        if layer.act != "none":
            mods.append(_activation(layer.act, layer.act_bits, layer.act_signed, layer.act_narrow, spec.pow2,
                                    layer.hardtanh_max))
        elif i < len(spec.linears) - 1:
            raise ValueError(f"hidden linear layer {i} without an activation quantizer: {spec}")
        n = layer.out
    return mods


def example_inputs(spec: FuzzSpec, n: int, seed: int = 0):
    """n uniform [0, 1) inputs (what hwgen.check generates for a model with an input quantizer)."""
    import torch

    return torch.rand((n, *spec.input_shape), generator=torch.Generator().manual_seed(seed))


def _randomize(model, spec: FuzzSpec, rng: np.random.Generator) -> None:
    """Spread the weight rows (so per-channel scales differ), then one calibration pass: a pre-hook
    sets each BatchNorm's statistics from the input it measures (mean m, std s per channel):
        running_mean = m + 0.5 s N(0, 1), running_var = (s U[0.5, 2])^2,
        weight = U[0.5, 1.5] (negated for a bn_negative fraction; one 0 if bn_zero_gamma), bias = U[-0.5, 0.5]
    so its output spreads over the following quantizer's range instead of saturating it, and the
    activation quantizers collect their scales (Brevitas calibration_mode) from what they will see."""
    import torch
    from brevitas.graph.calibrate import calibration_mode
    from brevitas.nn import QuantConv2d, QuantLinear

    with torch.no_grad():
        if spec.channel_spread:
            for m in model.modules():
                if isinstance(m, (QuantConv2d, QuantLinear)):
                    k = m.weight.shape[0]
                    f = 2.0 ** rng.uniform(-1, 1, size=k)
                    m.weight.mul_(torch.tensor(f, dtype=torch.float32).view(-1, *[1] * (m.weight.dim() - 1)))
        for m in model.modules():
            if isinstance(m, (QuantConv2d, QuantLinear)) and m.bias is not None:
                m.bias.copy_(torch.tensor(rng.normal(0, 0.5, m.bias.shape), dtype=torch.float32))

    def hook(bn, args):
        x = args[0]
        x = getattr(x, "value", x).detach().double()
        axes = [0] + list(range(2, x.dim()))
        mean, std = x.mean(dim=axes).numpy(), x.std(dim=axes).clamp_min(1e-3).numpy()
        n = bn.num_features
        gamma = rng.uniform(0.5, 1.5, n) * np.where(rng.random(n) < spec.bn_negative, -1.0, 1.0)
        if spec.bn_zero_gamma:
            gamma[rng.integers(n)] = 0.0
        t = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
        bn.running_mean.copy_(t(mean + 0.5 * std * rng.normal(size=n)))
        bn.running_var.copy_(t((std * rng.uniform(0.5, 2.0, n)) ** 2))
        bn.weight.data.copy_(t(gamma))
        bn.bias.data.copy_(t(rng.uniform(-0.5, 0.5, n)))

    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    hooks = [bn.register_forward_pre_hook(hook) for bn in bns]
    model.eval()
    try:
        with torch.no_grad(), calibration_mode(model):
            model(example_inputs(spec, 64, spec.seed))
    finally:
        for h in hooks:
            h.remove()
    model.eval()


def _check_one_bit(spec: FuzzSpec) -> None:
    """Brevitas 0.13.4 exports every 1-bit quantizer as BipolarQuant (+-scale, its handler looks at the
    bit width only), so an unsigned 1-bit quantizer ({0, 1}) would be exported as something else than
    the model computes (a Relu -> BipolarQuant that is +1 everywhere): refused here."""
    acts = [(layer.act, layer.act_bits, layer.act_signed) for layer in (*spec.convs, *spec.linears)]
    for act, bits, signed in [("identity", spec.input_bits, spec.input_signed), *acts]:
        if act != "none" and bits == 1 and (act == "relu" or not signed):
            raise ValueError(f"a 1-bit {act} quantizer must be signed (Brevitas exports it as BipolarQuant): {spec}")


def build(spec: FuzzSpec):
    """The Brevitas model of `spec` in eval mode: weights from torch.manual_seed(spec.seed) (torch's
    default init), everything else from numpy's default_rng(spec.seed)."""
    import torch

    if spec.kind not in ("mlp", "cnn") or (spec.kind == "mlp" and spec.convs):
        raise ValueError(f"bad kind / layers: {spec}")
    if not spec.linears:
        raise ValueError(f"no linear layer: {spec}")
    spec.flat_features()  # shape check
    _check_one_bit(spec)
    torch.manual_seed(spec.seed)
    rng = np.random.default_rng(spec.seed)
    model = _module_class()(spec.input_affine, _layers(spec, rng))
    _randomize(model, spec, rng)
    return model


def export(spec: FuzzSpec, path) -> str:
    """build(spec) exported with brevitas.export.export_qonnx to `path` (any side .data file removed)."""
    import torch
    from brevitas.export import export_qonnx

    model = build(spec)
    with torch.no_grad():
        export_qonnx(model, example_inputs(spec, 1, spec.seed + 1), export_path=str(path),
                     dynamo=spec.exporter == "dynamo")
    if os.path.exists(str(path) + ".data"):
        os.unlink(str(path) + ".data")
    return str(path)


# --- random specs (numpy) ---------------------------------------------------------------------------

def _random_layer(rng: np.random.Generator, *, conv: bool, last: bool) -> LayerSpec:
    """One layer's choices. Bit widths: 1 and 8 with extra weight (the edges), the rest uniform; a
    1-bit activation is the sign (identity / hardtanh, signed)."""
    def bits():
        return int(rng.choice([1, 2, 3, 4, 5, 6, 7, 8], p=[.2, .12, .12, .12, .08, .08, .08, .2]))

    act = str(rng.choice(["relu", "identity", "hardtanh", "none"] if last else ACTS))
    act_bits, act_signed = bits(), bool(rng.random() < 0.5)
    if act_bits == 1:
        act = "identity" if act == "relu" else act
        act_signed = True
    return LayerSpec(
        out=int(rng.integers(1, 7) if conv else rng.integers(1, 13)),
        weight_bits=bits(), weight_per_channel=bool(rng.random() < 0.5), weight_narrow=bool(rng.random() < 0.5),
        bias=str(rng.choice(BIASES)), batchnorm=bool(rng.random() < 0.6), act=act, act_bits=act_bits,
        act_signed=act_signed, act_narrow=bool(rng.random() < 0.3),
        hardtanh_max=float(rng.choice([0.5, 1.0, 2.0, 3.0])),
        kernel=int(rng.integers(1, 4)) if conv else 3, stride=int(rng.integers(1, 3)) if conv else 1,
        padding=int(rng.integers(0, 2)) if conv else 0, pool=bool(conv and rng.random() < 0.4),
        pool_first=bool(conv and rng.random() < 0.15))


def random_spec(rng: np.random.Generator) -> FuzzSpec:
    """A random valid FuzzSpec from a numpy Generator (the bench's counterpart of the test's strategies)."""
    kind = str(rng.choice(["mlp", "cnn"]))
    while True:
        if kind == "mlp":
            shape = (int(rng.integers(2, 17)),)
            convs = ()
        else:
            shape = (int(rng.integers(1, 4)), int(rng.integers(6, 11)), int(rng.integers(6, 11)))
            convs = tuple(_random_layer(rng, conv=True, last=False) for _ in range(int(rng.integers(1, 3))))
        n_lin = int(rng.integers(1, 4)) if kind == "mlp" else int(rng.integers(1, 3))
        linears = tuple(_random_layer(rng, conv=False, last=i == n_lin - 1) for i in range(n_lin))
        input_bits = int(rng.integers(1, 9))
        spec = FuzzSpec(
            seed=int(rng.integers(0, 2 ** 31)), kind=kind, input_shape=shape, input_bits=input_bits,
            input_signed=bool(input_bits == 1 or rng.random() < 0.5), input_narrow=bool(rng.random() < 0.3),
            input_affine=bool(input_bits == 1 or rng.random() < 0.5),  # the sign of [0, 1) inputs is all +1
            pow2=bool(rng.random() < 0.5), convs=convs, linears=linears,
            bn_negative=float(rng.choice([0.0, 0.25, 0.5, 1.0])), bn_zero_gamma=bool(rng.random() < 0.15),
            channel_spread=bool(rng.random() < 0.8), exporter="dynamo" if rng.random() < 0.1 else "torchscript")
        try:
            spec.flat_features()
        except ValueError:
            continue
        return spec
