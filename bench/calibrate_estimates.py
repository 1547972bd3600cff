"""Calibrate hwgen.cost's estimates against yosys: synthesize (yosys only, hierarchy kept) a sweep
of units and of real designs on each target, take every unit's per-module `stat` numbers, and set
them beside its estimate.

    python bench/calibrate_estimates.py [--targets ecp5 ice40] [--only units designs] [--no-synth]
                                        [--json bench/results/estimate_calibration.json]

Units are synthesized in bundles (one yosys run elaborates many units side by side, each its own
module, `-noflatten`, so each module's numbers are that unit's alone); designs are compiled,
folded and built like `hwgen compile`, and every stage (and the inner units of convolutions,
residual blocks and ODE blocks) is one row. Synthesis results are cached under
build/estimate-cal/ (keyed by the Verilog text), so re-running after a model change costs no tool
time (`--no-synth` refuses to run a tool at all).

Writes one row per unit instance (job, module, unit class, parameters, estimate, yosys numbers,
relative error) and prints, per unit kind and target, the mean absolute LUT / FF / carry error
and how many BRAM / DSP / LUT RAM counts are exact.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", message=".*created but never used")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import numpy as np  # noqa: E402
from amaranth.back import verilog  # noqa: E402
from amaranth.hdl import Module  # noqa: E402
from amaranth.lib import stream, wiring  # noqa: E402
from amaranth.lib.wiring import In, Out  # noqa: E402

from hwgen.cost import Resources, units as cost_units  # noqa: E402
from hwgen.ir.types import Bipolar, IntType  # noqa: E402
from hwgen.rtl.conv import ConvUnit  # noqa: E402
from hwgen.rtl.fifo import StreamFIFO  # noqa: E402
from hwgen.rtl.kernel_bank import KernelBankConvUnit  # noqa: E402
from hwgen.rtl.matvec import MatVecUnit  # noqa: E402
from hwgen.rtl.maxpool import MaxPoolUnit  # noqa: E402
from hwgen.rtl.ode_block import ODEBlockUnit  # noqa: E402
from hwgen.rtl.residual_add import ResidualAddUnit  # noqa: E402
from hwgen.rtl.sliding_window import SlidingWindowUnit  # noqa: E402
from hwgen.rtl.sumpool import GlobalSumPoolUnit  # noqa: E402
from hwgen.rtl.threshold import ThresholdUnit  # noqa: E402
from hwgen.rtl.width_converter import WidthConverter  # noqa: E402

try:
    from hwgen.rtl.residual_block import ResidualBlock  # noqa: E402
except ImportError:  # older tree
    from hwgen.rtl.top import ResidualBlock  # noqa: E402

# {unit class: cost function}: the table this script needs (hwgen itself asks the lowerings)
COST_OF = {
    MatVecUnit: cost_units.matvec, ConvUnit: cost_units.conv, KernelBankConvUnit: cost_units.kernel_bank,
    ThresholdUnit: cost_units.threshold, MaxPoolUnit: cost_units.maxpool, GlobalSumPoolUnit: cost_units.sumpool,
    SlidingWindowUnit: cost_units.sliding_window, ResidualAddUnit: cost_units.residual_add,
    StreamFIFO: cost_units.fifo, WidthConverter: cost_units.width_converter, ODEBlockUnit: cost_units.ode_block,
    ResidualBlock: cost_units.residual_block,
}
KIND = {cls: fn.__name__ for cls, fn in COST_OF.items()}
WORKDIR = os.path.join(ROOT, "build", "estimate-cal")
YOSYS_KEYS = ("luts", "ffs", "carry", "brams", "dsps", "lutram")
EST_KEYS = ("lut", "ff", "carry", "bram", "dsp", "lutram")


def estimate(unit, target: str) -> Resources:
    return COST_OF[type(unit)](unit, target)


# -- unit parameters for the JSON ------------------------------------------------------------------
_PARAMS = ("C", "K", "pe", "simd", "NF", "SF", "acc_bits", "in_bits", "w_bits", "binary", "folded", "L",
           "cmp_bits", "style", "out_bits", "width", "depth", "b", "n_in", "n_out", "H", "W", "R", "kh", "kw",
           "sh", "sw", "CF", "identity", "taps", "bits", "elems", "sum_bits", "tau", "T", "Cin", "Cout", "steps",
           "sbits", "P", "window_simd", "groups")


def unit_params(u) -> dict:
    out = {}
    for k in _PARAMS:
        try:
            v = getattr(u, k)
        except Exception:
            continue
        if isinstance(v, (bool, np.bool_)):
            out[k] = bool(v)
        elif isinstance(v, (int, np.integer)):
            out[k] = int(v)
        elif isinstance(v, str):
            out[k] = v
    for k in ("in_type", "w_type", "dtype", "out_type"):
        v = getattr(u, k, None)
        if v is not None:
            out[k] = str(v)
    return out


# -- the unit sweep ------------------------------------------------------------------------------------
def _rng(seed):
    return np.random.default_rng(seed)


def _weights(rng, shape, wtype):
    if wtype is Bipolar:
        return rng.choice([-1, 1], size=shape)
    return rng.integers(wtype.min, wtype.max + 1, size=shape)


def _thresholds(rng, C, L, in_bits):
    """Increasing thresholds per channel like a BatchNorm makes them: a random centre and step."""
    half = 1 << (in_bits - 1)
    centre = rng.normal(0, half / 6, size=(C, 1))
    step = rng.uniform(1, max(2, half / (2 * L)), size=(C, 1))
    t = np.round(centre + step * (np.arange(L) - (L - 1) / 2)).astype(np.int64)
    t = np.maximum.accumulate(np.clip(t, -half, half), axis=1)
    return t


U4, U2, I4, I2, I8, U8 = IntType(4, False), IntType(2, False), IntType(4, True), IntType(2, True), IntType(8, True), \
    IntType(8, False)


# units left out of the iCE40 bundles (yosys 0.23 + abc take minutes on them; ECP5 covers them)
ICE40_SKIP = {"mv_bin_const16x64", "mv_a4w4_p8s8", "mv_const_a2w2_16x32", "kb_p4s4_t5"}


def unit_sweep() -> dict[str, list]:
    """Bundles of (name, unit): each bundle is one yosys run per target."""
    r = _rng(1)
    mv = [
        ("mv_bin_p4s32", MatVecUnit(weights=_weights(r, (64, 256), Bipolar), in_type=Bipolar, w_type=Bipolar,
                                    acc_bits=10, pe=4, simd=32)),
        ("mv_bin_const16x64", MatVecUnit(weights=_weights(r, (16, 64), Bipolar), in_type=Bipolar, w_type=Bipolar,
                                         acc_bits=8, pe=16, simd=64)),
        ("mv_const_a4w4_8x16", MatVecUnit(weights=_weights(r, (8, 16), I4), in_type=U4, w_type=I4, acc_bits=12,
                                          pe=8, simd=16)),
        ("mv_const_a2w2_16x32", MatVecUnit(weights=_weights(r, (16, 32), I2), in_type=U2, w_type=I2, acc_bits=9,
                                           pe=16, simd=32)),
        ("mv_wbip_a4_p2s8", MatVecUnit(weights=_weights(r, (16, 64), Bipolar), in_type=I4, w_type=Bipolar,
                                       acc_bits=11, pe=2, simd=8)),
        ("mv_a8w8_p1s2", MatVecUnit(weights=_weights(r, (16, 32), I8), in_type=U8, w_type=I8, acc_bits=22,
                                    pe=1, simd=2)),
        ("mv_a4w4_nf1_p16s4", MatVecUnit(weights=_weights(r, (16, 64), I4), in_type=U4, w_type=I4, acc_bits=12,
                                         pe=16, simd=4)),
        ("mv_a4w4_p8s8", MatVecUnit(weights=_weights(r, (64, 64), I4), in_type=U4, w_type=I4, acc_bits=12,
                                    pe=8, simd=8)),
        ("mv_a2w2_p4s16", MatVecUnit(weights=_weights(r, (64, 256), I2), in_type=U2, w_type=I2, acc_bits=10,
                                     pe=4, simd=16)),
        ("mv_a4w4_p1s1", MatVecUnit(weights=_weights(r, (32, 128), I4), in_type=U4, w_type=I4, acc_bits=13,
                                    pe=1, simd=1)),
    ]
    th = []
    for name, C, L, ib, out, pe, style in (
            ("th_p4_L3_i10", 64, 3, 10, U2, 4, "compare"),
            ("th_p1_L1_i9_bip", 256, 1, 9, Bipolar, 1, "compare"),
            ("th_const_p16_L15_i10", 16, 15, 10, U4, 16, "compare"),
            ("th_lut_p1_i6", 16, 15, 6, U4, 1, "lut"),
            ("th_lut_p2_i8", 8, 3, 8, U2, 2, "lut"),
            ("th_p2_L7_i13", 32, 7, 13, IntType(3, False), 2, "compare"),
            ("th_p1_L15_i12_nf128", 128, 15, 12, U4, 1, "compare"),
            ("th_p8_L15_i11", 64, 15, 11, U4, 8, "compare")):
        T = _thresholds(r, C, L, ib)
        dec = np.zeros(C, dtype=bool)
        if name.startswith("th_p2_L7"):
            dec = r.random(C) < 0.3
            T[dec] = T[dec][:, ::-1]
        base = 0 if out is Bipolar or not out.signed else -(1 << (out.bits - 1))
        th.append((name, ThresholdUnit(thresholds=T, decreasing=dec, in_bits=ib, out_type=out, out_base=base,
                                       pe=pe, style=style)))
    plumb = [(f"fifo_w{w}_d{d}", StreamFIFO(width=w, depth=d))
             for w, d in ((16, 18), (4, 66), (256, 4), (8, 18), (64, 34), (2, 66), (4, 514), (32, 130), (1, 4),
                          (120, 66), (8, 4), (16, 1026))]
    plumb += [(f"wc_b{b}_{i}to{o}", WidthConverter(element_bits=b, in_elems=i, out_elems=o))
              for b, i, o in ((4, 1, 4), (4, 1, 64), (2, 1, 64), (4, 32, 16), (4, 2, 1), (4, 1, 16), (4, 3, 2),
                              (11, 1, 4), (4, 16, 1), (13, 2, 1))]
    win = [
        ("swg_8x8x1_k3", SlidingWindowUnit(in_shape=(8, 8, 1), kernel=(3, 3), in_type=U4, simd=1)),
        ("swg_8x8x16_k3_p1_s16", SlidingWindowUnit(in_shape=(8, 8, 16), kernel=(3, 3), in_type=U4, simd=16,
                                                   pads=(1, 1, 1, 1))),
        ("swg_16x16x8_k3_bip_p1_s2", SlidingWindowUnit(in_shape=(16, 16, 8), kernel=(3, 3), in_type=Bipolar, simd=2,
                                                       pads=(1, 1, 1, 1))),
        ("swg_8x8x16_k2s2_s4", SlidingWindowUnit(in_shape=(8, 8, 16), kernel=(2, 2), stride=(2, 2), in_type=U4,
                                                 simd=4)),
        ("mp_8x8x32_s2", MaxPoolUnit(in_shape=(8, 8, 32), kernel=(2, 2), stride=(2, 2), dtype=U4, simd=2)),
        ("mp_8x8x32_s32", MaxPoolUnit(in_shape=(8, 8, 32), kernel=(2, 2), stride=(2, 2), dtype=U4, simd=32)),
        ("mp_8x8x16_bip_s16", MaxPoolUnit(in_shape=(8, 8, 16), kernel=(2, 2), stride=(2, 2), dtype=Bipolar, simd=16)),
        ("sp_4x4x32_s4", GlobalSumPoolUnit(in_shape=(4, 4, 32), in_type=U4, out_type=IntType(9, False), simd=4)),
        ("sp_8x8x16_bip_s1", GlobalSumPoolUnit(in_shape=(8, 8, 16), in_type=Bipolar, out_type=IntType(8, True),
                                               simd=1)),
        ("add_e1", ResidualAddUnit(a_shift=0, b_shift=1, out_shift=1, a_type=I4, b_type=I4, out_type=I4, elems=1)),
        ("add_e4", ResidualAddUnit(a_shift=1, b_shift=0, out_shift=2, a_type=I4, b_type=U4, out_type=I4, elems=4)),
        ("add_e16_floor", ResidualAddUnit(a_shift=0, b_shift=0, out_shift=1, a_type=I4, b_type=I4, out_type=I4,
                                          rounding_mode="FLOOR", elems=16)),
    ]
    kb = []
    for name, pe, simd, pads, tau in (("kb_p2s2_p1_t4", 2, 2, (1, 1, 1, 1), 4), ("kb_p4s4_t5", 4, 4, (0, 0, 0, 0), 5)):
        nk = 1 << tau
        book = r.choice([-1, 1], size=(nk, 3, 3))
        idx = r.integers(0, nk, size=(16, 16))
        kb.append((name, KernelBankConvUnit(codebook=book, indices=idx, tau=tau, in_shape=(8, 8, 16), acc_bits=10,
                                            pads=pads, pe=pe, simd=simd)))
    return {"u_matvec": mv, "u_threshold": th, "u_plumbing": plumb, "u_window": win, "u_kernel_bank": kb}


# -- designs -------------------------------------------------------------------------------------------
# (job name, model, folding target cycles, compile options): held out from bench/estimate_vs_synth.py's
# evaluation (other models or other foldings)
DESIGNS = [
    ("d_mlp_w2a2_256", "quant_models/onnx/digits_mlp_w2a2.onnx", 256, {}),
    ("d_mlp_w1a1_1024", "quant_models/onnx/digits_mlp_w1a1.onnx", 1024, {}),
    ("d_mlp_w4a4_a2q_4096", "quant_models/onnx/digits_mlp_w4a4_a2q.onnx", 4096, {}),
    ("d_cnn_w4a4_4096", "quant_models/onnx/digits_cnn_w4a4.onnx", 4096, {}),
    ("d_cnn_w1a1_2048", "quant_models/onnx/digits_cnn_w1a1.onnx", 2048, {"kernel_bank": "off"}),
    ("d_odenet_n2_4096", "quant_models/onnx/digits_odenet_n2.onnx", 4096, {}),
    ("d_resnet_n2_4096", "quant_models/onnx/digits_resnet_n2.onnx", 4096, {}),
    ("d_subbit_tau4_4096", "quant_models/onnx/digits_subbit_tau4.onnx", 4096, {"kernel_bank": "force"}),
]


def compile_design(model: str, target_cycles: int, options: dict):
    try:
        from hwgen.compiler import CompileOptions, compile_model
    except ImportError:  # older tree
        from hwgen.passes import CompileOptions, compile_model
    from hwgen.passes.fold import fold_graph

    graph = compile_model(os.path.join(ROOT, model), CompileOptions(**options))
    fold_graph(graph, ("auto", target_cycles))
    return graph


def _with_arith(u, op, arith: str):
    """`u` (a MatVecUnit or ConvUnit) rebuilt with its products written as `arith`, else None."""
    if isinstance(u, MatVecUnit) and u.arith != arith:
        return MatVecUnit(weights=u.weights, in_type=u.in_type, w_type=u.w_type, acc_bits=u.acc_bits, pe=u.pe,
                          simd=u.simd, arith=arith, pipeline=u.pipeline)
    if isinstance(u, ConvUnit) and u.mv.arith != arith and op is not None:
        return ConvUnit.from_op(op, pe=u.pe, simd=u.simd, window_simd=u.window_simd, rows=u.swg.R, arith=arith,
                                pipeline=u.mv.pipeline)
    return None


def force_arith(plan, arith: str) -> None:
    """Rebuild the plan's MatVec / Conv units (also inside residual and ODE blocks) with products
    written as `arith` ("dsp": `*`, which synthesis may map to DSP blocks; "lut": shift-and-add),
    where the RTL has that choice (hwgen.rtl.matvec `arith`)."""
    import inspect

    if "arith" not in inspect.signature(MatVecUnit.__init__).parameters:
        return

    def fix(stages):
        for st in stages:
            if isinstance(st.unit, ResidualBlock):
                fix(st.unit.stages)
            elif isinstance(st.unit, ODEBlockUnit):
                ops = {o.name: o for o in getattr(st.op, "body", [])}
                st.unit.stages = [(n, _with_arith(u, ops.get(n), arith) or u) for n, u in st.unit.stages]
            else:
                st.unit = _with_arith(st.unit, st.op, arith) or st.unit

    fix(plan.stages)


ARITH = "dsp"  # the calibration designs were synthesized with products written as `*`


def design_plan(graph, target: str):
    """The design's HardwarePlan for `target` with ARITH products (or its stages on an older tree)."""
    try:
        from hwgen.passes.schedule import schedule
    except ImportError:
        return None
    hw = schedule(graph, target=target)
    force_arith(hw, ARITH)
    return hw


def design_stages(graph):
    from hwgen.rtl.top import plan

    stages, _, _ = plan(graph)
    return stages


def inner_units(prefix: str, unit) -> list[tuple[str, object]]:
    """(module path, unit) of a composite unit's inner units, as Amaranth names their modules."""
    out = []
    if isinstance(unit, ConvUnit):
        out += [(f"{prefix}.swg", unit.swg), (f"{prefix}.mv", unit.mv)]
        if unit.gather is not None:
            out.append((f"{prefix}.gather", unit.gather))
    elif isinstance(unit, (KernelBankConvUnit, MaxPoolUnit)):
        out.append((f"{prefix}.swg", unit.swg))
    elif isinstance(unit, ODEBlockUnit):
        for k, (name, u) in enumerate(unit.stages):
            out.append((f"{prefix}.f{k}_{name}", u))
            out += inner_units(f"{prefix}.f{k}_{name}", u)
        out.append((f"{prefix}.add", unit.add))
    elif isinstance(unit, ResidualBlock):
        out += [(f"{prefix}.skip", unit.skip), (f"{prefix}.add", unit.add)]
        for k, st in enumerate(unit.stages):
            out.append((f"{prefix}.f{k}_{st.name}", st.unit))
            out += inner_units(f"{prefix}.f{k}_{st.name}", st.unit)
    return out


# -- bundles: many units in one module tree ------------------------------------------------------------
def _inputs(u):
    return [u.a, u.b] if isinstance(u, ResidualAddUnit) else [u.i]


class Bundle(wiring.Component):
    """Units side by side: every input takes the low bits of one shared input payload (a unit with
    two inputs takes two different slices: Amaranth merges ports driven by the same net), the
    outputs are XORed; a unit's numbers are its own module's (synthesized with -noflatten)."""

    def __init__(self, members):
        self.members = members
        w_in = max(sum(len(p.payload) for p in _inputs(u)) for _, u in members)
        w_out = max(len(u.o.payload) for _, u in members)
        super().__init__({"i": In(stream.Signature(w_in)), "o": Out(stream.Signature(w_out))})

    def elaborate(self, platform):
        m = Module()
        readies, valids, x = [], [], 0
        for name, u in self.members:
            m.submodules[name] = u
            lo = 0
            for p in _inputs(u):
                m.d.comb += [p.payload.eq(self.i.payload[lo:lo + len(p.payload)]), p.valid.eq(self.i.valid)]
                lo += len(p.payload)
                readies.append(p.ready)
            m.d.comb += u.o.ready.eq(self.o.ready)
            valids.append(u.o.valid)
            x = x ^ u.o.payload
        ready, valid = readies[0], valids[0]
        for v in readies[1:]:
            ready = ready & v
        for v in valids[1:]:
            valid = valid & v
        m.d.comb += [self.i.ready.eq(ready), self.o.valid.eq(valid), self.o.payload.eq(x)]
        return m


def _write_build(out_dir: str, top: str, text: str, w_in: int, w_out: int, layers=()) -> str:
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, f"{top}.v"), "w") as f:
        f.write(text)
    with open(os.path.join(out_dir, "report.json"), "w") as f:
        json.dump({"top": top, "verilog": f"{top}.v", "io": {"input": {"payload_bits": w_in},
                                                            "output": {"payload_bits": w_out}},
                   "layers": [{"name": n} for n in layers]}, f)
    return hashlib.sha256(text.encode()).hexdigest()


def synth_cached(out_dir: str, digest: str, target: str, *, allow_synth: bool) -> dict | None:
    """hwgen.flows.synthesize(stage="synth") unless a result for this exact Verilog is cached."""
    from hwgen.flows import synthesize

    stamp = os.path.join(out_dir, f"synth-{target}.sha256")
    res_path = os.path.join(out_dir, f"synth-{target}.json")
    if os.path.isfile(stamp) and os.path.isfile(res_path) and open(stamp).read().strip() == digest:
        with open(res_path) as f:
            return json.load(f)
    if not allow_synth:
        return None
    from hwgen.errors import HwgenError

    t0 = time.perf_counter()
    try:
        res = synthesize(out_dir, target=target, stage="synth", progress=lambda m: None)
    except HwgenError as exc:  # too big for the device: the numbers are written before the error
        if "does not fit" not in str(exc) or not os.path.isfile(res_path):
            raise
        with open(res_path) as f:
            res = json.load(f)
    print(f"    synthesized {os.path.basename(out_dir)} for {target} in {time.perf_counter() - t0:.0f} s", flush=True)
    with open(stamp, "w") as f:
        f.write(digest)
    return res


def module_numbers(res: dict) -> dict[str, dict]:
    return {m["module"]: m for m in res.get("per_module") or []}


def rel_err(est: float, real: float) -> float | None:
    if real == 0:
        return None if est == 0 else float("inf")
    return round((est - real) / real, 3)


UNITS: dict[int, object] = {}  # id(row) -> the unit object, for --fit


def make_row(job, module, unit, target, mods, depth) -> dict | None:
    m = mods.get(module)
    if m is None:
        return None
    est = estimate(unit, target)
    real = {k: int(m.get(k) or 0) for k in YOSYS_KEYS}
    e = est.as_dict()
    row = {"job": job, "module": module, "unit": KIND[type(unit)], "class": type(unit).__name__,
           "target": target, "depth": depth, "params": unit_params(unit), "estimate": e, "yosys": real,
           "error": {ek: rel_err(e[ek], real[yk]) for ek, yk in zip(EST_KEYS, YOSYS_KEYS)}}
    UNITS[id(row)] = unit
    return row


# constants the fit keeps at their structural value: the LUT4 beside each iCE40 SB_CARRY (none on
# ECP5, inside CCU2C) and one LUT4 per distinct 16-word ROM piece
FIXED = {"ice40": {"add": 1.0, "rom_leaf": 1.0}, "ecp5": {"add": 0.0, "rom_leaf": 1.0}}


def fit_constants(rows: list[dict], target: str) -> dict[str, float]:
    """Least-squares (non-negative, relative error) values of hwgen.cost.primitives.K[target]: the
    LUT estimate is linear in them once rounding is off, so each constant's column is the estimate
    with that constant 1 and the others 0 (FIXED ones stay as they are)."""
    from scipy.optimize import nnls

    from hwgen.cost import primitives as P

    data = [(UNITS[id(r)], r["yosys"]["luts"]) for r in rows if r["target"] == target and id(r) in UNITS]
    fixed = FIXED[target]
    names = [n for n in P.K[target] if n not in fixed]
    saved = dict(P.K[target])
    P.ROUND = False
    try:
        for n in names:
            P.K[target][n] = 0.0
        P.K[target].update(fixed)
        base = np.array([float(estimate(u, target).lut) for u, _ in data])
        cols = []
        for n in names:
            P.K[target][n] = 1.0
            cols.append(np.array([float(estimate(u, target).lut) for u, _ in data]) - base)
            P.K[target][n] = 0.0
    finally:
        P.K[target].update(saved)
        P.ROUND = True
    y = np.array([float(v) for _, v in data])
    w = 1.0 / np.maximum(y, 20.0)
    A = np.stack(cols, axis=1)
    sol, _ = nnls(A * w[:, None], (y - base) * w)
    return {**fixed, **{n: round(float(v), 3) for n, v in zip(names, sol)}}


def run_bundle(job, members, target, allow_synth) -> list[dict]:
    out = os.path.join(WORKDIR, job)
    b = Bundle(members)
    text = verilog.convert(b, name="calb", emit_src=False,
                           ports=[b.i.payload, b.i.valid, b.i.ready, b.o.payload, b.o.valid, b.o.ready])
    digest = _write_build(out, "calb", text, len(b.i.payload), len(b.o.payload))
    res = synth_cached(out, digest, target, allow_synth=allow_synth)
    if res is None:
        print(f"    {job} / {target}: not synthesized yet (no cache)")
        return []
    mods = module_numbers(res)
    rows = []
    for name, u in members:
        row = make_row(job, f"calb.{name}", u, target, mods, 1)
        if row:
            rows.append(row)
        for path, iu in inner_units(f"calb.{name}", u):
            if type(iu) in COST_OF and (row := make_row(job, path, iu, target, mods, 2)):
                rows.append(row)
    return rows


def run_design(job, model, cycles, options, target, allow_synth) -> list[dict]:
    from hwgen.rtl.build import build_accelerator

    out = os.path.join(WORKDIR, job)
    graph = compile_design(model, cycles, options)
    hw = design_plan(graph, target)
    if hw is not None:
        build_accelerator(graph, out, plan=hw, target=target)
    else:  # older tree
        build_accelerator(graph, out)
    rep = json.load(open(os.path.join(out, "report.json")))
    text = open(os.path.join(out, rep["verilog"])).read()
    digest = hashlib.sha256(text.encode()).hexdigest()
    res = synth_cached(out, digest, target, allow_synth=allow_synth)
    if res is None:
        print(f"    {job} / {target}: not synthesized yet (no cache)")
        return []
    mods = module_numbers(res)
    rows = []
    top = rep["top"]
    for k, st in enumerate(hw.stages if hw is not None else design_stages(graph)):
        path = f"{top}.s{k}_{st.name}"
        row = make_row(job, path, st.unit, target, mods, 1)
        if row:
            rows.append(row)
        for p, iu in inner_units(path, st.unit):
            if type(iu) in COST_OF and (row := make_row(job, p, iu, target, mods, 2)):
                rows.append(row)
    return rows


# -- summary ---------------------------------------------------------------------------------------
def summarize(rows: list[dict]) -> list[dict]:
    """Per target and unit kind: mean absolute LUT / FF / carry error, the error of the sums, and how
    many BRAM / DSP / LUT RAM counts are exact. Rows whose unit yosys removed (under a tenth of the
    estimated FFs left: the bundle's wiring made its outputs constant) are marked and left out."""
    for r in rows:
        r["anomaly"] = r["yosys"]["ffs"] * 10 < r["estimate"]["ff"]
    rows = [r for r in rows if not r["anomaly"]]
    out = []
    for target in sorted({r["target"] for r in rows}):
        for kind in sorted({r["unit"] for r in rows}):
            sel = [r for r in rows if r["target"] == target and r["unit"] == kind]
            if not sel:
                continue
            s = {"target": target, "unit": kind, "n": len(sel)}
            for ek, yk in (("lut", "luts"), ("ff", "ffs"), ("carry", "carry")):
                errs = [abs(r["estimate"][ek] - r["yosys"][yk]) / max(r["yosys"][yk], 1) for r in sel]
                s[f"{ek}_mape"] = round(100 * sum(errs) / len(errs), 1)
                tot_e = sum(r["estimate"][ek] for r in sel)
                tot_y = sum(r["yosys"][yk] for r in sel)
                s[f"{ek}_total_err"] = round(100 * (tot_e - tot_y) / max(tot_y, 1), 1)
            for ek, yk in (("bram", "brams"), ("dsp", "dsps"), ("lutram", "lutram")):
                s[f"{ek}_exact"] = f"{sum(r['estimate'][ek] == r['yosys'][yk] for r in sel)}/{len(sel)}"
            out.append(s)
    return out


def print_tables(rows, summary):
    print("\n| target | unit | n | LUT MAPE % | LUT sum err % | FF MAPE % | FF sum err % | carry MAPE % | "
          "BRAM exact | DSP exact | LUTRAM exact |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for s in summary:
        print(f"| {s['target']} | {s['unit']} | {s['n']} | {s['lut_mape']} | {s['lut_total_err']} | {s['ff_mape']} | "
              f"{s['ff_total_err']} | {s['carry_mape']} | {s['bram_exact']} | {s['dsp_exact']} | {s['lutram_exact']} |")


def print_rows(rows):
    print("\n| target | job | module | LUT est/yosys | FF est/yosys | carry est/yosys | BRAM | DSP | LUTRAM |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        e, y = r["estimate"], r["yosys"]
        print(f"| {r['target']} | {r['job']} | {r['module'].split('.', 1)[1]} | {e['lut']}/{y['luts']} | "
              f"{e['ff']}/{y['ffs']} | {e['carry']}/{y['carry']} | {e['bram']}/{y['brams']} | {e['dsp']}/{y['dsps']} | "
              f"{e['lutram']}/{y['lutram']} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--targets", nargs="+", default=["ecp5", "ice40"], choices=["ecp5", "ice40"])
    ap.add_argument("--only", nargs="+", default=["units", "designs"], choices=["units", "designs"])
    ap.add_argument("--jobs", nargs="*", help="only these bundles / designs (names as in the sweep)")
    ap.add_argument("--no-synth", action="store_true", help="use cached synthesis results only")
    ap.add_argument("--rows", action="store_true", help="also print every row")
    ap.add_argument("--fit", action="store_true",
                    help="print the least-squares LUT constants (hwgen.cost.primitives.K) for these rows")
    ap.add_argument("--json", default=os.path.join(ROOT, "bench", "results", "estimate_calibration.json"))
    args = ap.parse_args()
    rows = []
    allow = not args.no_synth
    for target in args.targets:
        if "units" in args.only:
            for job, members in unit_sweep().items():
                if args.jobs and job not in args.jobs:
                    continue
                if target == "ice40":
                    members = [m for m in members if m[0] not in ICE40_SKIP]
                print(f"[{target}] {job}: {len(members)} units", flush=True)
                rows += run_bundle(job, members, target, allow)
        if "designs" in args.only:
            for job, model, cycles, opts in DESIGNS:
                if args.jobs and job not in args.jobs:
                    continue
                print(f"[{target}] {job}", flush=True)
                rows += run_design(job, model, cycles, opts, target, allow)
    summary = summarize(rows)
    if args.rows:
        print_rows(rows)
    print_tables(rows, summary)
    if args.fit:
        for target in args.targets:
            print(f"K[{target!r}] fit:", fit_constants(rows, target))
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"summary": summary, "rows": rows}, f, indent=1)
    print(f"wrote {os.path.relpath(args.json, ROOT)} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
