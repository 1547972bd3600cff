"""`hwgen check`: hwgen's golden model against qonnx's execute_onnx, every difference classified.

qonnx's reference computes in float32 (products and sums of `q * scale` values, then the float ops
and the quantizers); hwgen computes the integer accumulators exactly. Where the reference's
pre-quantizer value lies within its float32 error of a quantizer step boundary (a rounding tie,
or an exact 0 before a sign), the two can pick neighbouring levels. Those are not bugs: exact
integers are the hardware's truth. `check` tells them apart from real mismatches.

Per quantized tensor that both compute (the input quantizer, every activation quantizer, max
pools, residual adds) and for the model output, every element is one of:

  exact       golden == reference (end to end, from the float input)
  tie         they differ and, fed with the reference's own input integers, the layer lands within
              the float32 error bound of a step boundary: the reference's pre-quantizer value and
              a boundary both lie in [f(v - B), f(v + B)], where v = acc * scale is hwgen's
              accumulator value, f the (monotone) float ops up to the quantizer and
              B = 2 (n + 6) 2^-24 (sum_i |x_i w_i| + |bias|) bounds the float32 error of an
              n-term dot product (the reference's sum in any order, rounded inputs and scales);
              B = 0 where the reference is exact (power-of-two scales, a bias on the grid, sums
              below 2^24 units), so there a difference on a boundary is a mismatch
  float       (the float output only) differs by no more than the output moves when the last
              accumulators move by B: the reference's float rounding in the last layer
  downstream  differs only because an earlier tensor of the same sample differs (a tie there):
              fed with the reference's integers, this layer agrees
  mismatch    fed with the reference's own integers, the layer still differs beyond the bound:
              a bug in hwgen (exit code 1)

"Fed with the reference's integers": every layer is also run on the integers the reference has
at its input (teacher forcing), so each tensor is judged on its own, and a tie in one layer
does not hide or fake a mismatch in a later one.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np
import onnx

from .errors import HwgenError
from .ir import Add, Dot, FloatActivation, Graph, Head, MaxPool, Tail, Threshold
from .ir.types import BipolarType

U32 = 2.0 ** -24  # float32 unit roundoff
CATEGORIES = ("exact", "tie", "float", "downstream", "mismatch")
QUANTIZED = (Head, Threshold, MaxPool, Add)  # ops whose output is a quantized tensor of the reference
BOUND = ("B = 2 (n + 6) 2^-24 (sum |x w| + |bias|) per accumulator of n terms (0 where the reference is "
         "exact); tie: a quantizer step within f(acc * scale +- B); float: the output moves that much for "
         "accumulators +- B")


@dataclass
class TensorCheck:
    tensor: str  # name in the ONNX graph
    op: str  # kind of the hwgen op that computes it
    node: str  # its name
    kind: str  # "quantizer" or "output"
    elements: int = 0
    counts: dict = field(default_factory=lambda: {c: 0 for c in CATEGORIES})
    examples: list = field(default_factory=list)  # a few mismatches: sample, index, golden, reference

    def to_dict(self) -> dict:
        return {"tensor": self.tensor, "op": self.op, "node": self.node, "kind": self.kind, "elements": self.elements,
                **self.counts, "mismatch_examples": self.examples}


@dataclass
class CheckResult:
    model: str
    vectors: int
    seed: int | None
    inputs: str  # how the inputs were made
    tensors: list[TensorCheck]

    @property
    def mismatches(self) -> int:
        return sum(t.counts["mismatch"] for t in self.tensors)

    @property
    def ok(self) -> bool:
        return self.mismatches == 0

    def totals(self) -> dict:
        return {c: sum(t.counts[c] for t in self.tensors) for c in CATEGORIES}

    def to_dict(self) -> dict:
        return {"model": self.model, "vectors": self.vectors, "seed": self.seed, "inputs": self.inputs,
                "ok": self.ok, "totals": self.totals(), "bound": BOUND, "tensors": [t.to_dict() for t in self.tensors]}

    def table(self) -> str:
        from .summary import format_table

        rows = [{"tensor": t.tensor, "op": t.op if t.node == t.op else f"{t.op} {t.node}", "kind": t.kind,
                 "elements": t.elements, **t.counts} for t in self.tensors]
        cols = [("tensor", "tensor"), ("op", "op"), ("kind", "kind"), ("elements", "elements")] + \
            [(c, c) for c in CATEGORIES]
        return format_table(rows, cols)

    def summary(self) -> str:
        tot = self.totals()
        differ = sum(v for k, v in tot.items() if k != "exact")
        if self.ok:
            if not differ:
                return "0 mismatches: golden == reference on every element"
            return (f"0 mismatches: {differ} differing element(s), all float32 effects of the reference "
                    f"({tot['tie']} tie, {tot['float']} float, {tot['downstream']} downstream)")
        bad = [t.tensor for t in self.tensors if t.counts["mismatch"]]
        return (f"{self.mismatches} mismatch(es) in {', '.join(bad)}: differences beyond the reference's float32 "
                "error bound; this is a bug in hwgen, please report it with the model")


@dataclass
class Prepared:
    """The graph `check` runs (imported and lowered, no kernel banks or ODE blocks: the same golden
    semantics with the plain ops) and each Threshold's float map before streamlining."""

    graph: Graph
    activations: dict  # Threshold name -> FloatActivation
    path: str


def prepare(path: str, input_format=None) -> Prepared:
    from .compiler import CompileOptions, lower
    from .frontend import import_onnx

    graph = import_onnx(path, input_format)
    activations = {op.name: op for op in graph.ops if isinstance(op, FloatActivation)}
    graph = lower(graph, CompileOptions(input_format=input_format, kernel_bank="off", ode_blocks=False))
    return Prepared(graph, activations, path)


# --- inputs ---------------------------------------------------------------------------------------
def random_inputs(wrapper, graph: Graph, n: int, seed: int) -> tuple[np.ndarray, str]:
    """n random inputs as the tests and benches make them: +-1 for a BIPOLAR-annotated input,
    integers of an integer annotation, values on the input grid when hwgen quantizes the input
    (--input-bits/--input-scale) without pre-processing, uniform [0, 1) floats otherwise.
    `wrapper` is the cleaned model (hwgen.frontend.load_qonnx)."""
    rng = np.random.default_rng(seed)
    head = graph.head
    shape = (n, *head.input_shape)
    dt = wrapper.get_tensor_datatype(graph.input)
    if dt.name == "BIPOLAR":
        return rng.choice(np.array([-1.0, 1.0], np.float32), size=shape), "random +-1 (BIPOLAR input)"
    if dt.is_integer() and dt.bitwidth() <= 16:
        return (rng.integers(int(dt.min()), int(dt.max()) + 1, size=shape).astype(np.float32),
                f"random {dt.name} integers")
    if head.segment is None and not any(nd.output[0] == head.outputs[0] and nd.op_type in ("Quant", "BipolarQuant")
                                        for nd in wrapper.graph.node):
        q = head.quantizer
        t = q.out_type
        ints = rng.choice(np.array([-1, 1]), size=shape) if isinstance(t, BipolarType) else \
            rng.integers(t.min, t.max + 1, size=shape)
        return q.to_float(ints), f"random values on the input grid ({q.describe()})"
    return rng.random(shape, dtype=np.float32), "uniform [0, 1)"


# --- layouts --------------------------------------------------------------------------------------
def _to_golden(r: np.ndarray, like: np.ndarray) -> np.ndarray | None:
    """A reference tensor (NCHW, any flattening) in the golden tensor's layout (NHWC), or None."""
    r = np.asarray(r)
    if r.size != like.size:
        return None
    if like.ndim == 4:  # golden [B, H, W, C]; the reference holds [B, C, H, W] (maybe flattened)
        b, h, w, c = like.shape
        return r.reshape(b, c, h, w).transpose(0, 2, 3, 1)
    return r.reshape(like.shape)


def _ints(r: np.ndarray, scale) -> np.ndarray | None:
    """The integers a reference tensor holds as q * scale (exactly), or None."""
    s = np.float32(scale)
    q = np.round(r.astype(np.float64) / np.float64(s))
    if not np.array_equal(q.astype(np.float32) * s, r.astype(np.float32)):
        return None
    return q.astype(np.int64)


# --- float error bounds ---------------------------------------------------------------------------
def _first_bias(segment) -> np.ndarray | None:
    """|c| of a leading `Add(input, c)` / `Sub(input, c)` with a constant c (a bias)."""
    if segment is None:
        return None
    model = onnx.load_from_string(segment.model_bytes)
    nodes = list(model.graph.node)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    if nodes and nodes[0].op_type in ("Add", "Sub") and nodes[0].input[0] == segment.input_name \
            and nodes[0].input[1] in inits:
        return np.abs(inits[nodes[0].input[1]].astype(np.float64)).reshape(-1)
    return None


def _pow2(v) -> np.ndarray:
    m, _ = np.frexp(np.abs(np.asarray(v, np.float64)))
    return m == 0.5


def _dot_bound(graph: Graph, src, values: dict, scale, segment) -> np.ndarray | None:
    """B per element of src's output (golden layout): how far the reference's float32 n-term sum
    (plus a leading bias) can be from hwgen's acc * scale (+ bias), from n and the magnitudes of
    the terms: B = 2 (n + 6) u (sum_i |x_i w_i| + |bias|), u = 2^-24. B is 0 where the
    reference computes exactly: power-of-two input and weight scales, a bias on the accumulator
    grid (or none) and sum |q_x q_w| + |bias / scale| < 2^24. A layer after an average pool adds
    the pool's window terms (the reference's means are float sums too: float_sum_terms)."""
    from .lowering import lowering_of

    x = values[src.inputs[0]]
    if isinstance(src, Dot):
        mag = dataclasses.replace(src, weights=np.abs(src.weights), acc_type=None)
        from .golden import run_op

        m_int = run_op(mag, np.abs(x.astype(np.int64)))
        n = src.in_features
        before = graph.producer(src.inputs[0])
        exact = _pow2(src.input_scale) & _pow2(src.weight_scale)  # [C] (input scales per tensor or per output)
        n += (lowering_of(before).float_sum_terms(before) or 0) if before is not None else 0
    elif lowering_of(src).float_sum_terms(src):  # a pool's mean: a float32 sum in the reference
        from .golden import run_op

        m_int = run_op(src, np.abs(x.astype(np.int64)))
        n = lowering_of(src).float_sum_terms(src)
        exact = _pow2(np.broadcast_to(np.asarray(scale, np.float64), (m_int.shape[-1],)))
    else:
        return None
    scale = np.broadcast_to(np.abs(np.asarray(scale, np.float64)), (m_int.shape[-1],))
    m = m_int.astype(np.float64) * scale
    units = m_int.astype(np.float64)
    bias = _first_bias(segment)
    if bias is not None:
        bias = np.broadcast_to(bias if bias.size in (1, m.shape[-1]) else np.abs(bias).max(), (m.shape[-1],))
        m = m + bias
        on_grid = np.mod(bias / scale, 1.0) == 0
        exact = exact & on_grid
        units = units + bias / scale
    bound = 2.0 * (n + 6) * U32 * m
    return np.where(exact & (units < 2.0 ** 24), 0.0, bound)


def _segment_on(fa: FloatActivation, v: np.ndarray) -> np.ndarray:
    """The FloatActivation's float ops on float values v [..., C] (no scaling)."""
    v = np.asarray(v, np.float32)
    if fa.segment is None:
        return v
    if not fa.segment_shape:
        return fa.segment.run(v)
    return fa.segment.run(v.reshape(-1, *fa.segment_shape)).reshape(v.shape)


# --- the check ------------------------------------------------------------------------------------
class _Checker:
    def __init__(self, prepared: Prepared, wrapper, x: np.ndarray):
        from .frontend.reference import run_reference

        self.p, self.graph, self.x = prepared, prepared.graph, x
        try:
            self.ref = run_reference(prepared.path, x, full_context=True)
        except Exception as exc:  # the reference's own limits (onnxruntime versions, custom ops)
            msg = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())[:200]
            raise HwgenError(f"qonnx's execute_onnx cannot run this model ({type(exc).__name__}: {msg}); "
                             "check needs the reference to run") from None
        self.quant_input = {n.name: n.input[0] for n in wrapper.graph.node if n.op_type in ("Quant", "BipolarQuant")}

    def run(self) -> list[TensorCheck]:
        from .golden import execute, run_op
        from .lowering import lowering_of

        gold = execute(self.graph, self.x)
        local = {self.graph.input: self.x}  # each op fed with the reference's integers where known
        scales, results = {}, []
        for op in self.graph.ops:
            low = lowering_of(op)
            s = low.reference_scale(op, scales)
            name = op.outputs[0]
            if s is not None:
                scales[name] = s
            out = run_op(op, *[local[t] for t in op.inputs])
            local[name] = out
            ref_name = name.removesuffix("__int")
            if isinstance(op, Tail):
                results.append(self.output(op, out, gold[name], local))
                continue
            if not isinstance(op, QUANTIZED) or ref_name not in self.ref or s is None:
                continue
            r = _to_golden(self.ref[ref_name], out)
            r_int = None if r is None else _ints(r, s)
            if r_int is None:
                if isinstance(op, Head):
                    raise self.off_grid(op)
                continue
            results.append(self.quantized(op, ref_name, out, gold[name], r_int, local))
            local[name] = r_int  # teacher forcing: the next layers see the reference's integers
        return results

    def off_grid(self, op: Head) -> HwgenError:
        q = op.quantizer
        return HwgenError(
            f"the model has no input quantizer: hwgen quantizes its input as {q.describe()} (--input-bits/"
            "--input-scale) but the reference takes the float input as it is, and these inputs are not on "
            f"that grid; give inputs that are multiples of {q.scale:g} within the range (or leave out "
            "--input and check generates them)")

    def _count(self, tc: TensorCheck, category: np.ndarray, golden, reference) -> TensorCheck:
        flat = category.reshape(len(category), -1)
        tc.elements = int(flat.size)
        for i, c in enumerate(CATEGORIES):
            tc.counts[c] = int((flat == i).sum())
        bad = np.argwhere(flat == CATEGORIES.index("mismatch"))[:5]
        g, r = np.reshape(golden, flat.shape), np.reshape(reference, flat.shape)
        tc.examples = [{"sample": int(b), "index": int(j), "golden": float(g[b, j]), "reference": float(r[b, j])}
                       for b, j in bad]
        return tc

    def quantized(self, op, ref_name, local_out, gold_out, r_int, local) -> TensorCheck:
        differs = local_out != r_int
        tie = np.zeros_like(differs)
        if differs.any() and isinstance(op, Threshold) and op.name in self.p.activations:
            tie = self.ties(op, local_out, r_int, local) & differs
        e2e = gold_out != r_int
        cat = self.categorize(differs, tie, e2e, CATEGORIES.index("tie"))
        return self._count(TensorCheck(ref_name, op.kind, op.name, "quantizer"), cat, gold_out, r_int)

    def categorize(self, differs, explained, e2e, explained_code) -> np.ndarray:
        """mismatch (fed the reference's inputs, still differs, unexplained) > exact (end to end) >
        tie/float (explained) > downstream."""
        cat = np.full(differs.shape, CATEGORIES.index("downstream"), np.int8)
        cat[explained] = explained_code
        cat[~e2e] = CATEGORIES.index("exact")
        cat[differs & ~explained] = CATEGORIES.index("mismatch")
        return cat

    def ties(self, op: Threshold, local_out, r_int, local) -> np.ndarray:
        """Elements whose reference level and golden level both lie in the levels of
        [f(v - B), f(v + B)], with the reference's pre-quantizer value in that interval."""
        fa = self.p.activations[op.name]
        src = self.graph.producer(op.inputs[0])
        acc = local[op.inputs[0]]
        v = acc.astype(np.float32) * np.asarray(fa.scale, np.float32)
        bound = _dot_bound(self.graph, src, local, fa.scale, fa.segment)
        if bound is None:
            return np.zeros(local_out.shape, bool)
        lo = _segment_on(fa, (v - bound).astype(np.float32))
        hi = _segment_on(fa, (v + bound).astype(np.float32))
        lo, hi = np.minimum(lo, hi), np.maximum(lo, hi)
        lv, hv = fa.quantizer.to_int(lo), fa.quantizer.to_int(hi)
        lmin, lmax = np.minimum(lv, hv), np.maximum(lv, hv)
        ok = (lmin <= local_out) & (local_out <= lmax) & (lmin <= r_int) & (r_int <= lmax) & (lmin < lmax)
        pre = self.quant_input.get(op.name)
        if pre is not None and pre in self.ref:
            r_pre = _to_golden(self.ref[pre], local_out)
            if r_pre is not None:
                ok &= (lo <= r_pre) & (r_pre <= hi)
        return ok

    def output(self, op: Tail, local_out, gold_out, local) -> TensorCheck:
        ref = np.asarray(self.ref[op.outputs[0]]).reshape(local_out.shape)
        differs = local_out != ref
        tol = np.zeros(local_out.shape, np.float64)
        src = self.graph.producer(op.inputs[0])
        bound = _dot_bound(self.graph, src, local, op.scale, op.segment) if differs.any() else None
        if bound is not None:
            tol = self.tail_spread(op, local[op.inputs[0]], bound)
        explained = differs & (np.abs(local_out.astype(np.float64) - ref) <= tol)
        e2e = gold_out != ref
        cat = self.categorize(differs, explained, e2e, CATEGORIES.index("float"))
        return self._count(TensorCheck(op.outputs[0], op.kind, op.name, "output"), cat, gold_out, ref)

    @staticmethod
    def tail_spread(op: Tail, acc, bound) -> np.ndarray:
        """How far the output moves when the last accumulators move by up to B: the largest change
        over +B, -B and a few random sign patterns, times 2, plus 4 ulp of the output."""
        v = acc.astype(np.float32) * np.asarray(op.scale, np.float32)

        def tail(u):
            u = np.asarray(u, np.float32)
            if op.nchw:
                u = u.transpose(0, 3, 1, 2)
            return u if op.segment is None else op.segment.run(u)

        y0 = tail(v).astype(np.float64)
        rng = np.random.default_rng(0)
        spread = np.zeros_like(y0)
        signs = [np.ones_like(bound), -np.ones_like(bound)] + \
            [rng.choice([-1.0, 1.0], size=bound.shape) for _ in range(6)]
        for sgn in signs:
            spread = np.maximum(spread, np.abs(tail(v + sgn * bound).astype(np.float64) - y0))
        return 2 * spread + 4 * np.spacing(np.abs(y0).astype(np.float32)).astype(np.float64)


def _merge(total: list[TensorCheck] | None, part: list[TensorCheck], offset: int) -> list[TensorCheck]:
    """Per tensor sums of two chunks' checks; mismatch examples keep their sample numbers in the whole
    input (`offset`: the first sample of `part`) and stay a few."""
    for t in part:
        t.examples = [{**e, "sample": e["sample"] + offset} for e in t.examples]
    if total is None:
        return part
    for a, b in zip(total, part, strict=True):
        a.elements += b.elements
        a.counts = {c: a.counts[c] + b.counts[c] for c in CATEGORIES}
        a.examples = (a.examples + b.examples)[:5]
    return total


def check_model(model, x=None, *, vectors: int = 100, seed: int = 0, input_format=None,
                prepared: Prepared | None = None, chunk: int | None = None, progress=None) -> CheckResult:
    """Golden model vs qonnx execute_onnx on x (or `vectors` random inputs from `seed`), every
    differing element classified (see the module docstring). With `chunk`, the reference runs on
    `chunk` inputs at a time (it keeps every intermediate tensor of the whole batch in memory) and
    `progress(done, total, result so far)` is called after each chunk; the result is the same."""
    from .api import check_inputs
    from .compiler import model_path
    from .frontend.load import load_qonnx

    path, cleanup = model_path(model)
    try:
        p = prepared or prepare(path, input_format)
        p = dataclasses.replace(p, path=path)
        wrapper = load_qonnx(path)
        if x is None:
            if vectors < 1:
                raise HwgenError("--vectors must be at least 1")
            x, how = random_inputs(wrapper, p.graph, vectors, seed)
        else:
            x, how, seed = check_inputs(x, p.graph.head.input_shape), "given", None
        name = model if isinstance(model, str) else getattr(model, "name", None) or p.graph.name
        step = len(x) if chunk is None else chunk
        if step < 1:
            raise HwgenError("the check's chunk must be at least 1 input")
        tensors = None
        for i in range(0, len(x), step):
            tensors = _merge(tensors, _Checker(p, wrapper, x[i:i + step]).run(), i)
            if progress is not None:
                done = min(i + step, len(x))
                progress(done, len(x), CheckResult(model=str(name), vectors=done, seed=seed, inputs=how,
                                                   tensors=tensors))
    finally:
        cleanup()
    return CheckResult(model=str(name), vectors=len(x), seed=seed, inputs=how, tensors=tensors)


def result_json(result: CheckResult) -> str:
    return json.dumps(result.to_dict(), indent=2) + "\n"
