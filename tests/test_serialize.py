"""hwgen.ir.serialize: graph.json + graph.npz round trips every model bit-exactly, is
deterministic, never unpickles, and turns every damaged file into a one-line HwgenError."""
import dataclasses
import functools
import glob
import json
import math
import os
import pickle
import typing
import zipfile

import numpy as np
import pytest
from conftest import FIXTURES, OWN_MODELS

from hwgen.errors import HwgenError
from hwgen.golden import run, run_core
from hwgen.ir import Graph, IntType, Op, ops as ir_ops
from hwgen.ir.serialize import (GRAPH_SCHEMA_VERSION, REGISTRY, graph_from_files, graph_to_files, load_graph,
                                npz_bytes, save_graph)
from hwgen.passes.fold import fold_graph
from sim.vectors import input_dtype, random_values

try:
    from hwgen.compiler import compile_model
except ImportError:  # before the compiler driver moved out of hwgen.passes
    from hwgen.passes import compile_model

MODELS = sorted(glob.glob(os.path.join(OWN_MODELS, "*.onnx")) + glob.glob(os.path.join(FIXTURES, "*.onnx")))
NAMES = [os.path.basename(p)[: -len(".onnx")] for p in MODELS]
# generate_verilog takes about 1-2 s for the MLPs and the small CNN (twice per comparison); the other
# conv / ODE / resnet / kernel-bank models take 3 s to minutes each and compare Verilog only under -m slow
# (golden outputs and a deep field-by-field comparison cover every model in the default run).
FAST_VERILOG = {"digits_cnn_w1a1", "digits_mlp_w1a1", "digits_mlp_w2a2", "digits_mlp_w4a4", "digits_mlp_w4a4_a2q",
                "digits_mlp_w4a4_a2qplus", "jet_small_w4a6", "jet_w4a6", "TFC_1W1A", "TFC_2W2A",
                "unsw_nb15-mlp-w2a2"}
SMALL = "digits_odenet_n2"  # has an ODE body, Add, Conv, a FloatSegment: the damage tests' subject


def test_model_list():
    assert len(MODELS) == 21 and FAST_VERILOG <= set(NAMES) and SMALL in NAMES


@functools.lru_cache(maxsize=None)
def _compiled(name: str) -> Graph:
    return fold_graph(compile_model(MODELS[NAMES.index(name)]), ("auto", 256))


def _round_trip(graph: Graph, directory) -> Graph:
    assert save_graph(graph, directory) == ["graph.json", "graph.npz"]
    return load_graph(directory)


def _core_inputs(graph: Graph, n: int = 8, seed: int = 0) -> np.ndarray:
    shape = graph.tensors[graph.head.outputs[0]].shape
    return random_values(input_dtype(graph), (n, *shape), np.random.default_rng(seed))


def _float_inputs(graph: Graph, n: int = 8, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, *graph.head.input_shape), dtype=np.float32)


def assert_same(a, b, where="graph"):
    """Deep equality that also checks types: tuple vs list, float vs int, array dtype and shape."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.compare:
                assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys (or their order) differ"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


# -- round trips ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_golden(name, tmp_path):
    g = _compiled(name)
    h = _round_trip(g, tmp_path)
    assert_same(g, h)
    x = _core_inputs(g)
    want, got = run_core(g, x), run_core(h, x)
    assert list(got) == list(want)
    for t in want:
        assert got[t].dtype == want[t].dtype and got[t].shape == want[t].shape, t
        assert np.array_equal(got[t], want[t]), t
    xf = _float_inputs(g)  # the float path: Head / Tail segments rebuilt from model_bytes
    yf = run(h, xf)
    assert yf.dtype == np.float32 and np.array_equal(yf, run(g, xf))
    # the written form is a fixed point: saving the loaded graph gives the same bytes
    save_graph(h, tmp_path / "again")
    for f in ("graph.json", "graph.npz"):
        assert (tmp_path / "again" / f).read_bytes() == (tmp_path / f).read_bytes(), f


def _verilog_case(name):
    marks = () if name in FAST_VERILOG else (pytest.mark.slow,)
    return pytest.param(name, marks=marks, id=name)


@pytest.mark.parametrize("name", [_verilog_case(n) for n in NAMES])
def test_round_trip_verilog(name, tmp_path):
    from hwgen.rtl.build import generate_verilog

    g = _compiled(name)
    h = _round_trip(g, tmp_path)
    assert generate_verilog(h)[0] == generate_verilog(g)[0]


@pytest.mark.parametrize("name", ["digits_mlp_w2a2", "digits_cnn_w4a4", "TFC_1W1A"])
def test_round_trip_before_streamlining(name, tmp_path):
    """FloatActivation (scale, FloatSegment, onnx_nodes, segment_shape) only exists before lowering."""
    from hwgen.frontend import import_onnx

    g = import_onnx(MODELS[NAMES.index(name)])
    assert any(isinstance(op, ir_ops.FloatActivation) for op in g.ops)
    h = _round_trip(g, tmp_path)
    assert_same(g, h)
    x = _float_inputs(g, seed=2)
    assert np.array_equal(run(h, x), run(g, x))


def test_awkward_values(tmp_path):
    """Names that clash once made file-safe, numpy scalars, non-finite floats, shared and
    Fortran-ordered arrays, empty arrays, non-ASCII notes."""
    g = fold_graph(compile_model(MODELS[NAMES.index("digits_mlp_w2a2")]), ("auto", 256))
    mv0, th0, mv1 = g.ops[1], g.ops[2], g.ops[3]
    mv0.name, mv1.name = "/layer/0", "/layer 0"  # both become "_layer_0" in an npz key
    th0.out_scale = np.float32(0.375)
    mv0.acc_bounds = {"exact": np.int64(9), "z-last": 3, "a": 1}
    mv0.input_scale = float("inf")
    th0.thresholds = np.asfortranarray(th0.thresholds)
    mv1.weight_scale = g.tail.scale  # one array object in two places
    g.notes.append("h \u2192 h + dt\u00b7f(h), tab\there")
    th0.out_base = -(2**70)  # beyond int64: JSON integers are unbounded
    mv0.weight_scale = np.zeros((0, 3), np.float32)
    doc, arrays = graph_to_files(g)
    assert doc["graph"]["ops"][1]["input_scale"] == {"__float__": "inf"}
    assert doc["graph"]["ops"][1]["weights"] == {"__array__": "_layer_0.weights"}
    assert doc["graph"]["ops"][3]["weights"] == {"__array__": "_layer_0.weights-2"}
    assert doc["graph"]["ops"][3]["weight_scale"] == doc["graph"]["ops"][-1]["scale"]
    h = _round_trip(g, tmp_path)
    hm0, hth0, hm1 = h.ops[1], h.ops[2], h.ops[3]
    assert (hm0.name, hm1.name) == ("/layer/0", "/layer 0")
    assert type(hth0.out_scale) is float and hth0.out_scale == 0.375
    assert hm0.acc_bounds == {"exact": 9, "z-last": 3, "a": 1} and type(hm0.acc_bounds["exact"]) is int
    assert list(hm0.acc_bounds) == ["exact", "z-last", "a"]
    assert hm0.input_scale == math.inf and hth0.out_base == -(2**70)
    assert np.array_equal(hth0.thresholds, th0.thresholds) and hth0.thresholds.dtype == np.int64
    assert hm1.weight_scale is h.tail.scale  # stored once, shared again
    assert hm0.weight_scale.shape == (0, 3) and hm0.weight_scale.dtype == np.float32
    assert h.notes[-1] == g.notes[-1]
    assert (tmp_path / "graph.json").read_bytes().isascii()
    assert h.head.quantizer == g.head.quantizer  # a frozen dataclass inside Head
    assert isinstance(h.head.input_shape, tuple) and isinstance(h.tensors[h.input].shape, tuple)
    assert isinstance(h.ops[1].inputs, list)


def test_types_and_bipolar(tmp_path):
    g = _compiled("TFC_1W1A")
    h = _round_trip(g, tmp_path)
    from hwgen.ir.types import Bipolar

    assert h.ops[1].in_type is Bipolar  # the singleton, not a copy (code may test `is Bipolar`)
    assert h.ops[1].acc_type == g.ops[1].acc_type and type(h.ops[1].acc_type) is IntType
    th = h.ops[2]
    assert th.decreasing.dtype == np.bool_ and th.thresholds.dtype == np.int64
    assert h.ops[1].weight_scale.dtype == np.float32 and h.tail.scale.dtype == np.float32


def test_deterministic_json(tmp_path):
    g = _compiled(SMALL)
    save_graph(g, tmp_path / "a")
    save_graph(_compiled(SMALL), tmp_path / "b")
    fresh = fold_graph(compile_model(MODELS[NAMES.index(SMALL)]), ("auto", 256))
    save_graph(fresh, tmp_path / "c")
    for f in ("graph.json", "graph.npz"):
        a = (tmp_path / "a" / f).read_bytes()
        assert a == (tmp_path / "b" / f).read_bytes() == (tmp_path / "c" / f).read_bytes(), f
    doc = json.loads((tmp_path / "a" / "graph.json").read_text())
    assert doc["format"] == "hwgen-graph" and doc["schema_version"] == GRAPH_SCHEMA_VERSION == 1
    assert graph_to_files(g)[0] == doc  # pure: the same document, nothing written


def test_session_cache_not_saved(tmp_path):
    g = _compiled("TFC_1W1A")
    run(g, _float_inputs(g, 2))  # builds the onnxruntime session of every segment
    seg = g.head.segment
    assert seg is not None and seg._session is not None
    h = _round_trip(g, tmp_path)
    assert h.head.segment._session is None and h.head.segment.model_bytes == seg.model_bytes
    text = (tmp_path / "graph.json").read_text()
    assert "_session" not in text and "InferenceSession" not in text


def test_registry_covers_the_ir():
    """Every concrete op class and every dataclass a registered field can hold is registered."""
    concrete = {c for c in vars(ir_ops).values()
                if isinstance(c, type) and issubclass(c, Op) and c not in (Op, ir_ops.Dot)}
    assert {c.__name__ for c in concrete} <= set(REGISTRY)
    assert {"Graph", "TensorInfo", "IntType", "BipolarType", "Quantizer", "FloatSegment"} <= set(REGISTRY)

    def classes(hint):
        if isinstance(hint, type):
            yield hint
        for arg in typing.get_args(hint):
            yield from classes(arg)

    for cls in REGISTRY.values():
        assert REGISTRY[cls.__name__] is cls
        for hint in typing.get_type_hints(cls).values():
            for c in classes(hint):
                if dataclasses.is_dataclass(c) and c not in (Op, ir_ops.Dot):
                    assert REGISTRY.get(c.__name__) is c, f"{cls.__name__} can hold {c.__name__}"


def test_unregistered_class_refused():
    @dataclasses.dataclass
    class MatVec:  # same name as a registered class, a different class
        name: str = "x"

    g = _compiled("digits_mlp_w1a1")
    h = dataclasses.replace(g, ops=[*g.ops[:1], MatVec(), *g.ops[1:]])
    with pytest.raises(HwgenError, match=r"graph\.ops\[1\]: class .*MatVec is not in the serialisation registry"):
        graph_to_files(h)
    with pytest.raises(HwgenError, match=r"graph\.notes\[0\]: values of type builtins\.set"):
        graph_to_files(dataclasses.replace(g, notes=[{1}]))


# -- no code runs when loading ------------------------------------------------------------------------
def test_no_pickle(tmp_path, monkeypatch):
    g = _compiled(SMALL)
    save_graph(g, tmp_path)
    text = (tmp_path / "graph.json").read_text()
    assert text.isascii() and "pickle" not in text and "__reduce" not in text

    tags = {"__tuple__", "__dict__", "__array__", "__bytes__", "__float__"}

    def check(v):  # every JSON object is a registered kind or a known tag; arrays are only referenced
        if isinstance(v, dict):
            if "__kind__" in v:
                assert v["__kind__"] in REGISTRY
            else:
                assert len(v) == 1 and set(v) <= tags, sorted(v)
            values = v.get("__dict__", v).values()
            for x in values:
                check(x)
        elif isinstance(v, list):
            for x in v:
                check(x)
        else:
            assert v is None or isinstance(v, (bool, int, float, str))
            assert not (isinstance(v, str) and len(v) > 200), "no blobs in the JSON"

    doc = json.loads(text)
    assert set(doc) == {"format", "schema_version", "graph"}
    check(doc["graph"])
    with zipfile.ZipFile(tmp_path / "graph.npz") as zf:
        for info in zf.infolist():
            assert info.filename.endswith(".npy") and zf.read(info)[:6] == b"\x93NUMPY"
    with np.load(tmp_path / "graph.npz", allow_pickle=False) as z:
        assert all(z[k].dtype.kind in "biuf" for k in z.files)
        blobs = [k for k in z.files if k.endswith(".segment.model_bytes")]
        assert blobs and all(z[k].dtype == np.uint8 and z[k].ndim == 1 for k in blobs)

    def forbidden(*a, **k):
        raise AssertionError("loading a graph must not unpickle or eval")

    for mod, attr in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"),
                      (__import__("builtins"), "eval"), (__import__("builtins"), "exec")):
        monkeypatch.setattr(mod, attr, forbidden)
    h = load_graph(tmp_path)
    monkeypatch.undo()
    assert_same(g, h)


# -- damaged files ------------------------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    save_graph(_compiled(SMALL), tmp_path)
    return tmp_path


def _edit_json(directory, edit):
    path = directory / "graph.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))


def _load_error(directory) -> str:
    with pytest.raises(HwgenError) as e:
        load_graph(directory)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_tampered_schema_version(saved):
    _edit_json(saved, lambda d: d.update(schema_version=2))
    msg = _load_error(saved)
    assert msg.startswith(str(saved / "graph.json") + ": ")
    assert "schema_version 2 is not supported (this hwgen reads version 1)" in msg
    _edit_json(saved, lambda d: d.update(schema_version="1"))
    assert "schema_version '1' is not supported" in _load_error(saved)
    _edit_json(saved, lambda d: d.pop("schema_version"))
    assert "missing key 'schema_version'" in _load_error(saved)


def test_tampered_format(saved):
    _edit_json(saved, lambda d: d.update(format="pickle"))
    assert "format is 'pickle', expected 'hwgen-graph'" in _load_error(saved)
    (saved / "graph.json").write_text("[1, 2]")
    assert "top level is not a JSON object" in _load_error(saved)


def test_unknown_kind(saved):
    original = (saved / "graph.json").read_text()
    _edit_json(saved, lambda d: d["graph"]["ops"][1].update(__kind__="os.system"))
    msg = _load_error(saved)
    assert msg.startswith(str(saved / "graph.json") + ": graph.ops[1]: unknown kind 'os.system'")
    assert "not a hwgen IR class" in msg
    (saved / "graph.json").write_text(original)
    _edit_json(saved, lambda d: d["graph"]["ops"][3]["body"][0].update(__kind__="Dot"))  # abstract base
    assert "graph.ops[3].body[0]: unknown kind 'Dot'" in _load_error(saved)


def test_unknown_or_missing_field(saved):
    original = (saved / "graph.json").read_text()
    _edit_json(saved, lambda d: d["graph"]["ops"][1].update(bias=[1, 2]))
    assert "graph.ops[1]: Conv has no field 'bias'" in _load_error(saved)
    (saved / "graph.json").write_text(original)
    _edit_json(saved, lambda d: d["graph"]["ops"][1].pop("weights"))
    assert "graph.ops[1]: Conv lacks field(s) weights" in _load_error(saved)
    (saved / "graph.json").write_text(original)
    _edit_json(saved, lambda d: d["graph"]["tensors"]["__dict__"].popitem())
    assert "inconsistent graph" in _load_error(saved)
    (saved / "graph.json").write_text(original)
    _edit_json(saved, lambda d: d["graph"]["ops"][1]["in_type"].update(bits=0))
    assert "graph.ops[1].in_type: cannot build IntType: an integer type needs at least 1 bit" in _load_error(saved)
    (saved / "graph.json").write_text(original)
    _edit_json(saved, lambda d: d["graph"]["ops"][1].update(kernel={"__set__": [3, 3]}))
    assert "graph.ops[1].kernel: object with keys ['__set__'] is neither a tagged value" in _load_error(saved)


def test_invalid_json(saved):
    path = saved / "graph.json"
    path.write_text(path.read_text()[:-40])
    msg = _load_error(saved)
    assert msg.startswith(f"{path}: invalid JSON (") and "line" in msg
    path.write_bytes(b"\xff\xfe{}")
    assert _load_error(saved).startswith(f"{path}: cannot read")


def test_npz_missing_key(saved):
    with np.load(saved / "graph.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in arrays if k.endswith(".weights"))
    del arrays[key]
    (saved / "graph.npz").write_bytes(npz_bytes(arrays))
    msg = _load_error(saved)
    assert msg.startswith(f"{saved / 'graph.npz'}: has no array '{key}' (referenced by {saved / 'graph.json'} at graph.")
    with pytest.raises(HwgenError, match=r"^graph\.npz: has no array"):
        graph_from_files(json.loads((saved / "graph.json").read_text()), arrays)


def test_npz_missing_corrupt_or_pickled(saved):
    npz = saved / "graph.npz"
    good = npz.read_bytes()
    npz.unlink()
    assert _load_error(saved) == f"{npz}: no such file (graph.json keeps the IR's arrays in it)"
    npz.write_bytes(b"not a zip at all")
    assert _load_error(saved).startswith(f"{npz}: not a readable .npz archive")
    npz.write_bytes(good[: len(good) // 2])
    assert _load_error(saved).startswith(f"{npz}: ")
    damaged = bytearray(good)
    damaged[len(good) // 3: len(good) // 3 + 60] = bytes(60)  # inside a compressed member: CRC / zlib error
    npz.write_bytes(bytes(damaged))
    assert _load_error(saved).startswith(f"{npz}: ")
    with open(npz, "wb") as f:  # an object array needs pickle: refused, not unpickled
        np.savez(f, **{"x": np.array([{"a": 1}], dtype=object)})
    msg = _load_error(saved)
    assert msg.startswith(f"{npz}: ") and "pickle" in msg
    with open(npz, "wb") as f:
        np.save(f, np.zeros(3))
    assert _load_error(saved) == f"{npz}: not an .npz archive (a single .npy array)"


def test_wrong_array_for_bytes(saved):
    with np.load(saved / "graph.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    key = next(k for k in arrays if k.endswith("model_bytes"))
    arrays[key] = arrays[key].astype(np.int64)
    (saved / "graph.npz").write_bytes(npz_bytes(arrays))
    assert f"array '{key}' (bytes at graph." in _load_error(saved)


def test_missing_directory_and_old_pickle(tmp_path):
    assert _load_error(tmp_path) == f"{tmp_path / 'graph.json'}: no such file"
    (tmp_path / "graph.pkl").write_bytes(b"\x80\x04N.")
    assert "graph.pkl from an older hwgen is no longer loaded" in _load_error(tmp_path)
