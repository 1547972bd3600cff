"""ONNX / QONNX import into the hwgen IR."""
from .importer import InputFormat, import_onnx
from .load import load_qonnx

__all__ = ["InputFormat", "import_onnx", "load_qonnx"]
