"""The public Python API (hwgen.compile -> Accelerator), including README's example as written."""
from __future__ import annotations

import json
import os
import re

import numpy as np
import onnx
import pytest
from conftest import ROOT, SHARED, random_inputs, shared_model

import hwgen
from hwgen.errors import HwgenError
from hwgen.frontend.reference import run_reference


def readme_example() -> str:
    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- api-example[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert m, "README.md lost its API example"
    return m.group(1)


def test_readme_example_runs(tmp_path):
    code = readme_example()
    code = code.replace('"tests/fixtures/', f'"{ROOT}/tests/fixtures/').replace('"build/tfc_api"', repr(str(tmp_path / "b")))
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert scope["result"].ok and scope["result"].failed == 0
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["schema_version"] == 2 and report["ii_cycles"] == scope["acc"].plan.ii_cycles
    assert scope["y"].shape == (4, 10)


@pytest.fixture(scope="module")
def tfc():
    return hwgen.compile(shared_model("TFC_2W2A"), fold="auto", target_cycles=256, target="ice40")


def test_predict_matches_qonnx_reference(tfc):
    kind = SHARED["TFC_2W2A"]
    x = random_inputs(kind[2], kind[1], 16, seed=3)
    want = run_reference(shared_model("TFC_2W2A"), x)
    np.testing.assert_allclose(tfc.predict(x), want, rtol=0, atol=1e-5)
    assert (tfc.predict(x).argmax(1) == want.argmax(1)).all()


def test_predict_int_is_the_core(tfc):
    from hwgen.golden import execute

    x = random_inputs("unit", (1, 28, 28), 5, seed=4)
    values = execute(tfc.graph, x)
    ints = values[tfc.graph.head.outputs[0]]
    np.testing.assert_array_equal(tfc.predict_int(ints), values[tfc.graph.core[-1].outputs[0]])


def test_plan_has_estimates_and_schema(tfc):
    d = tfc.report()
    assert d["schema_version"] == 2 and d["target"] == "ice40"
    assert d["ii_cycles"] <= 256
    assert all(set(r["estimate"]) >= {"lut", "ff", "bram", "dsp"} for r in d["layers"])
    assert d["estimate"]["lut"] == sum(r["estimate"]["lut"] for r in d["layers"] + d["plumbing"])


@pytest.mark.parametrize("form", ["proto", "wrapper"])
def test_model_objects_compile_like_paths(form, tfc):
    from qonnx.core.modelwrapper import ModelWrapper

    proto = onnx.load(shared_model("TFC_2W2A"))
    model = proto if form == "proto" else ModelWrapper(proto)
    acc = hwgen.compile(model, fold="auto", target_cycles=256, target="ice40")
    x = random_inputs("unit", (1, 28, 28), 4, seed=5)
    np.testing.assert_array_equal(acc.predict(x), tfc.predict(x))
    assert acc.plan.ii_cycles == tfc.plan.ii_cycles


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(HwgenError, match="target_cycles"):
        hwgen.compile(shared_model("TFC_2W2A"), fold="auto")
    with pytest.raises(HwgenError, match="unknown target"):
        hwgen.compile(shared_model("TFC_2W2A"), target="vu9p")
    with pytest.raises(HwgenError, match="cannot compile a int"):
        hwgen.compile(3)


def test_edited_build_is_refused(tmp_path, tfc):
    from hwgen.builddir import check_build

    tfc.write(tmp_path)
    check_build(tmp_path)
    rep = json.loads((tmp_path / "report.json").read_text())
    rep["ii_cycles"] = 1
    (tmp_path / "report.json").write_text(json.dumps(rep))
    with pytest.raises(HwgenError, match=r"report.json: changed since"):
        check_build(tmp_path)
    (tmp_path / "graph.npz").unlink()
    with pytest.raises(HwgenError, match="graph.npz: missing"):
        check_build(tmp_path)


def test_readme_brevitas_example_matches_brevitas(tmp_path, monkeypatch):
    """The README's quick start: export with Brevitas, compile, write; the compiled model's float
    outputs equal Brevitas's own forward pass on random inputs (verification is covered elsewhere)."""
    import numpy as np
    import torch

    text = open(os.path.join(ROOT, "README.md")).read()
    m = re.search(r"<!-- brevitas-example[^>]*-->\n```python\n(.*?)```", text, re.S)
    assert m, "README.md lost its Brevitas example"
    code = m.group(1)
    assert "acc.verify(" in code
    code = "\n".join(line for line in code.splitlines() if "acc.verify(" not in line)
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert (tmp_path / "build" / "mlp" / "hwgen_top.v").exists()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1.5, 1.5, (64, 64)).astype(np.float32))
    with torch.no_grad():
        ref = scope["model"](x)
    ref = (ref.value if hasattr(ref, "value") else ref).numpy()
    np.testing.assert_allclose(scope["acc"].predict(x.numpy()), ref, rtol=1e-5, atol=1e-5)
