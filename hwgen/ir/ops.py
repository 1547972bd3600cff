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
    to_nhwc: bool = False  # the quantized input is NCHW; the hardware takes NHWC


@dataclass
class Dot(Op):
    """An op whose every output is an integer dot product with fixed weights (no bias):
    the common ground of MatVec and Conv for accumulator sizing and streamlining.

    `weight_scale` and `input_scale` are the float scales the integers stood for; they
    only matter to the float ops downstream, not to the hardware. `input_scale` is the input's
    scale as each output's dot product sees it: one per tensor, or float32 [out] after a per-channel
    activation scale (a depthwise conv: hwgen.frontend.channel_scale).
    """

    weights: np.ndarray  # int64, [out, in] for MatVec, [out, kh, kw, in/groups] for Conv
    in_type: DataType
    w_type: DataType
    input_scale: float | np.ndarray
    weight_scale: np.ndarray  # float32 [out] (per-tensor scales broadcast)
    acc_type: IntType | None = None  # set by the accumulator sizing pass
    acc_bounds: dict[str, int] = field(default_factory=dict)  # policy name -> bits
    pe: int = 1
    simd: int = 1

    @property
    def dot_weights(self) -> np.ndarray:
        """[out, terms]: the weights of each output's dot product, in input-patch order."""
        return self.weights.reshape(self.weights.shape[0], -1)

    @property
    def out_channels(self) -> int:
        return self.weights.shape[0]

    @property
    def in_features(self) -> int:
        """Terms per dot product."""
        return self.dot_weights.shape[1]

    @property
    def float_scale(self) -> np.ndarray:
        """acc * float_scale is what the reference's float MatMul computes (exact for 2^k scales)."""
        return (np.float64(self.input_scale) * self.weight_scale.astype(np.float64)).astype(np.float32)


@dataclass
class MatVec(Dot):
    """Fully connected layer: acc[c] = sum_i W[c, i] * x[i]."""


@dataclass(kw_only=True)
class Conv(Dot):
    """2-D convolution on NHWC tensors, zero padding, groups (depthwise when groups == C).

    acc[h, w, o] = sum_{i, j, c} W[o, i, j, c] * x[h*sh + i - pt, w*sw + j - pl, g(o)*Cg + c]
    """

    in_shape: tuple[int, int, int]  # H, W, C
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, left, bottom, right
    groups: int = 1

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, _ = self.in_shape
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pads
        return ((h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1, self.out_channels)

    @property
    def depthwise(self) -> bool:
        return self.groups > 1 and self.groups == self.in_shape[2] == self.out_channels


@dataclass(kw_only=True)
class KernelBankConv(Conv):
    """A binary 3x3 conv whose kernels all come from a small codebook (Sub-bit NNs, Wang et
    al. 2021): each (out, in) kernel is stored as a tau-bit index. Same result as the Conv it
    replaces; the hardware computes each codeword's response once per input channel window
    (r = 2*popcount(xnor(a, k) & mask) - popcount(mask), padding taps masked) and every output
    channel gathers the responses its indices name."""

    codebook: np.ndarray  # int64 [2^tau, kh, kw] of -1/+1 (unused entries repeat entry 0)
    indices: np.ndarray  # int64 [out, in]
    tau: int

    @property
    def patterns(self) -> int:
        return int(len(np.unique(self.indices)))


@dataclass(kw_only=True)
class ODEBlock(Op):
    """dsODENet block: one step (f and its residual Add) run `steps` times with shared weights,
    h <- h + dt * f(h), dt = 2^-dt_shift. `body` holds the ops of the first step; its input is
    `body_input`, its result `body_output`. The hardware keeps h on chip between steps."""

    body: list[Op]
    steps: int
    dt_shift: int
    body_input: str
    body_output: str
    state_type: DataType = None


@dataclass(kw_only=True)
class MaxPool(Op):
    """Max over k x k windows of an integer NHWC tensor (type unchanged)."""

    in_shape: tuple[int, int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dtype: DataType = None

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        (kh, kw), (sh, sw), (pt, pl, pb, pr) = self.kernel, self.stride, self.pads
        return ((h + pt + pb - kh) // sh + 1, (w + pl + pr - kw) // sw + 1, c)


@dataclass(kw_only=True)
class GlobalSumPool(Op):
    """Sum over H x W per channel. GlobalAveragePool imports as this: the 1/(H*W) moves into
    the next layer's input scale, so the hardware only adds."""

    in_shape: tuple[int, int, int]
    in_type: DataType
    out_type: IntType


@dataclass(kw_only=True)
class SumPool(Op):
    """Sum over kh x kw windows (stride, no padding) per channel of an integer NHWC tensor.
    AveragePool imports as this: the 1/(kh*kw) moves into the next layer's input scale or into the
    Threshold of the quantizer after it (as for GlobalSumPool), and a Brevitas Trunc after it becomes
    a Threshold on the sums (hwgen.frontend.trunc)."""

    in_shape: tuple[int, int, int]  # H, W, C
    kernel: tuple[int, int]
    stride: tuple[int, int]
    in_type: DataType
    out_type: IntType

    @property
    def out_shape(self) -> tuple[int, int, int]:
        h, w, c = self.in_shape
        (kh, kw), (sh, sw) = self.kernel, self.stride
        return ((h - kh) // sh + 1, (w - kw) // sw + 1, c)


@dataclass(kw_only=True)
class Add(Op):
    """Residual add of two integer tensors in power-of-two domains, requantized:

        out = clamp(round((a << a_shift) + (b << b_shift), out_shift))

    where round(v, s) divides by 2^s with the quantizer's rounding (half to even for ROUND)
    and clamp saturates to out_type. This is h + dt * f(h) with dt = 2^-k folded into b_shift.
    """

    a_shift: int
    b_shift: int
    out_shift: int
    a_type: DataType
    b_type: DataType
    out_type: DataType
    out_scale: float | np.ndarray  # float32 [C] when per channel (then the three scales are equal)
    rounding_mode: str = "ROUND"


@dataclass
class FloatActivation(Op):
    """Accumulator -> (acc * scale) -> float ops (bias, BN, ReLU...) -> quantizer.

    Exists only between import and streamlining, which replaces it by a Threshold.
    """

    scale: np.ndarray  # float32 [C]
    segment: FloatSegment | None
    quantizer: Quantizer
    onnx_nodes: list[str] = field(default_factory=list)  # names, for messages
    segment_shape: tuple[int, ...] = ()  # per-sample shape the float ops expect: (C,) or (C, 1, 1)


@dataclass
class Threshold(Op):
    """Multi-threshold activation: level = #{k : acc >= T[c, k]} (or acc <= T for decreasing
    channels); out = out_base + level (for Bipolar, the level is the wire bit)."""

    thresholds: np.ndarray  # int64 [C, L], sorted so that level counts are monotone
    decreasing: np.ndarray  # bool [C]
    in_type: IntType
    out_type: DataType
    out_base: int  # value of level 0
    out_scale: float | np.ndarray = 1.0  # what one output integer stood for in the float graph ([C]: per channel)
    # the same staircase as a requantizer, v = acc * mul[c] + add[c], level = clip(v >> shift, 0, L)
    # (requant_round "floor") or clip((v + ((v >> shift) & 1)) >> shift, 0, L) ("half_even"), when
    # hwgen.passes.requantize proved it equal on every accumulator value (None: not proven)
    requant_mul: np.ndarray | None = None  # int64 [C]
    requant_add: np.ndarray | None = None  # int64 [C]
    requant_shift: int = 0
    requant_round: str = "floor"
    # the per-channel accumulator range the requantizer was proved on (what the producer can reach):
    # the unit needs no clip against a bound no reachable value crosses
    requant_lo: np.ndarray | None = None  # int64 [C]
    requant_hi: np.ndarray | None = None  # int64 [C]

    @property
    def channels(self) -> int:
        return self.thresholds.shape[0]

    @property
    def levels(self) -> int:
        return self.thresholds.shape[1] + 1

    @property
    def requantizable(self) -> bool:
        return self.requant_mul is not None


@dataclass
class Tail(Op):
    """Host-side: integers -> (q * scale) -> float ops after the last integer layer -> outputs."""

    scale: np.ndarray  # float32 [C]
    segment: FloatSegment | None
    nchw: bool = False  # the integers arrive NHWC; the float ops expect NCHW


INTEGER_OPS = (MatVec, Conv, KernelBankConv, Threshold, MaxPool, GlobalSumPool, SumPool, Add, ODEBlock)
