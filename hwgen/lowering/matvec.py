"""MatVec (fully connected): acc[c] = sum_i W[c, i] * x[i], on a MatVecUnit.

Folding: PE output channels and SIMD inputs per cycle, (C/PE) * (K/SIMD) cycles per vector.
The unit takes SIMD elements per input beat and gives PE accumulators per output beat; a FIFO
holding a whole input vector sits in front when the unit replays it (C/PE > 1).
"""
from __future__ import annotations

import numpy as np

from ..golden.numeric import check_acc
from ..ir import MatVec
from ..rtl.matvec import MatVecUnit
from ..rtl.timing import MatVecModel
from .base import divisors, register
from .dot import DotLowering, dot_row


@register
class MatVecLowering(DotLowering):
    op_type = MatVec
    unit_types = (MatVecUnit,)

    def golden(self, op: MatVec, x):
        return check_acc(op, x.reshape(len(x), -1).astype(np.int64) @ op.weights.T)

    # -- folding ----------------------------------------------------------------------------
    def valid_simd(self, op: MatVec) -> list[int]:
        return divisors(op.in_features)

    def simd_rule(self, op: MatVec) -> str:
        return f"divide its {op.in_features} inputs"

    def cycles(self, op: MatVec, pe: int, simd: int) -> int:
        return (op.out_channels // pe) * (op.in_features // simd)

    def full_folding(self, op: MatVec) -> tuple[int, int]:
        return op.out_channels, op.in_features

    needs_whole_input = True

    def drain_cycles(self, op: MatVec, pe: int, simd: int) -> int:
        """The first output group sweeps the input as it arrives; C/PE - 1 replays follow."""
        return (op.out_channels // pe - 1) * (op.in_features // simd)

    def streams_output(self, op: MatVec, pe: int) -> bool:
        """Output groups (C/PE of them) come one per input sweep; one group comes at the end."""
        return op.out_channels // pe > 1

    # -- planning ---------------------------------------------------------------------------
    def bound(self, op: MatVec, planner) -> int:
        return self.cycles(op, op.pe, op.simd)

    def plan(self, op: MatVec, planner) -> None:
        need = planner.format_of(op.in_type, op.in_features, op.simd)
        planner.feed(op.name, need, matvec_nf=op.out_channels // op.pe)
        folded = self.cycles(op, op.pe, op.simd) > 1
        unit = MatVecUnit(weights=op.weights, in_type=op.in_type, w_type=op.w_type, acc_bits=op.acc_type.bits,
                          pe=op.pe, simd=op.simd, arith=self.arithmetic(op, folded, planner.clock),
                          pipeline=self.pipeline(op, folded, planner.clock))
        planner.push(op.name, unit, op, unit.cycles)
        planner.fmt = planner.acc_format(op, op.out_channels, op.pe)

    # -- the unit ---------------------------------------------------------------------------
    def timing_models(self, unit: MatVecUnit) -> list:
        return [MatVecModel(unit.NF, unit.SF, unit.extra_stages, credits=unit.credits)]

    def cuts_ready_path(self, unit: MatVecUnit, target: str) -> bool:
        return unit.cuts_ready_path

    def always_ready(self, unit: MatVecUnit) -> bool:
        return unit.NF == 1  # input ready = enable & (nf == 0): no replay

    def report_rows(self, stage, rows, plumbing, target) -> None:
        u, op = stage.unit, stage.op
        rows.append(dot_row(op, kind="MatVec", pe=u.pe, simd=u.simd, cycles=stage.cycles, acc_bits=u.acc_bits,
                            memory_bits=u.rom_bits + u.buffer_bits,
                            weights_in="rom" if u.folded else "constants", binary=u.binary, arithmetic=u.arith,
                            pipeline_stages=u.extra_stages, estimate=self.cost(u, target),
                            in_features=u.K, out_channels=u.C,
                            **({"adder_graph": {"solver": u.graph.solver, "adders": len(u.graph.adders()),
                                                "adder_bits": sum(u.graph.adders())}} if u.graph else {})))

    def estimate(self, unit: MatVecUnit, target: str):
        from ..cost import units

        return units.matvec(unit, target)
