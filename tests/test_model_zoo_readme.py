"""quant_models/onnx/README.md is generated in sections by three training scripts; regenerating
any one section from its committed accuracy JSON must reproduce the file byte for byte (so the
tables match the JSON and no script drops another's section)."""
import importlib
import json
import shutil
from pathlib import Path

import pytest

ONNX_DIR = Path(__file__).resolve().parent.parent / "quant_models" / "onnx"


@pytest.mark.parametrize("script, results", [("quant_models.train", "accuracy.json"),
                                             ("quant_models.train_cnn", "accuracy_cnn.json"),
                                             ("quant_models.train_ode", "accuracy_ode.json")])
def test_readme_section_regenerates_unchanged(tmp_path: Path, script: str, results: str):
    shutil.copy(ONNX_DIR / "README.md", tmp_path / "README.md")
    module = importlib.import_module(script)
    module.write_readme(json.loads((ONNX_DIR / results).read_text()), tmp_path)
    assert (tmp_path / "README.md").read_text() == (ONNX_DIR / "README.md").read_text()
