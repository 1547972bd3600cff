"""IR op kinds. Plain dataclasses: every field is something the golden model or the
hardware needs, nothing is a string-keyed attribute bag.

Tensors between ops are integer vectors per sample (NHWC flattened on the wire), batch first
in the golden model. Float appears only in Head (host pre-processing), FloatActivation (the
not-yet-streamlined float map from accumulator to the next quantizer) and Tail (host post-processing).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .float_segment import FloatSegment
from .quantizer import Quantizer
from .types import DataType, IntType


@dataclass
class Op:
    name: str
    inputs: list[str]
    outputs: list[str]

    @property
    def kind(self) -> str:
        return type(self).__name__


@dataclass
class Head(Op):
    """Host-side: user's float input -> float pre-processing -> input quantizer -> integers."""

    segment: FloatSegment | None
    quantizer: Quantizer
    input_shape: tuple[int, ...]  # per sample, as the user feeds it


@dataclass
class MatVec(Op):
    """Fully connected layer: acc[c] = sum_i W[c, i] * x[i], pure dot product (no bias).

    `weight_scale` and `input_scale` are the float scales the integers stood for; they
    only matter to the float ops downstream, not to the hardware.
    """

    weights: np.ndarray  # int64 [out, in]
    in_type: DataType
    w_type: DataType
    input_scale: float
    weight_scale: np.ndarray  # float32 [out] (per-tensor scales broadcast)
    acc_type: IntType | None = None  # set by the accumulator sizing pass
    acc_bounds: dict[str, int] = field(default_factory=dict)  # policy name -> bits
    pe: int = 1
    simd: int = 1

    @property
    def out_channels(self) -> int:
        return self.weights.shape[0]

    @property
    def in_features(self) -> int:
        return self.weights.shape[1]

    @property
    def float_scale(self) -> np.ndarray:
        """acc * float_scale is what the reference's float MatMul computes (exact for 2^k scales)."""
        return (np.float64(self.input_scale) * self.weight_scale.astype(np.float64)).astype(np.float32)


@dataclass
class FloatActivation(Op):
    """Accumulator -> (acc * scale) -> float ops (bias, BN, ReLU...) -> quantizer.

    Exists only between import and streamlining, which replaces it by a Threshold.
    """

    scale: np.ndarray  # float32 [C]
    segment: FloatSegment | None
    quantizer: Quantizer
    onnx_nodes: list[str] = field(default_factory=list)  # names, for messages


@dataclass
class Threshold(Op):
    """Multi-threshold activation: level = #{k : acc >= T[c, k]} (or acc <= T for decreasing
    channels); out = out_base + level (for Bipolar, the level is the wire bit)."""

    thresholds: np.ndarray  # int64 [C, L], sorted so that level counts are monotone
    decreasing: np.ndarray  # bool [C]
    in_type: IntType
    out_type: DataType
    out_base: int  # value of level 0
    out_scale: float = 1.0  # what one output integer stood for in the float graph

    @property
    def channels(self) -> int:
        return self.thresholds.shape[0]

    @property
    def levels(self) -> int:
        return self.thresholds.shape[1] + 1


@dataclass
class Tail(Op):
    """Host-side: integers -> (q * scale) -> float ops after the last integer layer -> outputs."""

    scale: np.ndarray  # float32 [C]
    segment: FloatSegment | None


INTEGER_OPS = (MatVec, Threshold)
