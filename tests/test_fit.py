"""hwgen.fit: the fastest auto folding whose estimate fits a device (fast: the digits MLP w2a2).

Devices here are made up from the points' own estimates, so the assertions hold exactly whatever
the cost model says about the digits MLP."""
import math
import os

import numpy as np
import pytest
from conftest import OWN_MODELS

from hwgen.api import compile as hwgen_compile
from hwgen.compiler import compile_model
from hwgen.errors import HwgenError
from hwgen.fit import _key, candidates, fit, limits, needs, resolve_device
from hwgen.flows.devices import Device
from hwgen.passes.fold import fold_graph, folding_table

MLP = os.path.join(OWN_MODELS, "digits_mlp_w2a2.onnx")
# every distinct auto folding of the 64-64-64-10 MLP (MatVec cycles (C/PE)*(K/SIMD), divisors of 64 and 10)
NATURAL = [1, 2, 4, 5, 8, 10, 16, 20, 32, 40, 64, 80, 128, 160, 256, 320, 512, 640, 1024, 2048, 4096]


def device(lut, ff=10**7, bram=10**5, dsp=10**5, family="ice40") -> Device:
    return Device(family, "fake", "FAKE", None, lut, ff, bram, dsp)


@pytest.fixture(scope="module")
def everything():
    """Every candidate compiled (on a device everything fits): their points by target."""
    acc = fit(MLP, device=device(10**7), exhaustive=True)
    return {p.target_cycles: p for p in acc.fit_report.points}


def test_candidates_are_the_distinct_auto_foldings():
    graph = compile_model(MLP)
    cands = candidates(graph)
    assert [t for t, _, _ in cands] == NATURAL
    assert {o for _, _, o in cands} == {"outputs"}
    for target, folding, _ in cands:  # auto folding at the natural target gives exactly that folding
        g = compile_model(MLP)
        fold_graph(g, ("auto", target))
        assert folding_table(g) == folding
        assert max(f["pe"] * f["simd"] for f in folding.values()) >= 1
    assert len({tuple(sorted((k, v["pe"], v["simd"]) for k, v in f.items())) for _, f, _ in cands}) == len(cands)


def test_device_names_and_limits():
    assert resolve_device("ecp5-85").part == "LFE5U-85F"
    for name in ("ecp5-85k", "85k", "LFE5U-85F", "lfe5u-85f"):
        assert resolve_device(name).part == "LFE5U-85F"
    assert resolve_device("ecp5-25").part == "LFE5U-25F"
    for name in ("up5k", "ice40-up5k", "iCE40UP5K"):
        assert resolve_device(name).part == "iCE40UP5K"
    ecp5 = resolve_device("ecp5-85")
    assert (ecp5.luts, ecp5.ffs, ecp5.brams, ecp5.dsps) == (83640, 83640, 208, 156)
    up5k = resolve_device("up5k")
    assert (up5k.luts, up5k.brams, up5k.dsps) == (5280, 30, 8)
    assert limits(ecp5, 0.8) == {"lut": 66912, "ff": 66912, "bram": 166, "dsp": 124}
    assert limits(up5k, 1.0) == {"lut": 5280, "ff": 5280, "bram": 30, "dsp": 8}
    with pytest.raises(HwgenError, match=r"^unknown device 'ecp5-99': choose one of ecp5-12k, .*ice40-up5k"):
        resolve_device("ecp5-99")
    with pytest.raises(HwgenError, match=r"XC7Z020.*estimates resources for ecp5 and ice40 only"):
        resolve_device("xc7z020")


def test_needs_count_what_place_and_route_needs():
    est = {"lut": 100, "ff": 300, "carry": 20, "lutram": 5, "bram": 3, "dsp": 1}
    assert needs(est, "ecp5") == {"lut": 100 + 2 * 20 + 2 * 5, "ff": 300, "bram": 3, "dsp": 1}
    assert needs(est, "ice40") == {"lut": 300, "ff": 300, "bram": 3, "dsp": 1}  # logic cells: max(LUT, FF, carry)


def test_everything_fits_chooses_the_fastest(everything):
    assert sorted(everything) == NATURAL
    acc = fit(MLP, device=device(10**7))
    assert acc.fit_report.point.target_cycles == 1
    assert acc.plan.ii_cycles == everything[1].ii_cycles == 1
    # the fastest folded candidate (target 2) fits, so the fully parallel one is worth a look;
    # nothing slower can beat II 1
    assert [p.target_cycles for p in acc.fit_report.points] == [2, 1]


@pytest.mark.parametrize("at", [128, 32, 2048])
def test_fake_device_forces_the_choice(everything, at):
    """A device exactly the size of one point's needs: the search takes the fastest point that
    fits it of all candidates (32: the 40-cycle folding needs more than the 32-cycle one, which
    the search's look-back finds), and the Accelerator is that compile."""
    p = everything[at]
    dev = device(p.needs["lut"], p.needs["ff"], p.needs["bram"], p.needs["dsp"])
    lim = limits(dev, 1.0)
    fitting = [q for q in everything.values() if all(q.needs[k] <= lim[k] for k in lim)]
    want = min(fitting, key=lambda q: (q.ii_cycles, q.latency_cycles, q.needs["lut"]))
    assert want.ii_cycles <= p.ii_cycles
    acc = fit(MLP, device=dev, margin=1.0)
    report = acc.fit_report
    chosen = report.point
    assert chosen.target_cycles == want.target_cycles and chosen.fits
    assert chosen.folding == want.folding == folding_table(acc.graph)
    assert (acc.plan.ii_cycles, acc.plan.latency_cycles) == (want.ii_cycles, want.latency_cycles)
    assert needs(acc.plan.estimate, "ice40") == want.needs
    for q in report.points:  # the same compile as on the big device; only fits differs
        e = everything[q.target_cycles]
        assert (q.folding, q.ii_cycles, q.latency_cycles, q.estimate, q.needs) == \
            (e.folding, e.ii_cycles, e.latency_cycles, e.estimate, e.needs)
        assert q.fits == all(q.needs[k] <= lim[k] for k in lim)
    assert not any(q.fits and q.ii_cycles < chosen.ii_cycles for q in report.points)
    assert len(report.points) < len(NATURAL)  # not every candidate
    # the fully parallel design (8832 lanes) is compiled only when a candidate with 1/32 of its
    # lanes has logic that fits: at 32 cycles (276 lanes), not at 128 (69) or 2048
    assert (1 in {q.target_cycles for q in report.points}) == (at == 32)
    # the chosen design is the one `hwgen compile --fold FILE` gives for its folding
    ref = hwgen_compile(MLP, fold=chosen.folding, target="ice40")
    assert (ref.plan.ii_cycles, ref.plan.latency_cycles, ref.plan.estimate) == \
        (acc.plan.ii_cycles, acc.plan.latency_cycles, acc.plan.estimate)
    x = np.random.default_rng(0).random((16, 64), dtype=np.float32)
    assert np.array_equal(acc.predict(x), ref.predict(x))


def test_latency_objective_takes_the_smallest_latency_tried(everything):
    p = everything[256]
    dev = device(p.needs["lut"], p.needs["ff"], p.needs["bram"], p.needs["dsp"])
    acc = fit(MLP, device=dev, margin=1.0, objective="latency")
    report = acc.fit_report
    fitting = [q for q in report.points if q.fits]
    assert report.point.latency_cycles == min(q.latency_cycles for q in fitting)
    assert report.objective == "latency"


def test_latency_objective_also_tries_foldings_oriented_for_latency():
    """On a device everything fits, the latency objective takes the fastest folding oriented for
    latency (fold "stream"): II 1 like the plain one, and no dense layer waits for its producer to finish."""
    graph = compile_model(MLP)
    stream = {_key(f): t for t, f, _ in candidates(graph, "stream")}
    plain = {_key(f): t for t, f, _ in candidates(graph)}
    assert set(stream) != set(plain) and len(stream) == len(plain) == len(NATURAL)
    acc = fit(MLP, device=device(10**7), objective="latency")
    p = acc.fit_report.point
    assert p.ii_cycles == 1 and p.latency_cycles == min(q.latency_cycles for q in acc.fit_report.points)
    both = fit(MLP, device=device(10**7), objective="latency", exhaustive=True).fit_report
    assert len(both.points) == len(set(stream) | set(plain)) == both.candidates


def test_margin_scales_the_device(everything):
    p = everything[128]
    dev = device(p.needs["lut"], p.needs["ff"])
    lim = limits(dev, 0.5)  # at margin 0.5 the device takes points needing at most half of it
    assert lim["lut"] == math.floor(p.needs["lut"] * 0.5)
    fitting = [q for q in everything.values() if all(q.needs[k] <= lim[k] for k in lim)]
    want = min(fitting, key=lambda q: (q.ii_cycles, q.latency_cycles))
    assert want.ii_cycles > p.ii_cycles
    acc = fit(MLP, device=dev, margin=0.5)
    assert acc.fit_report.point.target_cycles == want.target_cycles
    assert acc.fit_report.limits == lim


def test_nothing_fits_is_one_clear_line(everything):
    tiny = device(100, 100, 1, 0)
    with pytest.raises(HwgenError) as exc:
        fit(MLP, device=tiny)
    msg = str(exc.value)
    report = exc.value.fit_report
    assert report.chosen is None and report.points and not any(q.fits for q in report.points)
    assert report.points[-1].target_cycles == NATURAL[-1]  # the slowest was tried before giving up
    # "smallest": the point whose worst resource is least over its limit (a zero limit counts as 1)
    lim = report.limits
    assert lim == {"lut": 80, "ff": 80, "bram": 0, "dsp": 0}
    worst = lambda q: max(q.needs[k] / max(lim[k], 1) for k in lim)
    smallest = min(report.points, key=worst)
    assert "\n" not in msg
    assert msg.startswith("nothing fits FAKE at margin 0.8 (limits 80 logic cells, 80 FF, 0 BRAM, 0 DSP): "
                          f"the smallest of {len(report.points)} foldings tried ")
    over = "; ".join(f"{k} {smallest.needs[k]} > {lim[k]}" for k in lim if smallest.needs[k] > lim[k])
    assert msg.endswith(f"(target {smallest.target_cycles} cycles, II {smallest.ii_cycles}) needs "
                        f"{smallest.needs['lut']} logic cells, {smallest.needs['ff']} FF, {smallest.needs['bram']} "
                        f"BRAM, 0 DSP ({over})")


def test_bad_arguments_are_hwgen_errors():
    with pytest.raises(HwgenError, match="objective must be one of throughput, latency, got 'power'"):
        fit(MLP, device="up5k", objective="power")
    with pytest.raises(HwgenError, match=r"margin must be a number in \(0, 1\], got 0"):
        fit(MLP, device="up5k", margin=0)
    with pytest.raises(HwgenError, match="fit chooses the folding: do not pass fold"):
        fit(MLP, device="up5k", fold="auto")
    with pytest.raises(HwgenError, match=r"target 'ecp5' does not match device iCE40UP5K \(ice40\)"):
        fit(MLP, device="up5k", target="ecp5")
    with pytest.raises(HwgenError, match="unknown device 'nope'"):
        fit(MLP, device="nope")


def test_cli_fit(tmp_path, capsys):
    from hwgen.cli import main

    out = tmp_path / "b"
    assert main(["compile", MLP, "-o", str(out), "--fit", "ice40-up5k", "--objective", "latency",
                 "--margin", "0.9"]) == 0
    text = capsys.readouterr().out
    assert "fitted to iCE40UP5K (latency, margin 0.9" in text
    assert "target cycles" in text and "limit (0.9 x)" in text
    assert "chosen (latency): target " in text
    assert (out / "report.json").is_file()
    import json

    report = json.loads((out / "report.json").read_text())
    assert report["target"] == "ice40"
    assert any(n.startswith("fit: chosen (latency)") for n in report["notes"])
    for argv, msg in ((["--fit", "up5k", "--fold", "auto"], "--fit chooses the folding: drop --fold"),
                      (["--fit", "up5k", "--target-cycles", "64"], "drop --target-cycles"),
                      (["--objective", "latency"], "--objective and --margin go with --fit DEVICE"),
                      (["--fit", "nope"], "unknown device 'nope'")):
        assert main(["compile", MLP, "-o", str(tmp_path / "c"), *argv]) == 2
        err = capsys.readouterr().err
        assert msg in err and err.count("\n") == 1
