"""One lowering per IR op kind: its golden semantics, folding, plan, unit, timing model and cost
(see base.py). Importing this package imports every module in it, which registers them all: a new
op kind's lowering is a new module here, nothing else to list."""
import importlib
import pkgutil

from .base import Lowering, divisors, lowering_of, lowering_of_unit, plumbing_row, register, walk

for _m in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["Lowering", "divisors", "lowering_of", "lowering_of_unit", "plumbing_row", "register", "walk"]
