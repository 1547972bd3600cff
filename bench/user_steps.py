"""How long each step of the README's quick start takes: Brevitas export, hwgen compile, verify,
synth (yosys + nextpnr-ecp5) and report, for the README's 64-32-10 MLP (W4A4, BatchNorm), each step
as a user runs it (the CLI in a subprocess, so interpreter start-up and imports count).

    python bench/user_steps.py [--workdir build/user-steps] [--json bench/results/user_steps.json]

Prints one line per step and writes the times (seconds) and the step's last output line to the
JSON. Times depend on the machine and its load; the JSON records the core count and load average.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

EXPORT = """
import torch, brevitas.nn as qnn
from brevitas.export import export_qonnx
torch.manual_seed(0)
model = torch.nn.Sequential(
    qnn.QuantIdentity(bit_width=4, return_quant_tensor=True),
    qnn.QuantLinear(64, 32, bias=True, weight_bit_width=4), torch.nn.BatchNorm1d(32),
    qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
    qnn.QuantLinear(32, 10, bias=True, weight_bit_width=4))
model.eval()
export_qonnx(model, torch.randn(1, 64), export_path="mlp.onnx")
print("exported mlp.onnx")
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "user-steps"))
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "user_steps.json"))
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    hw = [sys.executable, "-m", "hwgen"]
    steps = [
        ("export (Brevitas export_qonnx)", [sys.executable, "-c", EXPORT]),
        ("hwgen compile --fold auto --target-cycles 64", hw + ["compile", "mlp.onnx", "-o", "build", "--fold", "auto",
                                                              "--target-cycles", "64", "--target", "ecp5"]),
        ("hwgen verify --vectors 200 (default simulator)", hw + ["verify", "build", "--vectors", "200"]),
        ("hwgen synth --target ecp5 (yosys + nextpnr)", hw + ["synth", "build", "--target", "ecp5"]),
        ("hwgen report", hw + ["report", "build"]),
    ]
    rows = []
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for name, cmd in steps:
        t0 = time.perf_counter()
        out = subprocess.run(cmd, cwd=args.workdir, capture_output=True, text=True, env=env)
        seconds = round(time.perf_counter() - t0, 1)
        lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
        last = lines[-1] if lines else ""
        rows.append({"step": name, "seconds": seconds, "exit_code": out.returncode, "last_line": last})
        print(f"{name:50s} {seconds:8.1f} s   {last[:100]}", flush=True)
        if out.returncode:
            print(out.stdout[-2000:], out.stderr[-2000:], file=sys.stderr)
            break
    result = {"machine": {"cores": os.cpu_count(), "load_average_1m": round(os.getloadavg()[0], 2)}, "steps": rows}
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    return 0 if all(r["exit_code"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
