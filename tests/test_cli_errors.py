"""Issue 15: every careless or hostile input is one line on stderr with exit code 2, every build
directory is checked before a command trusts it, a bug is one "internal error" line (exit 3, the
traceback with --debug), verify holds the hardware to report.json's II and latency, and an unmet
--target-cycles is printed and recorded.

Everything runs in-process through hwgen.cli.main (stderr captured). Builds are the small digits
MLP folded to 1024 cycles; only the verify II/latency case runs a simulator (icarus, ~10 s).
"""
from __future__ import annotations

import functools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from onnx_builders import GraphBuilder

import hwgen
from hwgen.builddir import write_manifest
from hwgen.errors import HwgenError
from hwgen.cli import main

ROOT = Path(__file__).resolve().parents[1]
MLP = str(ROOT / "quant_models" / "onnx" / "digits_mlp_w2a2.onnx")   # input [64]
CNN_W1A1 = str(ROOT / "quant_models" / "onnx" / "digits_cnn_w1a1.onnx")
CNN_W4A4 = str(ROOT / "quant_models" / "onnx" / "digits_cnn_w4a4.onnx")


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code, err, phrase, exit_code=2):
    assert code == exit_code, (code, err)
    assert "Traceback" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


# -- files the argument cases use --------------------------------------------------------------

@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    np.save(d / "nan.npy", np.full((2, 64), np.nan, np.float32))
    np.save(d / "inf.npy", np.array([[0.5] * 63 + [np.inf]] * 2, np.float32))
    np.save(d / "huge.npy", np.full((2, 64), 1e300, np.float64))       # inf as float32
    np.save(d / "empty.npy", np.zeros((0, 64), np.float32))
    np.save(d / "ok.npy", np.zeros((2, 64), np.float32))
    np.save(d / "wrong_shape.npy", np.zeros((2, 63), np.float32))
    np.save(d / "text.npy", np.array([["a"] * 64]))
    np.save(d / "objects.npy", np.array([None] * 64, dtype=object), allow_pickle=True)
    np.savez(d / "x.npz", x=np.zeros((2, 64), np.float32))
    (d / "afile").write_text("not a directory\n")
    (d / "adir.onnx").mkdir()
    (d / "fold.json").write_bytes(b"\xff\xfe\x00binary")
    rng = np.random.default_rng(0)
    b = GraphBuilder(10)                                  # float input: needs --input-bits/--input-scale
    b.linear(rng.integers(-7, 8, (6, 10)), 0.125)
    b.op("Relu")
    b.quant(0.25, 4, signed=False)
    b.linear(rng.integers(-7, 8, (3, 6)), 0.5)
    b.save(d / "noinq.onnx")
    return d


def _args(template, d):
    return [a.format(d=d, mlp=MLP) for a in template]


ARG_CASES = [
    # run: input arrays
    ("nan-input", ["run", "{mlp}", "--input", "{d}/nan.npy", "--output", "{d}/y.npy"], "NaN at index [0, 0]"),
    ("inf-input", ["run", "{mlp}", "--input", "{d}/inf.npy", "--output", "{d}/y.npy"], "inf at index [0, 63]"),
    ("float64-beyond-float32", ["run", "{mlp}", "--input", "{d}/huge.npy", "--output", "{d}/y.npy"],
     "beyond float32's range"),
    ("empty-batch", ["run", "{mlp}", "--input", "{d}/empty.npy", "--output", "{d}/y.npy"], "empty batch"),
    ("npz-input", ["run", "{mlp}", "--input", "{d}/x.npz", "--output", "{d}/y.npy"], "an .npz archive"),
    ("text-input", ["run", "{mlp}", "--input", "{d}/text.npy", "--output", "{d}/y.npy"], "expected a numeric array"),
    ("pickled-input", ["run", "{mlp}", "--input", "{d}/objects.npy", "--output", "{d}/y.npy"], "Python objects"),
    ("wrong-shape", ["run", "{mlp}", "--input", "{d}/wrong_shape.npy", "--output", "{d}/y.npy"],
     "does not match the model input [batch, 64]"),
    ("input-is-dir", ["run", "{mlp}", "--input", "{d}", "--output", "{d}/y.npy"], "is a directory"),
    ("input-missing", ["run", "{mlp}", "--input", "{d}/none.npy", "--output", "{d}/y.npy"], "no such file"),
    # destinations
    ("output-missing-dir", ["run", "{mlp}", "--input", "{d}/ok.npy", "--output", "{d}/no/dir/y.npy"],
     "does not exist"),
    ("output-unwritable", ["run", "{mlp}", "--input", "{d}/ok.npy", "--output", "/proc/y.npy"], "cannot write in /proc"),
    ("output-is-dir", ["run", "{mlp}", "--input", "{d}/ok.npy", "--output", "{d}/adir.onnx"], "is a directory"),
    ("output-under-file", ["run", "{mlp}", "--input", "{d}/ok.npy", "--output", "{d}/afile/y.npy"],
     "is not a directory"),
    ("json-missing-dir", ["inspect", "{mlp}", "--json", "{d}/no/dir/o.json"], "does not exist"),
    ("json-unwritable", ["inspect", "{mlp}", "--json", "/proc/o.json"], "cannot write in /proc"),
    ("json-is-dir", ["inspect", "{mlp}", "--json", "{d}"], "is a directory"),
    ("compile-o-proc", ["compile", "{mlp}", "-o", "/proc/x"], "cannot write in /proc"),
    ("compile-o-file", ["compile", "{mlp}", "-o", "{d}/afile"], "exists and is not a directory"),
    ("compile-o-under-file", ["compile", "{mlp}", "-o", "{d}/afile/sub"], "is not a directory"),
    ("compile-o-empty", ["compile", "{mlp}", "-o", ""], "give a directory name"),
    # identifiers and numbers
    ("top-bad-name", ["compile", "{mlp}", "-o", "{d}/c", "--top", "1 bad-name"], "not a Verilog identifier"),
    ("top-empty", ["compile", "{mlp}", "-o", "{d}/c", "--top", ""], "not a Verilog identifier"),
    ("top-keyword", ["compile", "{mlp}", "-o", "{d}/c", "--top", "module"], "Verilog keyword"),
    ("input-bits-64", ["inspect", "{d}/noinq.onnx", "--input-bits", "64", "--input-scale", "0.5"],
     "--input-bits: must be an integer in [1, 32]"),
    ("input-bits-1000", ["inspect", "{d}/noinq.onnx", "--input-bits", "1000", "--input-scale", "0.5"],
     "--input-bits: must be an integer in [1, 32]"),
    ("input-scale-nan", ["inspect", "{d}/noinq.onnx", "--input-bits", "4", "--input-scale", "nan"],
     "--input-scale: must be a finite number > 0"),
    ("input-scale-inf", ["inspect", "{d}/noinq.onnx", "--input-bits", "4", "--input-scale", "inf"],
     "--input-scale: must be a finite number > 0"),
    ("input-scale-alone", ["inspect", "{d}/noinq.onnx", "--input-scale", "0.5"], "go together"),
    ("acc-bits-0", ["inspect", "{mlp}", "--acc-bits", "0"], "--acc-bits: must be an integer in [2, 64]"),
    ("acc-bits-text", ["inspect", "{mlp}", "--acc-bits", "x"], "--acc-bits: expected an integer"),
    ("target-cycles-0", ["compile", "{mlp}", "-o", "{d}/c", "--fold", "auto", "--target-cycles", "0"],
     "--target-cycles: must be an integer >= 1"),
    ("fold-auto-no-target", ["compile", "{mlp}", "-o", "{d}/c", "--fold", "auto"], "needs target_cycles"),
    ("fold-file-missing", ["compile", "{mlp}", "-o", "{d}/c", "--fold", "{d}/none.json"], "no such file"),
    ("fold-file-is-dir", ["compile", "{mlp}", "-o", "{d}/c", "--fold", "{d}"], "is a directory"),
    ("fold-file-binary", ["compile", "{mlp}", "-o", "{d}/c", "--fold", "{d}/fold.json"], "cannot read it as text"),
    ("kernel-bank-force-nothing", ["inspect", "{mlp}", "--kernel-bank", "force"], "no layer to bank"),
    ("model-is-dir", ["inspect", "{d}/adir.onnx"], "is a directory, not an ONNX model file"),
    ("model-not-regular", ["inspect", "/dev/null"], "not a regular file"),
    ("model-missing", ["inspect", "{d}/none.onnx"], "no such file"),
    ("verify-vectors-0", ["verify", "{d}", "--vectors", "0"], "--vectors: must be an integer >= 1"),
    ("verify-seed-negative", ["verify", "{d}", "--seed", "-1"], "--seed: must be an integer >= 0"),
    ("synth-freq-0", ["synth", "{d}", "--target", "ice40", "--freq", "0"], "--freq: must be a finite number in (0, 1000]"),
    ("synth-freq-nan", ["synth", "{d}", "--target", "ice40", "--freq", "nan"], "--freq: must be a finite number"),
    ("synth-timeout-0", ["synth", "{d}", "--target", "ice40", "--timeout", "0"], "--timeout: must be a finite number > 0"),
    ("synth-timeout-negative", ["synth", "{d}", "--target", "ice40", "--timeout", "-1"],
     "--timeout: must be a finite number > 0"),
    ("no-command", [], "required: COMMAND"),
    ("unknown-command", ["frobnicate"], "invalid choice"),
    ("verify-missing-dir", ["verify", "{d}/none"], "no such build directory"),
    ("synth-missing-dir", ["synth", "{d}/none", "--target", "ice40"], "no such build directory"),
    ("report-missing-dir", ["report", "{d}/none"], "no such build directory"),
    ("summary-on-a-file", ["summary", "{d}/afile"], "is not a directory"),
    ("report-dir-without-report", ["report", "{d}/adir.onnx"], "report.json not found"),
]


@pytest.mark.parametrize("template,phrase", [c[1:] for c in ARG_CASES], ids=[c[0] for c in ARG_CASES])
def test_bad_argument_is_one_line(files, capsys, monkeypatch, template, phrase):
    monkeypatch.chdir(files)
    code, _, err = cli(capsys, *_args(template, files))
    assert_one_line(code, err, phrase)
    assert not (files / "adir.onnx.npy").exists() and not (files / "hwgen_top.v").exists()


def test_run_writes_exactly_the_output_name(files, capsys):
    code, out, err = cli(capsys, "run", MLP, "--input", files / "ok.npy", "--output", files / "y.out")
    assert code == 0, err
    assert out.strip().endswith(f"-> {files / 'y.out'}")
    assert np.load(files / "y.out").shape == (2, 10) and not (files / "y.out.npy").exists()


def test_predict_validates_like_run():
    acc = hwgen.compile(MLP)
    with pytest.raises(HwgenError, match="NaN"):
        acc.predict(np.full((1, 64), np.nan, np.float32))
    with pytest.raises(HwgenError, match="empty batch"):
        acc.predict(np.zeros((0, 64), np.float32))
    assert acc.predict(np.zeros(64, np.float32)).shape == (1, 10)


# -- build directories -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def base_build(tmp_path_factory):
    d = tmp_path_factory.mktemp("build") / "base"
    hwgen.compile(MLP, fold="auto", target_cycles=1024).write(d)
    return d


def _edit_report(d: Path, fn, *, resign=False):
    rep = json.loads((d / "report.json").read_text())
    (d / "report.json").write_text(json.dumps(fn(rep)))
    if resign:  # what a careful forger does: only the checks beyond the hashes can catch it
        write_manifest(d, list(json.loads((d / "manifest.json").read_text())["files"]))


def _set(rep, *path_value):
    *path, key, value = path_value
    node = rep
    for p in path:
        node = node[p]
    node[key] = value
    return rep


# name -> (tamper, phrase every command must refuse it with); the manifest catches the unsigned edits
TAMPER = {
    "verilog-deleted": (lambda d: (d / "hwgen_top.v").unlink(), "hwgen_top.v: missing"),
    "graph-npz-deleted": (lambda d: (d / "graph.npz").unlink(), "graph.npz: missing"),
    "graph-json-corrupt": (lambda d: (d / "graph.json").write_text("{nope"), "graph.json: changed"),
    "report-invalid-json": (lambda d: (d / "report.json").write_text("{nope"), "report.json: changed"),
    "report-empty-object": (lambda d: (d / "report.json").write_text("{}"), "report.json: changed"),
    "top-renamed": (lambda d: _edit_report(d, lambda r: {**r, "top": "other"}), "report.json: changed"),
    "elements-per-beat": (lambda d: _edit_report(d, lambda r: _set(r, "io", "input", "elements_per_beat", 3)),
                          "report.json: changed"),
    "ii-cycles-1": (lambda d: _edit_report(d, lambda r: {**r, "ii_cycles": 1}), "report.json: changed"),
    "manifest-corrupt": (lambda d: (d / "manifest.json").write_text("[]"), "not a valid hwgen manifest"),
    "resigned-empty-report": (lambda d: _edit_report(d, lambda r: {}, resign=True), "'top'"),
    "resigned-top-renamed": (lambda d: _edit_report(d, lambda r: {**r, "top": "other"}, resign=True),
                             "top module 'other' is not in hwgen_top.v"),
    "resigned-ii-text": (lambda d: _edit_report(d, lambda r: {**r, "ii_cycles": "fast"}, resign=True),
                         "ii_cycles is 'fast'"),
}
COMMANDS = {"verify": ["verify", "{b}", "--vectors", "1"], "synth": ["synth", "{b}", "--target", "ice40"],
            "report": ["report", "{b}"], "summary": ["summary", "{b}"]}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("tamper", list(TAMPER))
def test_tampered_build_is_refused(base_build, tmp_path, capsys, tamper, command):
    d = tmp_path / "b"
    shutil.copytree(base_build, d)
    fn, phrase = TAMPER[tamper]
    fn(d)
    code, _, err = cli(capsys, *[a.format(b=d) for a in COMMANDS[command]])
    assert_one_line(code, err, phrase)
    assert not list(d.glob("report.md")) and not list(d.glob("flow-*")) and not list(d.glob("sim_build_*"))


def test_resigned_stream_format_is_refused_by_verify(base_build, tmp_path, capsys):
    d = tmp_path / "b"
    shutil.copytree(base_build, d)
    _edit_report(d, lambda r: _set(r, "io", "input", "elements_per_beat", 3), resign=True)
    assert_one_line(*cli(capsys, "verify", d, "--vectors", 1)[::2], "io.input is inconsistent")


def test_directories_without_manifest(base_build, tmp_path, capsys):
    """report/summary need report.json and its Verilog; synth (bench/unit_synth.py's single-unit
    directories) accepts such a directory; verify needs a complete build."""
    from hwgen.flows.scripts import make_plan

    d = tmp_path / "b"
    shutil.copytree(base_build, d)
    (d / "manifest.json").unlink()
    assert_one_line(*cli(capsys, "verify", d)[::2], "no manifest.json")
    assert make_plan(d, target="ice40").top == "hwgen_top"          # synth would run on it
    assert cli(capsys, "summary", d)[0] == 0
    (d / "hwgen_top.v").unlink()
    for cmd in ("report", "summary", "synth"):
        assert_one_line(*cli(capsys, cmd, d, *(["--target", "ice40"] if cmd == "synth" else []))[::2],
                        "hwgen_top.v not found")
    (d / "report.json").write_text("{}")
    for cmd in ("report", "summary"):
        assert_one_line(*cli(capsys, cmd, d)[::2], "missing key 'top'")
    (d / "report.json").write_text('{"top": "hwgen_top", "verilog": "hwgen_top.v", "io": []}')
    assert_one_line(*cli(capsys, "summary", d)[::2], "'io' must hold")


def test_summary_skips_an_unreadable_synth_result(base_build, tmp_path, capsys):
    d = tmp_path / "b"
    shutil.copytree(base_build, d)
    (d / "synth-ice40.json").write_text("{nope")
    code, out, err = cli(capsys, "summary", d)
    assert code == 0 and not err
    assert "synth-ice40.json: unreadable (not valid JSON), skipped" in out


# -- internal errors ---------------------------------------------------------------------------

def test_internal_error_is_one_line_exit_3(capsys, monkeypatch):
    def broken(args):
        raise RuntimeError("unexpected state\nsecond line")

    monkeypatch.setattr("hwgen.cli.cmd_inspect", broken)
    code, _, err = cli(capsys, "inspect", MLP)
    line = assert_one_line(code, err, "hwgen: internal error: RuntimeError: unexpected state; second line", 3)
    assert "--debug" in line
    for args in (["--debug", "inspect", MLP], ["inspect", MLP, "--debug"]):
        code, _, err = cli(capsys, *args)
        assert code == 3 and "Traceback" in err and "in broken" in err
        assert err.strip().splitlines()[-1].startswith("hwgen: internal error: RuntimeError")


def test_user_error_with_debug_shows_the_traceback(capsys):
    code, _, err = cli(capsys, "--debug", "inspect", "/nonexistent.onnx")
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1] == \
        "hwgen: error: /nonexistent.onnx: no such file"


# -- folding targets ---------------------------------------------------------------------------

def test_unmet_target_names_the_slow_layers():
    acc = hwgen.compile(CNN_W4A4, fold="auto", target_cycles=256)
    note = acc.plan.notes[-1]
    assert note.startswith(f"schedule: II {acc.plan.ii_cycles} cycles misses the target of 256 cycles")
    assert "Conv_0 (576)" in note and "Conv_1 (576)" in note
    assert not any(n.startswith("schedule:") for n in hwgen.compile(MLP, fold="auto", target_cycles=1024).plan.notes)


def test_unmet_target_from_plumbing_is_printed_and_recorded(tmp_path, capsys):
    code, out, err = cli(capsys, "compile", CNN_W1A1, "-o", tmp_path, "--fold", "auto", "--target-cycles", 800)
    assert code == 0, err
    rep = json.loads((tmp_path / "report.json").read_text())
    assert rep["ii_cycles"] > 800
    notes = [n for n in rep["notes"] if n.startswith("schedule:")]
    assert len(notes) == 1 and "although every stage meets it" in notes[0] and "plumbing" in notes[0]
    assert f"note: {notes[0]}" in out


def test_fold_full_help_says_what_full_means_for_convs(capsys):
    assert main(["compile", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "II = 1 for an MLP" in text and "output pixels x kh*kw cycles" in text


# -- verify holds the hardware to report.json --------------------------------------------------

@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
def test_verify_checks_measured_ii_and_latency_against_report(base_build, tmp_path, capsys, monkeypatch):
    import sim.verify

    # 4 random vectors, no accumulator-extreme ones: enough for the II (>= 3 back to back), ~10 s
    monkeypatch.setattr(sim.verify, "verify_dir", functools.partial(sim.verify.verify_dir, adversarial=False))
    d = tmp_path / "b"
    shutil.copytree(base_build, d)
    code, out, err = cli(capsys, "verify", d, "--vectors", 4, "--sim", "icarus")
    assert code == 0 and not err, (out, err)
    rep = json.loads((d / "report.json").read_text())
    ii, latency = rep["ii_cycles"], rep["latency_cycles"]
    # the report promises one cycle less than the hardware does, and the manifest is re-signed:
    # every vector still passes bit-exactly, only the timing check can catch it
    _edit_report(d, lambda r: {**r, "ii_cycles": ii - 1, "latency_cycles": latency - 1}, resign=True)
    code, out, err = cli(capsys, "verify", d, "--vectors", 4, "--sim", "icarus")
    assert code == 1, (out, err)
    assert "4 passed, 0 failed" in out
    assert f"II measured {ii:g} cycles, report.json ii_cycles says {ii - 1}" in out
    assert f"latency measured {latency} cycles, report.json latency_cycles says {latency - 1}" in out
    line = assert_one_line(code, err, "hwgen: verify failed: 4 passed, 0 failed; II measured", 1)
    assert f"says {latency - 1}" in line
