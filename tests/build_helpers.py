"""Test-only surgery on build directories."""
from __future__ import annotations

import json
from pathlib import Path

from hwgen.builddir import MANIFEST, write_manifest
from hwgen.ir.serialize import save_graph


def swap_golden(out_dir, graph) -> None:
    """Replace a build's golden graph (e.g. hardware built from a deliberately broken graph, checked
    against the real one) and re-sign the manifest, as a build of that pair would be."""
    out = Path(out_dir)
    save_graph(graph, out)
    files = json.loads((out / MANIFEST).read_text())["files"]
    write_manifest(out, list(files))
