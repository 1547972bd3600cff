"""Average pools and Brevitas' Trunc in the integer path (issue 14).

AveragePool (k x k, stride, no padding) imports as a SumPool (integer window sums; the 1/k^2 moves
into the next scale or threshold). A QONNX Trunc after a pool (Brevitas TruncAvgPool2d /
TruncAdaptiveAvgPool2d) is the integer map f(v) = clip(rnd(v / 2^t)) on the sums
(hwgen.frontend.trunc): a Threshold (a shift-and-clip requantizer), folded into the next quantizer,
or nothing where it only changes the scale. Checked against qonnx's execute_onnx (the integer
formula against qonnx's trunc_v1/trunc_v2 directly too), the SumPoolUnit against the golden model
in simulation and its timing model in lockstep; padding, a stray Trunc and zero points are refused
with one line naming the node."""
import zlib

import numpy as np
import pytest
from onnx_builders import avgpool_cnn, brevitas_trunc_pool_model
from test_timing_lockstep import SLOW_CONSUMER, lockstep

import hwgen
from hwgen.check import check_model
from hwgen.cost import Resources, units
from hwgen.errors import HwgenError
from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.frontend.trunc import ROUNDING_MODES, TruncSpec
from hwgen.golden import run_op
from hwgen.ir import Threshold
from hwgen.ir.ops import SumPool
from hwgen.ir.types import Bipolar, IntType, from_wire, smallest_type
from hwgen.lowering import lowering_of
from hwgen.rtl.window_sumpool import SumPoolUnit
from sim.amaranth_streams import pack_beats, run_stream
from sim.vectors import random_values

I4, U3 = IntType(4, True), IntType(3, False)


def _x(shape, n=200, seed=0):
    return np.random.default_rng(seed).uniform(-0.2, 1.2, size=(n, *shape)).astype(np.float32)


def _exact(path, shape, n=200, seed=0):
    """golden == qonnx execute_onnx on the output, bit for bit, and on every tensor both compute."""
    acc = hwgen.compile(path)
    x = _x(shape, n, seed)
    y, ref = acc.predict(x), run_reference(path, x)
    assert np.array_equal(y, ref.reshape(y.shape))
    match = compare_with_reference(acc.graph, path, x)
    assert all(v == 1.0 for v in match.values()), match
    return acc


def _kinds(acc):
    return [op.kind for op in acc.graph.ops]


# -- the Trunc formula against qonnx's own implementation -------------------------------------------

@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("shift", [-2, 0, 1, 3])
@pytest.mark.parametrize("signed,narrow,bits", [(True, False, 4), (True, True, 3), (False, False, 5),
                                                (False, True, 8)])
def test_trunc_v2_formula_equals_qonnx(mode, shift, signed, narrow, bits):
    from qonnx.custom_op.general.trunc import trunc_v2
    from qonnx.custom_op.general.quant import max_int, min_int

    v = np.arange(-300, 301, dtype=np.int64)
    for scale in (np.float32(0.125), np.float32(0.06666667 / 9)):  # a power of two and Brevitas' s/9
        out_scale = np.float32(scale * np.float32(2.0 ** shift))
        ref = trunc_v2(v.astype(np.float32) * scale, scale, np.float32(0), np.float32(10), narrow, signed,
                       out_scale, np.float32(bits), mode)
        spec = TruncSpec("t", 2, shift, mode, int(min_int(signed, narrow, bits)), int(max_int(signed, narrow, bits)),
                         float(scale), float(out_scale))
        assert np.array_equal(spec.apply(v).astype(np.float32) * out_scale, ref)


@pytest.mark.parametrize("mode", ROUNDING_MODES)
@pytest.mark.parametrize("shift", [-1, 0, 2, 5])
def test_trunc_v1_formula_equals_qonnx(mode, shift):
    from qonnx.custom_op.general.trunc import trunc_v1

    v = np.arange(-200, 201, dtype=np.int64)
    scale = np.float32(0.25)
    ref = trunc_v1(v.astype(np.float32) * scale, scale, np.float32(0), np.float32(8), np.float32(8 - shift), mode)
    spec = TruncSpec("t", 1, shift, mode, None, None, float(scale), float(scale))
    assert np.array_equal(spec.apply(v).astype(np.float32) * scale, ref)


def test_trunc_staircase_is_the_formula():
    spec = TruncSpec("t", 2, 2, "ROUND", 0, 15, 0.125, 0.5)
    t, base, out_type = spec.staircase(-7, 90)
    v = np.arange(-7, 91)
    assert np.array_equal(base + (v[:, None] >= t).sum(-1), spec.apply(v))
    assert (base, out_type) == (0, IntType(4, False))
    up = TruncSpec("t", 2, -2, "FLOOR", 0, 255, 0.125, 0.03125)  # x4, clipped at 255: jumps of 4 levels
    t, base, _ = up.staircase(0, 90)
    v = np.arange(0, 91)
    assert np.array_equal(base + (v[:, None] >= t).sum(-1), np.minimum(4 * v, 255))


# -- AveragePool -> SumPool, end to end against qonnx ----------------------------------------------

@pytest.mark.parametrize("kernel,stride,signed", [((2, 2), (2, 2), False), ((2, 2), (1, 1), True),
                                                  ((4, 1), (2, 1), False), ((2, 2), None, True)])
@pytest.mark.parametrize("after", ["linear", "quant", "conv", "output"])
def test_average_pool_matches_qonnx(tmp_onnx, kernel, stride, signed, after):
    """Into a layer (1/k^2 in its input scale), a quantizer (a Threshold on the signed sums), a conv, the
    output; square and non-square windows, overlapping ones, ONNX's default stride 1."""
    path = avgpool_cnn(tmp_onnx(), seed=1, kernel=kernel, stride=stride, signed=signed, after=after)
    acc = _exact(path, (2, 6, 6))
    kinds = _kinds(acc)
    assert "SumPool" in kinds
    i = kinds.index("SumPool")
    assert kinds[i + 1] == {"linear": "MatVec", "quant": "Threshold", "conv": "Conv", "output": "Tail"}[after]
    pool = acc.graph.ops[i]
    assert pool.out_type.signed == (after == "quant" or signed)


def test_three_by_three_pool_only_float_effects(tmp_onnx):
    """1/9 is not a power of two: differences from the reference are float ties at most."""
    for after in ("quant", "linear"):
        path = avgpool_cnn(tmp_onnx(f"{after}.onnx"), seed=2, kernel=(3, 3), stride=(3, 3), after=after)
        r = check_model(path, _x((2, 6, 6), n=300, seed=2))
        assert r.ok, r.table()


# -- Trunc after the pool ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["ROUND", "FLOOR", "CEIL", "HALF_UP", "DOWN"])
@pytest.mark.parametrize("shift,bits,tsigned", [(2, 3, False), (1, 4, True), (3, 8, True), (-1, 4, False)])
@pytest.mark.parametrize("after", ["linear", "quant"])
def test_trunc_v2_after_pool_matches_qonnx(tmp_onnx, mode, shift, bits, tsigned, after):
    """Signed sums (negative values exercise the sign-dependent modes), real shifts with clipping, an
    up-shift that clips: a Threshold on the sums, or one Threshold with the quantizer after it."""
    trunc = dict(version=2, shift=shift, out_bits=bits, rounding_mode=mode, signed=tsigned)
    path = avgpool_cnn(tmp_onnx(), seed=3, signed=True, a_bits=4, after=after, trunc=trunc)
    acc = _exact(path, (2, 6, 6), n=150)
    kinds = _kinds(acc)
    i = kinds.index("SumPool")
    assert kinds[i + 1] == "Threshold" and kinds[i + 2] == "MatVec"  # one threshold step, folded or not
    assert acc.graph.ops[i + 1].name.startswith("Trunc" if after == "linear" else "Quant")


@pytest.mark.parametrize("shift", [2, 0, -3])
def test_trunc_v1_after_pool_matches_qonnx(tmp_onnx, shift):
    path = avgpool_cnn(tmp_onnx(), seed=4, signed=True, a_bits=4, trunc=dict(version=1, shift=shift,
                                                                             rounding_mode="ROUND"))
    acc = _exact(path, (2, 6, 6), n=150)
    assert ("Threshold" in _kinds(acc)[4:]) == (shift != 0)  # v1 keeps the input scale: only t = 0 is a no-op


def test_trunc_that_changes_nothing_is_no_hardware(tmp_onnx):
    """Brevitas' RoundTo8bit on a 2x2 pool of UINT3: the sums (at most 28) x4 into 8 bits never clip, and
    the output scale is the input scale / 4: the Trunc's output equals its input."""
    path = avgpool_cnn(tmp_onnx(), seed=5, trunc=dict(shift=-2, out_bits=8))
    acc = _exact(path, (2, 6, 6))
    assert _kinds(acc) == ["Head", "Conv", "Threshold", "SumPool", "MatVec", "Tail"]
    assert any("changes nothing" in n for n in acc.graph.notes)
    path = avgpool_cnn(tmp_onnx("q.onnx"), seed=5, trunc=dict(shift=-2, out_bits=8), after="quant")
    acc = _exact(path, (2, 6, 6))
    assert _kinds(acc) == ["Head", "Conv", "Threshold", "SumPool", "Threshold", "MatVec", "Tail"]


def test_trunc_threshold_gets_a_shift_requantizer(tmp_onnx):
    path = avgpool_cnn(tmp_onnx(), seed=6, a_bits=4, signed=True, trunc=dict(shift=2, out_bits=5, signed=True,
                                                                             rounding_mode="ROUND"))
    acc = hwgen.compile(path)
    th = next(op for op in acc.graph.ops if op.name.startswith("Trunc"))
    assert isinstance(th, Threshold) and th.requantizable
    assert np.all(th.requant_mul == th.requant_mul[0])  # the same shift on every channel
    row = next(r for r in acc.plan.layers if r["name"] == th.name)
    assert row["op"] == "Threshold"


BREVITAS_CASES = [
    ("avg", 8, "round", "linear"),
    pytest.param("avg", 8, "floor", "quant", marks=pytest.mark.slow),
    pytest.param("avg", 4, "round", "linear", marks=pytest.mark.slow),
    pytest.param("adaptive", 8, "round", "linear", marks=pytest.mark.slow),
    pytest.param("adaptive", 6, "floor", "quant", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("pool,act_bits,trunc,after", BREVITAS_CASES)
def test_brevitas_trunc_avg_pool(tmp_path, pool, act_bits, trunc, after):
    """Brevitas TruncAvgPool2d / TruncAdaptiveAvgPool2d (RoundTo8bit, TruncTo8bit), exported as is:
    AveragePool or ReduceMean, then Trunc (opset 2 of the qonnx domain, lowercase rounding modes).
    4 x 4 inputs: the adaptive pool's 1/16 keeps every float exact."""
    pytest.importorskip("brevitas")
    import onnx

    path = brevitas_trunc_pool_model(tmp_path / "m.onnx", seed=7, pool=pool, act_bits=act_bits, trunc=trunc,
                                     after=after, size=4)
    assert "Trunc" in [n.op_type for n in onnx.load(path).graph.node]
    acc = _exact(path, (2, 4, 4), n=200)
    kinds = _kinds(acc)
    i = kinds.index("SumPool" if pool == "avg" else "GlobalSumPool")
    # an 8-bit ReLU's sums have more than 8 bits: the Trunc shifts (a Threshold of its own, or one with the
    # quantizer after it); a 4-bit one's fit: RoundTo8bit changes nothing
    assert kinds[i + 1] == ("MatVec" if act_bits == 4 else "Threshold")


@pytest.mark.slow
@pytest.mark.parametrize("pool", ["avg", "adaptive"])
def test_brevitas_trunc_pool_verifies_in_icarus(tmp_path, pool):
    """The SumPoolUnit / GlobalSumPoolUnit and the Trunc's requantizer in a whole accelerator: Verilog
    builds and Icarus agrees with the golden model."""
    pytest.importorskip("brevitas")
    path = brevitas_trunc_pool_model(tmp_path / "m.onnx", seed=8, pool=pool, act_bits=8, size=6)
    acc = hwgen.compile(path)
    acc.write(tmp_path / "build")
    r = acc.verify(sim="icarus", vectors=3, seed=2)
    assert r.ok and r.passed == r.vectors > 0, r.summary()


def test_avgpool_trunc_verifies_in_icarus(tmp_path):
    """A hand-built AveragePool -> Trunc (a shift with rounding and clipping) -> linear: SumPoolUnit and the
    Trunc's requantizer in a whole accelerator, Verilog built and checked by Icarus against golden."""
    path = avgpool_cnn(tmp_path / "m.onnx", seed=12, signed=True, a_bits=4, size=(6, 6),
                       trunc=dict(shift=2, out_bits=3, signed=True, rounding_mode="ROUND"))
    acc = hwgen.compile(path)
    assert "SumPool" in _kinds(acc)
    acc.write(tmp_path / "build")
    r = acc.verify(sim="icarus", vectors=3, seed=2)
    assert r.ok and r.passed == r.vectors > 0, r.summary()


def test_stray_trunc_is_refused(tmp_onnx):
    from onnx_builders import QDOMAIN, GraphBuilder

    b = GraphBuilder((2, 4, 4), name="stray")
    b.quant(0.125, 3, signed=False)
    b.op("Trunc", b.const(0.125), b.const(0.0), b.const(3), b.const(0.25), b.const(2), domain=QDOMAIN,
         rounding_mode="FLOOR")
    b.conv(np.ones((2, 2, 1, 1)), 0.5, bits=3, pad=0)
    path = b.save(tmp_onnx())
    with pytest.raises(HwgenError) as e:
        hwgen.compile(path)
    msg = str(e.value)
    assert msg.startswith("node 'Trunc_") and "(Trunc): a Trunc is supported only right after an average pool" in msg


@pytest.mark.parametrize("trunc,phrase", [
    (dict(zeropt=1.0), "non-zero zero points are not supported"),
    (dict(scale_ratio=2.0), "is not the scale 0.125 of the integers it truncates"),
])
def test_bad_truncs_are_refused(tmp_onnx, trunc, phrase):
    path = avgpool_cnn(tmp_onnx(), seed=9, trunc=trunc)
    with pytest.raises(HwgenError) as e:
        hwgen.compile(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("node 'Trunc_") and "(Trunc): " in msg and phrase in msg, msg


def test_trunc_with_the_wrong_number_of_inputs_for_its_version(tmp_onnx):
    import onnx

    path = avgpool_cnn(tmp_onnx(), seed=9, trunc=dict(version=2))
    m = onnx.load(path)
    for o in m.opset_import:
        if o.domain == "qonnx.custom_op.general":
            o.version = 1  # qonnx would run the six-input node as Trunc_v1
    onnx.save(m, path)
    with pytest.raises(HwgenError, match=r"\(Trunc\): a Trunc of opset version 1 .* takes 5 inputs, this one has 6"):
        hwgen.compile(path)


# -- refusals ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("attrs,phrase", [
    ({"pads": [1, 1, 1, 1]}, "AveragePool with padding (pads [1, 1, 1, 1]) is not supported"),
    ({"pads": [0, 0, 1, 0], "count_include_pad": 1}, "AveragePool with padding (pads [0, 0, 1, 0])"),
    ({"auto_pad": "SAME_UPPER"}, "AveragePool with padding (auto_pad SAME_UPPER)"),
    ({"ceil_mode": 1}, "ceil_mode=1 and partial border windows"),
])
def test_padded_average_pool_is_refused(tmp_onnx, attrs, phrase):
    stride = (2, 2)
    size = (7, 7) if "ceil_mode" in attrs else (6, 6)
    path = avgpool_cnn(tmp_onnx(), seed=10, stride=None if "auto_pad" in attrs else stride, size=size,
                       pool_attrs=attrs, after="output")
    with pytest.raises(HwgenError) as e:
        hwgen.compile(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("node 'AveragePool_") and "(AveragePool): " in msg
    assert phrase in msg, msg
    if "pad" in phrase:
        assert "use padding=0" in msg


def test_padded_average_pool_on_the_command_line(tmp_onnx, capsys):
    from hwgen.cli import main

    path = avgpool_cnn(tmp_onnx(), seed=10, pool_attrs={"pads": [1, 1, 1, 1]}, after="output")
    assert main(["inspect", path]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AveragePool_" in err and "Traceback" not in err


def test_ceil_mode_that_changes_nothing_is_accepted(tmp_onnx):
    path = avgpool_cnn(tmp_onnx(), seed=11, pool_attrs={"ceil_mode": 1}, after="linear")
    _exact(path, (2, 6, 6))


def test_average_pool_after_the_last_quantizer_runs_on_the_host(tmp_onnx):
    """Padding is fine in the float tail: onnxruntime runs it, as the reference does."""
    from onnx_builders import GraphBuilder

    rng = np.random.default_rng(0)
    b = GraphBuilder((2, 4, 4), name="tailpool")
    b.quant(0.125, 3, signed=False)
    b.conv(rng.integers(-3, 4, size=(3, 2, 3, 3)), 0.25, bits=3)
    b.op("AveragePool", kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    path = b.save(tmp_onnx())
    acc = hwgen.compile(path)
    assert "AveragePool" in acc.graph.tail.segment.op_types
    x = _x((2, 4, 4))
    np.testing.assert_array_equal(acc.predict(x), run_reference(path, x))


def test_maxpool_without_strides_uses_onnx_default_stride_one(tmp_onnx):
    from onnx_builders import GraphBuilder

    rng = np.random.default_rng(1)
    b = GraphBuilder((2, 5, 5), name="mpstride")
    b.quant(0.125, 3, signed=False)
    b.conv(rng.integers(-3, 4, size=(3, 2, 3, 3)), 0.25, bits=3)
    b.op("Relu")
    b.quant(0.5, 3, signed=False)
    b.op("MaxPool", kernel_shape=[2, 2])  # no strides: 1 per the ONNX spec
    b.op("Flatten", axis=1)
    b.linear(rng.integers(-3, 4, (2, 3 * 16)), 0.25, bits=3)
    acc = _exact(b.save(tmp_onnx()), (2, 5, 5))
    pool = next(op for op in acc.graph.ops if op.kind == "MaxPool")
    assert pool.stride == (1, 1) and pool.out_shape == (4, 4, 3)


# -- the SumPoolUnit ---------------------------------------------------------------------------------

def unpack(payloads, dtype, per_beat):
    bits = dtype.wire_bits
    mask = (1 << bits) - 1
    flat = [(p >> (e * bits)) & mask for p in payloads for e in range(per_beat)]
    return from_wire(np.array(flat, dtype=np.int64), dtype)


SUM_CASES = [  # in_shape, kernel, stride, in_type, simd, signed output
    ((6, 6, 2), (2, 2), (2, 2), I4, 1, False),
    ((6, 6, 4), (2, 2), (2, 2), U3, 2, False),
    ((5, 5, 2), (3, 3), (2, 2), U3, 2, True),
    ((5, 4, 3), (2, 3), (1, 1), I4, 3, False),
    ((4, 4, 4), (2, 2), (2, 2), Bipolar, 2, False),
    ((5, 5, 2), (1, 1), (2, 2), I4, 1, False),  # one tap: a subsampling
    ((4, 6, 2), (4, 2), (1, 2), IntType(8, True), 1, False),
]


def _sid(c):
    return f"{c[0]}k{c[1][0]}x{c[1][1]}s{c[2][0]}{c[3]}x{c[4]}{'s' if c[5] else ''}"


def _sumpool(case) -> SumPool:
    in_shape, kernel, stride, in_type, _, signed_out = case
    n = kernel[0] * kernel[1]
    lo, hi = in_type.min * n, in_type.max * n
    out_type = IntType(smallest_type(min(lo, -1), hi).bits, True) if signed_out else smallest_type(lo, hi)
    return SumPool(name="sp", inputs=["x"], outputs=["y"], in_shape=in_shape, kernel=kernel, stride=stride,
                   in_type=in_type, out_type=out_type)


@pytest.mark.parametrize("case", SUM_CASES, ids=_sid)
def test_sumpool_unit_matches_golden_with_stalls(case):
    op = _sumpool(case)
    simd = case[4]
    seed = zlib.crc32(_sid(case).encode()) % 1000
    rng = np.random.default_rng(seed)
    x = random_values(op.in_type, (3, *op.in_shape), rng)
    x[0] = op.in_type.max  # the extremes of the output type
    x[1] = op.in_type.min
    want = run_op(op, x)
    assert want.shape[1:] == op.out_shape
    lo, hi = lowering_of(op).output_range(op)
    assert np.all(want[0] == hi[0]) and np.all(want[1] == lo[0])  # output_range is tight
    dut = SumPoolUnit.from_op(op, simd=simd)
    out, _ = run_stream(dut, pack_beats(x.reshape(3, -1), op.in_type, simd), want.size // simd, seed=seed,
                        p_valid=0.7, p_ready=0.6)
    np.testing.assert_array_equal(unpack(out, op.out_type, simd).reshape(want.shape), want)


def test_sumpool_unit_cycles_without_stalls():
    op = _sumpool(((8, 8, 4), (2, 2), (2, 2), U3, 2, False))
    x = random_values(U3, (3, 8, 8, 4), np.random.default_rng(0))
    dut = SumPoolUnit.from_op(op, simd=2)
    want = run_op(op, x)
    out, cycles = run_stream(dut, pack_beats(x.reshape(3, -1), U3, 2), want.size // 2)
    np.testing.assert_array_equal(unpack(out, op.out_type, 2).reshape(want.shape), want)
    assert dut.cycles == 4 * 4 * 4 * 2 == lowering_of(op).cycles(op, 1, 2)
    assert cycles[-1] + 1 <= 3 * dut.cycles + dut.latency + 4 * 3, (cycles[-1], dut.cycles, dut.latency)


LOCKSTEP = [  # case, cycles, driving
    (SUM_CASES[0], 600, SLOW_CONSUMER),
    (SUM_CASES[1], 600, SLOW_CONSUMER),
    (SUM_CASES[2], 600, {}),
    (SUM_CASES[3], 600, {}),
    (SUM_CASES[5], 500, SLOW_CONSUMER),
]


@pytest.mark.parametrize("case,cycles,drive", LOCKSTEP, ids=[_sid(c[0]) for c in LOCKSTEP])
@pytest.mark.parametrize("seed", [0, 1])
def test_sumpool_unit_timing_model_in_lockstep(case, cycles, drive, seed):
    unit = SumPoolUnit.from_op(_sumpool(case), simd=case[4])
    lockstep(unit, cycles, zlib.crc32(f"sumpool/{_sid(case)}/{seed}".encode()), **drive)


@pytest.mark.parametrize("target", ["ice40", "ecp5"])
def test_sumpool_unit_estimate(target):
    small = SumPoolUnit.from_op(_sumpool(SUM_CASES[1]), simd=1)
    wide = SumPoolUnit.from_op(_sumpool(SUM_CASES[1]), simd=4)
    e1, e4 = (lowering_of(_sumpool(SUM_CASES[1])).estimate(u, target) for u in (small, wide))
    assert isinstance(e1, Resources) and e1.as_dict()["lut"] > 0
    # beyond its sliding window (whose size follows the line buffer's depth in words, larger at
    # SIMD 1), four adders per beat instead of one
    w1, w4 = (units.sliding_window(u.swg, target) for u in (small, wide))
    assert e4.as_dict()["lut"] - w4.as_dict()["lut"] > e1.as_dict()["lut"] - w1.as_dict()["lut"]
    for u in (small, wide):  # only estimated, never elaborated
        u._MustUse__silence = u.swg._MustUse__silence = True


def test_reference_scale_and_range():
    op = _sumpool(SUM_CASES[2])  # 3x3 windows of UINT3
    low = lowering_of(op)
    assert low.reference_scale(op, {"x": np.float32(0.5)}) == np.float32(np.float32(0.5) / np.float32(9))
    lo, hi = low.output_range(op)
    assert lo.tolist() == [0, 0] and hi.tolist() == [63, 63]
