"""Resource estimates of hwgen's RTL units, before synthesis.

One function per unit class, each taking the constructed (not elaborated) unit and the target
("ice40" | "ecp5") and reading only the unit's public attributes; each returns Resources. The sum
follows the unit's structure (its docstring in hwgen/rtl/ names the registers, memories and
arithmetic), priced with hwgen.cost.primitives. Composite units add up their parts' functions;
the inner stages of residual and ODE blocks are priced through the lowering that owns their class
(hwgen.lowering), so nothing here dispatches on a unit's class.
"""
from __future__ import annotations

from ..ir.types import signed_bits_for
from ..rtl.fifo import fifo_slices
from ..rtl.util import SKID_FFS_PER_COPY, bit_slices, csd_digits, enable_copies, replay_slices, select_copies
from . import primitives as P
from .resources import Resources


def _is_bipolar(t) -> bool:
    return type(t).__name__ == "BipolarType"


def _signed(t) -> bool:
    return bool(getattr(t, "signed", False)) and not _is_bipolar(t)


# -- MatVec ---------------------------------------------------------------------------------------
def _dot_width(unit, term_bits: int) -> int:
    """Width of a lane's dot product as yosys keeps it: the balanced sum grows a bit per level,
    the dot register (acc_bits) keeps at most acc_bits (wreduce)."""
    return min(term_bits + P.bits_for(unit.simd), unit.acc_bits)


def _csd(c: int) -> list[tuple[int, int]]:
    """Canonical signed digits of c, [(shift, +1 | -1)] (what the RTL's shift-and-add writes)."""
    digits, k, c = [], 0, int(c)
    while c:
        if c & 1:
            d = 2 - (c & 3)
            digits.append((k, d))
            c -= d
        c >>= 1
        k += 1
    return digits


def _lanes(unit, target: str) -> Resources:
    """The PE lanes' dot products of SIMD elements (up to the dot registers).

    unit.arith (default "dsp"): "dsp" writes `*`, which yosys maps to DSP blocks where mul2dsp's rule
    allows (primitives.dsp_blocks) and to soft partial products otherwise; "lut" writes
    shift-and-add (canonical signed digits of constant weights; a partial product per bit of a ROM
    weight), which never uses a DSP block."""
    PE, S = unit.pe, unit.simd
    ib, wb = unit.in_bits, unit.w_bits
    folded = unit.folded
    arith = getattr(unit, "arith", "dsp")
    if unit.binary:  # XNOR-popcount, then 2 * pc - SIMD
        lane = P.popcount(S, target) + P.adder(P.bits_for(S + 1) + 2, target)
        if folded:
            lane += P.lut(target, "xnor", S)
        return lane * PE
    x_bip, w_bip = _is_bipolar(unit.in_type), _is_bipolar(unit.w_type)
    if getattr(unit, "graph", None) is not None:  # one shared shift-and-add graph (hwgen.rtl.cmvm)
        return _adder_graph(unit.graph, target)
    # every lane sums its SIMD terms in a tree of kept two-input adders (P.kept_tree); only the
    # rows inside one product (its CSD digits / partial products) merge into one $macc
    if not folded:  # constant weights
        W = unit.weights
        if x_bip:  # Mux(x, w, -w): a signed term of w_bits + 1 bits per nonzero weight
            r = Resources()
            width = _dot_width(unit, wb + 1)
            for p in range(PE):
                nz = sum(1 for w in W[p] if int(w) != 0)
                r += P.kept_tree(nz, wb + 1, width, target)
            return r
        xs = _signed(unit.in_type)
        xb = ib + (0 if xs else 1)
        width = _dot_width(unit, xb + wb)
        pw = min(xb + wb, width)
        r = Resources()
        if arith == "lut":  # every nonzero CSD digit is a term +-(x << k) of its weight's product
            for p in range(PE):
                nz = 0
                for w in W[p]:
                    digits = _csd(int(w))
                    if not digits:
                        continue
                    nz += 1
                    if len(digits) == 1 and digits[0][1] < 0:  # -(x << k): a negation
                        r += P.adder(pw, target)
                    elif len(digits) > 1:
                        bits = sum((ib + k) if (d > 0 and not xs) else pw for k, d in digits)
                        r += P.sum_of_terms(bits, pw, target, terms=len(digits))
                r += P.kept_tree(nz, pw, width, target)
            return r
        for p in range(PE):  # lane by lane (a product shared by two lanes is built once: DSPs per column)
            nz = [int(w) for w in W[p] if int(w) != 0]
            _, pp, _ = P.constant_product_terms(ib, xs, [[w] for w in nz], width, target)
            r += P.lut(target, "pp", pp) + P.kept_tree(len(nz), pw, width, target)
        dsp_total, _, _ = P.constant_product_terms(ib, xs, [W[:, j] for j in range(W.shape[1])], width, target)
        return r + Resources(dsp=dsp_total)
    if w_bip or x_bip:  # Mux(w, x, -x) / Mux(x, w, -w): a negation and a mux per element
        bits = (ib if w_bip else wb) + 1
        width = _dot_width(unit, bits)
        per = P.adder(bits, target) * S + P.mux(2, bits * S, target) + P.kept_tree(S, bits, width, target)
        return per * PE
    if arith == "lut":  # a row (Mux(w_i, +-(x << i), 0)) per bit of the narrower operand, per product
        xs, ws = _signed(unit.in_type), _signed(unit.w_type)
        # rows over the weight's bits unless the weight is the wider operand (lut_product's choice)
        (xb, x_signed), (nb, n_signed) = ((wb, ws), (ib, xs)) if wb > ib else ((ib, xs), (wb, ws))
        width = _dot_width(unit, ib + wb)
        pw = min(ib + wb, width)
        row_bits = sum(pw if (x_signed or (n_signed and i == nb - 1)) else xb + i for i in range(nb))
        # one product's rows are one small $macc: every row bit is an AND feeding a full-adder
        # stage (no amortisation over a lane's worth of terms: the KWS 8 x 3-bit layer measured
        # 27,451 LUT4 where the amortised form said 9,961)
        product = P.lut(target, "row", row_bits if nb > 2 else row_bits / 2) + P.adder(pw, target)
        if n_signed:  # the sign row weighs -2^(nb-1): -(x << (nb-1)) is its own subtraction
            product += P.adder(xb + nb, target)
        per = product * S + P.kept_tree(S, pw, width, target)
        return per * PE
    a, b = P.mul_shape(ib, _signed(unit.in_type), wb, _signed(unit.w_type))
    width = _dot_width(unit, a + b)
    pw = min(a + b, width)
    nd = P.dsp_blocks(a, b, target)
    if nd:  # DSP products, then a sum of their outputs
        per = Resources(dsp=nd * S) + P.kept_tree(S, pw, width, target)
    else:  # soft products, then a sum of their outputs
        per = P.soft_products(a * b, pw, target) * S + P.kept_tree(S, pw, width, target)
    return per * PE
    if arith == "lut":  # a row (Mux(w_i, +-(x << i), 0)) per bit of the narrower operand, all in the lane's sum
        xs, ws = _signed(unit.in_type), _signed(unit.w_type)
        # rows over the weight's bits unless the weight is the wider operand (lut_product's choice)
        (xb, x_signed), (nb, n_signed) = ((wb, ws), (ib, xs)) if wb > ib else ((ib, xs), (wb, ws))
        width = _dot_width(unit, ib + wb)
        row_bits = sum(width if (x_signed or (n_signed and i == nb - 1)) else xb + i for i in range(nb))
        return P.shift_add_rows(S * row_bits, width, target, terms=S * nb) * PE
    a, b = P.mul_shape(ib, _signed(unit.in_type), wb, _signed(unit.w_type))
    width = _dot_width(unit, a + b)
    nd = P.dsp_blocks(a, b, target)
    if nd:  # DSP products, then a sum of their outputs
        per = Resources(dsp=nd * S) + P.sum_of_terms(S * width, width, target, terms=S)
    else:  # soft products in one $macc
        per = P.soft_products(S * a * b, width, target)
    return per * PE


def _adder_graph(graph, target: str) -> Resources:
    """An adder graph: one two-input adder per node at its exact width, and its pipeline registers
    (node outputs every few levels, operand and output delays)."""
    r = Resources()
    for bits in graph.adders():
        r += P.adder(bits, target)
    return r + P.register(sum(bits for _, bits in graph.registers()))


def _pipeline(unit, target: str) -> Resources:
    """Registers of unit.pipeline (hwgen.rtl.matvec.Pipeline), when the plan asked for them: the
    ROM / replay read data (operands; the input word once per operand copy), every product, the partial sums after every `tree_every`
    adder levels (bits above the accumulator width are never used, so yosys drops them), the lanes'
    catch-up registers and the valid / first / last flags travelling with the data."""
    p = getattr(unit, "pipeline", None)
    if p is None or getattr(unit, "graph", None) is not None:  # an adder graph counts its own
        return Resources(ff=unit.flag_bits * getattr(unit, "extra_stages", 0)) if p is not None else Resources()
    PE, S, acc = unit.pe, unit.simd, unit.acc_bits
    ff, copies = 0, getattr(unit, "operand_copies", 1)
    r = Resources()
    if p.operands:  # the operand word once per group of lanes (toggle-form copies: a LUT per bit)
        ff += S * unit.in_bits * copies + (PE * S * unit.w_bits if unit.folded else 0)
        if copies > 1:
            r += P.mux(2, S * unit.in_bits * copies, target)
    ff += getattr(unit, "rom_levels", 0) * S * unit.in_bits  # the input word beside a block RAM ROM's register
    if unit.binary:
        pw = 1
    elif _is_bipolar(unit.in_type) or _is_bipolar(unit.w_type):
        pw = (unit.in_bits if _is_bipolar(unit.w_type) else unit.w_bits) + 1
    else:
        pw = unit.in_bits + unit.w_bits + 1
    n = S if unit.folded or unit.binary or _is_bipolar(unit.in_type) else max(
        int((unit.weights[q] != 0).sum()) for q in range(PE))
    if p.products and not unit.binary:
        ff += PE * n * min(pw, acc)
    every = getattr(p, "tree_every", 0)
    if every and n > 1:
        level, terms = 0, n
        while terms > 1:
            terms = (terms + 1) // 2
            level += 1
            if level % every == 0 and terms > 1:
                ff += PE * terms * min(pw + level, acc)
    stages = getattr(unit, "extra_stages", 0)
    return r + Resources(ff=ff + unit.flag_bits * stages)


def _replay(width: int, SF: int, target: str) -> Resources:
    """rtl.util.replay_store (a register, or one memory per enable slice, each slice with its
    registered write enable and, for a memory, write address) and the replay-or-stream select with
    its register copies."""
    slices = replay_slices(width, SF)
    if SF > 1:
        r = P.register(len(slices) * (1 + P.bits_for(SF)))
        for lo, hi in slices:
            r += P.ram(hi - lo, SF, target, rw_check=False)
    else:
        r = P.register(width + len(slices))
    return r + P.mux(2, width, target) + P.register(select_copies(width) - 1)


def matvec(unit, target: str) -> Resources:
    """MatVecUnit: schedule counters, input register (+ replay buffer and mux when NF > 1), weight
    ROM (folded) or constant weights, PE lane dot products (and the plan's pipeline registers), dot
    registers, accumulators (a gated feedback add when SF > 1), the output register and the
    enable's copies; stall-free, the output FIFO and its credit count instead of the copies."""
    P.check_target(target)
    PE, S, NF, SF = unit.pe, unit.simd, unit.NF, unit.SF
    ib, acc = unit.in_bits, unit.acc_bits
    r = P.control(target) + P.register(2 * unit.flag_bits)  # stages 1 and 2's valid (/ first / last)
    r += P.counter(max(NF, 2), target) + P.counter(max(SF, 2), target)
    r += P.register(S * ib)  # x_stream
    if NF > 1:
        r += _replay(S * ib, SF, target)
    if unit.folded:
        r += P.group_rom(PE * S * unit.w_bits, unit.rom_init(), target, style=unit.rom_style,
                         registered=bool(unit.rom_levels), chunk_depth=unit.rom_chunk_depth,
                         lane_bits=unit.rom_lane_bits)
    r += _lanes(unit, target) + _pipeline(unit, target)
    r += P.register(PE * acc)  # dot2
    if SF > 1:
        r += (P.register(acc) + P.adder(acc, target) + P.mux(2, acc, target)) * PE
    r += P.register(PE * acc)  # out_data
    if unit.control_copies > 1:  # stage 2's valid (/ first / last) per lane group, in toggle form
        r += P.register(unit.flag_bits * unit.control_copies)
        if not unit.stall_free:  # (stall-free: the enable is the constant 1)
            r += P.mux(2, unit.flag_bits * unit.control_copies, target)
    if unit.stall_free:  # no enables: the output FIFO and the credit count instead
        credits = unit.credits
        r += fifo_storage(PE * acc, credits + 1, target) + P.register(1 + P.bits_for(credits))
        # the count's next value (an add) and the credit's next state with and without a reservation
        # (two compares of the count with constants, the release choosing)
        r += P.adder(P.bits_for(credits) + 1, target) + P.comparator(P.bits_for(credits), target, const=True) * 2
        # the banks' credit (and take_stream) copies, each with its fire and next-state LUTs
        per_copy = (2, 5) if NF > 1 else (1, 3)
        return r + (P.register(per_copy[0]) + Resources(lut=per_copy[1])) * unit.fire_copies
    # rtl.util.EnableCopies: an out_valid copy and an OR per copy
    copies = enable_copies(r.ff)
    return r + P.register(copies) + P.mux(2, copies, target)


def _output_skid(unit, width: int, target: str) -> Resources:
    """The skid register and output select behind a unit's `width`-bit output register
    (rtl.util.skid_output; a registered enable), unless its output is never stalled (then
    synthesis removes them)."""
    if not unit.registered_enable or unit.never_stalled:
        return Resources()
    return _skid_registers(width, target)


def _skid_registers(width: int, target: str) -> Resources:
    """rtl.util.skid_output behind a `width`-bit output register: the skid register, the output
    select, the `go` flip-flop and the output valid's (SkidEnables.shown_valid), each with its
    next-state LUT."""
    return P.register(width + 2) + P.mux(2, width + 2, target)


def _with_skid_enables(unit, r: Resources, width: int, target: str) -> Resources:
    """A unit that advances as a whole (rtl.util.unit_enable) with its output skid register and,
    when it has one, the copies of its `go` flip-flop that its registers take (a register and its
    next-state LUT per SKID_FFS_PER_COPY flip-flops)."""
    skid = _output_skid(unit, width, target)
    if not skid.ff:
        return r
    copies = enable_copies(r.ff + skid.ff, SKID_FFS_PER_COPY)
    return r + skid + P.register(copies) + P.mux(2, copies, target)


# -- Threshold ------------------------------------------------------------------------------------
def threshold(unit, target: str) -> Resources:
    """ThresholdUnit: input register, per lane L comparisons (against constants, or against ROM
    thresholds, with a direction mux when a lane's channels differ in direction), a popcount of the
    L flags plus the output base, the output register (and skid register); or (style "lut") one ROM
    per lane addressed by the accumulator and the channel group."""
    return _with_skid_enables(unit, _threshold(unit, target), unit.pe * unit.out_bits, target)


def _threshold(unit, target: str) -> Resources:
    P.check_target(target)
    PE, L, tb, NF = unit.pe, unit.L, unit.cmp_bits, unit.NF
    ob = unit.out_bits
    r = P.control(target) + P.register(2 + PE * ob)
    reg_ops, reg_cmp = getattr(unit, "reg_operands", False), getattr(unit, "reg_compares", False)
    if unit.style == "lut":
        if unit.folded:
            r += P.counter(NF, target)
        for p in range(PE):
            r += P.rom(ob, NF << unit.in_bits, target, words=unit.lut_init(p), style=unit.rom_style)
        if reg_ops:  # the LUT ROMs' output registers (a block RAM's own, where one is used)
            r += P.register(PE * ob + 1)
        return r
    r += P.register(PE * unit.in_bits)  # x1
    if reg_ops and unit.folded:  # ROM output, accumulators and valid one stage later
        r += P.register(PE * (L * tb + 1) + PE * unit.in_bits + 1)
    if reg_cmp:  # every comparison bit, counted one stage later
        r += P.register(PE * L + 1)
    if unit.folded:
        r += P.group_rom(PE * (L * tb + 1), unit.rom_init(), target, style=unit.rom_style)
        for p in range(PE):
            decs = {bool(unit.decreasing[g * PE + p]) for g in range(NF)}
            r += P.comparator(tb, target) * (L * len(decs))
            if len(decs) > 1:
                r += P.mux(2, L, target)
            r += _level(L, ob, target)
        return r
    lo, hi = -(1 << (unit.in_bits - 1)), (1 << (unit.in_bits - 1)) - 1
    for p in range(PE):
        dec = bool(unit.decreasing[p])
        live = 0
        for t in unit.thresholds[p]:
            t = int(t)
            always = (t >= hi) if dec else (t <= lo)
            never = (t < lo) if dec else (t > hi)
            live += not (always or never)
        r += P.comparator(unit.in_bits, target, const=True) * live
        r += _level(live, ob, target)
    return r


def _level(n: int, out_bits: int, target: str) -> Resources:
    """popcount of n comparison flags plus the output base (mod 2^out_bits)."""
    if n <= 0:
        return Resources()
    r = P.popcount(n, target)
    return r + (P.adder(out_bits, target) if n > 1 else Resources())


def requant(unit, target: str) -> Resources:
    """RequantUnit: input register, per lane one acc x mul product (a DSP block, or shift-and-add
    rows: constant mul by its signed digits, ROM mul by its bits), the add, the clip (two
    comparisons and a 3:1 select) and the output base, for every lane whose level is not a constant
    over its reachable accumulators; the (mul, add) ROM when folded; the output register (and skid
    register) and the plan's pipeline registers."""
    return _with_skid_enables(unit, _requant(unit, target), unit.pe * unit.out_bits, target)


def _requant(unit, target: str) -> Resources:
    P.check_target(target)
    PE, ob = unit.pe, unit.out_bits
    a, b = unit.in_bits, unit.mul_bits
    width = unit.product_bits + 1
    r = P.control(target) + P.register(2 + PE * ob) + P.register(PE * a)
    if unit.folded:
        r += P.group_rom(unit.word_bits, unit.rom_init(), target, style=unit.rom_style)
    for p in range(PE):
        if unit.constant_level(p) is not None:  # a dead channel: its level is a constant
            continue
        if unit.shift_lane(p):  # (acc >> s') + A + carry: the carry from the low bits, one short adder, the clip
            level_bits = max(a - unit.shift + int(unit.mul[p]).bit_length(), 2)
            r += P.lut(target, "ctl", unit.shift / 2 + 1) + P.adder(level_bits, target)
            if int(unit.add[p]) >> unit.shift:
                r += P.adder(level_bits, target)
            lb = unit.L.bit_length()
            if (unit.L + 1) & unit.L or level_bits <= lb:
                r += P.comparator(level_bits, target, const=True) * 2 + P.mux(3, ob, target)
            else:
                r += P.lut(target, "ctl", (level_bits - lb) / 3 + 1) + P.mux(3, ob, target)
            if unit.out_base:
                r += P.adder(ob, target)
            continue
        if unit.arith == "dsp" and P.dsp_blocks(a, b, target):
            r += Resources(dsp=P.dsp_blocks(a, b, target))
        elif unit.folded:
            r += P.shift_add_rows(b * width, width, target, terms=b)
        else:
            digits = len(csd_digits(int(unit.mul[p])))
            r += P.shift_add_rows(digits * width, width, target, terms=digits)
        level_bits = max(width - unit.shift, 2)
        r += P.adder(width, target) + P.mux(3, ob, target)
        if unit.out_base:
            r += P.adder(ob, target)
        b = unit.L.bit_length()
        tie = unit.rounding != "floor"
        if tie:  # the tie test: an AND of the low bits
            r += P.lut(target, "ctl", max(unit.shift, 1) / 3)
        if (unit.L + 1) & unit.L or level_bits <= b:  # comparisons against 0 and L
            r += P.comparator(level_bits, target, const=True) * 2 + (P.adder(level_bits, target) if tie else Resources())
        else:  # sign and high-bit tests, a b-bit increment
            r += P.lut(target, "ctl", (level_bits - b) / 3 + 1) + (P.adder(b, target) if tie else Resources())
    if unit.reg_operands:
        r += P.register(PE * a + 1 + (unit.word_bits if unit.folded else 0))
    if unit.reg_product:
        r += P.register(PE * width + 1 + (PE * unit.add_bits if unit.folded else 0))
    return r


# -- plumbing -------------------------------------------------------------------------------------
def fifo(unit, target: str) -> Resources:
    """StreamFIFO: its slices and its stream handshake."""
    return P.control(target) + fifo_storage(unit.width, unit.depth, target)


def fifo_storage(width: int, depth: int, target: str) -> Resources:
    """A StreamFIFO's slices (rtl.fifo.fifo_slices), each SyncFIFOBuffered's structure with its own
    control (primitives.fifo); depth 1 is one register."""
    if depth <= 1:
        return P.fifo(width, depth, target)
    r = Resources()
    for lo, hi in fifo_slices(width):
        r += P.fifo(hi - lo, depth, target)
    return r


def skid(unit, target: str) -> Resources:
    """SkidBuffer: output and skid registers, the output register's 2:1 data select, the two valid
    bits once per SELECT_BITS_PER_COPY data bits."""
    return (P.control(target) + P.register(2 * unit.width + 2 * select_copies(unit.width))
            + P.mux(2, unit.width, target))


def width_converter(unit, target: str) -> Resources:
    """WidthConverter: gather (k-1 part registers, each written when the beat counter names it,
    then the gathered beat's register under its load copies) and / or split (a word register, an index counter and the
    word select)."""
    P.check_target(target)
    b, n_in, n_out, mid = unit.b, unit.n_in, unit.n_out, unit.mid
    if n_in == n_out:
        return Resources()
    r = P.control(target) + P.register(1)
    kg, ks = mid // n_in, mid // n_out
    w_in = n_in * b
    if kg > 1:
        r += P.register((kg - 1) * w_in) + P.register(kg * w_in) + P.counter(kg, target)
        r += P.lut(target, "wen", kg * P.bits_for(kg))  # part write enables
        loads = len(bit_slices(kg * w_in, SKID_FFS_PER_COPY))  # the gathered word's load copies: last, valid, a LUT
        r += P.register(2 * loads) + Resources(lut=loads)
    if ks > 1:
        r += P.register(mid * b + 1) + P.counter(ks, target) + P.mux(ks, n_out * b, target)
    return r


# -- windows and convolutions ---------------------------------------------------------------------
def sliding_window(unit, target: str) -> Resources:
    """SlidingWindowUnit: line buffer RAM (R rows x W*CF words), writer and reader position
    counters, the tap address arithmetic (row / column sums, bounds tests, read address =
    slot*W*CF + column), the registers that hold the current tap's facts, the writer-to-tap
    distance register and its table of moves (can_read), the free-space registers (advanced by a
    constant per output row) and their tests, the padding mux (registered_read: after the read
    port's register and the skid register).
    A 1x1 stride-1 unpadded window is a wire."""
    P.check_target(target)
    if unit.identity:
        return Resources()
    H, W, CF, R = unit.H, unit.W, unit.CF, unit.R
    WCF, HWCF = W * CF, H * W * CF
    D = R * WCF
    r = P.control(target) + P.register(2)
    r += P.ram(unit.simd * unit.in_bits, D, target, rw_check=False)  # the line buffer is no_rw_check
    # writer (word, column, slot), reader (oh, ow, ki, j; r0 and c0, stepped by sh and sw*CF over
    # their ranges), the three slot offsets (x W*CF, stepped mod D), the generations
    for n in (HWCF, WCF, R, unit.Ho, unit.Wo, unit.kh, unit.kw * CF, unit.Ho * unit.sh, unit.Wo * unit.sw * CF,
              D, D, D, 4, 4):
        r += P.counter(n, target)
    pt, pl = unit.pt, unit.pl  # the tap's signed row and column word, as wide as the RTL's
    rb = signed_bits_for(-pt, (unit.Ho - 1) * unit.sh - pt + unit.kh - 1)
    cb = signed_bits_for(-pl * CF, ((unit.Wo - 1) * unit.sw - pl + unit.kw) * CF - 1)
    wb = P.bits_for(HWCF + D + 1)            # word positions
    # the tap's row and column word, each a register stepped by one of two constants
    r += P.register(rb + cb) + (P.adder(rb, target) + P.adder(cb, target)) * 2
    # registered facts of the next tap: four last-position flags (an equality each) and, per move,
    # whether its row (four moves) and column (three) land in the image, each a pair of compares
    # of a current register with constants for each step that moves it from a register (rows: four
    # steps; columns: three for cols_next / cols_back and cols_over), chosen by the step
    r += P.register(4 + 7) + P.comparator(rb, target, const=True) * (2 * 4 * 4)
    r += P.comparator(cb, target, const=True) * (2 * 3 * 3)
    r += Resources(lut=4 + 5 + 2 * (4 + 7))  # the equalities' LUTs, real_a's and the flags' choices on the step
    mults = max(bin(WCF).count("1"), 1)  # wslot * WCF: shift-and-add of the constant
    r += P.adder(wb, target) * (mults + 2)  # write address, free
    r += P.adder(P.bits_for(D), target)     # read address (slot offset + col)
    r += P.comparator(wb, target) * 2       # can_write
    # can_read: dist (writer word - tap word) with its candidates (the writer, the reader, both
    # step: three adders, one a table of moves), its compares with 0 and with each of the five steps'
    # constants (> and >=), the two tables on the reader's step, and the choice by who fires;
    # the writer's last-word flag; can_read as two candidates and the writer's fire registered
    r += P.register(wb + 5) + P.adder(wb + 1, target) * 3 + P.comparator(wb + 1, target, const=True) * 11
    r += Resources(lut=2 * (wb + 1)) + P.mux(4, wb + 1, target)  # the tables (a LUT a bit), the choice
    r += P.register(1 + P.bits_for(D))        # the tap's facts (real, address), one tap ahead
    r += P.register(3 * (wb + 1)) + P.adder(wb + 1, target) * 2  # rowfree, free, free_ahead: + constants
    r += P.mux(2, unit.simd * unit.out_bits, target)                     # padding
    if unit.registered_read:  # the register after the read port, its valid bit, the padding select's
        width = unit.simd * unit.out_bits  # copies (rtl.util.select_copies), the skid register
        r += P.register(unit.simd * unit.in_bits + 1 + select_copies(width)) + _skid_registers(width, target)
    return r


def conv(unit, target: str) -> Resources:
    """ConvUnit: its sliding window, [width converter,] MatVec."""
    r = sliding_window(unit.swg, target) + matvec(unit.mv, target)
    if unit.gather is not None:
        r += width_converter(unit.gather, target)
    return r


def _tap_reducer(unit, target: str, element_bits: int) -> Resources:
    """What a windowed pool unit (hwgen.rtl.window_util.reduce_over_taps) has besides its merge:
    the sliding window, the handshake, tap / channel-group counters, the output register and, with
    more than one tap, the CF running-value registers."""
    P.check_target(target)
    S = unit.simd
    r = P.control(target) + sliding_window(unit.swg, target) + P.register(1)
    r += P.counter(unit.CF, target) + P.counter(unit.taps, target)
    r += P.register(S * element_bits)  # out_data
    if unit.taps > 1:
        r += P.register(unit.CF * S * element_bits)
    return r


def maxpool(unit, target: str) -> Resources:
    """MaxPoolUnit: the tap reducer; per element a comparator and a mux (Bipolar: an OR), and the
    first-tap mux."""
    S, b = unit.simd, unit.bits
    r = _tap_reducer(unit, target, b)
    if unit.taps > 1:
        if _is_bipolar(unit.dtype):
            r += P.mux(2, S, target)
        else:
            r += (P.comparator(b, target) + P.mux(2, b, target)) * S
        r += P.mux(2, S * b, target)
    return r


def sumpool(unit, target: str) -> Resources:
    """GlobalSumPoolUnit: CF accumulator words of SIMD sums (out_bits), per element an adder and a
    first-pixel gate, output register, pixel / group counters."""
    P.check_target(target)
    S, ob = unit.simd, unit.out_bits
    r = P.control(target) + P.register(1)
    r += P.counter(unit.CF, target) + P.counter(unit.H * unit.W, target)
    r += P.register(unit.CF * S * ob) + P.register(S * ob)
    r += (P.adder(ob, target) + P.mux(2, ob, target)) * S
    return r


def window_sumpool(unit, target: str) -> Resources:
    """SumPoolUnit: the tap reducer (out_bits per element); per element an adder and the first-tap
    gate."""
    S, ob = unit.simd, unit.out_bits
    r = _tap_reducer(unit, target, ob)
    if unit.taps > 1:
        r += (P.adder(ob, target) + P.mux(2, ob, target)) * S
    return r


def residual_add(unit, target: str) -> Resources:
    """ResidualAddUnit: per element the shifted sum (shifts are wiring), the rounding (a remainder
    compare and an increment; none for FLOOR), the clamp (a comparison with a constant and a mux per
    side the rounded value can actually cross), then the output register."""
    P.check_target(target)
    E, sb, s = unit.elems, unit.sum_bits, unit.out_shift
    ob = unit.out_type.wire_bits
    r = P.control(target) + P.register(1 + E * ob)
    per = P.adder(sb, target)
    t_lo = (unit.a_type.min << unit.a_shift) + (unit.b_type.min << unit.b_shift)
    t_hi = (unit.a_type.max << unit.a_shift) + (unit.b_type.max << unit.b_shift)
    q_lo, q_hi = t_lo >> s, t_hi >> s
    qb = max(sb - s, 1)
    if s and unit.mode != "FLOOR":
        q_hi += 1
        qb += 1
        per += P.comparator(s, target, const=True) + P.adder(qb, target)
    n_cmp = (q_lo < unit.out_type.min) + (q_hi > unit.out_type.max)
    per += P.comparator(qb, target, const=True) * n_cmp + P.mux(2, ob * n_cmp, target)
    return r + per * E


# -- kernel banks ---------------------------------------------------------------------------------
def kernel_bank(unit, target: str) -> Resources:
    """KernelBankConvUnit: sliding window, per channel-group tap shift registers, the patch register,
    replay buffer (NF > 1), index ROM (folded), 2^tau codeword responses per input channel
    (popcounts of kh*kw XNORs, masked with padding), per PE lane an SIMD-way response gather
    (a 2^tau : 1 word select of resp_bits, or wiring when the indices are constants) and sum,
    accumulators and output register (MatVecUnit's stage 2)."""
    P.check_target(target)
    S, CF, T, tb, rb = unit.simd, unit.CF, unit.T, unit.tap_bits, unit.resp_bits
    PE, NF, SF, acc = unit.pe, unit.NF, unit.SF, unit.acc_bits
    slot = S * tb
    width = T * slot
    r = P.control(target, 2) + sliding_window(unit.swg, target) + P.register(6)
    if T > 1:
        r += P.register(CF * (T - 1) * slot)
    r += P.register(width) * 2  # patch register, x_stream
    r += P.counter(CF, target) + P.counter(T, target) + P.counter(max(NF, 2), target) + P.counter(max(SF, 2), target)
    if NF > 1:
        r += _replay(width, SF, target)
    resp = P.popcount(T, target) + P.adder(rb, target)
    r += resp * (S * unit.NK)
    if tb == 2:  # padding taps: each channel's mask popcount, subtracted from every response
        r += P.popcount(T, target) * S
    if unit.folded:
        r += P.group_rom(PE * S * unit.tau, unit.rom_init(), target, style=unit.rom_style)
        r += P.mux(unit.NK, rb, target) * (PE * S)
    dw = min(rb + P.bits_for(S), acc)
    r += P.sum_of_terms(S * dw, dw, target, terms=S) * PE
    r += P.register(PE * acc) * 2
    if SF > 1:
        r += (P.register(acc) + P.adder(acc, target) + P.mux(2, acc, target)) * PE
    return r


# -- composites -----------------------------------------------------------------------------------
def _inner(u, target: str) -> Resources:
    """An inner unit of a composite, through the lowering that owns its class (hwgen.lowering)."""
    from ..lowering import lowering_of_unit

    return lowering_of_unit(u).estimate(u, target)


def ode_block(unit, target: str) -> Resources:
    """ODEBlockUnit: its body's units and the residual add, plus the state buffer (one write port,
    two read ports: block RAM duplicated per read port, or LUT RAM / registers), the write / R1 / R2
    position and version counters, the version differences and their tests, the write data mux."""
    P.check_target(target)
    r = P.control(target, 2) + P.register(4)
    for _, u in unit.stages:
        r += _inner(u, target)
    r += residual_add(unit.add, target)
    word = unit.simd * unit.sbits
    r += P.ram(word, unit.P, target, read_ports=2)
    M = 2 * (unit.steps + 1)
    vb = P.bits_for(M)
    for _ in range(3):
        r += P.counter(unit.P, target) + P.counter(M, target)
    r += (P.adder(vb + 1, target) * 2 + P.comparator(P.bits_for(unit.P), target) * 2) * 2
    r += P.mux(2, word, target)
    return r


def residual_block(unit, target: str) -> Resources:
    """ResidualBlock: the skip FIFO (a whole feature map), the body's and the skip path's units, the
    residual add and the fork's handshake."""
    r = fifo(unit.skip, target) + residual_add(unit.add, target)
    for st in unit.stages + unit.skip_stages:
        r += _inner(st.unit, target)
    return r


__all__ = ["matvec", "conv", "kernel_bank", "threshold", "maxpool", "sumpool", "sliding_window",
           "residual_add", "fifo", "width_converter", "ode_block", "residual_block"]
