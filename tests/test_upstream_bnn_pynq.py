"""Upstream architectures from brevitas_examples.bnn_pynq (the FINN TFC / SFC / LFC family), built
with seeded random weights and randomized BatchNorm statistics, exported with today's Brevitas
(export_qonnx): hwgen's golden model equals qonnx's execute_onnx on 500 inputs (hwgen check: no
mismatch; binary models have no float ties here because their scales are powers of two), and a
batch runs through the host Reshape the exporter writes ([1, -1] with allowzero=1)."""
import numpy as np
import pytest

pytest.importorskip("brevitas_examples.bnn_pynq.models")


def _export(name: str, path, seed: int = 0) -> str:
    import torch
    from brevitas.export import export_qonnx
    from brevitas_examples.bnn_pynq.models import model_with_cfg

    torch.manual_seed(seed)
    model, _ = model_with_cfg(name, pretrained=False)
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():  # BatchNorm statistics as after training: thresholds off the origin
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.randn(n, generator=g))
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.2)
    model.eval()
    out = str(path / f"{name}.onnx")
    export_qonnx(model, torch.rand(1, 1, 28, 28), export_path=out)
    return out


def _check(path, vectors=500):
    from hwgen.check import check_model

    x = np.random.default_rng(1).random((vectors, 1, 28, 28), dtype=np.float32)
    result = check_model(path, x)
    assert result.mismatches == 0, result.table()
    return result


def test_tfc_1w1a_matches_qonnx_and_runs_a_batch(tmp_path):
    import hwgen

    path = _export("tfc_1w1a", tmp_path)
    result = _check(path)
    assert result.totals()["exact"] > 0
    acc = hwgen.compile(path, fold="auto", target_cycles=1024)
    y = acc.predict(np.random.default_rng(2).random((3, 1, 28, 28), dtype=np.float32))
    assert y.shape == (3, 10)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tfc_1w2a", "tfc_2w2a", "sfc_1w1a", "lfc_1w1a"])
def test_fc_family_matches_qonnx(tmp_path, name):
    _check(_export(name, tmp_path))
