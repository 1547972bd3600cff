"""hwgen.rtl.fifo.StreamFIFO: amaranth's SyncFIFOBuffered cycle for cycle (same ready, valid and data
under random valid / ready), with its write ready a flip-flop, and no RAM write ever meets the read
of its word (its memory is no_rw_check)."""
import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.sim import Simulator

from hwgen.rtl.fifo import StreamFIFO


@pytest.mark.parametrize("depth,width", [(1, 8), (2, 8), (3, 8), (5, 8), (8, 8), (3, 300), (5, 129), (1, 300)])
def test_stream_fifo_matches_sync_fifo_buffered(depth, width):
    """Wide FIFOs (300 and 129 bits) are three and two slices, each with its own control."""
    m = Module()
    m.submodules.dut = dut = StreamFIFO(width=width, depth=depth)
    m.submodules.ref = ref = SyncFIFOBuffered(width=width, depth=depth)
    rng = random.Random(depth * 1000 + width)
    seen = []

    async def bench(ctx):
        word = 0
        for cycle in range(600):
            phase = (cycle // 100) % 3  # bursts that fill, drain and mix
            valid = rng.random() < (0.9, 0.2, 0.6)[phase]
            ready = rng.random() < (0.2, 0.9, 0.6)[phase]
            ctx.set(dut.i.valid, valid)
            ctx.set(ref.w_en, valid)
            ctx.set(dut.i.payload, word)
            ctx.set(ref.w_data, word)
            ctx.set(dut.o.ready, ready)
            ctx.set(ref.r_en, ready)
            assert not ctx.get(dut.rw_collision), f"cycle {cycle}: a write meets the read of its word"
            got = (ctx.get(dut.i.ready), ctx.get(dut.o.valid))
            exp = (ctx.get(ref.w_rdy), ctx.get(ref.r_rdy))
            assert got == exp, f"cycle {cycle}: (ready, valid) {got} != {exp}"
            if exp[1]:
                assert ctx.get(dut.o.payload) == ctx.get(ref.r_data), f"cycle {cycle}"
            if valid and exp[0]:  # every bit of a wide word differs from the last word's
                word = rng.getrandbits(width)
            seen.append(exp)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert (0, 1) in seen and (1, 0) in seen  # it was full and empty at some point



def test_wide_fifo_slices_keep_their_own_control():
    """yosys keeps one read enable per slice: the output flip-flops of a 300-bit FIFO take their
    clock enables from three different nets (one per <= 128-bit slice), not from one."""
    import json
    import subprocess
    import tempfile
    from pathlib import Path

    from amaranth.back import verilog

    from hwgen.rtl.fifo import fifo_slices

    assert fifo_slices(300) == [(0, 128), (128, 256), (256, 300)]
    with tempfile.TemporaryDirectory() as d:
        Path(d, "f.v").write_text(verilog.convert(StreamFIFO(width=300, depth=3), name="top"))
        subprocess.run(["yosys", "-q", "-p", "read_verilog f.v; synth_ecp5 -top top; write_json net.json"],
                       cwd=d, check=True)
        net = json.loads(Path(d, "net.json").read_text())
    top = net["modules"]["top"]
    payload = {bit: i for i, bit in enumerate(top["ports"]["o__payload"]["bits"])}
    enables = {}
    for cell in top["cells"].values():
        if cell["type"] == "TRELLIS_FF" and cell["connections"]["Q"][0] in payload:
            enables.setdefault(cell["connections"]["CE"][0], []).append(payload[cell["connections"]["Q"][0]])
    assert sorted((min(b), max(b)) for b in enables.values()) == [(0, 127), (128, 255), (256, 299)]
