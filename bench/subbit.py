"""Sub-bit kernel banks vs plain binary convolution.

1. Digits accuracy: float CNN / binary w1a1 / sub-bit tau = 4, 5, 6 (quant_models/onnx/accuracy_cnn.json).
2. Weight storage bits per conv layer of the exported models, as compiled (tau/9 of binary).
3. One layer, Cin = Cout = 64 on an 8x8 map (3x3, no padding so the plain conv keeps its
   XNOR-popcount datapath too), tau = 5: KernelBankConvUnit vs ConvUnit at equal throughput,
   LUT / FF / BRAM / Fmax / cycles via the open flow (ECP5 and iCE40).

    python bench/subbit.py [--targets ecp5 ice40] [--json bench/results/subbit.json]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from unit_synth import synth_unit  # noqa: E402

from amaranth.back import verilog as amaranth_verilog  # noqa: E402
from amaranth.hdl import Const, Module, Mux, Signal, signed  # noqa: E402

from hwgen.flows import devices  # noqa: E402
from hwgen.flows.parse import classify_cells, load_stat_json  # noqa: E402
from hwgen.flows.synth import pick_yosys  # noqa: E402
from hwgen.ir import Bipolar, Conv, KernelBankConv  # noqa: E402
from hwgen.compiler import CompileOptions, compile_model  # noqa: E402
from hwgen.passes.accumulators import size_layer  # noqa: E402
from hwgen.rtl.conv import ConvUnit  # noqa: E402
from hwgen.rtl.kernel_bank import KernelBankConvUnit  # noqa: E402
from hwgen.rtl.util import balanced_sum, popcount  # noqa: E402


def storage_bits():
    rows = []
    for name in ("digits_cnn_w1a1", "digits_subbit_tau4", "digits_subbit_tau5", "digits_subbit_tau6"):
        mode = "off" if name == "digits_cnn_w1a1" else "force"
        graph = compile_model(os.path.join(ROOT, "quant_models", "onnx", f"{name}.onnx"),
                              CompileOptions(kernel_bank=mode))
        for op in graph.core:
            if isinstance(op, KernelBankConv):
                rows.append({"model": name, "layer": op.name, "binary_bits": int(op.weights.size),
                             "index_bits": int(op.indices.size * op.tau), "codebook_bits": int(op.codebook.size),
                             "tau": op.tau})
            elif isinstance(op, Conv):
                rows.append({"model": name, "layer": op.name, "binary_bits": int(op.weights.size),
                             "index_bits": None, "codebook_bits": None, "tau": None})
    return rows


def layer_ops(tau=5, c=64, size=8, seed=0):
    rng = np.random.default_rng(seed)
    book = rng.choice([-1, 1], size=(2**tau, 3, 3))
    idx = rng.integers(0, 2**tau, size=(c, c))
    weights = book[idx].transpose(0, 2, 3, 1)  # [out, kh, kw, in]
    common = dict(name="L", inputs=["x"], outputs=["y"], weights=weights, in_type=Bipolar, w_type=Bipolar,
                  input_scale=1.0, weight_scale=np.ones(c, np.float32), in_shape=(size, size, c), kernel=(3, 3))
    conv = Conv(**common)
    bank = KernelBankConv(**common, codebook=book, indices=idx, tau=tau)
    for op in (conv, bank):
        size_layer(op)
    return conv, bank


# -- per-lane cost: what one output lane does per input channel and cycle ---------------------
def _mux_tree(sel, items):
    """items[sel] as a binary tree of 2:1 multiplexers (len(items) a power of two)."""
    level, bit = list(items), 0
    while len(level) > 1:
        level = [Mux(sel[bit], level[i + 1], level[i]) for i in range(0, len(level), 2)]
        bit += 1
    return level[0]


def _lane_module(kind: str, tau: int = 5, taps: int = 9, cin: int = 64, seed: int = 0):
    """One lane as a combinational module: `gather` selects one of 2^tau runtime responses
    (5 bits each) by a runtime tau-bit index (the bank's stage 2); `xnor_popcount` is the plain
    binary conv's work for the same 9 weights (runtime weight bits from the ROM); `decoded`
    expands the index through the constant codebook and then XNOR-popcounts (weight
    decompression instead of response sharing); `response` is one stage-1 codeword response
    (window XNOR a constant codeword, popcount), shared by every output lane. For the fully
    parallel designs, where indices and weights are constants: `plain_output` is one output of the
    plain conv (popcount of Cin*9 XNOR-with-constant bits), `bank_output` one output of the bank
    (the sum of Cin responses the constant indices wire to it)."""
    rng = np.random.default_rng(seed)
    book = rng.integers(0, 2, size=(1 << tau, taps))
    m = Module()
    if kind == "plain_output":  # fully parallel plain conv: one output = popcount of Cin*9 bits
        a = Signal(cin * taps, name="patch")
        y = Signal(range(cin * taps + 1), name="y")
        w = rng.integers(0, 2, size=cin * taps)
        m.d.comb += y.eq(popcount([a[t] if w[t] else ~a[t] for t in range(cin * taps)]))
        return m, [a, y]
    if kind == "bank_output":  # fully parallel bank: one output = sum of Cin wired responses
        r = Signal(cin * 5, name="responses")
        y = Signal(signed(11), name="y")
        m.d.comb += y.eq(balanced_sum([r[j * 5:(j + 1) * 5].as_signed() for j in range(cin)]))
        return m, [r, y]
    if kind == "gather":
        r = Signal((1 << tau) * 5, name="responses")
        sel = Signal(tau, name="index")
        y = Signal(5, name="y")
        m.d.comb += y.eq(_mux_tree(sel, [r[k * 5:(k + 1) * 5] for k in range(1 << tau)]))
        ports = [r, sel, y]
    else:
        a = Signal(taps, name="window")
        y = Signal(4, name="y")
        if kind == "xnor_popcount":
            w = Signal(taps, name="weights")
            m.d.comb += y.eq(popcount([~(a[t] ^ w[t]) for t in range(taps)]))
            ports = [a, w, y]
        elif kind == "decoded":
            sel = Signal(tau, name="index")
            w = Signal(taps, name="kernel")
            rom = [Const(int("".join(str(int(b)) for b in row[::-1]), 2), taps) for row in book]
            m.d.comb += [w.eq(_mux_tree(sel, rom)), y.eq(popcount([~(a[t] ^ w[t]) for t in range(taps)]))]
            ports = [a, sel, y]
        else:  # response
            m.d.comb += y.eq(popcount([a[t] if book[0, t] else ~a[t] for t in range(taps)]))
            ports = [a, y]
    return m, ports


def lane_costs(targets) -> list[dict]:
    """Yosys-only cell counts of one lane of each kind (see _lane_module), per target."""
    rows = []
    for target in targets:
        t = devices.target(target)
        for kind in ("gather", "xnor_popcount", "decoded", "response", "plain_output", "bank_output"):
            m, ports = _lane_module(kind)
            with tempfile.TemporaryDirectory(dir=os.path.join(ROOT, "build")) as tmp:  # yowasp sees cwd only
                with open(os.path.join(tmp, "lane.v"), "w") as f:
                    f.write(amaranth_verilog.convert(m, name="lane", ports=ports, emit_src=False))
                subprocess.run([pick_yosys(target), "-q", "-p",
                                f"read_verilog lane.v; {t.synth_cmd} -top lane; tee -q -o stat.json stat -json"],
                               check=True, capture_output=True, cwd=tmp)
                with open(os.path.join(tmp, "stat.json")) as f:
                    mods = load_stat_json(f.read())["modules"]
                cells = next(iter(mods.values())).get("num_cells_by_type", {})
            res = classify_cells(cells, target)
            rows.append({"target": target, "lane": kind, "luts": res["luts"], "cells": cells})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["ecp5"])
    ap.add_argument("--quick", action="store_true", help="only the fast throughput point")
    ap.add_argument("--fresh", action="store_true", help="start a new JSON instead of updating earlier rows")
    ap.add_argument("--no-parallel", action="store_true", help="skip the fully parallel (yosys-only) pair")
    ap.add_argument("--pnr-timeout", type=float, default=1200,
                    help="seconds per tool before falling back to yosys-only numbers")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "bench-subbit"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "subbit.json"))
    args = ap.parse_args()
    acc = json.load(open(os.path.join(ROOT, "quant_models", "onnx", "accuracy_cnn.json")))
    storage = storage_bits()
    conv, bank = layer_ops()
    # equal-throughput pairs (cycles per output pixel equal), each bank vs plain:
    # fast: bank (PE 8, SIMD 8): max(9*64/8, (64/8)*(64/8)) = 72; plain (PE 8, SIMD 64): 8*9 = 72
    # slow: bank (PE 8, SIMD 1): max(9*64, 8*64) = 576; plain (PE 8, SIMD 8): 8*72 = 576
    # parallel (yosys only): bank (PE 64, SIMD 64): indices are wiring, no gather multiplexers;
    #   plain (PE 64, SIMD 576): constant weights; both 9 window beats per pixel
    units = [("kernel_bank_tau5", lambda: KernelBankConvUnit.from_op(bank, pe=8, simd=8), None),
             ("binary_conv", lambda: ConvUnit.from_op(conv, pe=8, simd=64, window_simd=8), None),
             ("kernel_bank_tau5_pe8_simd1", lambda: KernelBankConvUnit.from_op(bank, pe=8, simd=1), None),
             ("binary_conv_pe8_simd8", lambda: ConvUnit.from_op(conv, pe=8, simd=8, window_simd=8), None),
             ("kernel_bank_tau5_parallel", lambda: KernelBankConvUnit.from_op(bank, pe=64, simd=64), "synth"),
             ("binary_conv_parallel", lambda: ConvUnit.from_op(conv, pe=64, simd=576, window_simd=64), "synth")]
    all_units = list(units)
    if args.quick:
        units = units[:2]
    if args.no_parallel:
        units = [u for u in units if u[2] is None]
    lanes = lane_costs(args.targets)
    hw = []
    for target in args.targets:
        for name, make, stage in units:
            unit = make()
            print(f"[{target}] {name}: {int(unit.cycles)} cycles/image", flush=True)
            row = synth_unit(unit, name, os.path.join(args.workdir, f"{name}-{target}"), target=target,
                             cycles=int(unit.cycles), stage=stage, timeout=args.pnr_timeout,
                             extra={"memory_bits": int(unit.rom_bits + unit.buffer_bits),
                                    "rom_bits": int(unit.rom_bits)})
            print(json.dumps(row), flush=True)
            hw.append(row)
    if not args.fresh and os.path.isfile(args.json):  # keep rows of other targets / units from earlier runs
        with open(args.json) as f:
            old = json.load(f)
        done = {(r["unit"], r["target"]) for r in hw}
        hw = [r for r in old.get("layer_64x64_8x8", []) if (r["unit"], r["target"]) not in done
              and "rom_bits" in r] + hw
        done = {(r["lane"], r["target"]) for r in lanes}
        lanes = [r for r in old.get("lanes", []) if (r["lane"], r["target"]) not in done] + lanes
    order = [u[0] for u in all_units]
    hw.sort(key=lambda r: (r["target"], order.index(r["unit"]) if r["unit"] in order else len(order)))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"accuracy": acc, "storage": storage, "lanes": lanes, "layer_64x64_8x8": hw}, f, indent=2)
    print("\n| model | test accuracy |\n|---|---|")
    for k, v in acc.items():
        a = v.get("test_accuracy") if isinstance(v, dict) else v
        print(f"| {k} | {a} |")
    print("\n| model | layer | binary bits | index bits | codebook bits | tau |\n|---|---|---|---|---|---|")
    for r in storage:
        print(f"| {r['model']} | {r['layer']} | {r['binary_bits']} | {r['index_bits']} | {r['codebook_bits']} | {r['tau']} |")
    print("\n| lane (one output, one input channel) | target | LUT4 | cells |\n|---|---|---|---|")
    for r in lanes:
        print(f"| {r['lane']} | {r['target']} | {r['luts']} | "
              f"{', '.join(f'{k} {v}' for k, v in sorted(r['cells'].items()))} |")
    print("\n| unit | target | cycles/image | LUT4 | FF | carry | BRAM | ROM bits | Fmax MHz |\n"
          "|---|---|---|---|---|---|---|---|---|")
    for r in hw:
        fmax = r["fmax_mhz"] if r["fmax_mhz"] else ("synth only" if not r.get("pnr_error") else r["pnr_error"])
        print(f"| {r['unit']} | {r['target']} | {r['cycles_per_image']} | {r['luts']} | {r['ffs']} | {r['carry']} | "
              f"{r['brams']} | {r['rom_bits']} | {fmax} |")
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
