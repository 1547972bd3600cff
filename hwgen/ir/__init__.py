"""hwgen's integer IR: types, op kinds, graph."""
from .float_segment import FloatSegment
from .graph import Graph, TensorInfo
from .ops import Add, Conv, Dot, FloatActivation, GlobalSumPool, Head, SumPool, KernelBankConv, MatVec, MaxPool, ODEBlock, Op, Tail, Threshold
from .quantizer import Quantizer
from .types import Bipolar, BipolarType, DataType, IntType

__all__ = [
    "Add", "Bipolar", "BipolarType", "Conv", "DataType", "Dot", "FloatActivation", "GlobalSumPool", "SumPool", "KernelBankConv", "MaxPool", "ODEBlock", "FloatSegment", "Graph", "Head",
    "IntType", "MatVec", "Op", "Quantizer", "Tail", "TensorInfo", "Threshold",
]
