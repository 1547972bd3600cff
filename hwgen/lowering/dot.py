"""What MatVec, Conv and KernelBankConv share: an integer dot product per output with fixed
weights, an accumulator sized by hwgen.passes.accumulators, and a (PE, SIMD) folding."""
from __future__ import annotations

from ..ir import Conv
from .base import Lowering, pipelined


class DotLowering(Lowering):
    foldable = True
    fold_hint = "folds by PE and SIMD"

    def valid_pe(self, op) -> list[int]:
        from .base import divisors

        return divisors(op.out_channels)

    def reference_scale(self, op, scales):
        return op.float_scale

    LUT_PRODUCT_BITS = 4  # products whose narrower operand is this wide or less never go to a DSP

    def pipeline(self, op, folded: bool, clock):
        """Register levels inside the dot product for the plan's clock target (hwgen.rtl.matvec.Pipeline):
        none without a target; else the weight ROM's output register (folded layers), a register
        after the products, adder-tree registers every 2 levels on ECP5 (every 3 on iCE40, whose
        target clock is lower) and a stall-free datapath (no clock enables; credits for an output
        FIFO admit the input, so the input ready is a flip-flop); a shared
        adder graph (constant weights) every 2 levels on ECP5, 4 on iCE40."""
        from ..rtl.matvec import Pipeline

        if not pipelined(clock):
            return Pipeline()
        if self.arithmetic(op, folded, clock) == "cse":  # two-input adders only: 2 (4) per cycle
            # (3 per cycle on ECP5 routed the small jet net at 90.5 MHz: input register fan-out, then
            # three carry chains of 11-12 bits with the nets between them, 11.05 ns)
            return Pipeline(tree_every=2 if clock.target == "ecp5" else 4)
        every = 2 if clock.target == "ecp5" else 3
        return Pipeline(operands=folded, products=True, tree_every=every, stall_free=True)

    def output_range(self, op):
        from ..passes.accumulators import exact_range

        return exact_range(op)

    def arithmetic(self, op, folded: bool, clock=None) -> str:
        """Where this layer's products go: the plan's override if any, else "lut" (shift-and-add) for
        constant weights (fully parallel: canonical signed digits, zero weights vanish) and for
        narrow products; "dsp" (a `*` that synthesis may map to a DSP block) for wide products of
        ROM weights; "cse" (one shared shift-and-add graph, hwgen.rtl.cmvm) for constant weights on an
        integer input when pipelining to a clock."""
        from ..ir.types import BipolarType

        if clock is not None and clock.arith != "auto":
            return clock.arith
        if not folded:
            return "cse" if pipelined(clock) and not isinstance(op.in_type, BipolarType) else "lut"
        return "lut" if min(op.in_type.wire_bits, op.w_type.wire_bits) <= self.LUT_PRODUCT_BITS else "dsp"

    def inspect_row(self, op, graph, block=None) -> dict:
        act = next((a for a in graph.consumers(op.outputs[0]) if hasattr(a, "thresholds")), None)
        if act is None and block is not None:
            act = next((a for a in block.body if op.outputs[0] in a.inputs and hasattr(a, "thresholds")), None)
        repeats = block.steps if block else 1
        bounds = op.acc_bounds
        tensors = graph.tensors
        return {
            "name": op.name,
            "op": op.kind,
            "input_shape": list(tensors[op.inputs[0]].shape) if op.inputs[0] in tensors else list(op.in_shape),
            "output_shape": list(tensors[op.outputs[0]].shape) if op.outputs[0] in tensors else list(op.out_shape),
            "input_type": str(op.in_type),
            "weight_type": str(op.w_type),
            "output_type": str(act.out_type) if act else f"acc {op.acc_type}",
            "activation": act.name if act else None,
            "thresholds_per_channel": int(act.thresholds.shape[1]) if act else 0,
            "block": f"{block.name} x{block.steps}" if block else None,
            "macs": int(op.weights.size * (op.out_shape[0] * op.out_shape[1] if isinstance(op, Conv) else 1)
                        * repeats),
            "weight_bits": self.weight_bits(op),
            "nonzero_weights": int((op.weights != 0).sum()),
            "acc_bits_exact": bounds.get("exact"),
            "acc_bits_a2q": bounds.get("a2q"),
            "acc_bits_datatype": bounds.get("datatype"),
            "pe": op.pe,
            "simd": op.simd,
        }

    def weight_bits(self, op) -> int:
        return int(op.weights.size * op.w_type.bits)


def dot_row(op, *, kind: str, pe: int, simd: int, cycles: int, acc_bits: int, memory_bits: int,
            weights_in: str, **extra) -> dict:
    """The report row every dot-product layer has."""
    return {
        "name": op.name, "op": kind, "pe": pe, "simd": simd, "cycles": cycles,
        "acc_bits": acc_bits,
        "acc_bits_exact": op.acc_bounds.get("exact"),
        "acc_bits_a2q": op.acc_bounds.get("a2q"),
        "acc_bits_datatype": op.acc_bounds.get("datatype"),
        "weight_bits": int(op.weights.size * op.w_type.wire_bits),
        "weights_nonzero": int((op.weights != 0).sum()),
        "memory_bits": memory_bits,
        "weights_in": weights_in,
        **extra,
    }
