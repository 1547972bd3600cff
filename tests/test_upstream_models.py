"""Upstream architectures from brevitas_examples (GitHub issue 14, item 4), each built with seeded random
weights and randomized BatchNorm statistics and exported with today's Brevitas at test time:

  bnn_pynq CNV (cnv_1w1a, cnv_1w2a, cnv_2w2a), 1x3x32x32: hwgen check on 500 inputs, no mismatch.
  imagenet_classification MobileNetV1 (4-bit, depthwise separable convs, TruncAvgPool2d, Int32Bias linear):
      upstream's width knob (WIDTH_SCALE) at 0.25, 1x3x64x64 with the final pool at 2x2 (the 7x7 pool
      needs 224x224). Upstream's model quantizes the init block's and most pointwise convs' activations
      per channel (scales spread per channel: an untrained model's are all equal), each feeding a
      depthwise conv, which absorbs them: check on 500 inputs, no mismatch; with those quantizers
      per tensor too.
  bnn_pynq resnet18_4w4a and the A2Q CIFAR-10 ResNet-18 (imagenet_classification.a2q), 1x3x32x32: eight
      residual blocks, layers 2-4's first with a projection shortcut (a 1x1 stride-2 conv + BatchNorm +
      QuantReLU on the skip path; hwgen.lowering.residual), check on 500 inputs, no mismatch; every A2Q
      layer's exact accumulator width from the compiled graph within the trained target (also recovered
      from the exported weights alone with hwgen's own weight folding and sizing). Their identity-shortcut
      blocks (bnn_pynq's QuantBasicBlock between QuantResNet's stem and head; W4A4, A2Q and A2Q+) pass
      check as a small model of their own, the A2Q widths taken from the compiled graph.
  super_resolution ESPCN, A2Q / A2Q+ variants: the exact accumulator width of every A2Q layer <= its
      target (13 / 16 / 32 bits), and check on 500 inputs.

The A2Q models are exported with onnx_builders.brevitas_export_faithful: Brevitas 0.13.4 writes an A2Q
layer's raw float weights into the file (other integers than the model uses, whose accumulators
exceed the target: 16 bits for ESPCN's 13-bit layers); the faithful export stores the quantized ones.

Models without an input quantizer (MobileNetV1, the ResNets: "the input is already 8b RGB") are
checked on inputs on the grid of 8-bit unsigned x 2^-8 (hwgen's --input-bits 8 --input-scale 2^-8
--input-unsigned), so that the reference's float input and hwgen's integers are the same numbers.

RTL (slow): CNV (1w1a, 1w2a, 2w2a) at an auto folding of 2^14 cycles and the A2Q / A2Q+ 13-bit ESPCNs at
2^12 verify bit-exactly in Verilator (tests/test_upstream_bnn_pynq.py: the FC family).

Slow except test_cnv_1w1a_fast (20 inputs, about 20 s): exports take 7-30 s, check on 500 inputs 40 s
(ESPCN 8x8) to 6 minutes (CNV, ResNet-18) per model on a busy 2-core machine (the test docstrings say which)."""
import numpy as np
import pytest

pytest.importorskip("brevitas_examples.bnn_pynq.models")

from hwgen.check import check_model, prepare
from hwgen.frontend import InputFormat
from quant_models.upstream import (MOBILENET_SIZE, bnn_pynq_cnv, bnn_pynq_resnet18_4w4a, espcn_inputs,
                                   mobilenet_v1, rgb8_inputs, unit_inputs)

_cnv, _mobilenet, _resnet18_4w4a = bnn_pynq_cnv, mobilenet_v1, bnn_pynq_resnet18_4w4a  # the builders, moved

RGB8 = InputFormat(bits=8, scale=2.0 ** -8, signed=False)  # models that take "8b RGB" without a quantizer
VECTORS = 500


def _check(path, x, input_format=None, chunk=100, prepared=None):
    """hwgen check on x in chunks (the reference keeps every intermediate tensor): no mismatch."""
    r = check_model(str(path), x, input_format=input_format, prepared=prepared or prepare(str(path), input_format),
                    chunk=chunk)
    assert r.mismatches == 0, r.table()
    totals = r.totals()
    assert totals["exact"] > 0
    return totals


def _verilator(path, build_dir, target, input_format=None, vectors=3, **kw):
    """hwgen.compile with an auto folding of `target` cycles per inference (small enough for Verilator to build
    in minutes), verified in Verilator (build_helpers.verify_on_verilator, cxx_opt -O0: a few times less C++
    build time, and the bench's cocotb loop, not the model, sets the simulation speed): `vectors` random
    inputs plus the first conv's accumulator extremes. Returns (plan II, plan latency, vectors verified)."""
    import hwgen
    from build_helpers import verify_on_verilator

    acc = hwgen.compile(str(path), fold="auto", target_cycles=target, input_format=input_format)
    r = verify_on_verilator(acc, build_dir, vectors=vectors, cxx_opt="-O0", **kw)
    return acc.plan.ii_cycles, acc.plan.latency_cycles, r.vectors


# -- bnn_pynq CNV ------------------------------------------------------------------------------------

def test_cnv_1w1a_fast(tmp_path):
    """The default suite's representative: CNV-W1A1 on 20 inputs (about 20 s: export 7 s, check 10 s)."""
    totals = _check(_cnv("cnv_1w1a", tmp_path), unit_inputs(20, (3, 32, 32)))
    assert totals["mismatch"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cnv_1w1a", "cnv_1w2a", "cnv_2w2a"])
def test_cnv_matches_qonnx(tmp_path, name):
    """500 inputs: 5-6 minutes each on a busy 2-core machine (cnv_1w1a 307 s, cnv_1w2a 325 s, cnv_2w2a 342 s)."""
    _check(_cnv(name, tmp_path), unit_inputs(VECTORS, (3, 32, 32)))


@pytest.mark.slow
@pytest.mark.parametrize("name,ii,latency", [("cnv_1w1a", 17842, 82343), ("cnv_1w2a", 17842, 82351),
                                             ("cnv_2w2a", 17842, 82351)])
def test_cnv_verifies_in_verilator(tmp_path, name, ii, latency):
    """Auto folding at 2^14 cycles (the stream plumbing sets the II a little above it), 3 random inputs plus
    the first conv's 64 channels' extremes in 2 feature maps, bit-exact in Verilator."""
    got = _verilator(_cnv(name, tmp_path), tmp_path / "build", 2 ** 14)
    assert got == (ii, latency, 5), got


# -- imagenet_classification MobileNetV1 ------------------------------------------------------------

@pytest.mark.slow
def test_mobilenet_v1_upstream(tmp_path):
    """Upstream's per-channel activation scales (init block and the pointwise convs of stages 1-4, each
    feeding a depthwise conv; spread by _spread_channel_scales): the depthwise convs take them into
    their per-output scales, the quantizers after them are per tensor again. 500 inputs in about 2 minutes."""
    path = _mobilenet(tmp_path)
    p = prepare(path, RGB8)
    per_channel = [a for a in p.activations.values() if a.quantizer.per_channel]
    assert len(per_channel) == 12 and per_channel[0].name == "Quant_29"
    depthwise = [op for op in p.graph.ops if op.kind == "Conv" and op.groups > 1]
    assert sum(np.ndim(op.input_scale) > 0 for op in depthwise) == 12
    _check(path, rgb8_inputs(VECTORS, (3, MOBILENET_SIZE, MOBILENET_SIZE)), RGB8)


@pytest.mark.slow
def test_mobilenet_v1_per_tensor_activations(tmp_path):
    """27 convs (13 depthwise), TruncAvgPool2d, Int32Bias linear: 500 inputs in about 90 s."""
    path = _mobilenet(tmp_path, per_channel_acts=False)
    p = prepare(path, RGB8)
    convs = [op for op in p.graph.ops if op.kind == "Conv"]
    assert len(convs) == 27 and sum(op.groups > 1 for op in convs) == 13
    _check(path, rgb8_inputs(VECTORS, (3, MOBILENET_SIZE, MOBILENET_SIZE)), RGB8)


@pytest.mark.slow
@pytest.mark.parametrize("per_channel_acts", [True, False], ids=["per_channel", "per_tensor"])
def test_mobilenet_v1_verifies_in_verilator(tmp_path, per_channel_acts):
    """Upstream's MobileNetV1 (its per-channel activation scales, and per tensor) at an auto folding of 2^14
    cycles (its stride-1 depthwise convs set the II, 45,454 cycles), 3 random inputs plus the first conv's
    extremes, bit-exact in Verilator with the plan's II and latency: 16-50 minutes on a busy 2-core machine
    (bench/upstream_models.py --verilator: per channel a 3-minute C++ build and 47 minutes of simulation, per
    tensor 966 s in all)."""
    got = _verilator(_mobilenet(tmp_path, per_channel_acts=per_channel_acts), tmp_path / "build", 2 ** 14, RGB8)
    assert got == (45454, 140754, 4), got


# -- ResNets: bnn_pynq resnet18_4w4a, the A2Q CIFAR ResNet-18, their identity-shortcut blocks ----------

def _resnet18_graph(path):
    """check's compiled graph of a CIFAR ResNet-18 (20 convs, 8 residual Adds), asserting the blocks: layers
    2-4's first Add takes a projection shortcut (the skip chain: a 1x1 stride-2 conv and its threshold), the
    other five the block input itself."""
    from hwgen.ir import Add, Conv
    from hwgen.lowering.residual import residual_body

    p = prepare(str(path), RGB8)
    core = p.graph.core
    steps = [residual_body(op, core) for op in core if isinstance(op, Add)]
    assert len(steps) == 8 and sum(isinstance(op, Conv) for op in core) == 20
    skips = [[(op.kind, getattr(op, "kernel", None), getattr(op, "stride", None)) for op in s.skip] for s in steps]
    projection = [("Conv", (1, 1), (2, 2)), ("Threshold", None, None)]
    assert skips == [[], [], projection, [], projection, [], projection, []]
    assert all([op.kind for op in s.body] == ["Conv", "Threshold"] * 2 for s in steps)
    return p


@pytest.mark.slow
def test_resnet18_4w4a(tmp_path):
    """Export about 20 s, check on 500 inputs about 5 minutes."""
    path = _resnet18_4w4a(tmp_path)
    _check(path, rgb8_inputs(VECTORS, (3, 32, 32)), RGB8, prepared=_resnet18_graph(path))


@pytest.mark.slow
def test_resnet18_4w4a_verifies_in_verilator(tmp_path):
    """bnn_pynq resnet18_4w4a at an auto folding of 2^14 cycles (II 16,384), 3 random inputs plus the first
    conv's extremes, bit-exact in Verilator with the plan's II and latency: about 100 minutes on a busy 2-core
    machine (bench/upstream_models.py --verilator: compiling and writing the 60 MB core about 15 minutes, a
    568 s Verilator build, 3,495 s of simulation)."""
    got = _verilator(_resnet18_4w4a(tmp_path), tmp_path / "build", 2 ** 14, RGB8)
    assert got == (16384, 57368, 5), got


@pytest.fixture(scope="module", params=[False, True], ids=["a2q_13b", "a2q_plus_13b"])
def a2q_resnet(request, tmp_path_factory):
    from onnx_builders import brevitas_a2q_resnet18

    path = tmp_path_factory.mktemp("a2q") / "resnet18.onnx"
    return brevitas_a2q_resnet18(path, acc_bits=13, plus=request.param), 13, request.param


def _layer_accumulators(path, input_format):
    """{Conv / Gemm node: hwgen's accumulator bounds} for every layer of a file, from the exported weights
    alone (no import of the whole graph): the importer's weight folding (the integers it would use), the layer's input type from the
    Quant node feeding it (input_format for the graph input) and passes.accumulators.size_layer on the
    equivalent MatVec (a conv's extremes are those of its full window)."""
    from hwgen.frontend.importer import _Importer
    from hwgen.frontend.load import load_qonnx
    from hwgen.ir import MatVec
    from hwgen.passes.accumulators import size_layer

    wrapper = load_qonnx(str(path))
    imp = _Importer(wrapper, str(path), input_format)
    imp.fold_weight_quantizers()
    producer = {o: n for n in wrapper.graph.node for o in n.output}
    out = {}
    for node in wrapper.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        wq = imp.weights[node.input[1]]
        src = producer.get(node.input[0])
        in_type = imp.quantizer_of(src).out_type if src is not None and src.op_type == "Quant" \
            else input_format.quantizer().out_type
        q = wq.values.reshape(len(wq.values), -1)  # Conv [O, I, kh, kw]; Gemm (transB) [O, I]
        op = MatVec(name=node.name, inputs=["x"], outputs=["y"], weights=q, in_type=in_type, w_type=wq.dtype,
                    input_scale=1.0, weight_scale=np.ones(len(q), np.float32))
        out[node.name] = size_layer(op)
    return out


@pytest.mark.slow
def test_a2q_resnet18_accumulators_within_target(a2q_resnet):
    """Every A2Q layer (the 19 block convs, 4-bit weights on 4-bit unsigned inputs; the 8-bit first conv
    and last linear are not A2Q) needs at most the trained accumulator width; EP-init fills the L1 budget,
    so most reach it exactly. For A2Q (not A2Q+, whose zero-centering bounds the range more tightly than
    the L1 norm) the L1 condition itself holds. About 30 s per model (the export)."""
    path, target, plus = a2q_resnet
    bounds = _layer_accumulators(path, RGB8)
    convs = [b for name, b in bounds.items() if name.startswith("Conv")]
    assert len(convs) == 20
    a2q_layers = convs[1:]  # Conv_0 is the 8-bit first layer
    assert all(b["exact"] <= target for b in a2q_layers), bounds
    assert max(b["exact"] for b in a2q_layers) == target  # EP-init: the budget is used
    if not plus:
        assert all(b["a2q"] <= target for b in a2q_layers), bounds
    assert convs[0]["exact"] > target  # the unconstrained first layer: 8-bit weights on 8-bit pixels


@pytest.mark.slow
def test_a2q_resnet18_check(a2q_resnet):
    """The whole A2Q ResNet-18, projection shortcuts included: every A2Q conv's exact accumulator width in the
    compiled graph (what hwgen inspect prints) within the target, the same bounds as from the exported
    weights alone, and no mismatch on 500 inputs (about 5 minutes)."""
    from hwgen.ir import Conv

    path, target, plus = a2q_resnet
    p = _resnet18_graph(path)
    convs = [op for op in p.graph.core if isinstance(op, Conv)]
    from_weights = _layer_accumulators(path, RGB8)
    assert [op.acc_bounds for op in convs] == [from_weights[op.name] for op in convs]
    for op in convs[1:]:  # the stem (8-bit weights on 8-bit pixels) is not A2Q
        assert op.acc_bounds["exact"] <= target, (op.name, op.acc_bounds)
        if not plus:
            assert op.acc_bounds["a2q"] <= target, (op.name, op.acc_bounds)
    assert max(op.acc_bounds["exact"] for op in convs[1:]) == target
    _check(path, rgb8_inputs(VECTORS, (3, 32, 32)), RGB8, prepared=p)


@pytest.mark.slow
def test_a2q_resnet18_verifies_in_verilator(a2q_resnet, tmp_path):
    """The A2Q / A2Q+ ResNet-18 (13-bit accumulators) at an auto folding of 2^14 cycles, as resnet18_4w4a: 3
    random inputs plus the first conv's extremes, bit-exact in Verilator with the plan's II and latency (the
    same as resnet18_4w4a's: the narrower accumulators change widths, not the schedule); about 100 minutes
    each on a busy 2-core machine (bench/upstream_models.py --verilator)."""
    path, _, _ = a2q_resnet
    got = _verilator(path, tmp_path / "build", 2 ** 14, RGB8)
    assert got == (16384, 57368, 5), got


BLOCKS = {"channels": 32, "blocks": 2, "size": 16}


@pytest.mark.slow
@pytest.mark.parametrize("a2q", [None, "a2q", "a2q_plus"])
def test_resnet_identity_blocks(tmp_path, a2q):
    """bnn_pynq's QuantBasicBlock with identity shortcuts (what layer1 of both ResNet-18s is: Add -> Relu ->
    Quant, non-power-of-two scales shared along the residual path) between QuantResNet's stem and head,
    32 channels at 16x16: two residual Adds in hardware, no mismatch on 500 inputs (about 20 s), and
    for the A2Q variants (target 13 bits) every block conv's exact accumulator width from the compiled
    graph (what hwgen inspect prints) within the target."""
    from onnx_builders import brevitas_resnet_blocks

    from hwgen.compiler import CompileOptions, compile_model
    from hwgen.ir import Add, Dot

    target = None if a2q is None else 13
    path = brevitas_resnet_blocks(tmp_path / "blocks.onnx", a2q_bits=target, plus=a2q == "a2q_plus", **BLOCKS)
    graph = compile_model(path, CompileOptions(input_format=RGB8))
    assert sum(isinstance(op, Add) for op in graph.core) == BLOCKS["blocks"]
    convs = [op for op in graph.core if isinstance(op, Dot) and op.kind == "Conv"]
    assert len(convs) == 1 + 2 * BLOCKS["blocks"]
    if target is not None:
        for op in convs[1:]:  # the stem (8-bit weights on 8-bit pixels) is not A2Q
            assert op.acc_bounds["exact"] <= target, (op.name, op.acc_bounds)
            if a2q == "a2q":
                assert op.acc_bounds["a2q"] <= target, (op.name, op.acc_bounds)
    x = rgb8_inputs(VECTORS, (3, BLOCKS["size"], BLOCKS["size"]))
    _check(path, x, RGB8)
    from hwgen.golden import execute

    ctx = execute(graph, x[:20])
    for op in graph.core:  # the residual sums use the quantizer's range, saturation included
        if isinstance(op, Add):
            v = ctx[op.outputs[0]]
            assert len(np.unique(v)) >= 8 and v.max() == op.out_type.max, op.name


# -- super_resolution ESPCN, A2Q variants -----------------------------------------------------------

ESPCN_A2Q = ["quant_espcn_x2_w4a4_a2q_13b", "quant_espcn_x2_w4a4_a2q_plus_13b",
             "quant_espcn_x2_w8a8_a2q_16b", "quant_espcn_x2_w8a8_a2q_plus_16b"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ESPCN_A2Q)
def test_espcn_a2q_accumulators_and_check(tmp_path, name):
    """conv1 (8-bit input, IO target 32 bits) and conv2 / conv3 (the model's target) are A2Q, conv4 is not:
    each A2Q layer's exact accumulator width <= its target, and no mismatch on 500 8x8 inputs (about 45 s)."""
    pytest.importorskip("brevitas_examples.super_resolution.models")
    import torch
    from brevitas_examples.super_resolution.models import get_model_by_name
    from onnx_builders import brevitas_espcn, randomize_bn

    from hwgen.compiler import compile_model
    from hwgen.frontend.reference import run_reference
    from hwgen.ir import Dot

    path = brevitas_espcn(tmp_path / "espcn.onnx", name=name, seed=1, size=8, faithful=True)
    torch.manual_seed(1)  # the same model as brevitas_espcn's
    model = get_model_by_name(name)
    randomize_bn(model, 1)
    x = espcn_inputs(VECTORS, seed=1)
    with torch.no_grad():  # the faithful file computes what Brevitas does (up to float32 ties in a conv sum)
        y = model.eval()(torch.from_numpy(x[:8]))
    y, ref = getattr(y, "value", y).numpy(), run_reference(path, x[:8])
    assert np.mean(y != ref) < 1e-3 and np.abs(y - ref).max() <= 1 / 255 + 1e-6
    convs = [m for m in model.modules() if hasattr(m, "weight_quant") and hasattr(m, "input_quant")]
    targets = [m.weight_quant.quant_injector.accumulator_bit_width if m.weight_quant.requires_quant_input else None
               for m in convs]
    expected = int(name.rsplit("_", 1)[1].removesuffix("b"))
    assert targets == [32, expected, expected, None]
    layers = [op for op in compile_model(path).core if isinstance(op, Dot)]
    assert len(layers) == len(targets)
    for op, target in zip(layers, targets):
        if target is not None:
            assert op.acc_bounds["exact"] <= target, (op.name, op.acc_bounds, target)
            if "plus" not in name:
                assert op.acc_bounds["a2q"] <= target, (op.name, op.acc_bounds, target)
    _check(path, x)


@pytest.mark.slow
@pytest.mark.parametrize("a2q", [None, "a2q", "a2q_plus"])
def test_resnet_blocks_verify_in_verilator(tmp_path, a2q):
    """The identity-shortcut blocks (plain, A2Q and A2Q+ at 13 bits) at an auto folding of 2^12 cycles, 3 random
    inputs plus the first conv's extremes, bit-exact in Verilator with the plan's II and latency (8-18 minutes
    each on a busy 2-core machine: bench/upstream_models.py --verilator)."""
    from onnx_builders import brevitas_resnet_blocks

    path = brevitas_resnet_blocks(tmp_path / "blocks.onnx", a2q_bits=None if a2q is None else 13,
                                  plus=a2q == "a2q_plus", **BLOCKS)
    got = _verilator(path, tmp_path / "build", 2 ** 12, RGB8)
    assert got == (4116, 5693, 6), got


# name, the plan's II and latency, vectors (3 random + both extremes of conv1's 8 widest channels, 2 per map)
ESPCN_VERILATOR = [("quant_espcn_x2_w4a4_a2q_13b", 4096, 6000, 19), ("quant_espcn_x2_w4a4_a2q_plus_13b", 4096, 6000, 19),
                   ("quant_espcn_x2_w8a8_a2q_16b", 4096, 5999, 19), ("quant_espcn_x2_w8a8_a2q_plus_16b", 4096, 5999, 19)]


@pytest.mark.slow
@pytest.mark.parametrize("name,ii,latency,vectors", ESPCN_VERILATOR, ids=[c[0] for c in ESPCN_VERILATOR])
def test_espcn_a2q_verifies_in_verilator(tmp_path, name, ii, latency, vectors):
    """test_espcn_a2q_accumulators_and_check's 8x8 models (w4a4 13-bit and w8a8 16-bit targets, A2Q and A2Q+),
    auto folding at 2^12 cycles, bit-exact in Verilator (7-14 minutes each on a busy machine), measured II and latency those of the plan (conv1's 5x5 pad-2
    window works ahead of its input: tests/test_rtl_e2e_conv.py, the bench's first cycle out of reset)."""
    pytest.importorskip("brevitas_examples.super_resolution.models")
    from onnx_builders import brevitas_espcn

    path = brevitas_espcn(tmp_path / "espcn.onnx", name=name, seed=1, size=8, faithful=True)
    got = _verilator(path, tmp_path / "build", 2 ** 12, adversarial_limit=8)
    assert got == (ii, latency, vectors), got
