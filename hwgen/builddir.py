"""A build directory (what `hwgen compile` writes) and the checks before anything trusts it.

    <top>.v          the Verilog (a header comment states the stream interface)
    <top>_axis.v     its AXI4-Stream wrapper; <top>_axis_tb.v a smoke testbench (hwgen.rtl.ipcore)
    <top>.f          file list; <top>.core  FuseSoC CAPI2 core (sim, lint, synth targets)
    host_pre.onnx    float input -> the core's input integers; host_post.onnx  its output
                     integers -> the float output (hwgen.host_onnx)
    report.json      the hardware plan (hwgen.plan, schema_version)
    graph.json/.npz  the IR (hwgen.ir.serialize), for the golden model
    manifest.json    sha256 of each of the above, the hwgen version and the schema versions

Each file is written to a temporary sibling and renamed; the manifest goes last, so a compile
that fails part-way leaves a directory whose manifest does not match, and `load_build` refuses
it with one line naming the file. Loading reads JSON and arrays only: it never runs code.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from . import __version__
from .errors import HwgenError
from .plan import SCHEMA_VERSION

MANIFEST = "manifest.json"


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out: Path, files: list[str]) -> dict:
    from .ir.serialize import GRAPH_SCHEMA_VERSION

    doc = {"hwgen_version": __version__, "report_schema_version": SCHEMA_VERSION,
           "graph_schema_version": GRAPH_SCHEMA_VERSION,
           "files": {name: _sha256(out / name) for name in sorted(files)}}
    write_atomic(out / MANIFEST, (json.dumps(doc, indent=2) + "\n").encode())
    return doc


def check_build(directory) -> Path:
    """The directory, after checking every file against the manifest (HwgenError otherwise)."""
    out = Path(directory)
    if not out.is_dir():
        raise HwgenError(f"{out}: no such build directory; run `hwgen compile MODEL -o {out}` first")
    mpath = out / MANIFEST
    if not mpath.is_file():
        hint = " (built by an older hwgen: compile again)" if (out / "graph.pkl").exists() else ""
        raise HwgenError(f"{out}: no {MANIFEST}, not a complete hwgen build{hint}; run `hwgen compile MODEL -o {out}`")
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
        versions = (manifest["report_schema_version"], manifest["graph_schema_version"])
    except (ValueError, KeyError, TypeError):
        raise HwgenError(f"{mpath}: not a valid hwgen manifest; compile again") from None
    from .ir.serialize import GRAPH_SCHEMA_VERSION

    if versions != (SCHEMA_VERSION, GRAPH_SCHEMA_VERSION):
        raise HwgenError(f"{out}: built with schema versions {versions}, this hwgen reads "
                         f"{(SCHEMA_VERSION, GRAPH_SCHEMA_VERSION)}; compile again")
    for name, digest in files.items():
        path = out / name
        if not path.is_file():
            raise HwgenError(f"{path}: missing from the build (listed in {MANIFEST}); compile again")
        if _sha256(path) != digest:
            raise HwgenError(f"{path}: changed since `hwgen compile` wrote it (hash differs from {MANIFEST}); "
                             "compile again rather than edit a build")
    return out


def load_report(directory) -> dict:
    """report.json of a checked build directory."""
    out = check_build(directory)
    return json.loads((out / "report.json").read_text())


def load_build(directory):
    """(report dict, IR graph) of a checked build directory."""
    from .ir.serialize import load_graph

    out = check_build(directory)
    return json.loads((out / "report.json").read_text()), load_graph(out)
