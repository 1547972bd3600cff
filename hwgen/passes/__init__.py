"""Compiler passes over the IR, one per file; hwgen.compiler runs them in order."""
