"""hwgen.rtl.fifo.StreamFIFO: amaranth's SyncFIFOBuffered cycle for cycle (same ready, valid and data
under random valid / ready), with its write ready a flip-flop, and no RAM write ever meets the read
of its word (its memory is no_rw_check)."""
import random

import pytest
from amaranth.hdl import Module
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.sim import Simulator

from hwgen.rtl.fifo import StreamFIFO


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 8])
def test_stream_fifo_matches_sync_fifo_buffered(depth):
    m = Module()
    m.submodules.dut = dut = StreamFIFO(width=8, depth=depth)
    m.submodules.ref = ref = SyncFIFOBuffered(width=8, depth=depth)
    rng = random.Random(depth)
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
            if valid and exp[0]:
                word = (word + 1) & 0xFF
            seen.append(exp)
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert (0, 1) in seen and (1, 0) in seen  # it was full and empty at some point

