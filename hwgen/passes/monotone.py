"""A proof that a float segment (hwgen.ir.float_segment) is monotone per element, from its ops alone.

Streamlining reads thresholds off the float map from an accumulator to its quantizer; on a wide
accumulator range it can only sample that map, so a narrow dip would go unseen. IEEE rounding is
monotone, so a chain of elementwise ops each monotone in its one non-constant operand is monotone
too (per element, each channel in its own direction), as long as no value nears float32 overflow.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import onnx
from onnx import numpy_helper

# Elementwise ops whose float32 result is monotone in their one non-constant operand: IEEE rounding
# is monotone, so fl(x + c), fl(x * c), fl(x / c), max(x, c), round(x), ... are, and so is a chain.
# Not here: c / x, Abs, Pow, Sqrt (NaN below 0), Sigmoid and Tanh (onnxruntime evaluates them with
# rational approximations that nothing guarantees monotone in float32).
MONOTONE_OPS = ("Add", "Sub", "Mul", "Div", "BatchNormalization", "Relu", "LeakyRelu", "Clip", "Max", "Min",
                "Round", "Floor", "Ceil", "Neg", "Sign", "Identity")
_FAR_FROM_INF = 2.0 ** 120  # float32 overflows at 2^128: below this no rounding reaches inf (inf * 0 is NaN)


def _step(node, x: str, consts: dict, m: float):
    """(bound, None) when node is monotone in its input x, with |output| <= bound wherever
    |x| <= m; else (None, why not)."""
    t = node.op_type
    if t not in MONOTONE_OPS:
        return None, "is not one of the ops hwgen proves monotone"
    if list(node.input).count(x) != 1:
        return None, f"takes '{x}' more than once (like x * x)"
    others = [i for i in node.input if i and i != x]
    computed = [i for i in others if i not in consts]
    if computed:
        return None, f"also takes '{computed[0]}', which is computed from the accumulator too (a second path)"
    if len([o for o in node.output if o]) != 1:
        return None, "has more than one output"
    if t in ("Div", "BatchNormalization", "Clip") and node.input[0] != x:
        return None, ("divides a constant by the value (c / x is not monotone across 0)" if t == "Div"
                      else f"takes '{x}' as a parameter, not as its data input")
    c = [np.asarray(consts[i], np.float64) for i in others]
    if not all(np.isfinite(v).all() for v in c):
        return None, "has a constant that is not finite"
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    big = max((float(np.abs(v).max(initial=0.0)) for v in c), default=0.0)
    if t in ("Add", "Sub"):
        m = m + big
    elif t == "Mul":
        m = m * big
    elif t == "Div":
        if (c[0] == 0).any():
            return None, "divides by zero"
        m = m / float(np.abs(c[0]).min())
    elif t == "BatchNormalization":
        if attrs.get("training_mode", 0):
            return None, "normalizes with batch statistics (training_mode=1)"
        scale, bias, mean, var = c
        den = var + attrs.get("epsilon", 1e-5)
        if (den <= 0).any():
            return None, "has var + epsilon <= 0"
        m = float(((m + np.abs(mean)) * np.abs(scale) / np.sqrt(den) + np.abs(bias)).max())
    elif t == "LeakyRelu":
        alpha = attrs.get("alpha", 0.01)
        if not alpha >= 0:
            return None, f"has alpha {alpha} < 0"
        m = m * max(1.0, alpha)
    elif t in ("Clip", "Max", "Min"):  # the output lies in [max/min(-m, c...), max/min(m, c...)]
        if t == "Clip":  # min(max(x, lo), hi)
            lo = c[0] if len(node.input) > 1 and node.input[1] else attrs.get("min", -np.inf)
            hi = c[-1] if len(node.input) > 2 and node.input[2] else attrs.get("max", np.inf)
            ends = [min(max(e, np.min(lo)), np.max(hi)) for e in (-m, m)]
        else:
            pick = max if t == "Max" else min
            ends = [pick([-m] + [v.min() for v in c]), pick([m] + [v.max() for v in c])]
        m = float(max(abs(ends[0]), abs(ends[1])))
    elif t in ("Round", "Floor", "Ceil"):
        m = m + 1.0
    elif t == "Sign":
        m = 1.0
    if not m < _FAR_FROM_INF:
        return None, f"may overflow float32 (values up to {m:.3g}; inf * 0 is NaN, which no threshold reproduces)"
    return m, None


def _increasing_at(node, x: str, v, consts: dict):
    """node's output at v (float32; exact here) when node is nondecreasing in x, else None."""
    t, c = node.op_type, [np.asarray(consts[i], np.float32) for i in node.input if i and i != x]
    positive = all((k > 0).all() for k in c)
    if t == "Add" or (t == "Sub" and node.input[0] == x):
        return v + c[0] if t == "Add" else v - c[0]
    if t == "Mul" and positive or (t == "Div" and positive and node.input[0] == x):
        return v * c[0] if t == "Mul" else v / c[0]
    unary = {"Floor": np.floor, "Ceil": np.ceil, "Round": np.round, "Relu": lambda a: np.maximum(a, 0),
             "Identity": lambda a: a}
    return unary[t](v) if t in unary else None


def _sign_magnitude(x: str, users: dict, consts: dict, m: float):
    """(the joining Mul, bound) when x feeds exactly Sign(x) * g(Abs(x)), g a chain of nondecreasing
    ops with g(0) >= 0, else None. Such a map is monotone although x forks: the importer builds
    it for a Trunc rounding away from or toward zero."""
    by_type = {n.op_type: n for n in users[x]}
    if len(users[x]) != 2 or set(by_type) != {"Sign", "Abs"} or \
            any(list(n.input) != [x] for n in users[x]):
        return None
    s, t, g0 = by_type["Sign"].output[0], by_type["Abs"].output[0], np.float32(0.0)
    nodes = list(users[x])
    while len(users[t]) == 1:
        (node,) = users[t]
        nodes.append(node)
        if node.op_type == "Mul" and sorted(node.input) == sorted([s, t]):
            ok = len(users[s]) == 1 and np.all(g0 >= 0)
            return (node, nodes, m) if ok else None
        m, why = _step(node, t, consts, m)
        g0 = None if why else _increasing_at(node, t, g0, consts)
        if g0 is None:
            return None
        t = node.output[0]
    return None


def monotone_obstacle(segment, m: float):
    """None when every element of the segment's output is provably a monotone function of the same
    element of its input (any input of magnitude <= m), else (node, why not) for the first node
    on the data path where the proof fails. The data path must be a chain: a fork (two paths from
    the accumulator that meet again) can make any shape, a narrow dip included."""
    graph = segment.graph
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    nodes, users = list(graph.node), defaultdict(list)
    for n in nodes:
        for i in dict.fromkeys(n.input):
            if i:
                users[i].append(n)
    x, on_path = segment.input_name, set()
    while x != segment.output_name:
        joined = _sign_magnitude(x, users, consts, m)
        if joined is not None:
            node, chain, m = joined
            on_path.update(map(id, chain))
            x = node.output[0]
            continue
        after = users[x]
        if len(after) != 1:
            first, *rest = after or [None]
            if first is None:
                return None, f"the data path ends at '{x}', not at the segment's output"
            return rest[0], (f"shares its input '{x}' with {first.op_type} '{first.name}' (a fork: two paths "
                             "from the accumulator that meet again can make any shape)")
        (node,) = after
        m, why = _step(node, x, consts, m)
        if why:
            return node, why
        on_path.add(id(node))
        x = node.output[0]
    stray = [n for n in nodes if id(n) not in on_path]
    return (stray[0], "is not on the chain from the accumulator to the quantizer") if stray else None
