"""A non-editable install (a wheel) can compile, verify and synth.

rtl_templates/ is a top-level folder of the repository; pyproject.toml maps it to the package
data hwgen/rtl_templates/ of the wheel, and hwgen.flows.scripts.templates_dir() finds it through
importlib.resources (or, in a source checkout / editable install, next to the hwgen package).

The wheel is built from a copy of the sources (pip builds in the tree it is given, so building
the work tree itself would leave build/ and hwgen.egg-info/ in it). The end-to-end test installs
it into a venv with --system-site-packages (numpy, amaranth, cocotb, ... come from there; so does
the editable hwgen, which the venv's copy shadows: checked below, together with "no module was
imported from the source tree") and runs hwgen from a directory outside the repository.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MODEL = REPO / "quant_models" / "onnx" / "digits_mlp_w2a2.onnx"
TEMPLATES = ("serial_harness.v", "icebreaker_top.v", "icebreaker.pcf")
RUNTIME_FILES = ("hwgen/__main__.py", "hwgen/cli.py", "hwgen/flows/scripts.py", "hwgen/flows/synth.py",
                 "hwgen/rtl/lint.py", "hwgen/tools.py",
                 "sim/__init__.py", "sim/verify.py", "sim/cocotb_bench.py", "sim/vectors.py")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "sim_build*", ".pytest_cache")


def _env() -> dict[str, str]:
    """The environment without PYTHONPATH (so the source tree is not on sys.path)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}


def _run(argv, cwd, timeout=600) -> str:
    p = subprocess.run([str(a) for a in argv], cwd=cwd, env=_env(), capture_output=True, text=True,
                       timeout=timeout)
    out = p.stdout + p.stderr
    assert p.returncode == 0, f"{' '.join(map(str, argv))} exited with {p.returncode}:\n{out[-4000:]}"
    return out


def _source_items() -> list[str]:
    """What the build needs: pyproject.toml, the readme, the packages' and mapped folders' roots."""
    st = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    roots = {p.split(".")[0] for p in st["packages"]}
    roots |= {d.split("/")[0] for d in st.get("package-dir", {}).values()}
    return sorted(roots) + ["pyproject.toml", "README.md", "MANIFEST.in", "LICENSE"]


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, Path]:
    """(the wheel, the copy of the sources it was built from)"""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in _source_items():
        p = REPO / name
        if p.is_dir():
            shutil.copytree(p, src / name, ignore=IGNORE)
        elif p.is_file():
            shutil.copy2(p, src / name)
    _run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "--no-index",
          "-q", "-w", tmp / "dist"], cwd=src)
    (whl,) = (tmp / "dist").glob("hwgen-*.whl")
    return whl, src


def test_wheel_carries_templates_benches_and_every_module(built):
    wheel, src = built
    names = set(zipfile.ZipFile(wheel).namelist())
    for t in TEMPLATES:
        assert f"hwgen/rtl_templates/{t}" in names
    for f in RUNTIME_FILES:
        assert f in names
    # pyproject.toml lists the packages by hand (packages.find cannot map rtl_templates/ into
    # hwgen): every module of the sources must have made it into the wheel.
    top = {p.split(".")[0] for p in tomllib.loads((src / "pyproject.toml").read_text())
           ["tool"]["setuptools"]["packages"]}
    missing = sorted(str(f.relative_to(src)) for t in top for f in (src / t).rglob("*.py")
                     if "__pycache__" not in f.parts and f.relative_to(src).as_posix() not in names)
    assert not missing, ("modules missing from the wheel; add their packages to [tool.setuptools] "
                         f"packages in pyproject.toml: {missing}")


def test_templates_in_wheel_match_source_tree(built):
    """The packaged templates are the repository's rtl_templates/, which a source checkout or an
    editable install (this test session's hwgen) finds in place."""
    from hwgen.flows.scripts import templates_dir

    with zipfile.ZipFile(built[0]) as z:
        for t in TEMPLATES:
            assert z.read(f"hwgen/rtl_templates/{t}") == (REPO / "rtl_templates" / t).read_bytes()
    import hwgen

    if Path(hwgen.__file__).resolve().is_relative_to(REPO):
        assert templates_dir() == REPO / "rtl_templates"


CHECK_INSTALL = r"""
import importlib, pkgutil, sys
from pathlib import Path
repo, venv = Path(sys.argv[1]), Path(sys.argv[2])
import hwgen, sim
for pkg in (hwgen, sim):
    for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if not m.name.endswith("__main__"):
            importlib.import_module(m.name)
from hwgen.flows.scripts import templates_dir
d = templates_dir()
print("hwgen", hwgen.__file__)
print("sim", sim.__file__)
print("templates", d)
assert Path(hwgen.__file__).resolve().is_relative_to(venv), hwgen.__file__
assert d.resolve().is_relative_to(venv) and d.name == "rtl_templates" and d.parent.name == "hwgen", d
from_repo = sorted(n for n, m in list(sys.modules.items())
                   if getattr(m, "__file__", None) and Path(m.__file__).resolve().is_relative_to(repo))
assert not from_repo, f"imported from the source tree: {from_repo}"
"""

BOARD_PLAN = r"""
import sys
from pathlib import Path
from hwgen.flows.scripts import make_plan
repo = Path(sys.argv[1])
plan = make_plan("build", target="ice40", stage="bitstream")
for name in ("icebreaker_top.v", "icebreaker.pcf"):
    assert plan.files[name] == (repo / "rtl_templates" / name).read_text(), name
print("board plan ok")
"""


def test_wheel_install_compiles_verifies_and_synthesizes(built, tmp_path):
    wheel = built[0]
    venv = tmp_path / "venv"
    # --without-pip: the system pip (seen through --system-site-packages) installs into the venv.
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], cwd=tmp_path)
    py = venv / "bin" / "python"
    # pip may say it will not uninstall the editable hwgen outside the environment: it is left alone.
    _run([py, "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel], cwd=tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    venv = venv.resolve()

    out = _run([py, "-c", CHECK_INSTALL, REPO, venv], cwd=work)
    assert f"hwgen {venv}" in out, out

    _run([py, "-m", "hwgen", "compile", MODEL, "-o", "build", "--fold", "auto", "--target-cycles", "1024"],
         cwd=work)
    assert (work / "build" / "report.json").is_file()
    out = _run([py, "-m", "hwgen", "verify", "build", "--sim", "icarus", "--vectors", "3"], cwd=work)
    assert " 0 failed" in out, out

    # the board top and its pin constraints come from the packaged templates too
    assert "board plan ok" in _run([py, "-c", BOARD_PLAN, REPO], cwd=work)
    if shutil.which("yosys") is None:
        pytest.skip("yosys not installed: the synth run was not tried (templates were found)")
    _run([venv / "bin" / "hwgen", "synth", "build", "--target", "ice40", "--stage", "synth"], cwd=work)
    assert (work / "build" / "synth-ice40.json").is_file()
    assert ((work / "build" / "flow-ice40" / "serial_harness.v").read_bytes()
            == (REPO / "rtl_templates" / "serial_harness.v").read_bytes())
