"""SkidBuffer: every beat through in order under random valid / ready, full throughput without
stalls, one cycle of latency; its input ready is a flip-flop (its value is set by the clock edge,
never by o.ready in the same cycle)."""
import random

import pytest

from hwgen.rtl.skid import SkidBuffer
from sim.amaranth_streams import ready_on_release, run_stream


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
    # beat 1 to the output register, beat 2 into the skid; the consumer then takes beat 1
    assert ready_on_release(SkidBuffer(width=8), [1, 2]) == [(1, 0), 0, 1]
