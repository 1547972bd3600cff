"""Test vectors for the RTL benches: random inputs, accumulator-extreme (adversarial) inputs,
and their packing into stream beats as described by report.json's "io" section.

Inputs are the Head's output per sample: a vector [K] for fully connected models, an NHWC
feature map [H, W, C] for convolutional ones (flattened in raster order, channels innermost,
onto the stream).
"""
from __future__ import annotations

import numpy as np

from hwgen.golden import run_core
from hwgen.ir import Add, Conv, Dot, Graph, MatVec, MaxPool, ODEBlock, Threshold
from hwgen.ir.types import BipolarType, to_wire
from hwgen.passes.accumulators import exact_range
from hwgen.rtl.conv import dense_weights
from hwgen.rtl.util import pack_ints


def random_values(dtype, shape, rng: np.random.Generator) -> np.ndarray:
    if isinstance(dtype, BipolarType):
        return rng.choice(np.array([-1, 1]), size=shape)
    return rng.integers(dtype.min, dtype.max + 1, size=shape, dtype=np.int64)


def _extremes(dtype) -> tuple[int, int]:
    return int(dtype.min), int(dtype.max)


def _dense(op: Dot) -> np.ndarray:
    """[out, terms]: the weights of each output's dot product (a conv's patch in (kh, kw, c) order,
    zeros outside a grouped conv's group)."""
    if isinstance(op, Conv):
        return dense_weights(op.weights, op.groups, op.in_shape[2])
    return op.weights


def extreme_channels(op: Dot, limit: int | None = None) -> list[int]:
    """Output channels, those with the widest exact accumulator range (most bits) first."""
    lo, hi = exact_acc_range(op)
    need = np.maximum(np.abs(lo), np.abs(hi))
    order = sorted(range(op.out_channels), key=lambda c: (-int(need[c]), c))
    return order if limit is None else order[:limit]


def first_layer_extremes(op: MatVec, rng: np.random.Generator, channels: list[int] | None = None) -> np.ndarray:
    """Per output channel two inputs: x = x_max where w > 0 and x_min where w < 0 (the
    accumulator's exact maximum), and the reverse (its exact minimum); zero weights random."""
    x_min, x_max = _extremes(op.in_type)
    rows = []
    channels = range(op.out_channels) if channels is None else channels
    for c in channels:
        w = op.weights[c]
        fill = random_values(op.in_type, w.shape, rng)
        rows.append(np.where(w > 0, x_max, np.where(w < 0, x_min, fill)))
        rows.append(np.where(w > 0, x_min, np.where(w < 0, x_max, fill)))
    return np.asarray(rows, dtype=np.int64).reshape(len(rows), op.weights.shape[1])  # (0, K) for no channel


def exact_acc_range(op: Dot) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel [lo, hi] of the accumulator (hwgen.passes.accumulators.exact_range)."""
    return exact_range(op)


def _input_candidates(dtype) -> np.ndarray:
    if isinstance(dtype, BipolarType):
        return np.array([-1, 1])
    if dtype.max - dtype.min <= 7:
        return np.arange(dtype.min, dtype.max + 1)
    return np.array(sorted({dtype.min, 0 if dtype.min <= 0 <= dtype.max else dtype.min, dtype.max}))


def later_layer_extremes(graph: Graph, rng: np.random.Generator, *, channels_per_layer: int = 2,
                         steps: int = 12) -> tuple[np.ndarray, list[dict]]:
    """Best-effort inputs pushing accumulators of later MatVecs to their exact extremes.

    Whether an extreme is reachable through the layers before it is not known in general, so:
    propagate the wanted direction backwards through the signs of the weights (and the direction
    of each threshold channel) to a starting input, then improve it by coordinate ascent on the
    true accumulator. Returns the vectors and, per target, whether the exact extreme was hit.
    """
    core = graph.core
    head_out = graph.head.outputs[0]
    mats = [i for i, op in enumerate(core) if isinstance(op, MatVec)]
    in_type = core[0].in_type if isinstance(core[0], MatVec) else core[0].in_type
    k_in = graph.tensors[head_out].elements
    cands = _input_candidates(in_type)
    found, notes = [], []
    for li in mats[1:]:
        op = core[li]
        lo, hi = exact_acc_range(op)
        span = hi - lo
        chans = list(np.argsort(-span, kind="stable")[:channels_per_layer])
        for c in chans:
            for sign in (+1, -1):
                # backwards direction propagation
                d = np.zeros(op.out_channels)
                d[c] = sign
                for j in range(li, -1, -1):
                    o = core[j]
                    if isinstance(o, MatVec):
                        d = d @ o.weights  # direction on this MatVec's input
                    elif isinstance(o, Threshold):
                        d = np.where(o.decreasing, -d, d)
                x0 = np.where(d > 0, in_type.max, np.where(d < 0, in_type.min,
                                                          random_values(in_type, d.shape, rng)))
                x = x0.astype(np.int64).reshape(1, k_in)

                def score(batch):
                    return sign * run_core(graph, batch)[op.outputs[0]][:, c]

                best = float(score(x)[0])
                target = hi[c] if sign > 0 else lo[c]
                for _ in range(steps):
                    if best >= sign * target:
                        break
                    # every single-element change at once, keep the best one
                    trial = np.repeat(x, k_in * len(cands), axis=0)
                    rows = np.arange(len(trial))
                    trial[rows, rows // len(cands)] = np.tile(cands, k_in)
                    s = score(trial)
                    b = int(np.argmax(s))
                    if s[b] <= best:
                        break
                    best, x = float(s[b]), trial[b:b + 1].copy()
                found.append(x[0])
                notes.append({"layer": op.name, "channel": int(c), "extreme": "max" if sign > 0 else "min",
                              "target": int(target), "reached": int(sign * best),
                              "hit": bool(best >= sign * target)})
    if not found:
        return np.zeros((0, k_in), dtype=np.int64), notes
    return np.asarray(found, dtype=np.int64), notes


def _window_origins(size: int, kernel: int, stride: int, pad: int, out: int) -> list[int]:
    """Input offsets of non-overlapping windows that lie wholly inside the image."""
    picked, nxt = [], 0
    for o in range(out):
        r = o * stride - pad
        if r >= nxt and r + kernel <= size:
            picked.append(r)
            nxt = r + kernel
    return picked


def conv_extremes(op: Conv, rng: np.random.Generator, channels: list[int]) -> tuple[np.ndarray, list[str]]:
    """Feature maps that drive a first-layer conv's accumulators to their exact extremes: the
    patch x = x_max where w > 0, x_min where w < 0 (the reverse for the minimum) placed on
    non-overlapping window positions, one (channel, extreme) per window, the rest random; an
    output pixel whose window is such a patch takes the exact extreme."""
    h, w, c = op.in_shape
    (kh, kw), (sh, sw), (pt, pl, _, _) = op.kernel, op.stride, op.pads
    ho, wo, _ = op.out_shape
    x_min, x_max = _extremes(op.in_type)
    dense = _dense(op).reshape(op.out_channels, kh, kw, c)
    slots = [(r, q) for r in _window_origins(h, kh, sh, pt, ho) for q in _window_origins(w, kw, sw, pl, wo)]
    targets = [(ch, sign) for ch in channels for sign in (+1, -1)]
    if not slots or not targets:
        return np.zeros((0, h, w, c), dtype=np.int64), []
    xs, labels = [], []
    for k in range(0, len(targets), len(slots)):
        x = random_values(op.in_type, (h, w, c), rng)
        names = []
        for (r, q), (ch, sign) in zip(slots, targets[k:k + len(slots)]):
            wt = dense[ch]
            hi, lo = (x_max, x_min) if sign > 0 else (x_min, x_max)
            x[r:r + kh, q:q + kw, :] = np.where(wt > 0, hi, np.where(wt < 0, lo, x[r:r + kh, q:q + kw, :]))
            names.append(f"{op.name}[{ch}] {'max' if sign > 0 else 'min'}")
        xs.append(x)
        labels.append(", ".join(names))
    return np.asarray(xs, dtype=np.int64), labels


def input_shape(graph: Graph) -> tuple[int, ...]:
    """Per sample: (K,) for a vector input, (H, W, C) for a feature map."""
    shape = tuple(graph.tensors[graph.head.outputs[0]].shape)
    if isinstance(graph.core[0], MatVec) or len(shape) != 3:
        return (int(np.prod(shape)),)
    return shape


def make_vectors(graph: Graph, n_random: int, seed: int, *, adversarial: bool = True,
                 later_layers: bool = True, adversarial_limit: int | None = None
                 ) -> tuple[np.ndarray, list[str], list[dict]]:
    """Random plus adversarial integer inputs [N, *input_shape] and a label per vector.

    Adversarial: both accumulator extremes of every first-layer channel (or of the
    `adversarial_limit` channels with the widest range): one vector per extreme for a MatVec,
    several per feature map for a conv (conv_extremes). Then, for fully connected models,
    best-effort extremes of later layers (later_layer_extremes; not for conv models).
    """
    rng = np.random.default_rng(seed)
    first = graph.core[0]
    shape = input_shape(graph)
    xs = [random_values(input_dtype(graph), (n_random, *shape), rng)]
    labels = ["random"] * n_random
    notes: list[dict] = []
    if adversarial and isinstance(first, MatVec):
        chans = extreme_channels(first, adversarial_limit)
        xs.append(first_layer_extremes(first, rng, chans))
        labels += [f"{first.name}[{c}] {'max' if k == 0 else 'min'}" for c in chans for k in range(2)]
        if later_layers and all(isinstance(op, (MatVec, Threshold)) for op in graph.core):
            later, notes = later_layer_extremes(graph, rng)
            xs.append(later)
            labels += [f"{n['layer']}[{n['channel']}] {n['extreme']}" for n in notes]
    elif adversarial and isinstance(first, Conv):
        chans = extreme_channels(first, adversarial_limit)
        ext, ext_labels = conv_extremes(first, rng, chans)
        xs.append(ext)
        labels += ext_labels
    return np.concatenate(xs).astype(np.int64), labels, notes


def pack_vector_beats(values: np.ndarray, dtype, per_beat: int) -> list[list[int]]:
    """[N, E] values -> per vector, a list of payload integers (element 0 in the low bits)."""
    wire = to_wire(np.asarray(values), dtype).reshape(len(values), -1)
    return [[pack_ints(row[b:b + per_beat], dtype.wire_bits) for b in range(0, len(row), per_beat)]
            for row in wire]


def _type_out(op):
    if isinstance(op, Dot):
        return op.acc_type
    if isinstance(op, MaxPool):
        return op.dtype
    if isinstance(op, ODEBlock):
        return op.state_type or op.body[-1].out_type
    return op.out_type  # Threshold, GlobalSumPool, Add


def _type_in(op):
    if isinstance(op, MaxPool):
        return op.dtype
    if isinstance(op, ODEBlock):
        return op.state_type or op.body[0].in_type
    if isinstance(op, Add):
        return op.a_type
    return op.in_type  # MatVec, Conv, Threshold, GlobalSumPool


def output_dtype(graph: Graph):
    return _type_out(graph.core[-1])


def input_dtype(graph: Graph):
    return _type_in(graph.core[0])
