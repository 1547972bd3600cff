"""cocotb bench for the AXI4-Stream wrapper <top>_axis (driven by sim/axis_verify.py).

cocotbext-axi drives s_axis and takes m_axis, both with seeded random pause generators
(backpressure on the output, gaps on the input). One frame per inference goes in (no s_axis
TLAST: the wrapper counts beats); every received frame ends at m_axis_tlast, so frame lengths
show where TLAST came. A monitor checks the AXI4-Stream rule that a master keeps TVALID and TDATA
stable until the transfer. The JSON file named by $HWGEN_AXIS_CONFIG gives input words per
inference (hex), seed, pause probabilities, a cycle budget and where to write the results:
the received frames (hex words), output beats seen, protocol violations, stall counts, cycles.
"""
from __future__ import annotations

import itertools
import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


def _pauses(rng: random.Random, p: float):
    """Pause (True) in a cycle with probability p, forever."""
    return (rng.random() < p for _ in itertools.count())


async def _monitor(dut, stats: dict):
    """AXI4-Stream master rule on m_axis (TVALID and TDATA held until TREADY), stall counts."""
    held = None  # tdata offered but not taken in the previous cycle
    while True:
        await RisingEdge(dut.aclk)
        if not dut.aresetn.value:
            held = None
            continue
        valid, ready = int(dut.m_axis_tvalid.value), int(dut.m_axis_tready.value)
        data = int(dut.m_axis_tdata.value) if valid else None
        if held is not None and (not valid or data != held):
            stats["violations"].append(f"cycle {stats['cycles']}: m_axis dropped or changed a beat before TREADY")
        held = data if valid and not ready else None
        stats["out_stalls"] += valid and not ready
        stats["out_beats"] += valid and ready
        stats["in_gaps"] += not int(dut.s_axis_tvalid.value)
        stats["in_backpressure"] += int(dut.s_axis_tvalid.value) and not int(dut.s_axis_tready.value)
        stats["cycles"] += 1


@cocotb.test()
async def axis_backpressure(dut):
    with open(os.environ["HWGEN_AXIS_CONFIG"]) as f:
        cfg = json.load(f)
    inputs = [[int(w, 16) for w in v] for v in cfg["inputs"]]
    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    dut.aresetn.value = 0
    dut.s_axis_tvalid.value = 0
    dut.m_axis_tready.value = 0
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.aclk, dut.aresetn,
                             reset_active_level=False, byte_lanes=1)  # one list item per beat
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.aclk, dut.aresetn,
                         reset_active_level=False, byte_lanes=1)
    rng = random.Random(cfg["seed"])
    source.set_pause_generator(_pauses(random.Random(rng.random()), cfg["p_pause_in"]))
    sink.set_pause_generator(_pauses(random.Random(rng.random()), cfg["p_pause_out"]))
    stats = {"violations": [], "out_beats": 0, "out_stalls": 0, "in_gaps": 0, "in_backpressure": 0, "cycles": 0}
    cocotb.start_soon(_monitor(dut, stats))
    for _ in range(5):
        await RisingEdge(dut.aclk)
    dut.aresetn.value = 1

    for words in inputs:
        await source.send(AxiStreamFrame(words))
    frames, extra = [], None
    try:
        for _ in inputs:
            frame = await with_timeout(sink.recv(), cfg["max_cycles"] * 10, "ns")
            frames.append([f"{w:x}" for w in frame.tdata])
        for _ in range(cfg["drain_cycles"]):  # nothing more may come out
            await RisingEdge(dut.aclk)
        extra = sink.count()
    finally:
        with open(cfg["results"], "w") as f:
            json.dump({"frames": frames, **stats, "extra_frames": extra},
                      f, indent=1)
    assert not stats["violations"], stats["violations"][:5]
