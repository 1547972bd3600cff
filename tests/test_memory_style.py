"""ROM style per unit: the plan picks block RAM or logic by the cost model, the unit emits it as
yosys's rom_style attribute, yosys obeys it (a real synthesis), and the estimate follows the style."""
import random
import shutil
import subprocess

import pytest
from amaranth.back import verilog
from amaranth.hdl import Module, Signal

from hwgen.cost import primitives as P
from hwgen.passes.schedule import BRAM_IN_LUTS, choose_rom_styles
from hwgen.plan import Stage
from hwgen.rtl.util import rom_memory


def _rom_verilog(style, width=16, depth=64):
    rnd = random.Random(1)
    m = Module()
    m.submodules.rom = mem = rom_memory(shape=width, depth=depth, init=[rnd.getrandbits(width) for _ in range(depth)],
                                        style=style)
    rd = mem.read_port(domain="sync")
    a, d = Signal(range(depth)), Signal(width)
    m.d.comb += [rd.addr.eq(a), d.eq(rd.data)]
    return verilog.convert(m, ports=[a, d], name="top")


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed (make setup)")
@pytest.mark.parametrize("style,ram_cells", [(None, 0), ("bram", 1), ("logic", 0)])
def test_yosys_obeys_rom_style(tmp_path, style, ram_cells):
    """A 64 x 16 ROM: yosys's own rule keeps it in logic (1 kbit is below a block RAM's cost);
    rom_style = "block" puts it in one SB_RAM40_4K."""
    (tmp_path / "top.v").write_text(_rom_verilog(style))
    out = subprocess.run(["yosys", "-q", "-p", "read_verilog top.v; synth_ice40 -top top; tee -o stat.txt stat"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    stat = (tmp_path / "stat.txt").read_text()
    # "SB_RAM40_4K   1" (yosys 0.23) or "1   SB_RAM40_4K" (later)
    cells = [int(w) for line in stat.splitlines() if "SB_RAM40_4K" in line for w in line.split() if w.isdigit()]
    assert sum(cells) == ram_cells
    assert ('rom_style = "block"' in _rom_verilog(style)) == (style == "bram")


def test_rom_estimate_follows_style():
    assert P.rom(16, 64, "ice40").bram == 0
    assert P.rom(16, 64, "ice40", style="bram").bram == 1
    assert P.rom(64, 1024, "ecp5").bram == 4
    logic = P.rom(64, 1024, "ecp5", style="logic")
    assert logic.bram == 0 and logic.lut > 1000


class _FakeUnit:
    """Stands in for a unit with ROMs: its estimate depends on rom_style like a real one's."""
    rom_style = None

    def __init__(self, logic_luts, brams):
        self.logic_luts, self.brams = logic_luts, brams


@pytest.fixture
def fake_lowering(monkeypatch):
    from hwgen.cost import Resources
    import hwgen.passes.schedule as sched

    class L:
        @staticmethod
        def estimate(unit, target):
            return Resources(bram=unit.brams) if unit.rom_style == "bram" else Resources(lut=unit.logic_luts)
    monkeypatch.setattr(sched, "lowering_of_unit", lambda unit: L)


@pytest.mark.parametrize("target", ["ecp5", "ice40"])
def test_choose_rom_styles_by_share_of_device(fake_lowering, target):
    w = BRAM_IN_LUTS[target]
    units = [_FakeUnit(w * 2 + 1, 2), _FakeUnit(w * 2 - 1, 2), _FakeUnit(0, 0)]
    choose_rom_styles([Stage(name=f"u{i}", unit=u, op=None, cycles=1) for i, u in enumerate(units)], target)
    assert [u.rom_style for u in units] == ["bram", "logic", None]


def test_compiled_plan_reports_the_chosen_style():
    """digits A2Q on iCE40 at II 1024: the 64 x 4 x 64 weight ROMs go to block RAM (cheaper than
    their logic by share of the UP5K), every report row says which, and the units carry it."""
    import hwgen

    acc = hwgen.compile("quant_models/onnx/digits_mlp_w4a4_a2q.onnx", fold="auto", target_cycles=1024, target="ice40")
    styles = {r["name"]: r["memory_style"] for r in acc.plan.layers}
    units = {st.name: getattr(st.unit, "rom_style", None) for st in acc.plan.stages}
    assert styles["Gemm_0"] == units["Gemm_0"] == "bram"
    for name, style in units.items():
        if style is not None:
            assert styles[name] == style
