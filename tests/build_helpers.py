"""Test-only helpers for build directories: surgery on them, verifying one in Verilator."""
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


def verify_on_verilator(acc, build_dir, *, vectors: int, seed: int = 1, **kw):
    """Write acc's build to build_dir and verify it in Verilator (sim.verify.verify_dir's keywords, e.g.
    adversarial_limit, cxx_opt): every vector bit-exact (random stalls included) and the bench's measured
    II and latency those of the plan. Returns the VerifyResult (callers pin r.vectors)."""
    acc.write(build_dir)
    r = acc.verify(sim="verilator", vectors=vectors, seed=seed, **kw)
    assert r.ok and r.failed == 0 and r.passed == r.vectors, r.summary()
    assert (r.ii_measured, r.latency_measured) == (acc.plan.ii_cycles, acc.plan.latency_cycles), r.summary()
    return r
