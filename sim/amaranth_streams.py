"""Stream drivers for Amaranth's own simulator (unit benches of hwgen.rtl components).

`run_stream(dut, beats, n_out, ...)` pushes payload integers into `dut.i` and collects `n_out`
payloads from `dut.o`, with seeded random valid/ready stalls; it returns the received payloads
and the cycle at which each was transferred.
"""
from __future__ import annotations

import random

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from hwgen.ir.types import to_wire
from hwgen.rtl.util import pack_ints


def pack_beats(values: np.ndarray, dtype, per_beat: int) -> list[int]:
    """Vectors [N, E] of integer values -> payload integers, `per_beat` elements each."""
    wire = to_wire(np.asarray(values), dtype)
    bits = dtype.wire_bits
    flat = wire.reshape(len(wire), -1)
    beats = []
    for row in flat:
        for b in range(0, len(row), per_beat):
            beats.append(pack_ints(row[b:b + per_beat], bits))
    return beats


def run_stream(dut, beats: list[int], n_out: int, *, seed: int = 0, p_valid: float = 1.0,
               p_ready: float = 1.0, max_cycles: int = 200_000, vcd: str | None = None,
               ready_ignored: bool = False, never: tuple = ()):
    """ready_ignored: the output needs no ready (a design without output backpressure): o.ready is
    held low and every cycle with o.valid high counts as a transfer. `never`: 1-bit signals of the
    design (probes) that must be low at every clock edge; an AssertionError names the first that
    is not, and the cycle."""
    rng_in = random.Random(seed)
    rng_out = random.Random(seed + 1)
    out: list[int] = []
    cycles: list[int] = []
    state = {"cycle": 0}

    async def driver(ctx):
        for b in beats:
            while rng_in.random() >= p_valid:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
            ctx.set(dut.i.payload, b)
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
        ctx.set(dut.i.valid, 0)

    async def monitor(ctx):
        while len(out) < n_out:
            if state["cycle"] > max_cycles:
                raise TimeoutError(f"only {len(out)} of {n_out} output beats after {max_cycles} cycles")
            r = rng_out.random() < p_ready and not ready_ignored
            ctx.set(dut.o.ready, int(r))
            _, _, valid, payload, *probes = await ctx.tick().sample(dut.o.valid, dut.o.payload, *never)
            for sig, v in zip(never, probes):
                assert not v, f"{sig.name} high at cycle {state['cycle']}"
            if (r or ready_ignored) and valid:
                out.append(int(payload))
                cycles.append(state["cycle"])
            state["cycle"] += 1

    top = Module()  # gives a purely combinational unit a `sync` domain for the clock
    top.domains.sync = ClockDomain("sync")
    top.submodules.dut = dut
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(driver, background=True)
    sim.add_testbench(monitor)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return out, cycles


def ready_on_release(dut, beats: list[int]) -> list:
    """Offer `beats` back to back with the output stalled, then stop offering and release the
    output: [(o.valid, i.ready) while stalled, i.ready once o.ready rises, i.ready one clock later].
    A unit whose input ready is a register keeps i.ready low until the edge after o.ready rises."""
    seen = []

    async def bench(ctx):
        ctx.set(dut.i.valid, 1)
        ctx.set(dut.o.ready, 0)
        for v in beats:
            ctx.set(dut.i.payload, v)
            await ctx.tick()
        ctx.set(dut.i.valid, 0)
        seen.append((ctx.get(dut.o.valid), ctx.get(dut.i.ready)))
        ctx.set(dut.o.ready, 1)
        seen.append(ctx.get(dut.i.ready))
        await ctx.tick()
        seen.append(ctx.get(dut.i.ready))

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    return seen
