"""SkidBuffer: every beat through in order under random valid / ready, full throughput without
stalls, one cycle of latency; its input ready is a flip-flop (its value is set by the clock edge,
never by o.ready in the same cycle)."""
import random

import pytest
from amaranth.sim import Simulator

from hwgen.rtl.skid import SkidBuffer
from sim.amaranth_streams import run_stream


@pytest.mark.parametrize("width", [1, 8, 64, 65, 200])  # one, two and four select copies
@pytest.mark.parametrize("p_valid,p_ready", [(0.7, 0.5), (0.3, 0.9), (1.0, 0.4)])
def test_beats_in_order_under_stalls(width, p_valid, p_ready):
    rng = random.Random(width)
    beats = [rng.getrandbits(width) for _ in range(300)]
    out, _ = run_stream(SkidBuffer(width=width), beats, len(beats), seed=width, p_valid=p_valid, p_ready=p_ready)
    assert out == beats


@pytest.mark.parametrize("width", [8, 200])
def test_full_throughput_one_cycle_latency(width):
    beats = list(range(50))
    out, cycles = run_stream(SkidBuffer(width=width), beats, len(beats))
    assert out == beats
    assert cycles == list(range(cycles[0], cycles[0] + len(beats))) and cycles[0] == SkidBuffer.latency


def test_input_ready_does_not_follow_output_ready_within_a_cycle():
    """With a beat parked in the skid register, raising o.ready leaves i.ready low until the edge."""
    dut = SkidBuffer(width=8)
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.o.ready, 0)
        for v in (1, 2):  # beat 1 to the output register, beat 2 into the skid
            ctx.set(dut.i.payload, v)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        seen.append(ctx.get(dut.i.ready))
        ctx.set(dut.o.ready, 1)  # consumer takes beat 1 now
        seen.append(ctx.get(dut.i.ready))
        await ctx.tick()
        seen.append(ctx.get(dut.i.ready))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen == [0, 0, 1]
