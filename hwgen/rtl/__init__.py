"""Amaranth RTL for the hwgen IR: one wiring.Component per op kind (matvec.py, threshold.py, ...),
stream plumbing (width_converter.py, fifo.py), the top that connects a HardwarePlan's stages
(top.py), the build directory writer (build.py) and checks on the result (lint.py). What each unit
is and how it is configured is decided by the op's lowering (hwgen.lowering), not here.

Entry points: hwgen.rtl.build.build_accelerator(graph, out_dir, top=None) -> report dict,
hwgen.rtl.lint.lint_verilog(path, report) -> list of problems.
"""
