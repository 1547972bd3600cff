"""Models from other people's code: brevitas_examples' own architecture definitions, with seeded
random weights and randomized BatchNorm statistics, exported as QONNX: bnn_pynq's FC family (TFC / SFC /
LFC), CNV and resnet18_4w4a, imagenet_classification's MobileNetV1 (at width 0.25, 64x64), the A2Q CIFAR-10
ResNet-18 (a2q.resnet), a ResNet of bnn_pynq's identity-shortcut blocks, and super_resolution's ESPCN.

They live here, not in the test tree, so that both the tests (tests/test_upstream_models.py,
tests/test_upstream_bnn_pynq.py, tests/test_data_movement.py, tests/onnx_builders.py re-exports the helpers)
and bench/upstream_models.py (a table per model: layers, A2Q accumulator widths, check counts, RTL
results) build the very same files. The tests pin exact numbers (II, latency, vectors, accumulator widths)
of these exports: change a seed or a call here and those numbers change.

Every builder takes the output path (a file, or for the bnn_pynq / MobileNet builders a directory the
model's <name>.onnx goes into) and returns the path it wrote. torch, Brevitas and brevitas_examples are
imported inside the functions: importing this module costs nothing.

The A2Q models go through brevitas_export_faithful: Brevitas 0.13.4's exporter writes an A2Q layer's raw
float weights into the file (other integers than the model uses, whose accumulators can exceed the trained
width); the faithful export stores the quantized ones.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

MOBILENET_WIDTH, MOBILENET_SIZE, MOBILENET_POOL = 0.25, 64, 2  # mobilenet_v1: width knob, input size, final pool


# -- inputs (float32, what the reference and hwgen check take) ---------------------------------------

def rgb8_inputs(n: int, shape, seed: int = 1) -> np.ndarray:
    """n inputs on the 8-bit RGB grid of the models without an input quantizer: k / 256, k uniform in
    0..255 (hwgen's --input-bits 8 --input-scale 2^-8 --input-unsigned takes them exactly)."""
    return (np.random.default_rng(seed).integers(0, 256, size=(n, *shape)) / 256.0).astype(np.float32)


def unit_inputs(n: int, shape, seed: int = 1) -> np.ndarray:
    """n float32 inputs uniform in [0, 1) (CNV and the FC family, which quantize their input)."""
    return np.random.default_rng(seed).random((n, *shape), dtype=np.float32)


def espcn_inputs(n: int, size: int = 8, seed: int = 1) -> np.ndarray:
    """n 3 x size x size ESPCN inputs: numpy's float64 uniform(0, 1) cast to float32 (the ESPCN tests'
    draw; other numbers than unit_inputs' for the same seed)."""
    return np.random.default_rng(seed).uniform(0, 1, size=(n, 3, size, size)).astype(np.float32)


# -- export and randomization helpers ------------------------------------------------------------------

def brevitas_export(model, example, path) -> str:
    """export_qonnx of a Brevitas model in eval mode (the dynamo exporter's side file removed)."""
    import os

    import torch
    from brevitas.export import export_qonnx

    model.eval()
    with torch.no_grad():
        export_qonnx(model, example, export_path=str(path))
    data = str(path) + ".data"
    if os.path.exists(data):
        os.unlink(data)
    return str(path)


def brevitas_export_faithful(model, example, path, *, dynamo=None) -> str:
    """brevitas_export (dynamo=False: the TorchScript exporter, for models the dynamo exporter cannot
    trace, e.g. bnn_pynq's QuantResNet, whose blocks assert that they add QuantTensors), made faithful
    for accumulator-aware weight quantizers (A2Q / A2Q+, Brevitas 0.13.4; quant_models.train.export does
    the same for QuantLinear). The exporter writes the raw float weight of such a layer under a Quant
    node with the post-clipping scale and ROUND, but A2Q quantizes with its L1-norm pre-scaling,
    zero-centering (A2Q+) and round-to-zero: the file would hold other integer weights than the model
    (and their accumulators could exceed the trained width). Each such weight initializer is replaced by
    the weights Brevitas computes (integer * scale, already on the Quant node's grid, so that node is an
    identity on them). Returns the path."""
    import os

    import onnx
    import torch
    from brevitas.export import export_qonnx
    from onnx import numpy_helper

    model.eval()
    layers = [m for m in model.modules() if hasattr(m, "weight_quant") and hasattr(m, "input_quant")
              and getattr(m.weight_quant, "requires_quant_input", False)]
    quant_in = {}  # the layer's quantized input, as its forward hands it to the weight quantizer
    hooks = [m.input_quant.register_forward_hook(lambda mod, args, out, m=m: quant_in.__setitem__(m, out))
             for m in layers]
    try:
        with torch.no_grad():
            model(example)
            kwargs = {} if dynamo is None else {"dynamo": dynamo}
            export_qonnx(model, example, export_path=str(path), **kwargs)
            quantized = {m: m.quant_weight(quant_in[m]).value.numpy() for m in layers}
    finally:
        for h in hooks:
            h.remove()
    data = str(path) + ".data"
    if os.path.exists(data):
        os.unlink(data)
    graph = onnx.load(str(path))
    for m in layers:
        raw = m.weight.detach().numpy()
        init = next(i for i in graph.graph.initializer
                    if tuple(i.dims) == raw.shape and np.array_equal(numpy_helper.to_array(i), raw))
        init.CopyFrom(numpy_helper.from_array(quantized[m].astype(np.float32), init.name))
    onnx.save(graph, str(path))
    return str(path)


def randomize_bn(module, seed) -> None:
    """Random BatchNorm statistics and affine parameters (some negative gammas): without them
    every activation saturates and a test proves little."""
    import torch

    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            c = m.num_features
            with torch.no_grad():
                sign = torch.where(torch.rand(c, generator=g) < 0.25, -1.0, 1.0)
                m.weight.copy_((0.5 + torch.rand(c, generator=g)) * sign)
                m.bias.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
                m.running_var.copy_(0.5 + torch.rand(c, generator=g) * 2)


# -- bnn_pynq: FC family, CNV, resnet18_4w4a ---------------------------------------------------------

def bnn_pynq_fc(name: str, path, seed: int = 0) -> str:
    """bnn_pynq's FC family (model_with_cfg(name): tfc_1w1a, tfc_1w2a, tfc_2w2a, sfc_1w1a, lfc_1w1a; 1x28x28
    MNIST shape), seeded weights (upstream's init under torch.manual_seed(seed)) and random BatchNorm
    statistics and affine parameters, exported with export_qonnx at 1x1x28x28. Writes path/<name>.onnx
    (path: a directory); returns its path."""
    import torch
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():  # BatchNorm statistics as after training: thresholds off the origin
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    model.eval()
    out = str(Path(path) / f"{name}.onnx")
    export_qonnx(model, torch.rand(1, 1, 28, 28), export_path=out)
    return out


def bnn_pynq_cnv(name, path, seed=0) -> str:
    """Upstream CNV (model_with_cfg(name), 8-bit input quantizer after 2x - 1) with quant_models.cnv's
    randomization: BatchNorm statistics measured on random images (quant_models.zoo.randomize_batchnorm,
    20 % negative scales) and a random TensorNorm. Writes path/<name>.onnx (path: a directory); returns
    its path."""
    import torch
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    from quant_models.zoo import randomize_batchnorm

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    gen = torch.Generator().manual_seed(seed + 1)
    randomize_batchnorm(model, torch.rand((32, 3, 32, 32), generator=gen), seed + 2)
    for m in model.modules():
        if isinstance(m, TensorNorm):
            m.running_mean.copy_(torch.randn(1, generator=gen))
            m.running_var.copy_(0.5 + 1.5 * torch.rand(1, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(1, generator=gen))
            m.bias.data.copy_(torch.rand(1, generator=gen) - 0.5)
    return brevitas_export(model.eval(), torch.rand(1, 3, 32, 32, generator=gen),
                           str(Path(path) / f"{name}.onnx"))


def bnn_pynq_resnet18_4w4a(path, seed=0) -> str:
    """bnn_pynq's resnet18_4w4a (QuantResNet, CIFAR-10, no input quantizer), exported with the TorchScript
    exporter: the dynamo exporter fails in torch.export on the blocks' `assert isinstance(out,
    QuantTensor)` ("Perform add among QuantTensors"). Random BatchNorm statistics
    (randomize_bn). Writes path/resnet18_4w4a.onnx (path: a directory); returns its path."""
    import torch
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg("resnet18_4w4a", pretrained=False)
    randomize_bn(model, seed)
    return brevitas_export_faithful(model, torch.rand(1, 3, 32, 32), str(Path(path) / "resnet18_4w4a.onnx"),
                                    dynamo=False)


# -- imagenet_classification MobileNetV1 --------------------------------------------------------------

def mobilenet_v1(path, *, per_channel_acts=True, seed=0) -> str:
    """Upstream MobileNetV1 (quant_mobilenet_v1_4b's definition: 4-bit weights and activations, 8-bit
    per-channel first conv, 4-bit per-tensor Int32Bias last linear, floor TruncAvgPool2d) at width
    0.25 and 10 classes, 64x64 input, final pool 2x2. The per-channel activation quantizers (init block
    and all but the last stage's pointwise convs) get spread scales (_spread_channel_scales), or with
    per_channel_acts=False are replaced by upstream's per-tensor CommonUintActQuant.
    Writes path/mobilenet_v1.onnx (path: a directory); returns its path."""
    import torch
    from brevitas.nn import QuantReLU
    from brevitas_examples.imagenet_classification.models import mobilenetv1

    from quant_models.zoo import randomize_batchnorm

    torch.manual_seed(seed)
    channels = [[32], [64], [128, 128], [256, 256], [512] * 6, [1024, 1024]]
    channels = [[int(c * MOBILENET_WIDTH) for c in stage] for stage in channels]
    model = mobilenetv1.MobileNet(channels=channels, first_stage_stride=False, round_average_pool=False,
                                  act_bit_width=4, weight_bit_width=4, last_layer_bit_width=4,
                                  avg_pool_kernel_size=MOBILENET_POOL, num_classes=10)
    if not per_channel_acts:
        for block in model.modules():
            if isinstance(block, mobilenetv1.ConvBlock):
                c = block.bn.num_features
                block.activation = QuantReLU(
                    act_quant=mobilenetv1.CommonUintActQuant, bit_width=4, per_channel_broadcastable_shape=(1, c, 1, 1),
                    scaling_stats_permute_dims=(1, 0, 2, 3), scaling_per_output_channel=False,
                    return_quant_tensor=True)
    else:
        _spread_channel_scales(model, seed + 3)
    gen = torch.Generator().manual_seed(seed + 1)
    shape = (3, MOBILENET_SIZE, MOBILENET_SIZE)
    randomize_batchnorm(model, torch.rand((16, *shape), generator=gen), seed + 2)
    return brevitas_export(model.eval(), torch.rand((1, *shape), generator=gen),
                           str(Path(path) / "mobilenet_v1.onnx"))


def _spread_channel_scales(model, seed):
    """Multiply every per-channel activation scale by a seeded 2^u, u uniform in [-1, 1): an uncalibrated
    model's channels all hold the initial statistic, and equal channels are a per-tensor scale to hwgen
    (which would test nothing)."""
    import torch
    from brevitas.nn import QuantReLU

    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, QuantReLU):
            stats = m.act_quant.fused_activation_quant_proxy.tensor_quant.scaling_impl.buffer  # eval mode's scale
            if stats.numel() > 1:
                with torch.no_grad():
                    stats.mul_(2.0 ** (2 * torch.rand(stats.shape, generator=gen) - 1))


# -- the A2Q CIFAR-10 ResNet-18, identity-shortcut blocks ---------------------------------------------

def brevitas_a2q_resnet18(path, *, acc_bits=13, plus=False, seed=0, size=32) -> str:
    """brevitas_examples' A2Q CIFAR-10 ResNet-18 (imagenet_classification.a2q.resnet.quant_resnet18: bnn_pynq's
    QuantResNet with W4A4 accumulator-aware weight quantizers of target `acc_bits` on every block conv, an
    8-bit first conv and last linear, no input quantizer), seeded random weights and BatchNorm statistics,
    upstream's EP-init (a2q.ep_init.apply_ep_init: each A2Q layer's float weights projected onto its L1
    ball; without it the untrained deep layers quantize to all-zero weights), exported faithfully
    (brevitas_export_faithful, TorchScript exporter) at 1x3xsizexsize."""
    import torch
    from brevitas_examples.imagenet_classification.a2q.ep_init import apply_ep_init
    from brevitas_examples.imagenet_classification.a2q.quant import (CommonIntAccumulatorAwareWeightQuant,
                                                                    CommonIntAccumulatorAwareZeroCenterWeightQuant)
    from brevitas_examples.imagenet_classification.a2q.resnet import quant_resnet18

    torch.manual_seed(seed)
    quant = CommonIntAccumulatorAwareZeroCenterWeightQuant if plus else CommonIntAccumulatorAwareWeightQuant
    model = quant_resnet18(act_bit_width=4, acc_bit_width=acc_bits, weight_bit_width=4, weight_quant=quant)
    randomize_bn(model, seed)
    apply_ep_init(model, torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(seed)))
    return brevitas_export_faithful(model, torch.rand(1, 3, size, size), path, dynamo=False)


def brevitas_resnet_blocks(path, *, channels=16, blocks=2, size=8, a2q_bits=None, plus=False, seed=0) -> str:
    """A ResNet of identity-shortcut blocks only, from bnn_pynq's own parts (brevitas_examples.bnn_pynq.models.
    resnet: QuantResNet's stem, QuantBasicBlock(channels, channels, stride 1) x blocks with the QuantReLU shared
    along the residual path, TruncAvgPool2d(TruncTo8bit, floor) over the whole map, 8-bit QuantLinear with
    Int32Bias); no input quantizer. W4A4 per-channel weights in the blocks as resnet18_4w4a, or with a2q_bits
    the A2Q CIFAR ResNet's accumulator-aware quantizers (A2Q+ with plus) and EP-init. Seeded random weights
    and BatchNorm statistics, exported faithfully (TorchScript exporter) at 1x3xsizexsize."""
    import brevitas.nn as qnn
    import torch
    from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat, Int32Bias, TruncTo8bit
    from brevitas_examples.bnn_pynq.models.resnet import QuantBasicBlock, make_quant_conv2d

    weight_quant = Int8WeightPerChannelFloat
    if a2q_bits is not None:
        from brevitas_examples.imagenet_classification.a2q.quant import (
            CommonIntAccumulatorAwareWeightQuant, CommonIntAccumulatorAwareZeroCenterWeightQuant)

        weight_quant = (CommonIntAccumulatorAwareZeroCenterWeightQuant if plus else
                        CommonIntAccumulatorAwareWeightQuant).let(accumulator_bit_width=a2q_bits)

    class Blocks(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = make_quant_conv2d(3, channels, 3, 8, Int8WeightPerChannelFloat, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(channels)
            self.relu = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
            shared, layers = self.relu, []
            for _ in range(blocks):
                layers.append(QuantBasicBlock(channels, channels, 1, shared_quant_act=shared, act_bit_width=4,
                                              weight_bit_width=4, weight_quant=weight_quant))
                shared = layers[-1].relu_out
            self.layers = torch.nn.Sequential(*layers)
            self.final_pool = qnn.TruncAvgPool2d(kernel_size=size, trunc_quant=TruncTo8bit,
                                                 float_to_int_impl_type="FLOOR")
            self.linear = qnn.QuantLinear(channels, 10, bias=True, weight_bit_width=8, bias_quant=Int32Bias,
                                          weight_quant=Int8WeightPerTensorFloat)

        def forward(self, x):
            out = self.final_pool(self.layers(self.relu(self.bn1(self.conv1(x)))))
            return self.linear(out.view(out.size(0), -1))

    torch.manual_seed(seed)
    model = Blocks()
    randomize_bn(model, seed)
    if a2q_bits is not None:
        from brevitas_examples.imagenet_classification.a2q.ep_init import apply_ep_init

        apply_ep_init(model, torch.rand(4, 3, size, size, generator=torch.Generator().manual_seed(seed)))
    return brevitas_export_faithful(model, torch.rand(1, 3, size, size), path, dynamo=False)


# -- super_resolution ESPCN ------------------------------------------------------------------------

def brevitas_espcn(path, *, name="quant_espcn_x2_w4a4_base", seed=0, size=8, faithful=False) -> str:
    """brevitas_examples' super-resolution ESPCN (conv x 4 with BatchNorm, the last conv -> PixelShuffle ->
    QuantReLU(uint8) -> output), seeded random weights and BatchNorm statistics, exported at 1x3xsizexsize.
    faithful: with the A2Q layers' quantized weights (brevitas_export_faithful)."""
    import torch
    from brevitas_examples.super_resolution.models import get_model_by_name

    torch.manual_seed(seed)
    model = get_model_by_name(name)
    randomize_bn(model, seed)
    if faithful:
        return brevitas_export_faithful(model, torch.rand(1, 3, size, size), path)
    return brevitas_export(model, torch.rand(1, 3, size, size), path)
