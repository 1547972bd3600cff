"""Sub-bit kernel banks: recognition, and KernelBankConv golden == plain binary conv golden ==
qonnx reference on the same model."""
import numpy as np
import pytest
from onnx_builders import bipolar_cnn, random_cnn

from hwgen.errors import HwgenError
from hwgen.frontend.reference import compare_with_reference, run_reference
from hwgen.golden import execute, run
from hwgen.ir import Conv, KernelBankConv
from hwgen.compiler import CompileOptions, compile_model


def _inputs(n, seed, cin=6, size=6):
    return np.random.default_rng(seed).choice([-1.0, 1.0], (n, cin, size, size)).astype(np.float32)


@pytest.mark.parametrize("patterns,tau", [(8, 3), (16, 4), (20, 5)])
def test_bank_equals_plain_conv_and_qonnx(tmp_onnx, patterns, tau):
    path = bipolar_cnn(tmp_onnx(), seed=patterns, patterns=patterns, cout=64)
    banked = compile_model(path)
    plain = compile_model(path, CompileOptions(kernel_bank="off"))
    banks = [op for op in banked.core if isinstance(op, KernelBankConv)]
    assert len(banks) == 2 and all(b.tau == tau and b.codebook.shape == (2**tau, 3, 3) for b in banks)
    assert not any(isinstance(op, KernelBankConv) for op in plain.core)
    x = _inputs(200, 1)
    gb, gp = execute(banked, x), execute(plain, x)
    for op in banks:  # stage 1 + gather gives the very same accumulators as the 9-term conv
        assert np.array_equal(gb[op.outputs[0]], gp[op.outputs[0]])
    match = compare_with_reference(banked, path, x)
    match.pop(banked.output)  # float logits: the reference's Gemm adds its bias inside a K-blocked sum
    assert all(v == 1.0 for v in match.values()), match
    np.testing.assert_allclose(run(banked, x), run_reference(path, x), rtol=1e-5, atol=1e-5)


def test_each_kernel_is_its_codeword():
    import tempfile, os

    with tempfile.TemporaryDirectory() as d:
        graph = compile_model(bipolar_cnn(os.path.join(d, "m.onnx"), patterns=10, cout=32))
    bank = next(op for op in graph.core if isinstance(op, KernelBankConv))
    kernels = bank.weights.transpose(0, 3, 1, 2)  # [out, in, 3, 3]
    assert np.array_equal(bank.codebook[bank.indices], kernels)
    assert bank.patterns == 10 and bank.tau == 4


def test_auto_keeps_plain_conv_when_bank_saves_nothing(tmp_onnx):
    path = bipolar_cnn(tmp_onnx(), patterns=16, cout=8)  # 2^4 codewords >= 8 output channels
    graph = compile_model(path)
    assert not any(isinstance(op, KernelBankConv) for op in graph.core)
    assert any("saves nothing" in n for n in graph.notes)


def test_force_refuses_layers_that_cannot_be_banks(tmp_onnx):
    path = random_cnn(tmp_onnx(), seed=0)  # 3-bit inputs and weights
    with pytest.raises(HwgenError, match="no layer to bank"):  # no bipolar conv: force fails, as its help says
        compile_model(path, CompileOptions(kernel_bank="force"))
    path = bipolar_cnn(tmp_onnx("b.onnx"), patterns=16, cout=8)
    graph = compile_model(path, CompileOptions(kernel_bank="force"))
    assert sum(isinstance(op, KernelBankConv) for op in graph.core) == 2
    with pytest.raises(HwgenError, match="unknown --kernel-bank mode"):
        compile_model(path, CompileOptions(kernel_bank="sometimes"))


def test_layer_with_all_patterns_stays_plain(tmp_onnx):
    path = bipolar_cnn(tmp_onnx(), patterns=512, cout=64, cin=16)
    graph = compile_model(path)
    convs = [op for op in graph.core if isinstance(op, Conv)]
    distinct = len(np.unique(convs[1].weights.transpose(0, 3, 1, 2).reshape(-1, 9), axis=0))
    if distinct > 256:
        assert not isinstance(convs[1], KernelBankConv)
        with pytest.raises(HwgenError, match="cannot be a kernel bank"):
            compile_model(path, CompileOptions(kernel_bank="force"))
