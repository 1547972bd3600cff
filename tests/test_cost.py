"""hwgen.cost: resource estimates before synthesis (no tool runs).

Exact values are the rules copied from yosys (memory_libmap's block RAM / LUT RAM / logic choice,
mul2dsp's DSP widths, opt_mem's constant lanes), worked out by hand below; LUT counts are fitted
constants, so those are only checked for their shape (zero, monotonic)."""
import os

import numpy as np
import pytest

from hwgen.cost import Resources, primitives as P, units
from hwgen.ir.types import Bipolar, IntType
from hwgen.rtl.fifo import StreamFIFO
from hwgen.rtl.matvec import MatVecUnit
from hwgen.rtl.sliding_window import SlidingWindowUnit
from hwgen.rtl.threshold import ThresholdUnit
from hwgen.rtl.width_converter import WidthConverter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
U4, I4 = IntType(4, False), IntType(4, True)


# -- Resources ----------------------------------------------------------------------------------
def test_resources_arithmetic():
    a = Resources(lut=3, ff=2, carry=1, bram=1, dsp=0)
    b = Resources(lut=1, ff=1, dsp=2, lutram=4)
    assert a + b == Resources(4, 3, 1, 1, 2, 4)
    assert a - b == Resources(2, 1, 1, 1, -2, -4)
    assert a * 3 == 3 * a == Resources(9, 6, 3, 3, 0, 0)
    assert sum([a, b], Resources.zero()) == a + b
    assert Resources.zero().as_dict() == {"lut": 0, "ff": 0, "carry": 0, "bram": 0, "dsp": 0, "lutram": 0}
    with pytest.raises(TypeError):
        a * 1.5


# -- memories: memory_libmap's rule ---------------------------------------------------------------
def test_rom_4096x4_block_rams():
    # iCE40: logic costs 4096*4/16 = 1024; SB_RAM40_4K as 2048x2 needs 2 x 2 cells: 4*64 + 0.5*(2-1)*4
    # (read mux) + 2*1 (one read port) = 260 < 1024 (1024x4 needs 4 cells and a 4:1 mux: 264)
    m = P.map_memory(4, 4096, "ice40")
    assert (m.kind, m.cells, m.unit_width, m.mult_a) == ("bram", 4, 2, 2)
    assert P.rom(4, 4096, "ice40").bram == 4
    # ECP5: one DP16KD as 4096x4: 128 + 2 = 130 < 1024
    m = P.map_memory(4, 4096, "ecp5")
    assert (m.kind, m.cells, m.unit_width, m.mult_a) == ("bram", 1, 4, 1)
    assert P.rom(4, 4096, "ecp5") == Resources(bram=1)


def test_rom_block_ram_or_logic_by_cost():
    # 64-deep threshold ROMs on ECP5: PDPW16KD 512x36; 163 lanes: 5*128 + 2 = 642 < 163*64/16 = 652
    assert P.map_memory(163, 64, "ecp5").cells == 5
    # 155 lanes: 620 < 642, logic
    assert P.map_memory(155, 64, "ecp5").kind == "logic"
    # iCE40: 64 deep never pays (64 per 16 bits vs 4 per bit); 128 x 16: 64 + 2 < 128
    assert P.map_memory(16, 64, "ice40").kind == "logic"
    assert P.map_memory(16, 128, "ice40").cells == 1
    # LUT RAM is never used for a ROM (prune_rom)
    assert P.map_memory(8, 16, "ecp5").kind == "logic"


def test_block_ram_rom_split_into_cells():
    """A registered block RAM ROM is one memory per cell (rtl.util.group_rom), in the configuration with
    the fewest cells and, of those, the deepest: CNV-W1A1's Conv_5 weight ROM (48 x 12,288 on ECP5) is
    36 cells of 4096 x 4 (as memory_libmap's cost rule maps the whole ROM; 9- and 18-bit cells also
    take 36), so three chunks of twelve 4-bit memories, their 3 x 48 registers, a 3:1 mux and the
    chunk select twice. Gemm_1 (32 x 8,192) takes 16 cells in every configuration: 8192 x 2."""
    rng = np.random.default_rng(0)
    words = [int(w) for w in rng.integers(0, 1 << 48, 12288, dtype=np.uint64)]
    m = P.map_memory(48, 12288, "ecp5")
    assert (m.cells, m.unit_width, m.unit_depth, m.mult_a) == (36, 4, 4096, 3)
    assert P.bram_cell_shape(48, 12288, "ecp5") == (4, 4096)
    assert P.bram_cell_shape(32, 8192, "ecp5") == (2, 8192)
    assert P.bram_cell_shape(768, 192, "ecp5") == (36, 512)  # wide and shallow: 22 cells side by side
    assert P.bram_cell_shape(48, 12288, "ice40") == (2, 2048)  # SB_RAM40_4K: 144 cells in every shape
    one = P.group_rom(48, words, "ecp5", style="bram")
    split = P.group_rom(48, words, "ecp5", style="bram", registered=True, chunk_depth=4096, lane_bits=4)
    assert one.bram == split.bram == 36
    # the select twice (2 x 2 bits) for yosys's one (2 bits), 9 address copies of 12 bits for one
    assert split.ff - one.ff == 3 * 48 + 2 + 8 * 12
    assert split.lut == one.lut


def test_rom_constant_lanes_vanish():
    # bit 0 is 1 in every word (opt_mem removes it), bit 1 follows address bit 0
    assert P.rom_lanes([0b01, 0b11] * 8, 2, 16) == [sum(1 << a for a in range(16) if a % 2)]
    # that lane is a wire from the address: no LUT, one FF (the registered read)
    assert P.rom(2, 16, "ice40", words=[0b01, 0b11] * 8) == Resources(ff=1)
    assert P.rom(3, 16, "ecp5", words=[0b101] * 16) == Resources()


def test_ram_lutram_and_block_ram():
    # ECP5: 16 x 16 RAM -> 4 TRELLIS_DPR16X4 (cost 4*4 + 2 = 18 < 256 logic, < 128 + 14 block RAM)
    assert P.ram(16, 16, "ecp5").lutram == 4
    # iCE40: same RAM in one SB_RAM40_4K (64 + 14 < 256)
    assert P.ram(16, 16, "ice40").bram == 1
    # 8 x 3 words: 24 (logic) < 64 + 14: flip-flops
    r = P.ram(8, 3, "ice40")
    assert r.bram == 0 and r.ff >= 24


@pytest.mark.parametrize("width,depth,target,bram,lutram", [
    (4, 66, "ecp5", 0, 5),     # 65 words: 5 x DPR16X4 deep
    (16, 18, "ecp5", 0, 8),    # 17 x 16: 2 deep x 4 wide
    (256, 4, "ecp5", 0, 64),   # 3 x 256: 64 cells wide
    (4, 514, "ecp5", 1, 0),    # 513 x 4: 128 + 14 < 4*33 + 0.5*32*4 + ... LUT RAM
    (4, 66, "ice40", 1, 0),
    (16, 18, "ice40", 1, 0),
    (8, 4, "ice40", 0, 0),     # 3 x 8 = 24 < 78: flip-flops
])
def test_fifo_memories(width, depth, target, bram, lutram):
    r = units.fifo(StreamFIFO(width=width, depth=depth), target)
    assert (r.bram, r.lutram) == (bram, lutram)


# -- products ---------------------------------------------------------------------------------------
def test_dsp_rules():
    assert P.dsp_blocks(4, 4, "ice40") == 0   # 8-bit result < DSP_Y_MINWIDTH 11
    assert P.dsp_blocks(9, 8, "ice40") == 1
    assert P.dsp_blocks(4, 4, "ecp5") == 1    # every product with both operands >= 2 bits
    assert P.dsp_blocks(1, 8, "ecp5") == 0
    assert P.dsp_blocks(20, 8, "ecp5") == 2   # split at 18 bits
    assert P.mul_shape(4, False, 4, True) == (5, 4)  # Amaranth extends the unsigned operand


def _mv(**kw):
    """A MatVecUnit; `arith` only where the RTL knows it."""
    import inspect

    if "arith" in kw and "arith" not in inspect.signature(MatVecUnit.__init__).parameters:
        kw.pop("arith")
    return MatVecUnit(**kw)


def test_matvec_4x4_products_not_dsp_on_ice40():
    rng = np.random.default_rng(0)
    u = _mv(weights=rng.integers(-8, 8, (16, 64)), in_type=U4, w_type=I4, acc_bits=12, pe=2, simd=8, arith="dsp")
    assert units.matvec(u, "ice40").dsp == 0
    assert units.matvec(u, "ecp5").dsp == 16
    if getattr(u, "arith", None) is not None:  # shift-and-add products never use a DSP block
        v = _mv(weights=rng.integers(-8, 8, (16, 64)), in_type=U4, w_type=I4, acc_bits=12, pe=2, simd=8, arith="lut")
        assert units.matvec(v, "ecp5").dsp == 0


def test_trivial_sums_cost_nothing():
    for t in P.TARGETS:
        assert P.adder_tree(1, 8, t) == Resources.zero()
        assert P.sum_of_terms(8, 8, t, terms=1) == Resources.zero()
        assert P.popcount(1, t) == Resources.zero()
        assert units.width_converter(WidthConverter(element_bits=4, in_elems=3, out_elems=3), t) == Resources.zero()
        swg = SlidingWindowUnit(in_shape=(4, 4, 8), kernel=(1, 1), in_type=U4, simd=2)
        assert units.sliding_window(swg, t) == Resources.zero()


@pytest.mark.parametrize("target", P.TARGETS)
def test_matvec_monotonic_in_pe(target):
    rng = np.random.default_rng(1)
    W = rng.integers(-8, 8, (32, 64))
    est = [units.matvec(MatVecUnit(weights=W, in_type=U4, w_type=I4, acc_bits=13, pe=pe, simd=4), target)
           for pe in (1, 2, 4, 8)]
    luts = [e.lut for e in est]
    ffs = [e.ff for e in est]
    assert luts == sorted(luts) and len(set(luts)) == 4
    assert ffs == sorted(ffs) and len(set(ffs)) == 4


def test_binary_matvec_has_no_dsp():
    rng = np.random.default_rng(2)
    u = MatVecUnit(weights=rng.choice([-1, 1], (64, 64)), in_type=Bipolar, w_type=Bipolar, acc_bits=8, pe=4,
                   simd=16)
    for t in P.TARGETS:
        assert units.matvec(u, t).dsp == 0


def test_threshold_rom_follows_constant_lanes():
    # 64 channels x 3 increasing thresholds in 1 .. 100 on 8-bit accumulators: 9-bit thresholds whose
    # two top bits are always 0, and direction bits all 0: opt_mem keeps 3 x 7 of 3 x 9 + 1 lanes
    rng = np.random.default_rng(3)
    T = np.sort(rng.integers(1, 101, (64, 3)), axis=1)
    u = ThresholdUnit(thresholds=T, decreasing=np.zeros(64, bool), in_bits=8, out_type=IntType(2, False),
                      out_base=0, pe=1)
    assert u.cmp_bits == 9
    assert len(P.rom_lanes(u.rom_init(), 3 * 9 + 1, 64)) == 21
    for t in P.TARGETS:  # 21 x 64: logic on both (iCE40 84 < 2*64 + 2; ECP5 84 < 128 + 2)
        r = units.threshold(u, t)
        assert r.bram == 0 and r.ff >= 21


def test_digits_mlp_memories():
    """digits_mlp_w4a4 at 1024 cycles: yosys (0.23 iCE40, 0.70 ECP5) maps 14 SB_RAM40_4K; 8 DP16KD
    and 25 TRELLIS_DPR16X4 (bench/results/estimate_vs_synth.json). Its 4-bit products are
    shift-and-add (arith "lut"): no DSP block. (Its activations as thresholds, as measured then; the
    plan's default makes them requantizers, one DSP block each on ECP5.)"""
    from hwgen.compiler import compile_model
    from hwgen.lowering import lowering_of_unit
    from hwgen.passes.fold import fold_graph
    from hwgen.passes.schedule import plan_stages
    from hwgen.plan import ClockTarget

    g = compile_model(os.path.join(ROOT, "quant_models", "onnx", "digits_mlp_w4a4.onnx"))
    fold_graph(g, ("auto", 1024))
    stages, _, _ = plan_stages(g, clock=ClockTarget(activation="thresholds"))
    tot = {t: sum((lowering_of_unit(s.unit).estimate(s.unit, t) for s in stages), Resources()) for t in P.TARGETS}
    assert (tot["ice40"].bram, tot["ice40"].dsp) == (14, 0)
    assert (tot["ecp5"].bram, tot["ecp5"].lutram) == (8, 25)
    arith = {getattr(s.unit, "arith", "dsp") for s in stages if hasattr(s.unit, "simd") and hasattr(s.unit, "NF")}
    if arith == {"lut"}:
        assert tot["ecp5"].dsp == 0
    elif arith == {"dsp"}:  # `*` of 4-bit operands: one MULT18X18D per product (4 + 4 + 1 lanes)
        assert tot["ecp5"].dsp == 9
