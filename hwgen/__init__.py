"""hwgen: quantized neural networks (Brevitas -> QONNX) to verified FPGA accelerators.

    import hwgen
    acc = hwgen.compile("model.onnx", fold="auto", target_cycles=1024, target="ecp5")

    from hwgen.fit import fit
    acc = fit("model.onnx", device="ecp5-85")   # the fastest auto folding that fits the device

Pipeline: hwgen.frontend (ONNX -> IR) -> hwgen.compiler (passes) -> hwgen.passes.schedule
(HardwarePlan) -> hwgen.rtl (Amaranth -> Verilog) -> sim/ (cocotb) -> hwgen.flows (open tools).
Each IR op's semantics, folding, unit, timing and cost live in hwgen.lowering.
"""
__version__ = "0.1.0"


def compile(model, **options):
    """Compile a QONNX model to an Accelerator (see hwgen.api.compile for the options)."""
    from .api import compile as _compile

    return _compile(model, **options)


__all__ = ["compile", "__version__"]
