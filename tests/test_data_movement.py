"""Pixel shuffles (DepthToSpace / SpaceToDepth, issue 14) and the import's refusals.

A DepthToSpace / SpaceToDepth after the last quantizer runs in the host tail (onnxruntime, as the
reference); one between the last layer and its quantizer moves past the quantizer (a permutation
commutes with elementwise float ops of scalar constants and with a per-tensor quantizer), so
ESPCN (last conv -> PixelShuffle -> QuantReLU) compiles with its four convs in hardware. Inside the
integer path a pixel shuffle is refused with one line naming the node. So are dilated convs and
non-zero zero points."""
import numpy as np
import onnx
import pytest
from onnx_builders import GraphBuilder, brevitas_espcn, pixel_shuffle_cnn

import hwgen
from hwgen.check import check_model
from hwgen.cli import main
from hwgen.errors import HwgenError
from hwgen.frontend.load import load_qonnx
from hwgen.frontend.reference import compare_with_reference, run_reference


def _x(shape, n=200, seed=0):
    return np.random.default_rng(seed).uniform(-0.2, 1.2, size=(n, *shape)).astype(np.float32)


def _exact(path, shape, n=200, seed=0):
    acc = hwgen.compile(path)
    x = _x(shape, n, seed)
    y, ref = acc.predict(x), run_reference(path, x)
    assert y.shape == ref.shape and np.array_equal(y, ref)
    match = compare_with_reference(acc.graph, path, x)
    assert all(v == 1.0 for v in match.values()), match
    return acc


def _refused(path, node_prefix, op, *phrases):
    with pytest.raises(HwgenError) as e:
        hwgen.compile(path)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"node '{node_prefix}") and f"({op}): " in msg, msg
    for p in phrases:
        assert p in msg, (p, msg)
    return msg


# -- pixel shuffles on the host ---------------------------------------------------------------------

SHUFFLES = [("DepthToSpace", "DCR"), ("DepthToSpace", "CRD"), ("DepthToSpace", None), ("SpaceToDepth", None)]


@pytest.mark.parametrize("op,mode", SHUFFLES)
def test_shuffle_after_the_last_quantizer_runs_on_the_host(tmp_onnx, op, mode):
    path = pixel_shuffle_cnn(tmp_onnx(), seed=1, op=op, mode=mode, where="after")
    acc = _exact(path, (2, 4, 4))
    assert [o.kind for o in acc.graph.ops] == ["Head", "Conv", "Threshold", "Tail"]
    assert acc.graph.tail.segment.op_types == [op]


@pytest.mark.parametrize("op,mode", SHUFFLES)
@pytest.mark.parametrize("between", [(), ("relu",), ("mul", "relu")])
def test_shuffle_before_the_last_quantizer_moves_past_it(tmp_onnx, op, mode, between):
    """conv -> BN -> shuffle -> [ReLU, x 0.5] -> quant: BN and the scalar ops stay with the quantizer (one
    Threshold), the shuffle runs on the host after it."""
    path = pixel_shuffle_cnn(tmp_onnx(), seed=2, op=op, mode=mode, where="before", between=between)
    acc = _exact(path, (2, 4, 4))
    assert [o.kind for o in acc.graph.ops] == ["Head", "Conv", "Threshold", "Tail"]
    assert acc.graph.tail.segment.op_types == [op]
    assert acc.graph.tail.outputs == [load_qonnx(path).graph.output[0].name]


@pytest.mark.slow  # ~30 s: Brevitas' export and the plan of four fully parallel convs
def test_espcn_from_brevitas_examples(tmp_path):
    """brevitas_examples' ESPCN (x2, W4A4, per-channel weights, BatchNorm, a ReLU before the input
    quantizer, last conv -> PixelShuffle (DepthToSpace CRD) -> QuantReLU uint8), random weights and
    BatchNorm statistics: 4 convs + 4 thresholds in hardware, the pixel shuffle on the host, and golden ==
    qonnx execute_onnx on every element of the output for 50 inputs."""
    pytest.importorskip("brevitas_examples.super_resolution.models")
    path = brevitas_espcn(tmp_path / "espcn.onnx", seed=0, size=8)
    nodes = [n.op_type for n in onnx.load(path).graph.node]
    assert nodes[-3:] == ["DepthToSpace", "Relu", "Quant"]  # the shuffle is before the last quantizer
    acc = hwgen.compile(path)
    assert [o.kind for o in acc.graph.ops] == ["Head"] + ["Conv", "Threshold"] * 4 + ["Tail"]
    assert acc.graph.tail.segment.op_types == ["DepthToSpace"]
    x = np.random.default_rng(0).uniform(0, 1, size=(50, 3, 8, 8)).astype(np.float32)
    y, ref = acc.predict(x), run_reference(path, x)
    assert y.shape == ref.shape == (50, 3, 16, 16)
    assert int(np.sum(y != ref)) == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["quant_espcn_x2_w8a8_base", "quant_espcn_x2_w4a4_a2q_13b",
                                  "quant_espcn_x2_w4a4_a2q_plus_13b", "quant_espcn_x2_w8a8_a2q_plus_16b"])
def test_espcn_variants_16x16(tmp_path, name):
    """The other ESPCN configurations at 16 x 16 (2M quantized elements for 50 inputs): no mismatch. A
    handful of elements may differ where qonnx's float32 conv sum lands within its rounding error of a
    quantizer step (the integers are exact); hwgen.check tells those ties (and what follows from them)
    apart from bugs."""
    pytest.importorskip("brevitas_examples.super_resolution.models")
    path = brevitas_espcn(tmp_path / "espcn.onnx", name=name, seed=1, size=16)
    x = np.random.default_rng(1).uniform(0, 1, size=(50, 3, 16, 16)).astype(np.float32)
    r = check_model(path, x)
    assert r.ok, r.table()
    t = r.totals()
    assert t["float"] == 0 and t["tie"] + t["downstream"] <= 1e-4 * sum(x.elements for x in r.tensors), r.table()


# -- pixel shuffles inside the integer path: refused --------------------------------------------------

@pytest.mark.parametrize("where,then", [("after", "conv"), ("after", "quant_conv"), ("before", "conv")])
@pytest.mark.parametrize("op", ["DepthToSpace", "SpaceToDepth"])
def test_shuffle_between_two_layers_is_refused(tmp_onnx, where, then, op):
    path = pixel_shuffle_cnn(tmp_onnx(), seed=3, op=op, where=where, then=then)
    _refused(path, f"{op}_", op, "(a pixel shuffle) is not supported inside the integer path",
             "runs DepthToSpace / SpaceToDepth only on the host, after the last quantizer", "move it there")


def test_shuffle_before_per_channel_constants_is_refused(tmp_onnx):
    path = pixel_shuffle_cnn(tmp_onnx(), seed=4, where="before", between=("relu", "add"))
    _refused(path, "DepthToSpace_", "DepthToSpace", "Add 'Add_", "has per-element constants",
             "move DepthToSpace after Add in the model")


def test_refused_shuffle_on_the_command_line(tmp_onnx, capsys):
    path = pixel_shuffle_cnn(tmp_onnx(), seed=3, where="after", then="conv")
    assert main(["inspect", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "DepthToSpace_" in err and "Traceback" not in err


def test_shuffle_before_the_input_quantizer_runs_on_the_host(tmp_onnx):
    rng = np.random.default_rng(5)
    b = GraphBuilder((8, 2, 2), name="headshuffle")
    b.op("DepthToSpace", blocksize=2, mode="CRD")
    b.quant(0.125, 3, signed=False)
    b.conv(rng.integers(-3, 4, size=(3, 2, 3, 3)), 0.25, bits=3)
    path = b.save(tmp_onnx())
    acc = _exact(path, (8, 2, 2))
    assert acc.graph.head.segment.op_types == ["DepthToSpace"]


# -- other refusals: dilated convs, zero points ------------------------------------------------------

def _cnn(path, *, dilation=1, act_zp=0.0, weight_zp=0.0):
    rng = np.random.default_rng(6)
    b = GraphBuilder((2, 6, 6), name="refuse")
    b.quant(0.125, 3, signed=False)
    b.conv(rng.integers(-3, 4, size=(3, 2, 3, 3)), 0.25, bits=3, pad=0)
    b.op("Relu")
    b.quant(0.5, 3, signed=False)
    b.conv(rng.integers(-3, 4, size=(2, 3, 3, 3)), 0.25, bits=3, pad=0)
    m = b.model()
    inits = {t.name: t for t in m.graph.initializer}
    quants = [n for n in m.graph.node if n.op_type == "Quant"]
    [n for n in m.graph.node if n.op_type == "Conv"][1].attribute.append(
        onnx.helper.make_attribute("dilations", [dilation, dilation]))
    act_q = [q for q in quants if q.name.startswith("Quant_")][1]
    weight_q = [q for q in quants if q.name.startswith("WQuant_")][0]
    for q, zp in ((act_q, act_zp), (weight_q, weight_zp)):
        if zp:
            inits[q.input[2]].CopyFrom(onnx.numpy_helper.from_array(np.asarray(zp, np.float32), q.input[2]))
    onnx.save(m, path)
    g = load_qonnx(path).graph  # the node names hwgen reports: qonnx's clean-up renames them
    consts = {t.name for t in g.initializer}
    quants = [n for n in g.node if n.op_type == "Quant"]
    names = {"conv": [n for n in g.node if n.op_type == "Conv"][1].name,
             "act": [q for q in quants if q.input[0] not in consts][1].name,
             "weight": [q for q in quants if q.input[0] in consts][0].name}
    return path, names


def test_builder_of_the_refusal_cases_is_valid(tmp_onnx):
    _exact(_cnn(tmp_onnx())[0], (2, 6, 6), n=50)


def test_dilated_conv_is_refused(tmp_onnx):
    path, names = _cnn(tmp_onnx(), dilation=2)
    _refused(path, names["conv"] + "'", "Conv", "dilated convolutions are not supported (dilations [2, 2])",
             "use dilation 1")


def test_activation_zero_point_is_refused(tmp_onnx):
    path, names = _cnn(tmp_onnx(), act_zp=1.0)
    _refused(path, names["act"] + "'", "Quant", "non-zero zero points are not supported", "use a symmetric quantizer")


def test_weight_zero_point_is_refused(tmp_onnx):
    path, names = _cnn(tmp_onnx(), weight_zp=2.0)
    _refused(path, names["weight"] + "'", "Quant", "non-zero weight zero points are not supported", "zero point 0")


@pytest.mark.parametrize("case", ["dilation", "zero point"])
def test_refusals_on_the_command_line(tmp_onnx, capsys, case):
    path, _ = _cnn(tmp_onnx(), dilation=2) if case == "dilation" else _cnn(tmp_onnx(), act_zp=1.0)
    assert main(["inspect", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "node '" in err
