"""hwgen: quantized neural networks (Brevitas -> QONNX) to verified FPGA accelerators.

Pipeline: hwgen.frontend (ONNX -> IR) -> hwgen.passes -> hwgen.golden (NumPy reference)
-> hwgen.rtl (Amaranth -> Verilog) -> sim/ (cocotb) -> open FPGA flows.
"""
__version__ = "0.1.0"
