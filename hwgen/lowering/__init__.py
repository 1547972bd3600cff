"""One lowering per IR op kind: its golden semantics, folding, plan, unit, timing model and cost
(see base.py). Importing this package registers them all."""
from .base import Lowering, divisors, lowering_of, lowering_of_unit, plumbing_row, register, walk
from . import host, matvec, conv, kernel_bank, threshold, maxpool, sumpool, residual, ode_block, plumbing  # noqa: E402,F401

__all__ = ["Lowering", "divisors", "lowering_of", "lowering_of_unit", "plumbing_row", "register", "walk"]
