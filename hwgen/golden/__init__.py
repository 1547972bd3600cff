"""NumPy golden model of the IR."""
from .execute import AccumulatorOverflow, execute, run, run_core, run_op, run_ops

__all__ = ["AccumulatorOverflow", "execute", "run", "run_core", "run_op", "run_ops"]
