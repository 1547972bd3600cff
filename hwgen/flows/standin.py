"""A tiny stand-in accelerator with the shape `hwgen compile` writes, for flow tests and tool checks.

    i (N x B-bit unsigned elements per beat) -> s0_fc0 (dot products with constant weights,
    registered) -> s1_act0 (clip to A bits, registered) -> o (M x A-bit elements per beat)

It has the real generator's port names (clk, rst, i__payload/valid/ready, o__...), one Verilog
module per layer whose name contains the layer name, and a report.json with the same keys, so
hwgen.flows and hwgen.report_doc can be exercised without the compiler.

    python -m hwgen.flows.standin OUT_DIR      writes OUT_DIR/standin_top.v and OUT_DIR/report.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from amaranth.hdl import Cat, Const, Module, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from ..rtl.util import balanced_sum


class _Dense(wiring.Component):
    def __init__(self, *, weights, in_bits: int, acc_bits: int):
        self.weights = weights
        self.in_bits, self.acc_bits = in_bits, acc_bits
        self.n_in, self.n_out = len(weights[0]), len(weights)
        super().__init__({
            "i": In(stream.Signature(in_bits * self.n_in)),
            "o": Out(stream.Signature(acc_bits * self.n_out)),
        })

    def elaborate(self, platform):
        m = Module()
        xs = [self.i.payload[k * self.in_bits:(k + 1) * self.in_bits] for k in range(self.n_in)]
        accs = []
        for row in self.weights:
            terms = [x.as_unsigned() * Const(w, signed(8)) for x, w in zip(xs, row) if w]
            acc = Signal(signed(self.acc_bits))
            m.d.comb += acc.eq(balanced_sum(terms))
            accs.append(acc)
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(Cat(*accs))]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m


class _Clip(wiring.Component):
    def __init__(self, *, n: int, in_bits: int, out_bits: int, shift: int):
        self.n, self.in_bits, self.out_bits, self.shift = n, in_bits, out_bits, shift
        super().__init__({
            "i": In(stream.Signature(in_bits * n)),
            "o": Out(stream.Signature(out_bits * n)),
        })

    def elaborate(self, platform):
        m = Module()
        top = (1 << self.out_bits) - 1
        outs = []
        for k in range(self.n):
            x = self.i.payload[k * self.in_bits:(k + 1) * self.in_bits].as_signed() >> self.shift
            y = Signal(self.out_bits)
            with m.If(x < 0):
                m.d.comb += y.eq(0)
            with m.Elif(x > top):
                m.d.comb += y.eq(top)
            with m.Else():
                m.d.comb += y.eq(x)
            outs.append(y)
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [self.o.valid.eq(self.i.valid), self.o.payload.eq(Cat(*outs))]
        m.d.comb += self.i.ready.eq(self.o.ready | ~self.o.valid)
        return m


class StandIn(wiring.Component):
    def __init__(self, *, weights, in_bits: int, acc_bits: int, out_bits: int):
        self.fc = _Dense(weights=weights, in_bits=in_bits, acc_bits=acc_bits)
        self.act = _Clip(n=len(weights), in_bits=acc_bits, out_bits=out_bits,
                         shift=clip_shift(acc_bits, out_bits))
        super().__init__({
            "i": In(stream.Signature(in_bits * len(weights[0]))),
            "o": Out(stream.Signature(out_bits * len(weights))),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.s0_fc0 = self.fc
        m.submodules.s1_act0 = self.act
        wiring.connect(m, wiring.flipped(self.i), self.fc.i)
        wiring.connect(m, self.fc.o, self.act.i)
        wiring.connect(m, self.act.o, wiring.flipped(self.o))
        return m


def clip_shift(acc_bits: int, out_bits: int) -> int:
    """The activation drops this many low accumulator bits before clipping."""
    return max(0, acc_bits - 1 - out_bits)


def _acc_bits(weights, in_bits: int) -> int:
    xmax = (1 << in_bits) - 1
    hi = max(sum(w * xmax for w in row if w > 0) for row in weights)
    lo = min(sum(w * xmax for w in row if w < 0) for row in weights)
    return max(hi.bit_length(), (-lo - 1).bit_length()) + 1


def default_weights(n_in: int, n_out: int) -> list[list[int]]:
    """Deterministic small signed weights with some zeros."""
    return [[((7 * r + 3 * c) % 11) - 5 for c in range(n_in)] for r in range(n_out)]


def build_standin(out_dir, *, n_in: int = 4, n_out: int = 2, in_bits: int = 4, out_bits: int = 4,
                  top: str = "standin_top", weights=None) -> dict:
    """Write out_dir/<top>.v and out_dir/report.json; return the report."""
    from amaranth.back import verilog

    weights = weights or default_weights(n_in, n_out)
    acc_bits = _acc_bits(weights, in_bits)
    core = StandIn(weights=weights, in_bits=in_bits, acc_bits=acc_bits, out_bits=out_bits)
    text = verilog.convert(core, name=top, emit_src=False,
                           ports=[core.i.payload, core.i.valid, core.i.ready,
                                  core.o.payload, core.o.valid, core.o.ready])
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{top}.v").write_text(text)
    nz = sum(1 for row in weights for w in row if w)
    report = {
        "top": top,
        "verilog": f"{top}.v",
        "model": "standin",
        "ii_cycles": 1,
        "latency_cycles": 2,
        "layers": [
            {"name": "fc0", "op": "MatVec", "pe": n_out, "simd": n_in, "cycles": 1,
             "acc_bits": acc_bits, "acc_bits_exact": acc_bits, "acc_bits_a2q": acc_bits + 1,
             "acc_bits_datatype": in_bits + 8 + max(1, (n_in - 1).bit_length()),
             "weight_bits": n_in * n_out * 8, "weights_nonzero": nz, "memory_bits": 0},
            {"name": "act0", "op": "Threshold", "pe": n_out, "simd": None, "cycles": 1,
             "acc_bits": acc_bits, "acc_bits_exact": None, "acc_bits_a2q": None,
             "acc_bits_datatype": None, "weight_bits": 0, "memory_bits": 0},
        ],
        "io": {
            "clock": "clk", "reset": "rst (synchronous, active high)",
            "input": {"port": "i", "element_bits": in_bits, "signed": False, "elements": n_in,
                      "elements_per_beat": n_in, "beats_per_inference": 1,
                      "payload_bits": in_bits * n_in},
            "output": {"port": "o", "element_bits": out_bits, "signed": False, "elements": n_out,
                       "elements_per_beat": n_out, "beats_per_inference": 1,
                       "payload_bits": out_bits * n_out},
        },
    }
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def reference(x: list[int], *, weights, in_bits: int, out_bits: int) -> list[int]:
    """What the stand-in computes for one input vector (for simulation checks)."""
    top = (1 << out_bits) - 1
    sh = clip_shift(_acc_bits(weights, in_bits), out_bits)
    return [min(max(sum(w * v for w, v in zip(row, x)) >> sh, 0), top) for row in weights]


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m hwgen.flows.standin OUT_DIR")
    r = build_standin(sys.argv[1])
    print(f"wrote {sys.argv[1]}/{r['verilog']} and report.json")
