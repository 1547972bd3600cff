"""Each unit's cycle-level timing model (hwgen.rtl.timing) in lockstep with an Amaranth simulation of
the same unit: the same random input valid / output ready every cycle, and per cycle the pair
(input ready, output valid) of the model must equal the RTL's.

The model is stepped exactly as timing._Chain steps it inside a whole accelerator: record
(chain.ready(out_ready), chain.valid()) and then chain.tick(in_valid, out_ready). The RTL bench
sets i.valid / i.payload / o.ready for the cycle, reads the combinational i.ready and o.valid, then
ticks. Payloads are random (the handshakes must not depend on them)."""
from __future__ import annotations

import os
import random
import zlib

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from hwgen.ir import Add, Conv, KernelBankConv, ODEBlock, Threshold
from hwgen.ir.types import Bipolar, IntType
from hwgen.passes.accumulators import size_layer
from hwgen.rtl.conv import ConvUnit
from hwgen.rtl.fifo import StreamFIFO
from hwgen.rtl.requant import RequantUnit
from hwgen.rtl.skid import SkidBuffer
from hwgen.rtl.kernel_bank import KernelBankConvUnit
from hwgen.rtl.matvec import MatVecUnit, Pipeline
from hwgen.rtl.maxpool import MaxPoolUnit
from hwgen.rtl.ode_block import ODEBlockUnit
from hwgen.rtl.sumpool import GlobalSumPoolUnit
from hwgen.rtl.threshold import ThresholdUnit
from hwgen.rtl.timing import _Chain, models_of
from hwgen.rtl.width_converter import WidthConverter

I2, I3, I4, U3 = IntType(2, True), IntType(3, True), IntType(4, True), IntType(3, False)
P_VALID, P_READY = 0.7, 0.6
MODELS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "quant_models", "onnx")


# -- the lockstep bench -------------------------------------------------------------------------
def drive(seed: int, cycles: int, payload_bits: int, p_valid: float = P_VALID, p_ready: float = P_READY):
    rng = random.Random(seed)
    ivs, ors, pls = [], [], []
    for _ in range(cycles):
        ivs.append(rng.random() < p_valid)
        ors.append(rng.random() < p_ready)
        pls.append(rng.getrandbits(payload_bits))
    return ivs, ors, pls


def model_trace(unit, ivs, ors, models=None):
    models = models_of(unit) if models is None else models
    assert models, f"{type(unit).__name__} has no timing model (a wire?)"
    chain = _Chain(models)
    trace = []
    for iv, o_r in zip(ivs, ors):
        trace.append((bool(chain.ready(o_r)), bool(chain.valid())))
        chain.tick(iv, o_r)
    return trace


def rtl_trace(unit, ivs, ors, pls):
    trace = []

    async def tb(ctx):
        for iv, o_r, pl in zip(ivs, ors, pls):
            ctx.set(unit.i.valid, int(iv))
            ctx.set(unit.i.payload, pl)
            ctx.set(unit.o.ready, int(o_r))
            trace.append((bool(ctx.get(unit.i.ready)), bool(ctx.get(unit.o.valid))))
            await ctx.tick()

    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = unit
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(tb)
    sim.run()
    return trace


def lockstep(unit, cycles: int, seed: int, *, p_valid: float = P_VALID, p_ready: float = P_READY,
             min_out: int = 3, models=None):
    """Model and RTL traces of one unit under the same driving; returns (input beats, output beats,
    back-pressured cycles). The models are built first (they only read the unit's parameters), then
    the unit itself is simulated."""
    ivs, ors, pls = drive(seed, cycles, len(unit.i.payload), p_valid, p_ready)
    want = model_trace(unit, ivs, ors, models)
    got = rtl_trace(unit, ivs, ors, pls)
    assert len(got) == len(want) == cycles
    for c, (g, w) in enumerate(zip(got, want)):
        if g != w:
            ctx = ", ".join(f"{k}: iv={int(ivs[k])} or={int(ors[k])} rtl={tuple(map(int, got[k]))} "
                            f"model={tuple(map(int, want[k]))}" for k in range(max(0, c - 3), c + 1))
            raise AssertionError(
                f"{type(unit).__name__}: first mismatch at cycle {c} (in_valid={int(ivs[c])}, "
                f"out_ready={int(ors[c])}): RTL (i.ready, o.valid) = ({int(g[0])}, {int(g[1])}), "
                f"model (ready, valid) = ({int(w[0])}, {int(w[1])}); last cycles: {ctx}")
    outs = sum(1 for (_, v), o_r in zip(got, ors) if v and o_r)
    stalls = sum(1 for (r, _), iv in zip(got, ivs) if iv and not r)
    ins = sum(1 for (r, _), iv in zip(got, ivs) if iv and r)
    assert outs >= min_out, f"only {outs} output beats in {cycles} cycles ({ins} input beats)"
    assert stalls > 0, f"no input back-pressure in {cycles} cycles ({ins} input beats, {outs} output beats)"
    return ins, outs, stalls


# -- unit builders ------------------------------------------------------------------------------
def _rng(tag: str):
    return np.random.default_rng(zlib.crc32(tag.encode()))


def matvec(C, K, pe, simd, pipeline=None, arith="dsp"):
    def make():
        W = _rng(f"mv{C}{K}").integers(-2, 2, size=(C, K))
        return MatVecUnit(weights=W, in_type=I3, w_type=I2, acc_bits=10, pe=pe, simd=simd, pipeline=pipeline,
                          arith=arith)
    return make


def threshold(C, pe, style, levels=3, in_bits=6, registers=(False, False), skid=False):
    def make():
        rng = _rng(f"th{C}{levels}")
        T = np.sort(rng.integers(-(1 << (in_bits - 1)), 1 << (in_bits - 1), size=(C, levels)), axis=1)
        unit = ThresholdUnit(thresholds=T, decreasing=rng.random(C) < 0.4, in_bits=in_bits, out_type=IntType(2, False),
                             out_base=0, pe=pe, style=style, registers=registers, registered_enable=skid)
        assert unit.style == style
        return unit
    return make


def requant(C, pe, registers=(False, False), skid=False):
    def make():
        rng = _rng(f"rq{C}")
        return RequantUnit(mul=rng.integers(1, 40, C), add=rng.integers(-500, 500, C), shift=4, levels=16,
                           in_bits=8, out_type=IntType(4, False), out_base=0, pe=pe, registers=registers,
                           registered_enable=skid)
    return make


def width_converter(n_in, n_out, bits=3, registered_ready=False):
    return lambda: WidthConverter(element_bits=bits, in_elems=n_in, out_elems=n_out,
                                  registered_ready=registered_ready)


def fifo(depth, width=8):
    return lambda: StreamFIFO(width=width, depth=depth)


def conv(in_shape, cout, stride, pads, pe, simd, *, window_simd=None, kernel=(3, 3), pipeline=None,
         registered_read=False, rows=None):
    def make():
        w = _rng(f"conv{in_shape}{cout}").integers(-3, 4, size=(cout, *kernel, in_shape[2]))
        op = Conv(name="c", inputs=["x"], outputs=["y"], weights=w, in_type=I3, w_type=I3, input_scale=1.0,
                  weight_scale=np.ones(cout, np.float32), in_shape=in_shape, kernel=kernel, stride=stride, pads=pads)
        size_layer(op)
        return ConvUnit.from_op(op, pe=pe, simd=simd, window_simd=window_simd, pipeline=pipeline,
                                registered_read=registered_read, rows=rows)
    return make


def maxpool(in_shape, simd, kernel=(2, 2), stride=(2, 2), pads=(0, 0, 0, 0), registered_read=False):
    return lambda: MaxPoolUnit(in_shape=in_shape, kernel=kernel, stride=stride, dtype=I3, pads=pads, simd=simd,
                               registered_read=registered_read)


def sumpool(in_shape, simd):
    return lambda: GlobalSumPoolUnit(in_shape=in_shape, in_type=U3, out_type=IntType(8, False), simd=simd)


def kernel_bank(in_shape, cout, patterns, stride, pads, pe, simd):
    def make():
        rng = _rng(f"kb{in_shape}{cout}{patterns}")
        book = rng.choice([-1, 1], size=(patterns, 3, 3))
        w = book[rng.integers(0, patterns, size=(cout, in_shape[2]))].transpose(0, 2, 3, 1)
        plain = Conv(name="c", inputs=["x"], outputs=["y"], weights=w, in_type=Bipolar, w_type=Bipolar,
                     input_scale=1.0, weight_scale=np.ones(cout, np.float32), in_shape=in_shape, kernel=(3, 3),
                     stride=stride, pads=pads)
        size_layer(plain)
        from hwgen.passes.kernel_bank import codebook_of

        book_, index, tau = codebook_of(plain)
        fields = {k: getattr(plain, k) for k in plain.__dataclass_fields__}
        op = KernelBankConv(**fields, codebook=book_, indices=index, tau=tau)
        return KernelBankConvUnit.from_op(op, pe=pe, simd=simd)
    return make


def ode_block(shape, steps, folding, simd):
    """h (INT4) -> depthwise 3x3 conv -> threshold (UINT3) -> pointwise conv -> threshold (INT4) -> Add
    (the block of tests/test_rtl_conv_ode.py)."""
    def make():
        rng = _rng(f"ode{shape}{steps}")
        c = shape[2]
        common = {"input_scale": 1.0, "weight_scale": np.ones(c, np.float32)}
        dw = Conv(name="dw", inputs=["h"], outputs=["a"], weights=rng.integers(-3, 4, (c, 3, 3, 1)), in_type=I4,
                  w_type=I3, in_shape=shape, kernel=(3, 3), pads=(1, 1, 1, 1), groups=c, **common)
        size_layer(dw)

        def thr(acc, levels):
            t = np.sort(rng.integers(acc.min // 2, acc.max // 2 + 1, size=(c, levels - 1)), axis=1)
            return t, rng.random(c) < 0.25

        t1, d1 = thr(dw.acc_type, 8)
        th1 = Threshold(name="t1", inputs=["a"], outputs=["b"], thresholds=t1, decreasing=d1, in_type=dw.acc_type,
                        out_type=U3, out_base=0)
        pw = Conv(name="pw", inputs=["b"], outputs=["c"], weights=rng.integers(-3, 4, (c, 1, 1, c)), in_type=U3,
                  w_type=I3, in_shape=shape, kernel=(1, 1), **common)
        size_layer(pw)
        t2, d2 = thr(pw.acc_type, 16)
        th2 = Threshold(name="t2", inputs=["c"], outputs=["d"], thresholds=t2, decreasing=d2, in_type=pw.acc_type,
                        out_type=I4, out_base=-8)
        add = Add(name="add", inputs=["h", "d"], outputs=["h1"], a_shift=1, b_shift=0, out_shift=1,
                  a_type=I4, b_type=I4, out_type=I4, out_scale=1.0)
        for op_ in (dw, pw):
            op_.pe, op_.simd = folding[op_.name]
        op = ODEBlock(name="ode", inputs=["h"], outputs=["y"], body=[dw, th1, pw, th2, add], steps=steps,
                      dt_shift=1, body_input="h", body_output="h1", state_type=I4)
        return ODEBlockUnit.from_op(op, simd=simd)
    return make


def from_model(model: str, kind: str, fold: int, *, ode_blocks: bool = True):
    """The first `kind` unit of a compiled, auto-folded model's plan (hwgen.rtl.top.plan)."""
    def make():
        from amaranth.hdl import Fragment

        from hwgen.compiler import compile_model
        from hwgen.passes.fold import fold_graph
        from hwgen.compiler import CompileOptions
        from hwgen.rtl.top import plan

        g = compile_model(os.path.join(MODELS, f"{model}.onnx"), CompileOptions(ode_blocks=ode_blocks))
        stages, _, _ = plan(fold_graph(g, ("auto", fold)))
        unit = next(st.unit for st in stages if type(st.unit).__name__ == kind)
        for st in stages:  # the other stages are only built, not simulated: mark them used
            if st.unit is not unit:
                Fragment.get(st.unit, None)
        return unit
    return make


# -- cases: (id, builder, cycles[, driving overrides]) ---------------------------------------------
SLOW_CONSUMER = {"p_ready": 0.15}  # units that shrink the stream: back-pressure needs a slow consumer
CASES = [
    # MatVecUnit: folded (NF > 1, SF > 1), NF = 1, SF = 1, and fully parallel (constant weights)
    ("matvec-NF2-SF3", matvec(4, 6, pe=2, simd=2), 500),
    ("matvec-NF3-SF4", matvec(6, 8, pe=2, simd=2), 500),
    ("matvec-NF1-SF4", matvec(4, 8, pe=4, simd=2), 500),
    ("matvec-NF4-SF1", matvec(4, 6, pe=1, simd=6), 500),
    ("matvec-NF1-SF1", matvec(4, 6, pe=4, simd=6), 500),
    # 72-bit input words: the replay / stream select is two register copies, one per 64 bits
    ("matvec-NF2-SF2-wide-select", matvec(4, 48, pe=2, simd=24), 400),
    # pipelined for a clock target (hwgen.rtl.matvec.Pipeline): ROM output, products, adder tree
    ("matvec-pipelined-NF2-SF3", matvec(4, 6, pe=2, simd=2, pipeline=Pipeline(True, True, 1), arith="lut"), 500),
    ("matvec-cse-every1", matvec(4, 6, pe=4, simd=6, pipeline=Pipeline(tree_every=1), arith="cse"), 500),
    ("matvec-pipelined-parallel", matvec(4, 6, pe=4, simd=6, pipeline=Pipeline(False, True, 1), arith="lut"), 500),
    # stall-free (Pipeline.stall_free): no enables, credits for an output FIFO admit the input
    ("matvec-free-NF2-SF3", matvec(4, 6, pe=2, simd=2, pipeline=Pipeline(True, True, 1, stall_free=True),
                                   arith="lut"), 500),
    ("matvec-free-slow-consumer", matvec(4, 6, pe=2, simd=2, pipeline=Pipeline(True, True, 1, stall_free=True),
                                         arith="lut"), 500, {"p_ready": 0.2}),
    ("matvec-free-NF4-SF1", matvec(4, 6, pe=1, simd=6, pipeline=Pipeline(True, True, 1, stall_free=True),
                                   arith="lut"), 500, {"p_ready": 0.5}),
    ("matvec-free-NF1-SF1", matvec(4, 6, pe=4, simd=6, pipeline=Pipeline(False, True, 1, stall_free=True),
                                   arith="lut"), 500),
    # ThresholdUnit: both styles, folded (threshold ROM) and PE = C (constants)
    ("threshold-compare-pe2", threshold(4, 2, "compare"), 500),
    ("threshold-compare-pe4", threshold(4, 4, "compare"), 500),
    ("threshold-lut-pe1", threshold(4, 1, "lut", levels=7, in_bits=4), 500),
    ("threshold-lut-pe4", threshold(4, 4, "lut", levels=7, in_bits=4), 500),
    ("threshold-compare-pipelined", threshold(4, 2, "compare", registers=(True, True)), 500),
    ("threshold-lut-pipelined", threshold(4, 1, "lut", levels=7, in_bits=4, registers=(True, False)), 500),
    # with a skid register behind the output and a flip-flop enable (rtl.util.unit_enable)
    ("threshold-compare-skid", threshold(4, 2, "compare", registers=(True, True), skid=True), 500, {"p_ready": 0.3}),
    ("threshold-lut-skid", threshold(4, 1, "lut", levels=7, in_bits=4, registers=(True, False), skid=True), 500),
    # RequantUnit (a Threshold as a multiply-add): folded and constants, with the clock's registers
    ("requant-pe1", requant(4, 1), 500),
    ("requant-pe4-pipelined", requant(4, 4, registers=(True, True)), 500),
    ("requant-pe2-operands", requant(4, 2, registers=(True, False)), 500),
    ("requant-pe4-skid", requant(4, 4, registers=(True, True), skid=True), 500, {"p_ready": 0.3}),
    # WidthConverter: gather, split, and both for non-multiple ratios (via lcm)
    ("wconv-2to6", width_converter(2, 6), 500, {"p_ready": 0.2}),
    ("wconv-1to4", width_converter(1, 4, bits=2), 500, {"p_ready": 0.15}),
    ("wconv-6to2", width_converter(6, 2), 500),
    ("wconv-4to1", width_converter(4, 1, bits=2), 500),
    ("wconv-4to6", width_converter(4, 6), 500),
    ("wconv-6to4", width_converter(6, 4), 500),
    ("wconv-3to5", width_converter(3, 5, bits=2), 500, {"p_ready": 0.3}),
    # ... a split with registered ready (an idle cycle per word), alone and behind a gather
    ("wconv-6to2-registered", width_converter(6, 2, registered_ready=True), 500),
    ("wconv-6to2-registered-stalls", width_converter(6, 2, registered_ready=True), 500, {"p_ready": 0.4}),
    ("wconv-4to6-registered", width_converter(4, 6, registered_ready=True), 500, {"p_valid": 0.7}),
    # StreamFIFO (SyncFIFOBuffered)
    ("fifo-depth2", fifo(2), 500),
    ("fifo-depth3", fifo(3), 500),
    ("fifo-depth5", fifo(5), 500, {"p_ready": 0.4}),
    # SkidBuffer (the register slice between units when pipelining)
    ("skid", lambda: SkidBuffer(width=5), 500),
    ("skid-slow-consumer", lambda: SkidBuffer(width=5), 500, {"p_ready": 0.2}),
    ("skid-slow-producer", lambda: SkidBuffer(width=5), 500, {"p_valid": 0.3, "p_ready": 0.9}),
    # wide: three copies of each valid bit, one per 64 data bits, must move together
    ("skid-wide", lambda: SkidBuffer(width=150), 500, {"p_valid": 0.6, "p_ready": 0.5}),
    # ConvUnit = SlidingWindowUnit [-> WidthConverter] -> MatVecUnit; small images so the window's
    # 2-bit image generations wrap (> 4 images in)
    ("conv3x3-s1-p1-gather2to6", conv((4, 4, 2), 2, (1, 1), (1, 1, 1, 1), pe=1, simd=6), 800),
    ("conv3x3-s1-p1-wsimd2", conv((4, 4, 2), 4, (1, 1), (1, 1, 1, 1), pe=2, simd=2), 1500),
    ("conv3x3-pipelined", conv((4, 4, 2), 4, (1, 1), (1, 1, 1, 1), pe=2, simd=6, pipeline=Pipeline(True, True, 2)), 1200),
    # the window's output and skid registers (registered_read) before a stall-free MatVec, as a plan
    # to a clock builds them, and before a MatVec with an enable
    ("conv3x3-stall-free", conv((4, 4, 2), 4, (1, 1), (1, 1, 1, 1), pe=2, simd=2, registered_read=True,
                                pipeline=Pipeline(True, True, 2, stall_free=True)), 1500, {"p_ready": 0.3}),
    ("conv3x3-registered-read", conv((4, 4, 2), 4, (1, 1), (1, 1, 1, 1), pe=2, simd=2, registered_read=True,
                                     pipeline=Pipeline(True, True, 2)), 1500, {"p_ready": 0.3}),
    # a line buffer with two rows more than the window reads (the schedule's line_rows_extra)
    ("conv3x3-extra-rows", conv((7, 4, 2), 4, (1, 1), (1, 1, 1, 1), pe=2, simd=2, registered_read=True, rows=5,
                                pipeline=Pipeline(True, True, 2, stall_free=True)), 1500, {"p_ready": 0.3}),
    ("conv3x3-s1-p1-parallel", conv((3, 4, 1), 2, (1, 1), (1, 1, 1, 1), pe=2, simd=9), 600),
    ("conv3x3-s2-p1", conv((5, 5, 2), 2, (2, 2), (1, 1, 1, 1), pe=1, simd=2, window_simd=1), 800),
    ("conv3x3-s2-p0", conv((5, 5, 1), 2, (2, 2), (0, 0, 0, 0), pe=2, simd=3, window_simd=1), 600),
    ("conv3x3-s1-p0-3rows", conv((3, 5, 1), 2, (1, 1), (0, 0, 0, 0), pe=2, simd=9), 600),
    ("conv3x3-s1-pad-tl", conv((4, 4, 1), 2, (1, 1), (1, 1, 0, 0), pe=2, simd=3), 600),
    ("conv1x3-s1-p1", conv((3, 4, 2), 2, (1, 1), (0, 1, 0, 1), pe=1, simd=2, kernel=(1, 3)), 600),
    # MaxPoolUnit (2x2 stride 2: as many taps as input pixels, so the consumer must be slow)
    ("maxpool2x2-s2-simd1", maxpool((4, 4, 2), simd=1), 600, SLOW_CONSUMER),
    ("maxpool2x2-s2-simd2", maxpool((4, 6, 4), simd=2), 600, SLOW_CONSUMER),
    ("maxpool3x3-s2-p1", maxpool((5, 5, 1), simd=1, kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1)), 600),
    ("maxpool2x2-s1", maxpool((3, 3, 2), simd=2, kernel=(2, 2), stride=(1, 1)), 600),
    ("maxpool3x3-s2-p1-registered-read",
     maxpool((5, 5, 1), simd=1, kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1), registered_read=True), 600),
    # GlobalSumPoolUnit
    ("sumpool-3x3x4-simd2", sumpool((3, 3, 4), simd=2), 500),
    ("sumpool-2x2x3-simd1", sumpool((2, 2, 3), simd=1), 500, SLOW_CONSUMER),
    ("sumpool-2x2x2-simd2", sumpool((2, 2, 2), simd=2), 500, SLOW_CONSUMER),
    # KernelBankConvUnit: window -> tap reducer -> MatVec-like gather
    ("kernelbank-p1-pe1-simd1", kernel_bank((4, 4, 2), 2, 4, (1, 1), (1, 1, 1, 1), pe=1, simd=1), 1300),
    ("kernelbank-s2-p1-pe2-simd2", kernel_bank((5, 5, 2), 4, 4, (2, 2), (1, 1, 1, 1), pe=2, simd=2), 600),
    ("kernelbank-p0-wired", kernel_bank((4, 4, 2), 2, 3, (1, 1), (0, 0, 0, 0), pe=2, simd=2), 600),
    # ODEBlockUnit, hand-built (tests/test_rtl_conv_ode.py's block): 3-4 images, so the version
    # counters (modulo 2*(N+1)) wrap
    ("ode-3x4x2-N2-simd2", ode_block((3, 4, 2), 2, {"dw": (2, 2), "pw": (2, 2)}, 2), 800),
    ("ode-3x3x2-N1-simd1", ode_block((3, 3, 2), 1, {"dw": (1, 1), "pw": (2, 1)}, 1), 800),
    ("ode-3x3x2-N3-gather", ode_block((3, 3, 2), 3, {"dw": (2, 18), "pw": (1, 2)}, 2), 1000),
    # the real blocks of the model zoo (one seed each: they are the slow ones; an ODE block's first
    # output comes after the load and N whole steps)
    ("ode-digits_odenet_n2-fold4096", from_model("digits_odenet_n2", "ODEBlockUnit", 4096), 4200, {}, (0,)),
    ("residual-digits_resnet_n2-fold4096",
     from_model("digits_resnet_n2", "ResidualBlock", 4096, ode_blocks=False), 1200, {}, (0,)),
    ("residual-digits_resnet_n2-fold512",
     from_model("digits_resnet_n2", "ResidualBlock", 512, ode_blocks=False), 600, {}, (0,)),
]
SEEDS = (0, 1)


def _params():
    for case in CASES:
        name, make, cycles = case[:3]
        drive_kw = case[3] if len(case) > 3 else {}
        for seed in (case[4] if len(case) > 4 else SEEDS):
            yield pytest.param(name, make, cycles, drive_kw, seed, id=f"{name}-seed{seed}")


@pytest.mark.parametrize("name,make,cycles,drive_kw,seed", list(_params()))
def test_unit_model_lockstep(name, make, cycles, drive_kw, seed):
    lockstep(make(), cycles, zlib.crc32(f"{name}/{seed}".encode()), **drive_kw)


@pytest.mark.parametrize("what", ["fifo-one-short", "matvec-sf-off-by-one", "wconv-ready-ignores-out"])
def test_lockstep_catches_a_wrong_model(what):
    """The bench is not vacuous: a model one detail off from the RTL is reported, with its cycle.
    (The wrong models are the unit's own model class with a parameter off by one, or with ready
    ignoring the downstream.)"""
    if what == "fifo-one-short":
        unit = fifo(5)()
        models = [type(models_of(unit)[0])(4)]
    elif what == "matvec-sf-off-by-one":
        unit = matvec(4, 6, pe=2, simd=2)()
        models = [type(models_of(unit)[0])(2, 4)]
    else:
        unit = width_converter(2, 6)()
        model = models_of(unit)[0]
        model.ready = lambda o_r: True  # the gather never waits for the consumer
        models = [model]
    with pytest.raises(AssertionError, match=r"first mismatch at cycle \d+ .*RTL \(i.ready, o.valid\)"):
        lockstep(unit, 300, 0, p_ready=0.2, models=models)
