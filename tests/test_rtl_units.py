"""Unit benches (Amaranth simulator) for the RTL components: MatVecUnit, ThresholdUnit,
WidthConverter, StreamFIFO. Seeded random data plus edge cases (1-bit widths, signed and
unsigned, Bipolar, PE = 1 and PE = all, SIMD = 1 and SIMD = all) with random valid/ready stalls."""
import json
import re

import numpy as np
import pytest
from amaranth.back import verilog
from amaranth.hdl import Fragment

from hwgen.ir.types import Bipolar, IntType, from_wire, signed_bits_for
from hwgen.rtl.fifo import StreamFIFO
from hwgen.rtl.matvec import MatVecUnit, Pipeline
from hwgen.rtl.threshold import ThresholdUnit
from hwgen.rtl.util import group_rom, rom_bank_bits, rom_banks, rom_chunks
from hwgen.rtl.width_converter import WidthConverter
from sim.amaranth_streams import pack_beats, run_stream
from sim.vectors import random_values


def _weights(w_type, shape, rng):
    return random_values(w_type, shape, rng)


def _matvec_case(C, K, in_type, w_type, pe, simd, *, seed, p_valid=1.0, p_ready=1.0, nvec=4,
                 acc_bits=None, zero_frac=0.0, arith="dsp", rom_style=None, pipeline=None, rom_chunk_depth=0,
                 rom_lane_bits=0):
    rng = np.random.default_rng(seed)
    W = _weights(w_type, (C, K), rng)
    if zero_frac and w_type != Bipolar:
        W = np.where(rng.random((C, K)) < zero_frac, 0, W)
    X = random_values(in_type, (nvec, K), rng)
    x_min, x_max = in_type.min, in_type.max
    pos, neg = np.where(W > 0, W, 0), np.where(W < 0, W, 0)
    hi = pos.sum(1) * x_max + neg.sum(1) * x_min
    lo = pos.sum(1) * x_min + neg.sum(1) * x_max
    bits = acc_bits or signed_bits_for(lo.min(), hi.max())
    # accumulator extremes of every channel
    X = np.concatenate([X, np.where(W > 0, x_max, x_min), np.where(W > 0, x_min, x_max)])
    acc = X @ W.T
    dut = MatVecUnit(weights=W, in_type=in_type, w_type=w_type, acc_bits=bits, pe=pe, simd=simd, arith=arith,
                     pipeline=pipeline)
    dut.rom_style = rom_style
    dut.rom_chunk_depth = rom_chunk_depth
    dut.rom_lane_bits = rom_lane_bits
    exp = pack_beats(acc, IntType(bits, True), pe)
    # the replay memory is no_rw_check: no write may meet the read of its word
    got, cycles = run_stream(dut, pack_beats(X, in_type, simd), len(exp), seed=seed,
                             p_valid=p_valid, p_ready=p_ready, never=(dut.rw_collision,))
    return got, exp, cycles, dut


MATVEC_CASES = [
    # C, K, in_type, w_type, pe, simd
    (4, 6, IntType(2, True), IntType(2, True), 1, 1),
    (4, 6, IntType(2, True), IntType(2, True), 2, 3),
    (4, 6, IntType(2, True), IntType(2, True), 4, 6),          # fully parallel: constants
    (4, 6, IntType(3, False), IntType(3, True), 4, 2),
    (4, 6, IntType(3, False), IntType(2, False), 1, 6),
    (3, 5, IntType(1, False), IntType(2, True, True), 3, 5),   # 1-bit unsigned input
    (3, 5, IntType(1, False), IntType(1, False), 1, 1),        # 1-bit unsigned weights
    (5, 4, IntType(4, True), IntType(4, True), 5, 1),          # PE = all, SIMD = 1
    (8, 16, Bipolar, Bipolar, 2, 4),                           # XNOR-popcount, folded
    (8, 16, Bipolar, Bipolar, 8, 16),                          # XNOR-popcount, constants
    (8, 16, Bipolar, Bipolar, 1, 16),
    (8, 16, Bipolar, IntType(3, True), 2, 4),
    (8, 16, Bipolar, IntType(3, True), 8, 16),
    (8, 16, IntType(4, True), Bipolar, 4, 8),
    (8, 16, IntType(4, True), Bipolar, 8, 16),
    (1, 1, Bipolar, Bipolar, 1, 1),                            # degenerate 1x1
    (1, 1, IntType(2, True), IntType(2, True), 1, 1),
]


@pytest.mark.parametrize("arith", ["dsp", "lut"])
@pytest.mark.parametrize("C,K,in_type,w_type,pe,simd", MATVEC_CASES)
def test_matvec_unit(C, K, in_type, w_type, pe, simd, arith):
    """Both product styles: `*` (synthesis may use DSPs) and shift-and-add (LUTs only)."""
    got, exp, _, _ = _matvec_case(C, K, in_type, w_type, pe, simd, seed=C * 31 + K + pe + simd, arith=arith)
    assert got == exp


@pytest.mark.parametrize("pe,simd", [(1, 2), (4, 4)])
def test_matvec_unit_lut_products_wide_operands(pe, simd):
    """Shift-and-add products of 8-bit signed x 5-bit signed and 7-bit unsigned x 8-bit signed
    operands (constant weights at PE = C, SIMD = K; ROM weights folded), accumulator extremes."""
    for in_type, w_type, seed in ((IntType(8, True), IntType(5, True), 1), (IntType(7, False), IntType(8, True), 2)):
        got, exp, _, _ = _matvec_case(4, 4, in_type, w_type, pe, simd, seed=seed, arith="lut", zero_frac=0.2)
        assert got == exp


@pytest.mark.parametrize("pe,simd", [(1, 1), (2, 4), (8, 1), (1, 16), (8, 16)])
def test_matvec_unit_stalls(pe, simd):
    got, exp, _, _ = _matvec_case(8, 16, IntType(2, True), IntType(2, True, True), pe, simd, seed=7,
                                  p_valid=0.6, p_ready=0.4, zero_frac=0.3)
    assert got == exp


@pytest.mark.parametrize("in_type,w_type", [
    (IntType(3, False), IntType(3, True)),   # KWS's Gemm_1 shape: a signed weight's sign row is -(x << 2)
    (IntType(4, True), Bipolar),             # Mux(w, x, -x): the negation is per operand copy
    (Bipolar, Bipolar),                      # XNOR-popcount
])
def test_matvec_unit_operand_copies(in_type, w_type):
    """20 PE lanes with a registered operand word: three copies (lanes 0-6, 7-13, 14-19), each lane
    reads its group's copy; every accumulator exact under random stalls."""
    pipe = Pipeline(operands=True, products=True, tree_every=1)
    got, exp, _, dut = _matvec_case(40, 6, in_type, w_type, 20, 2, seed=5, p_valid=0.6, p_ready=0.5,
                                    arith="lut", pipeline=pipe)
    assert dut.operand_copies == 3
    assert got == exp


def test_matvec_unit_enable_copies_exact_under_stalls_and_kept_by_yosys(tmp_path):
    """A 4-lane, SIMD-32 unit of 8-bit products with the clock target's registers has about 2,000
    pipeline flip-flops: its enable is several copies (rtl.util.EnableCopies, one per 512 FFs), every
    accumulator is still exact under random stalls, and synthesis keeps each copy's out_valid."""
    import re
    import shutil
    import subprocess

    from amaranth.back import verilog

    pipe = Pipeline(operands=True, products=True, tree_every=2)
    got, exp, _, dut = _matvec_case(8, 64, IntType(8, True), IntType(4, True), 4, 32, seed=9, p_valid=0.6,
                                    p_ready=0.5, arith="lut", pipeline=pipe)
    assert got == exp
    copies = len(dut._enables.copies)
    assert copies >= 4
    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    fresh = MatVecUnit(weights=dut.weights, in_type=IntType(8, True), w_type=IntType(4, True), acc_bits=dut.acc_bits,
                       pe=4, simd=32, arith="lut", pipeline=pipe)
    (tmp_path / "mv.v").write_text(verilog.convert(fresh, name="top"))
    subprocess.run(["yosys", "-q", "-p", "read_verilog mv.v; synth_ecp5 -top top; write_verilog -noattr out.v"],
                   cwd=tmp_path, check=True, timeout=600)
    kept = set(re.findall(r"\ben_valid(\d+)\b", (tmp_path / "out.v").read_text()))
    assert len(kept) == copies


@pytest.mark.parametrize("pe,simd,p_ready", [(1, 2, 0.4), (2, 4, 0.2), (8, 16, 0.5), (2, 16, 0.3), (8, 2, 1.0)])
def test_matvec_unit_stall_free_exact_under_stalls(pe, simd, p_ready):
    """Stall-free (Pipeline.stall_free: no clock enables, credits for the output FIFO admit the
    input): every output word arrives, in order, under random valid / ready, folded or not."""
    pipe = Pipeline(operands=True, products=True, tree_every=1, stall_free=True)
    got, exp, _, dut = _matvec_case(8, 16, IntType(4, True), IntType(3, True), pe, simd, seed=pe + simd,
                                    p_valid=0.7, p_ready=p_ready, arith="lut", pipeline=pipe)
    assert dut.credits >= 2
    assert got == exp


@pytest.mark.parametrize("pe,simd", [(2, 2), (2, 16), (8, 16)])
def test_matvec_unit_stall_free_keeps_the_pace(pe, simd):
    """With a consumer that is always ready, the credits never hold a stall-free unit back: its
    II is the one of the unit with an enable (NF x SF cycles per vector), its latency 2 cycles more
    (the FIFO)."""
    pipe = Pipeline(operands=True, products=True, tree_every=1)
    free = Pipeline(operands=True, products=True, tree_every=1, stall_free=True)
    _, _, c_plain, d_plain = _matvec_case(8, 16, IntType(4, True), IntType(3, True), pe, simd, seed=3, nvec=8,
                                          arith="lut", pipeline=pipe)
    got, exp, c_free, d_free = _matvec_case(8, 16, IntType(4, True), IntType(3, True), pe, simd, seed=3, nvec=8,
                                            arith="lut", pipeline=free)
    assert got == exp
    assert d_free.latency == d_plain.latency + 2
    assert [c - 2 for c in c_free] == c_plain


def test_matvec_unit_stall_free_ready_is_a_register():
    """Stall-free, the input ready is the credit flip-flop (and take_stream): with every credit
    held by words the consumer has not taken, raising o.ready leaves i.ready low until the edge."""
    from sim.amaranth_streams import ready_on_release

    pipe = Pipeline(operands=True, products=True, tree_every=1, stall_free=True)
    dut = MatVecUnit(weights=np.ones((2, 2), dtype=np.int64), in_type=IntType(2, True), w_type=IntType(2, True),
                     acc_bits=6, pe=2, simd=2, arith="lut", pipeline=pipe)
    assert ready_on_release(dut, [5] * (2 * (dut.credits + 2))) == [(1, 0), 0, 1]


def test_matvec_unit_stall_free_copies_kept_by_yosys(tmp_path):
    """Stall-free, the operand and lane-flag copies have no enable (their toggle form is
    c <= c ^ (value ^ c)): synthesis still keeps each copy's flip-flops apart."""
    import shutil
    import subprocess

    from amaranth.back import verilog

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    pipe = Pipeline(operands=True, products=True, tree_every=2, stall_free=True)
    rng = np.random.default_rng(9)
    dut = MatVecUnit(weights=rng.integers(-8, 8, (24, 64)), in_type=IntType(4, True), w_type=IntType(4, True),
                     acc_bits=16, pe=24, simd=4, arith="lut", pipeline=pipe)
    assert dut.operand_copies == 3 and dut.control_copies == 6
    (tmp_path / "mv.v").write_text(verilog.convert(dut, name="top"))
    subprocess.run(["yosys", "-q", "-p", "read_verilog mv.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=600)
    top = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]
    q = {b for c in top["cells"].values() if c["type"] == "TRELLIS_FF" for b in c["connections"]["Q"]}
    for name, copies, width in (("x_pipe", 3, 16), ("flags2_", 6, 3)):
        bits = [tuple(top["netnames"][f"{name}{k}"]["bits"]) for k in range(copies)]
        assert all(len(b) == width and set(b) <= q for b in bits), name  # flip-flop outputs
        assert len(set(bits)) == copies, name  # each copy its own flip-flops
    # the replay register's write enables, one per 64-bit slice of a 640-bit input word (SF = 1)
    dut = MatVecUnit(weights=rng.integers(-8, 8, (4, 160)), in_type=IntType(4, True), w_type=IntType(4, True),
                     acc_bits=16, pe=2, simd=160, arith="lut", pipeline=pipe)
    assert (dut.NF, dut.SF) == (2, 1)
    (tmp_path / "mv.v").write_text(verilog.convert(dut, name="top"))
    subprocess.run(["yosys", "-q", "-p", "read_verilog mv.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=600)
    top = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]
    q = {b for c in top["cells"].values() if c["type"] == "TRELLIS_FF" for b in c["connections"]["Q"]}
    writes = [top["netnames"][f"buffer_write{k}"]["bits"][0] for k in range(10)]
    assert set(writes) <= q and len(set(writes)) == 10
    ces = [c["connections"].get("CE", [None])[0] for c in top["cells"].values() if c["type"] == "TRELLIS_FF"]
    assert [ces.count(w) for w in writes] == [64] * 10  # each drives the clock enables of its slice


def test_stall_free_rom_banks_fire_on_their_own_copies(tmp_path):
    """Stall-free, each pair of banks of a logic weight ROM fires on its own copies of the credit and
    take_stream flip-flops (MatVecUnit._bank_fires), and yosys keeps the two pairs' copies apart,
    each fire driving only its own banks' address counters: one fire net to every bank's counter
    enables was TFC_2W2A's critical path at II 64. Exact under random stalls."""
    import shutil
    import subprocess

    from amaranth.back import verilog

    pipe = Pipeline(operands=True, products=True, tree_every=2, stall_free=True)
    got, exp, _, dut = _matvec_case(32, 64, IntType(2, True), IntType(2, True), 16, 4, seed=3, p_valid=0.6,
                                    p_ready=0.5, arith="lut", rom_style="logic", pipeline=pipe)
    assert got == exp and len(rom_banks(16 * 4 * 2, "logic")) == 4 and (dut.NF, dut.SF) == (2, 16)
    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    (tmp_path / "mv.v").write_text(verilog.convert(dut, name="top"))
    subprocess.run(["yosys", "-q", "-p", "read_verilog mv.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=600)
    top = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]
    q = {b for c in top["cells"].values() if c["type"] == "TRELLIS_FF" for b in c["connections"]["Q"]}
    # banks of 32 bits, two banks (ROM_BITS_PER_FIRE_COPY) a copy
    for name in ("credit_copy", "take_stream_copy"):
        bits = [top["netnames"][f"{name}{c}"]["bits"][0] for c in range(2)]
        assert set(bits) <= q and len(set(bits)) == 2 and f"{name}2" not in top["netnames"], name
    ce = {}
    for c in top["cells"].values():
        if c["type"] == "TRELLIS_FF" and "CE" in c["connections"]:
            ce.setdefault(c["connections"]["CE"][0], set()).update(c["connections"]["Q"])
    for c in range(2):
        counters = {x for n, v in top["netnames"].items() for b in (2 * c, 2 * c + 1) if n.startswith(f"rom{b}_addr")
                    for x in v["bits"]}
        fires = [bits for bits in ce.values() if bits & counters]
        assert len(fires) == 1 and fires[0] <= counters, c  # one enable net, and it drives these banks only


def test_matvec_unit_replay_buffer_in_enable_slices():
    """SF > 1 and NF > 1 with an input word of 640 bits: the replay memory is two banks (512 + 128
    bits), each written and read under its own enable copy; exact under random stalls."""
    from amaranth.back import verilog

    got, exp, _, dut = _matvec_case(4, 160, IntType(8, True), IntType(2, True), 2, 80, seed=13, p_valid=0.6,
                                    p_ready=0.5, arith="lut")
    assert (dut.NF, dut.SF) == (2, 2)
    assert got == exp
    text = verilog.convert(MatVecUnit(weights=dut.weights, in_type=IntType(8, True), w_type=IntType(2, True),
                                      acc_bits=dut.acc_bits, pe=2, simd=80, arith="lut"), name="top")
    widths = sorted(int(w) + 1 for w in re.findall(r"reg \[(\d+):0\] buffer\d \[1:0\]", text))
    assert widths == [128, 512]


@pytest.mark.parametrize("pipeline", [None, Pipeline(operands=True, products=True, tree_every=2)])
def test_matvec_lane_groups_read_their_own_control_copies(pipeline):
    """PE 24 lanes of about 10-bit accumulators: stage 2's valid / first / last are one copy per 6
    lanes (four copies); every accumulator is exact under random stalls, also across vectors (first
    clears each lane's sum) and at the extremes."""
    got, exp, _, dut = _matvec_case(48, 12, IntType(3, True), IntType(2, True), 24, 4, seed=21, p_valid=0.6,
                                    p_ready=0.5, nvec=6, arith="lut", pipeline=pipeline)
    assert dut.control_lanes_per_copy == 64 // dut.acc_bits and dut.control_copies == -(-24 // dut.control_lanes_per_copy) > 1
    assert got == exp


def test_rom_banks_split_wide_logic_roms_only():
    assert rom_banks(2048, "logic") == [(32 * b, 32 * (b + 1)) for b in range(64)]
    assert rom_banks(300, "logic") == [(30 * b, 30 * (b + 1)) for b in range(10)]
    assert rom_banks(32, "logic") == [(0, 32)]
    assert rom_banks(2048, "bram") == rom_banks(2048, None) == [(0, 2048)]
    # deeper than 64 words: about 128 LUT leaves (bits x words/16) per address register, >= 16 bits
    assert rom_bank_bits(64) == 32 and rom_bank_bits(96) == 21 and rom_bank_bits(128) == rom_bank_bits(4096) == 16
    assert rom_banks(768, "logic", 96) == [(768 * b // 37, 768 * (b + 1) // 37) for b in range(37)]
    assert rom_banks(768, "logic", 64) == [(32 * b, 32 * (b + 1)) for b in range(24)]
    assert rom_banks(32, "logic", 1024) == [(0, 16), (16, 32)]


@pytest.mark.parametrize("in_type,w_type,pe,simd,banks", [
    (Bipolar, Bipolar, 4, 64, 8),                     # 256-bit XNOR weight word
    (IntType(3, False), IntType(3, True), 4, 16, 6),  # 192 bits: banks of 32
    (IntType(2, True), IntType(2, True), 2, 46, 6),   # 184 bits: bank boundaries inside lanes' weights
])
def test_matvec_unit_banked_logic_rom(in_type, w_type, pe, simd, banks):
    """A logic ROM wider than ROM_BANK_BITS is split into banks, each with its own address counter;
    the unit still computes every accumulator exactly, under random valid/ready stalls."""
    got, exp, _, dut = _matvec_case(8, 92 if simd == 46 else 64, in_type, w_type, pe, simd, seed=11,
                                    p_valid=0.7, p_ready=0.5, rom_style="logic")
    assert got == exp
    frag = Fragment.get(dut, None)
    roms = [sub[1] for sub in frag.subfragments if str(sub[1]).startswith("rom")]
    assert sorted(roms) == [f"rom{b}" for b in range(banks)]


def test_matvec_unit_block_ram_rom_gets_its_own_register():
    """Pipelined from a block RAM weight ROM, the read data (and the input word beside it) get one
    more register (MatVecUnit.rom_levels): exact under random stalls; without stalls every output
    comes exactly one cycle later than from a logic ROM, at the same rate."""
    pipe = Pipeline(operands=True, products=True, tree_every=2)
    runs = {}
    for style in ("bram", "logic"):
        got, exp, _, dut = _matvec_case(8, 24, IntType(4, True), IntType(3, True), 2, 6, seed=17, p_valid=0.6,
                                        p_ready=0.5, arith="lut", rom_style=style, pipeline=pipe)
        assert got == exp
        assert dut.rom_levels == (style == "bram")
        got, exp, cycles, dut = _matvec_case(8, 24, IntType(4, True), IntType(3, True), 2, 6, seed=17, arith="lut",
                                             rom_style=style, pipeline=pipe)
        assert got == exp
        runs[style] = (cycles, dut.latency)
    assert [c - 1 for c in runs["bram"][0]] == runs["logic"][0]
    assert runs["bram"][1] == runs["logic"][1] + 1


@pytest.mark.parametrize("chunk,lanes,names", [
    (4, 0, ["rom_c0", "rom_c1", "rom_c2", "rom_c3"]),  # 16 words: 4 x 4
    (8, 0, ["rom_c0", "rom_c1"]), (16, 0, ["rom"]), (32, 0, ["rom"]),
    (16, 16, ["rom_l0", "rom_l1", "rom_l2"]),  # 36-bit words: 16 + 16 + 4 bits
    (8, 18, ["rom_c0_l0", "rom_c0_l1", "rom_c1_l0", "rom_c1_l1"]),
    (4, 18, [f"rom_c{c}_l{k}" for c in range(4) for k in range(2)]),  # 8 cells: two address copies
])
def test_matvec_unit_block_ram_rom_split_into_cells(chunk, lanes, names):
    """A registered block RAM ROM split into memories of `chunk` words by `lanes` bits, each chunk with
    its own register, muxed after them: exact under random stalls, with the same latency and rate as
    one memory (the split adds no cycle: the chunk registers are the ROM's own level)."""
    pipe = Pipeline(operands=True, products=True)
    got, exp, _, dut = _matvec_case(8, 24, Bipolar, IntType(3, True), 2, 6, seed=5, p_valid=0.6, p_ready=0.5,
                                    arith="lut", rom_style="bram", pipeline=pipe, rom_chunk_depth=chunk,
                                    rom_lane_bits=lanes)
    assert got == exp and dut.NF * dut.SF == 16
    frag = Fragment.get(dut, None)
    assert sorted(str(sub[1]) for sub in frag.subfragments if str(sub[1]).startswith("rom")) == names
    got, exp, cycles, _ = _matvec_case(8, 24, Bipolar, IntType(3, True), 2, 6, seed=5, arith="lut",
                                       rom_style="bram", pipeline=pipe, rom_chunk_depth=chunk, rom_lane_bits=lanes)
    _, _, one, _ = _matvec_case(8, 24, Bipolar, IntType(3, True), 2, 6, seed=5, arith="lut", rom_style="bram",
                                pipeline=pipe)
    assert got == exp and cycles == one


def test_matvec_unit_wide_block_ram_rom_chunk_select_copies():
    """The chunk mux after a wide registered block RAM ROM (8 x 6 x 3 = 144-bit words, 4 chunks) takes
    one copy of its select register per 64 bits: exact under random stalls, and the copies are
    flip-flops of their own in the netlist's source."""
    pipe = Pipeline(operands=True, products=True)
    got, exp, _, dut = _matvec_case(16, 24, Bipolar, IntType(3, True), 8, 6, seed=7, p_valid=0.6, p_ready=0.5,
                                    arith="lut", rom_style="bram", pipeline=pipe, rom_chunk_depth=2, nvec=3)
    assert got == exp and dut.NF * dut.SF == 8
    text = verilog.convert(dut, ports=[dut.i.payload, dut.i.valid, dut.i.ready, dut.o.payload, dut.o.valid,
                                       dut.o.ready])
    assert sorted(set(re.findall(r"\brom_chunk_q\d+\b", text))) == ["rom_chunk_q0", "rom_chunk_q1", "rom_chunk_q2"]


def test_matvec_unit_deep_logic_rom_narrower_banks():
    """A logic ROM of 128 words takes banks of 16 bits (rom_bank_bits), exact under stalls."""
    got, exp, _, dut = _matvec_case(32, 192, IntType(2, True), IntType(2, True), 2, 24, seed=4, p_valid=0.7,
                                    p_ready=0.5, rom_style="logic", nvec=2)
    assert got == exp and dut.NF * dut.SF == 128
    frag = Fragment.get(dut, None)
    assert sorted(str(sub[1]) for sub in frag.subfragments if str(sub[1]).startswith("rom")) == [f"rom{b}" for b in range(6)]


def test_block_ram_rom_cells_read_their_own_address_copies(tmp_path):
    """A registered block RAM ROM of 8 cells (2 chunks x 4 lanes): yosys keeps one address register
    per 4 cells (rtl.util.rom_cell_reads), every cell's address pins driven by flip-flops of its
    group's copy only: one address register to all 36 cells of CNV-W1A1's Conv_5 was its ECP5
    critical path (10.57 ns to a far cell)."""
    import shutil
    import subprocess

    from amaranth.back import verilog
    from amaranth.hdl import Const, Elaboratable, Module, Signal

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    words = [int(w) for w in np.random.default_rng(1).integers(0, 1 << 36, 2048)]

    class Rom(Elaboratable):
        def __init__(self):
            self.q = Signal(36)

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.q.eq(group_rom(m, width=36, words=words, step=Const(1), en=Const(1), style="bram",
                                            registered=True, chunk_depth=1024, lane_bits=9))
            return m

    rom = Rom()
    (tmp_path / "rom.v").write_text(verilog.convert(rom, name="top", ports=[rom.q]))
    subprocess.run(["yosys", "-q", "-p", "read_verilog rom.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=600)
    top = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]
    q = {c["connections"]["Q"][0] for c in top["cells"].values() if c["type"] == "TRELLIS_FF"}
    groups = {}
    for name, c in top["cells"].items():
        if c["type"] == "DP16KD":
            addr = tuple(c["connections"][f"ADA{i}"][0] for i in range(14))
            live = {b for b in addr if not isinstance(b, str)}
            assert len(live) == 10 and live <= q, name  # 1024 words: 10 address bits, each a flip-flop
            groups.setdefault(frozenset(live), []).append(name)
    assert sorted(len(g) for g in groups.values()) == [4, 4]
    assert not set.intersection(*map(set, groups))  # two disjoint sets of address flip-flops


def test_rom_chunks():
    assert rom_chunks(12288, 4096) == [(0, 4096), (4096, 8192), (8192, 12288)]
    assert rom_chunks(10000, 4096) == [(0, 4096), (4096, 8192), (8192, 10000)]
    assert rom_chunks(4096, 4096) == rom_chunks(4096, 0) == [(0, 4096)]


def test_matvec_unit_throughput():
    """Back to back, a vector takes (C/PE) * (K/SIMD) cycles."""
    C, K, pe, simd = 8, 12, 2, 3
    got, exp, cycles, dut = _matvec_case(C, K, IntType(3, True), IntType(2, True), pe, simd, seed=3, nvec=20)
    assert got == exp
    per_vec = [cycles[i] for i in range(dut.NF - 1, len(cycles), dut.NF)]
    gaps = np.diff(per_vec[2:])
    assert set(gaps.tolist()) == {dut.NF * dut.SF}


def test_matvec_unit_narrow_accumulator_wraps():
    """An accumulator one bit too narrow gives wrong extremes (the check the benches rely on)."""
    rng = np.random.default_rng(0)
    W = random_values(IntType(2, True), (4, 8), rng)
    x_min, x_max = -2, 1
    hi = (np.where(W > 0, W, 0).sum(1) * x_max + np.where(W < 0, W, 0).sum(1) * x_min).max()
    lo = (np.where(W > 0, W, 0).sum(1) * x_min + np.where(W < 0, W, 0).sum(1) * x_max).min()
    bits = signed_bits_for(lo, hi)
    got, exp, _, _ = _matvec_case(4, 8, IntType(2, True), IntType(2, True), 2, 4, seed=0, acc_bits=bits)
    assert got == exp
    narrow, wrapped, _, _ = _matvec_case(4, 8, IntType(2, True), IntType(2, True), 2, 4, seed=0,
                                         acc_bits=bits - 1)
    assert narrow == wrapped  # the hardware wraps exactly like a (bits-1)-bit register ...
    values = from_wire(np.array([(b >> (k * (bits - 1))) & ((1 << (bits - 1)) - 1)
                                 for b in narrow for k in range(2)]), IntType(bits - 1, True))
    true = from_wire(np.array([(b >> (k * bits)) & ((1 << bits) - 1) for b in got for k in range(2)]),
                     IntType(bits, True))
    assert not np.array_equal(values, true)  # ... so the extremes come out wrong


def _threshold_case(C, L, in_bits, out_type, out_base, pe, *, seed, p_valid=1.0, p_ready=1.0,
                    style="auto", registers=(False, False), registered_enable=False):
    rng = np.random.default_rng(seed)
    amin, amax = -(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1
    T = np.sort(rng.integers(amin - 1, amax + 2, size=(C, L)), axis=1)  # one outside the range too
    dec = rng.random(C) < 0.4
    X = rng.integers(amin, amax + 1, size=(6, C))
    X = np.concatenate([X, np.clip(T.T, amin, amax), np.clip(T.T - 1, amin, amax),
                        np.full((1, C), amin), np.full((1, C), amax)])
    a = X[..., None]
    level = np.where(dec, (a <= T).sum(-1), (a >= T).sum(-1))
    out = 2 * level - 1 if out_type == Bipolar else out_base + level
    dut = ThresholdUnit(thresholds=T, decreasing=dec, in_bits=in_bits, out_type=out_type,
                        out_base=out_base, pe=pe, style=style, registers=registers,
                        registered_enable=registered_enable)
    exp = pack_beats(out, out_type, pe)
    got, _ = run_stream(dut, pack_beats(X, IntType(in_bits, True), pe), len(exp), seed=seed,
                        p_valid=p_valid, p_ready=p_ready)
    return got, exp


THRESHOLD_CASES = [
    # C, L, in_bits, out_type, out_base, pe
    (4, 1, 1, Bipolar, -1, 1),            # 1-bit accumulator
    (4, 1, 5, Bipolar, -1, 4),
    (4, 1, 5, Bipolar, -1, 2),
    (6, 3, 6, IntType(2, True), -2, 3),
    (6, 3, 6, IntType(2, False), 0, 6),
    (6, 3, 6, IntType(2, True, True), -1, 1),
    (4, 15, 8, IntType(4, False), 0, 2),
    (4, 15, 8, IntType(4, True), -8, 4),
    (3, 2, 1, IntType(2, False), 0, 3),
    (2, 1, 4, IntType(1, False), 0, 1),   # 1-bit unsigned output
]


@pytest.mark.parametrize("style", ["compare", "lut"])
@pytest.mark.parametrize("C,L,in_bits,out_type,out_base,pe", THRESHOLD_CASES)
def test_threshold_unit(C, L, in_bits, out_type, out_base, pe, style):
    got, exp = _threshold_case(C, L, in_bits, out_type, out_base, pe, seed=C + L + in_bits + pe,
                               style=style)
    assert got == exp


@pytest.mark.parametrize("registers,skid", [((False, False), False), ((True, False), False), ((True, True), False),
                                           ((True, True), True)])
@pytest.mark.parametrize("style", ["compare", "lut"])
@pytest.mark.parametrize("pe", [1, 2, 6])
def test_threshold_unit_stalls(pe, style, registers, skid):
    """With stalls, unpipelined and with the clock target's registers (ROM output, comparisons; and
    a skid register behind the output with a flip-flop enable, rtl.util.unit_enable)."""
    got, exp = _threshold_case(6, 3, 7, IntType(2, True), -2, pe, seed=11, p_valid=0.5, p_ready=0.5,
                               style=style, registers=registers, registered_enable=skid)
    assert got == exp


def test_threshold_unit_registered_enable_ready_is_a_register():
    """The input ready of a ThresholdUnit with a registered enable stays low until the clock edge
    after o.ready rises (with one beat in the output register and one in the skid register)."""
    from sim.amaranth_streams import ready_on_release

    dut = ThresholdUnit(thresholds=np.array([[0], [1]]), decreasing=np.array([False, False]), in_bits=4,
                        out_type=IntType(1, False), out_base=0, pe=2, style="compare", registers=(True, True),
                        registered_enable=True)
    assert ready_on_release(dut, [3] * (dut.latency + 2)) == [(1, 0), 0, 1]


def test_threshold_unit_registered_enable_copies_exact_and_kept_by_yosys(tmp_path):
    """48 lanes of 15 registered comparisons under a registered enable: about 1,600 pipeline
    flip-flops, so the registers take several copies of `go` (rtl.util.unit_enable), each a
    register that synthesis keeps; every output is still exact under random stalls."""
    import shutil
    import subprocess

    from amaranth.back import verilog

    got, exp = _threshold_case(48, 15, 10, IntType(4, True), -8, 48, seed=5, p_valid=0.6, p_ready=0.4,
                               style="compare", registers=(True, True), registered_enable=True)
    assert got == exp
    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    rng = np.random.default_rng(5)
    T = np.sort(rng.integers(-512, 512, (48, 15)), axis=1)
    dut = ThresholdUnit(thresholds=T, decreasing=np.zeros(48, bool), in_bits=10, out_type=IntType(4, True),
                        out_base=-8, pe=48, style="compare", registers=(True, True), registered_enable=True)
    text = verilog.convert(dut, name="top")
    copies = set(re.findall(r"\bgo(\d+)\b", text))
    assert len(copies) >= 3
    (tmp_path / "th.v").write_text(text)
    subprocess.run(["yosys", "-q", "-p", "read_verilog th.v; synth_ecp5 -top top; write_verilog -noattr out.v"],
                   cwd=tmp_path, check=True, timeout=600)
    assert set(re.findall(r"\bgo(\d+)\b", (tmp_path / "out.v").read_text())) == copies


@pytest.mark.parametrize("kind", ["threshold", "window"])
def test_registered_enable_output_valid_is_a_flip_flop(tmp_path, kind):
    """Behind a skid register (unit_enable's registered form) the output valid, out_valid | skid
    full, is a flip-flop of its own (SkidEnables.shown_valid) after synthesis, not a LUT whose net
    then travels to the consumer; the units stay exact under random stalls (the other tests)."""
    import shutil
    import subprocess

    from hwgen.rtl.sliding_window import SlidingWindowUnit

    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed (make setup)")
    if kind == "threshold":
        dut = ThresholdUnit(thresholds=np.array([[0, 3], [1, 2]]), decreasing=np.array([False, True]), in_bits=4,
                            out_type=IntType(2, False), out_base=0, pe=2, style="compare", registers=(True, True),
                            registered_enable=True)
    else:
        dut = SlidingWindowUnit(in_shape=(5, 6, 4), kernel=(3, 3), in_type=IntType(4, True), pads=(1, 1, 1, 1),
                                simd=2, registered_read=True)
    (tmp_path / "u.v").write_text(verilog.convert(dut, name="top"))
    subprocess.run(["yosys", "-q", "-p", "read_verilog u.v; synth_ecp5 -top top; write_json net.json"],
                   cwd=tmp_path, check=True, timeout=600)
    top = json.loads((tmp_path / "net.json").read_text())["modules"]["top"]
    q = {b for c in top["cells"].values() if c["type"] == "TRELLIS_FF" for b in c["connections"]["Q"]}
    assert top["ports"]["o__valid"]["bits"][0] in q


def test_threshold_style_auto():
    T = np.tile(np.arange(-127, 128), (4, 1))  # 255 thresholds on an 8-bit accumulator
    dec = np.zeros(4, bool)
    many = ThresholdUnit(thresholds=T, decreasing=dec, in_bits=8, out_type=IntType(8, False), out_base=0)
    few = ThresholdUnit(thresholds=T[:, :3], decreasing=dec, in_bits=8, out_type=IntType(2, False), out_base=0)
    assert (many.style, few.style) == ("lut", "compare")
    assert many.rom_bits == 4 * 256 * 8
    for unit in (many, few):
        Fragment.get(unit, None)  # elaborates (and marks them used)


@pytest.mark.parametrize("bits,n_in,n_out,p", [
    (3, 2, 6, 1.0), (3, 6, 2, 1.0), (2, 4, 6, 1.0), (2, 6, 4, 0.5), (1, 1, 12, 0.6),
    (1, 12, 1, 0.6), (5, 3, 3, 0.5), (2, 8, 12, 1.0), (7, 5, 3, 0.7),
    (8, 16, 48, 1.0), (8, 16, 48, 0.6), (5, 20, 60, 0.5),  # gathered words of several load copies
])
def test_width_converter(bits, n_in, n_out, p):
    rng = np.random.default_rng(bits * 100 + n_in * 10 + n_out)
    t = IntType(bits, False)
    n = 2 * np.lcm(n_in, n_out) * 3
    X = rng.integers(0, 1 << bits, size=(1, n))
    dut = WidthConverter(element_bits=bits, in_elems=n_in, out_elems=n_out)
    exp = pack_beats(X, t, n_out)
    got, cycles = run_stream(dut, pack_beats(X, t, n_in), len(exp), seed=1, p_valid=p, p_ready=p)
    assert got == exp
    if p == 1.0:  # no stalls: the narrow side runs at one beat per cycle
        assert cycles[-1] - cycles[0] <= max(len(exp), n // n_in) + 2


@pytest.mark.parametrize("n_in,n_out,p", [(6, 2, 1.0), (6, 2, 0.5), (4, 6, 0.7), (12, 1, 1.0)])
def test_width_converter_registered_ready(n_in, n_out, p):
    """A split whose input ready is a register: same beats, and with no stalls exactly one idle
    cycle per word on the narrow side."""
    rng = np.random.default_rng(n_in * 10 + n_out)
    t = IntType(3, False)
    n = 2 * np.lcm(n_in, n_out) * 3
    X = rng.integers(0, 8, size=(1, n))
    dut = WidthConverter(element_bits=3, in_elems=n_in, out_elems=n_out, registered_ready=True)
    exp = pack_beats(X, t, n_out)
    got, cycles = run_stream(dut, pack_beats(X, t, n_in), len(exp), seed=3, p_valid=p, p_ready=p)
    assert got == exp
    if p == 1.0:
        words = n // dut.mid
        assert cycles[-1] - cycles[0] == (len(exp) - 1) + (words - 1)
        assert dut.cycles(n // n_in) == len(exp) + words


def test_width_converter_registered_ready_needs_a_split():
    with pytest.raises(ValueError, match="splits words"):
        WidthConverter(element_bits=3, in_elems=2, out_elems=6, registered_ready=True)


def test_stream_fifo():
    beats = list(range(200))
    got, _ = run_stream(StreamFIFO(width=8, depth=5), beats, len(beats), p_valid=0.5, p_ready=0.5, seed=2)
    assert got == beats
    got, cycles = run_stream(StreamFIFO(width=8, depth=4), beats, len(beats))
    assert got == beats and cycles[-1] - cycles[0] == len(beats) - 1  # full rate
