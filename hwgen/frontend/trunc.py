"""QONNX `Trunc` (Brevitas TruncAvgPool2d / TruncAdaptiveAvgPool2d exports) on integers.

qonnx executes Trunc in float (qonnx/custom_op/general/trunc.py); the version comes from the
model's opset import of the node's domain (qonnx's default, 1, when there is none):

  v2 (6 inputs: x, scale, zeropt, in_bits, out_scale, out_bits; attributes rounding_mode, signed,
      narrow):
      y = round(x / scale + zeropt)                       (np.round: the integer the input stands for)
      t = round(log2(out_scale / scale))                  (trunc_scale = 2^t)
      y = rnd(clip(y / 2^t, min_int, max_int))            (signed, narrow, out_bits; rnd per rounding_mode)
      out = (y - zeropt / 2^t) * out_scale
  v1 (5 inputs: x, scale, zeropt, in_bits, out_bits; attribute rounding_mode):
      t = in_bits - out_bits;  y = rnd(round(x / scale + zeropt) / 2^t);  out = (y - zeropt) * scale

On the integers v that x stands for (x = v * scale, so round(x / scale) == v) and with zeropt 0
(others are refused) both are out = f(v) * s_out with the integer function

      f(v) = clip(rnd(v / 2^t), min_int, max_int)         (v1: no clip; clip and rnd commute: the
                                                           bounds are integers, rnd is monotone)

computed here in integers for every rounding mode qonnx knows (ROUND = HALF_EVEN, FLOOR, CEIL, UP,
DOWN, HALF_UP, HALF_DOWN), and s_out = out_scale (v2) or scale (v1). For t <= 0, f(v) = v * 2^-t
(clipped in v2). f is monotone, so on an integer range it is a multi-threshold staircase: the
importer makes it a Threshold (which the requantize pass turns into a shift-and-clip requantizer),
folds it into the quantizer after it, or drops it where it changes nothing (f(v) * s_out == v * scale
on the whole input range).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from ..errors import HwgenError
from ..ir.types import IntType, log2_exact, smallest_type

ROUNDING_MODES = ("ROUND", "HALF_EVEN", "FLOOR", "CEIL", "UP", "DOWN", "HALF_UP", "HALF_DOWN")
DENSE_LIMIT = 1 << 24  # input ranges enumerated to build thresholds


@dataclass(frozen=True)
class TruncSpec:
    """A Trunc node's integer semantics: f(v) = clip(rnd(v / 2^shift), lo, hi), out = f(v) * out_scale."""

    name: str
    version: int
    shift: int
    rounding_mode: str
    lo: int | None  # clip bounds (None: v1, no clip)
    hi: int | None
    scale: float  # the input scale (what one input integer stands for)
    out_scale: float  # what one output integer stands for

    def apply(self, v) -> np.ndarray:
        """f on integers (int64), exactly."""
        v = np.asarray(v, dtype=np.int64)
        t = self.shift
        if t <= 0:
            y = v << -t
        else:
            mode = self.rounding_mode
            sign = np.where(v < 0, -1, 1)
            a = np.abs(v)
            q, r = v >> t, v & ((1 << t) - 1)  # floor quotient, remainder in [0, 2^t)
            qa, ra = a >> t, a & ((1 << t) - 1)  # the same for |v|
            half = 1 << (t - 1)
            if mode in ("ROUND", "HALF_EVEN"):
                y = q + ((r > half) | ((r == half) & (q & 1 == 1)))
            elif mode == "FLOOR":
                y = q
            elif mode == "CEIL":
                y = q + (r > 0)
            elif mode == "UP":  # away from zero
                y = sign * (qa + (ra > 0))
            elif mode == "DOWN":  # toward zero (np.fix)
                y = sign * qa
            elif mode == "HALF_UP":  # ties away from zero
                y = sign * (qa + (ra >= half))
            else:  # HALF_DOWN: ties toward zero
                y = sign * (qa + (ra > half))
        if self.lo is not None:
            y = np.clip(y, self.lo, self.hi)
        return np.asarray(y, dtype=np.int64)

    def scale_only(self, lo: int, hi: int) -> bool:
        """On inputs in [lo, hi] the Trunc changes nothing: f(v) = v * 2^-shift (no rounding, no
        clipping) and out_scale * 2^-shift == scale, so out = f(v) * out_scale = v * scale, the
        value that came in (what Brevitas' RoundTo8bit does to sums narrower than 8 bits)."""
        if self.shift > 0 or self.rescaled() != float(np.float32(self.scale)):
            return False
        f = self.apply([lo, hi])
        return int(f[0]) == lo << -self.shift and int(f[1]) == hi << -self.shift

    def rescaled(self) -> float:
        """What one input integer stands for after the Trunc where f(v) = v * 2^-shift: out_scale *
        2^-shift (exact: a power of two; the same float32 products as the reference's)."""
        return float(np.float32(self.out_scale) * np.float32(2.0 ** -self.shift))

    def staircase(self, lo: int, hi: int) -> tuple[np.ndarray, int, IntType]:
        """(thresholds [L - 1], out_base, out_type): f on [lo, hi] as a multi-threshold activation,
        level = #{k : v >= T[k]}, out = out_base + level."""
        if hi - lo + 1 > DENSE_LIMIT:
            raise HwgenError(f"the input range [{lo}, {hi}] of this Trunc is too wide to map onto "
                             "thresholds", node=self.name, op="Trunc")
        grid = np.arange(lo, hi + 1, dtype=np.int64)
        f = self.apply(grid)
        assert np.all(np.diff(f) >= 0), "Trunc is monotone"
        base, top = int(f[0]), int(f[-1])
        levels = np.arange(base + 1, top + 1)
        thresholds = lo + np.searchsorted(f, levels, side="left")
        return thresholds.astype(np.int64), base, smallest_type(base, top)

    def segment_nodes(self, x: str, out: str, inits: dict, prefix: str) -> list:
        """ONNX float ops computing f(v) * out_scale from x = v * 2^-shift (exact in float32 for
        |v| < 2^24): clip, round per mode, scale; for folding into the quantizer after the Trunc."""
        from onnx import helper

        nodes = []
        n = [0]

        def const(value) -> str:
            n[0] += 1
            name = f"{prefix}_c{n[0]}"
            inits[name] = np.asarray(value, dtype=np.float32)
            return name

        def node(op, *inputs) -> str:
            n[0] += 1
            name = f"{prefix}_{op.lower()}{n[0]}"
            nodes.append(helper.make_node(op, list(inputs), [name], name=name))
            return name

        y = x
        if self.lo is not None:
            y = node("Min", node("Max", y, const(self.lo)), const(self.hi))
        if self.shift > 0:
            mode = self.rounding_mode
            if mode in ("ROUND", "HALF_EVEN"):
                y = node("Round", y)
            elif mode == "FLOOR":
                y = node("Floor", y)
            elif mode == "CEIL":
                y = node("Ceil", y)
            else:
                a = node("Abs", y)
                if mode == "UP":
                    a = node("Ceil", a)
                elif mode == "DOWN":
                    a = node("Floor", a)
                elif mode == "HALF_UP":
                    a = node("Floor", node("Add", a, const(0.5)))
                else:
                    a = node("Ceil", node("Sub", a, const(0.5)))
                y = node("Mul", node("Sign", y), a)
        nodes.append(helper.make_node("Mul", [y, const(self.out_scale)], [out], name=f"{prefix}_scale"))
        return nodes


def trunc_spec(node, inits: dict, opset_imports: dict, in_scale: float) -> TruncSpec:
    """The integer semantics of a Trunc node whose input integers stand for `in_scale` each, or a
    one-line HwgenError naming the node."""
    from qonnx.custom_op.general.quant import max_int, min_int
    from qonnx.util.basic import get_preferred_qonnx_opset

    def err(msg):
        return HwgenError(msg, node=node.name, op=node.op_type)

    version = int(opset_imports.get(node.domain, get_preferred_qonnx_opset()))
    version = 2 if version >= 2 else 1
    want = 6 if version == 2 else 5
    if len(node.input) != want:
        raise err(f"a Trunc of opset version {version} (the model's opset for '{node.domain}') takes {want} "
                  f"inputs, this one has {len(node.input)}; re-export it with brevitas.export.export_qonnx")

    def const(i, what):
        name = node.input[i]
        if name not in inits:
            raise err(f"{what} must be a constant initializer")
        return np.asarray(inits[name])

    scale = const(1, "the scale")
    zeropt = const(2, "the zero point")
    if scale.size != 1:
        raise err("Trunc scales must be per-tensor")
    if np.any(zeropt != 0):
        raise err("non-zero zero points are not supported; use a symmetric (zero-point 0) quantizer")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    mode = attrs.get("rounding_mode", b"FLOOR")
    mode = (mode.decode() if isinstance(mode, bytes) else str(mode)).upper()
    if mode not in ROUNDING_MODES:
        raise err(f"rounding mode {mode} is not one qonnx knows ({', '.join(ROUNDING_MODES)})")
    s = np.float32(scale.reshape(()))
    if not np.isclose(float(s), float(in_scale), rtol=2.0 ** -20, atol=0.0):
        raise err(f"the Trunc's input scale {float(s):g} is not the scale {in_scale:g} of the integers it "
                  "truncates; hwgen maps Trunc only right after an average pool, on the pool's sums "
                  "(Brevitas TruncAvgPool2d / TruncAdaptiveAvgPool2d exports)")
    if version == 1:
        ib, ob = float(const(3, "the input bit width").reshape(())), float(const(4, "the output bit width").reshape(()))
        if ib != int(ib) or ob != int(ob):
            raise err(f"bit widths {ib:g} -> {ob:g} are not integers")
        return TruncSpec(node.name, 1, int(ib) - int(ob), mode, None, None, float(s), float(s))
    out_scale = const(4, "the output scale")
    ob = float(const(5, "the output bit width").reshape(()))
    if out_scale.size != 1:
        raise err("Trunc output scales must be per-tensor")
    if ob != int(ob) or ob < 1:
        raise err(f"output bit width {ob:g} is not a positive integer")
    trunc_scale = 2 ** np.round(np.log2(out_scale / scale))  # as qonnx computes it
    t = log2_exact(float(np.asarray(trunc_scale).reshape(())))
    if t is None:  # pragma: no cover  (2 ** an integer always is a power of two)
        raise err(f"trunc scale {float(trunc_scale):g} is not a power of two")
    signed, narrow = bool(attrs.get("signed", 1)), bool(attrs.get("narrow", 0))
    lo, hi = int(min_int(signed, narrow, int(ob))), int(max_int(signed, narrow, int(ob)))
    return TruncSpec(node.name, 2, t, mode, lo, hi, float(s), float(np.float32(out_scale.reshape(()))))
