"""Small Brevitas-trained quantized MLPs on scikit-learn's digits, exported as QONNX.

They are the reference inputs of hwgen: `python -m quant_models.train` retrains them and
rewrites `quant_models/onnx/` (ONNX graphs, Brevitas state_dicts, accuracies).
"""
