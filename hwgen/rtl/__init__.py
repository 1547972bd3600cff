"""Amaranth RTL for the hwgen IR: one wiring.Component per op kind (matvec.py, threshold.py),
stream plumbing (width_converter.py, fifo.py), the top that chains a graph's core (top.py),
Verilog emission with report.json (build.py) and checks on the result (lint.py).

Entry points: hwgen.rtl.build.build_accelerator(graph, out_dir, top=None) -> report dict,
hwgen.rtl.lint.lint_verilog(path, report) -> list of problems.
"""
