"""Compiler passes over the IR; pipeline.py lists their order."""
from .pipeline import CompileOptions, compile_model, lower

__all__ = ["CompileOptions", "compile_model", "lower"]
