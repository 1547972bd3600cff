"""ResidualAddUnit equals the golden Add (hwgen.lowering.residual) bit-exactly (half-to-even ties, floor,
saturation) on exhaustive and random operand pairs, with random stalls on a, b and o."""
import itertools
import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from hwgen.golden import run_op
from hwgen.ir import Add
from hwgen.ir.types import IntType, from_wire, to_wire
from hwgen.rtl.residual_add import ResidualAddUnit
from hwgen.rtl.util import pack_ints


def run_two(dut, a_beats, b_beats, n_out, *, seed=0, p_valid=0.7, p_ready=0.7, max_cycles=100_000):
    """Drive streams a and b independently (own random stalls) and collect n_out beats of o."""
    rngs = [random.Random(seed), random.Random(seed + 7), random.Random(seed + 1)]
    out, when = [], []

    def driver(port, beats, rng):
        async def run(ctx):
            for beat in beats:
                while rng.random() >= p_valid:
                    ctx.set(port.valid, 0)
                    await ctx.tick()
                ctx.set(port.payload, beat)
                ctx.set(port.valid, 1)
                await ctx.tick().until(port.ready)
            ctx.set(port.valid, 0)
        return run

    async def monitor(ctx):
        cycle = 0
        while len(out) < n_out:
            assert cycle < max_cycles, f"only {len(out)} of {n_out} beats"
            r = rngs[2].random() < p_ready
            ctx.set(dut.o.ready, int(r))
            _, _, valid, payload = await ctx.tick().sample(dut.o.valid, dut.o.payload)
            if r and valid:
                out.append(int(payload))
                when.append(cycle)
            cycle += 1

    top = Module()
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(driver(dut.a, a_beats, rngs[0]), background=True)
    sim.add_testbench(driver(dut.b, b_beats, rngs[1]), background=True)
    sim.add_testbench(monitor)
    sim.run()
    run_two.cycles = when
    return out


def beats_of(values, dtype, elems):
    wire = to_wire(values, dtype)
    return [pack_ints(wire[i:i + elems], dtype.wire_bits) for i in range(0, len(wire), elems)]


def unpack(payloads, dtype, elems):
    bits = dtype.wire_bits
    flat = [(p >> (e * bits)) & ((1 << bits) - 1) for p in payloads for e in range(elems)]
    return from_wire(np.array(flat, dtype=np.int64), dtype)


I4, I3, U3, U4 = IntType(4, True), IntType(3, True), IntType(3, False), IntType(4, False)
CASES = [  # a_shift, b_shift, out_shift, a_type, b_type, out_type, mode, elems
    (1, 0, 1, I4, I4, I4, "ROUND", 1),  # h + f/2 (dsODENet dt = 1/2)
    (2, 0, 2, I4, I4, I4, "ROUND", 2),
    (3, 0, 3, I4, I3, I4, "ROUND", 4),
    (0, 0, 0, I4, I4, I4, "ROUND", 2),  # plain saturating add
    (0, 1, 2, U3, I4, I3, "ROUND", 1),
    (2, 0, 3, I4, U4, U3, "HALF_EVEN", 2),
    (1, 0, 2, I4, I4, IntType(4, True, narrow=True), "FLOOR", 1),
    (0, 2, 1, I3, I3, IntType(6, True), "ROUND", 3),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "as{}bs{}os{}_{}_{}_{}_{}x{}".format(*c))
def test_add_matches_golden_on_every_pair(case):
    a_shift, b_shift, out_shift, a_t, b_t, o_t, mode, elems = case
    op = Add(name="add", inputs=["a", "b"], outputs=["y"], a_shift=a_shift, b_shift=b_shift,
             out_shift=out_shift, a_type=a_t, b_type=b_t, out_type=o_t, out_scale=1.0, rounding_mode=mode)
    pairs = np.array(list(itertools.product(range(a_t.min, a_t.max + 1), range(b_t.min, b_t.max + 1))))
    rep = -(-len(pairs) // elems) * elems
    pairs = np.concatenate([pairs, pairs[:rep - len(pairs)]])
    a, b = pairs[:, 0], pairs[:, 1]
    want = run_op(op, a, b)
    dut = ResidualAddUnit.from_op(op, elems=elems)
    out = run_two(dut, beats_of(a, a_t, elems), beats_of(b, b_t, elems), len(a) // elems, seed=sum(case[:3]))
    got = unpack(out, o_t, elems)
    np.testing.assert_array_equal(got, want)
    if out_shift and mode != "FLOOR":  # ties occurred and both directions were exercised
        total = (a << a_shift) + (b << b_shift)
        assert ((total & ((1 << out_shift) - 1)) == (1 << (out_shift - 1))).sum() >= 2


def test_full_throughput_without_stalls():
    op = Add(name="add", inputs=["a", "b"], outputs=["y"], a_shift=1, b_shift=0, out_shift=1, a_type=I4,
             b_type=I4, out_type=I4, out_scale=1.0)
    rng = np.random.default_rng(0)
    a, b = rng.integers(-8, 8, 64), rng.integers(-8, 8, 64)
    dut = ResidualAddUnit.from_op(op, elems=4)
    out = run_two(dut, beats_of(a, I4, 4), beats_of(b, I4, 4), 16, p_valid=1.0, p_ready=1.0)
    np.testing.assert_array_equal(unpack(out, I4, 4), run_op(op, a, b))
    assert run_two.cycles[-1] <= 16 + dut.latency + 1
