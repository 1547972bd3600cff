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
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from unit_synth import synth_unit  # noqa: E402

from hwgen.ir import Bipolar, Conv, IntType, KernelBankConv  # noqa: E402
from hwgen.passes import CompileOptions, compile_model  # noqa: E402
from hwgen.passes.accumulators import size_layer  # noqa: E402
from hwgen.rtl.conv import ConvUnit  # noqa: E402
from hwgen.rtl.kernel_bank import KernelBankConvUnit  # noqa: E402


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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["ecp5"])
    ap.add_argument("--quick", action="store_true", help="only the fast throughput point")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "bench-subbit"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "subbit.json"))
    args = ap.parse_args()
    acc = json.load(open(os.path.join(ROOT, "quant_models", "onnx", "accuracy_cnn.json")))
    storage = storage_bits()
    conv, bank = layer_ops()
    # two throughput points, each bank vs plain at equal cycles per pixel:
    # fast: bank (PE 8, SIMD 8): max(9*64/8, (64/8)*(64/8)) = 72; plain (PE 8, SIMD 64): 8*9 = 72
    # slow: bank (PE 64, SIMD 1): max(9*64, 1*64) = 576; plain (PE 8, SIMD 8): 8*72 = 576
    units = [("kernel_bank_tau5", lambda: KernelBankConvUnit.from_op(bank, pe=8, simd=8)),
             ("binary_conv", lambda: ConvUnit.from_op(conv, pe=8, simd=64, window_simd=8)),
             ("kernel_bank_tau5_pe64_simd1", lambda: KernelBankConvUnit.from_op(bank, pe=64, simd=1)),
             ("binary_conv_pe8_simd8", lambda: ConvUnit.from_op(conv, pe=8, simd=8, window_simd=8))]
    if args.quick:
        units = units[:2]
    hw = []
    for target in args.targets:
        for name, make in units:
            unit = make()
            row = synth_unit(unit, name, os.path.join(args.workdir, f"{name}-{target}"), target=target,
                             cycles=int(unit.cycles),
                             extra={"memory_bits": int(unit.rom_bits + unit.buffer_bits)})
            print(json.dumps(row), flush=True)
            hw.append(row)
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"accuracy": acc, "storage": storage, "layer_64x64_8x8": hw}, f, indent=2)
    print("\n| model | test accuracy |\n|---|---|")
    for k, v in acc.items():
        a = v.get("test_accuracy") if isinstance(v, dict) else v
        print(f"| {k} | {a} |")
    print("\n| model | layer | binary bits | index bits | codebook bits | tau |\n|---|---|---|---|---|---|")
    for r in storage:
        print(f"| {r['model']} | {r['layer']} | {r['binary_bits']} | {r['index_bits']} | {r['codebook_bits']} | {r['tau']} |")
    print("\n| unit | target | cycles/image | LUT4 | FF | carry | BRAM | Fmax MHz |\n|---|---|---|---|---|---|---|---|")
    for r in hw:
        print(f"| {r['unit']} | {r['target']} | {r['cycles_per_image']} | {r['luts']} | {r['ffs']} | {r['carry']} | "
              f"{r['brams']} | {r['fmax_mhz']} |")
    print(f"wrote {os.path.relpath(args.json, ROOT)}")


if __name__ == "__main__":
    main()
