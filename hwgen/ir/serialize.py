"""Save and load the IR graph as graph.json (structure) + graph.npz (arrays), never as a pickle.

Why: loading a build directory must never run code. A pickle can execute anything on load
and breaks on any dataclass change; this format only builds classes from an explicit
allow-list, by keyword, from plain JSON values and arrays read with allow_pickle=False. It
survives dataclass changes as long as field names stay (a field added with a default gets
its default; a field the class no longer has is an error, not silently dropped).

JSON encoding (graph.json, written deterministically; graph.npz holds the arrays):
  null, true/false, numbers, strings    themselves (numpy scalars are written as plain numbers)
  [...]                                 list
  {"__kind__": "MatVec", <field>: ...}  a registered dataclass, its saved fields by name
  {"__tuple__": [...]}                  tuple
  {"__dict__": {...}}                   dict with str keys, in insertion order
  {"__array__": "<key>"}                numpy array graph.npz[<key>], dtype and shape as saved
  {"__bytes__": "<key>"}                bytes, stored as the uint8 vector graph.npz[<key>]
  {"__float__": "nan" | "inf" | "-inf"} a non-finite float (JSON has no literal for them)
Array keys are "<name of the nearest named object>.<field path>" (a suffix when two clash);
an array object referenced twice is stored once and comes back shared.
Not saved: fields with compare=False or init=False and private fields (FloatSegment._session,
a cached onnxruntime session); the constructor rebuilds them from their defaults.
"""
from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from ..builddir import write_atomic
from ..errors import HwgenError
from .float_segment import FloatSegment
from .graph import Graph, TensorInfo
from . import ops as _ops
from .quantizer import Quantizer
from .types import Bipolar, BipolarType, IntType

GRAPH_SCHEMA_VERSION = 1
GRAPH_FORMAT = "hwgen-graph"
JSON_NAME = "graph.json"
NPZ_NAME = "graph.npz"

def _op_classes() -> tuple[type, ...]:
    """Every concrete op dataclass defined in hwgen/ir/ops.py (a new op kind is allowed by being
    defined there; the abstract bases Op and Dot never appear as objects)."""
    return tuple(cls for cls in vars(_ops).values()
                 if isinstance(cls, type) and issubclass(cls, _ops.Op) and cls.__module__ == _ops.__name__
                 and cls not in (_ops.Op, _ops.Dot))


REGISTRY: Mapping[str, type] = MappingProxyType({cls.__name__: cls for cls in (
    Graph, TensorInfo, *_op_classes(), IntType, BipolarType, Quantizer, FloatSegment,
)})
"""The only classes a graph file may name."""

_CANONICAL = {BipolarType: Bipolar}  # loaded instances equal to these come back as the shared object
_TAGS = ("__tuple__", "__dict__", "__array__", "__bytes__", "__float__")


def saved_fields(cls: type) -> list[dataclasses.Field]:
    """The fields written for a registered class: init fields that take part in comparison
    and are not private (caches such as FloatSegment._session are rebuilt by the constructor)."""
    return [f for f in dataclasses.fields(cls) if f.init and f.compare and not f.name.startswith("_")]


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# -- writing ------------------------------------------------------------------------------------
class _Encoder:
    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self._key_of: dict[int, str] = {}  # id(array) -> key: a shared array is stored once
        self._keep: list[Any] = []  # keeps encoded objects alive so their ids stay unique

    def fail(self, where: str, message: str) -> HwgenError:
        return HwgenError(f"cannot save the graph: {where}: {message}")

    def _new_key(self, owner: str, rel: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_.+-]", "_", f"{owner}.{rel}" if rel else owner) or "array"
        key, n = base, 1
        while key in self.arrays:
            n += 1
            key = f"{base}-{n}"
        return key

    def _store(self, arr: np.ndarray, owner: str, rel: str) -> str:
        key = self._new_key(owner, rel)
        self.arrays[key] = arr
        return key

    def encode(self, v: Any, owner: str, rel: str, where: str) -> Any:
        if v is None or isinstance(v, bool):
            return v
        if isinstance(v, str):
            return str(v)
        if isinstance(v, int):
            return int(v)
        if isinstance(v, float):
            return self._float(float(v))
        if isinstance(v, np.generic):
            if isinstance(v, np.bool_):
                return bool(v)
            if isinstance(v, np.integer):
                return int(v)
            if isinstance(v, np.floating):
                return self._float(float(v))
            raise self.fail(where, f"numpy scalar of type {type(v).__name__} has no JSON form")
        if isinstance(v, np.ndarray):
            if v.dtype.hasobject:
                raise self.fail(where, f"array of dtype {v.dtype} would need pickle")
            key = self._key_of.get(id(v))
            if key is None:
                key = self._key_of[id(v)] = self._store(v, owner, rel)
                self._keep.append(v)
            return {"__array__": key}
        if type(v) is bytes:
            return {"__bytes__": self._store(np.frombuffer(v, dtype=np.uint8).copy(), owner, rel)}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return self._dataclass(v, owner, rel, where)
        if type(v) is list:
            return [self.encode(x, owner, f"{rel}.{i}", f"{where}[{i}]") for i, x in enumerate(v)]
        if type(v) is tuple:
            return {"__tuple__": [self.encode(x, owner, f"{rel}.{i}", f"{where}[{i}]") for i, x in enumerate(v)]}
        if type(v) is dict:
            out = {}
            for k, x in v.items():
                if type(k) is not str:
                    raise self.fail(where, f"dict key {_short(k)} is not a str")
                out[k] = self.encode(x, owner, f"{rel}.{k}", f"{where}[{k!r}]")
            return {"__dict__": out}
        raise self.fail(where, f"values of type {type(v).__module__}.{type(v).__qualname__} are not serialisable")

    @staticmethod
    def _float(x: float) -> Any:
        if math.isfinite(x):
            return x
        return {"__float__": "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")}

    def _dataclass(self, v: Any, owner: str, rel: str, where: str) -> dict:
        cls = type(v)
        if REGISTRY.get(cls.__name__) is not cls:
            raise self.fail(where, f"class {cls.__module__}.{cls.__qualname__} is not in the serialisation registry")
        name = getattr(v, "name", None) if "name" in {f.name for f in dataclasses.fields(cls)} else None
        if isinstance(name, str) and name:
            owner, rel = name, ""  # array keys restart at every named object (ops, the graph)
        out: dict[str, Any] = {"__kind__": cls.__name__}
        for f in saved_fields(cls):
            sub = f"{rel}.{f.name}" if rel else f.name
            out[f.name] = self.encode(getattr(v, f.name), owner, sub, f"{where}.{f.name}")
        return out


def graph_to_files(graph: Graph) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON-able document, arrays for an .npz). Pure: writes nothing."""
    if not isinstance(graph, Graph):
        raise HwgenError(f"cannot save the graph: expected a hwgen.ir.Graph, got {type(graph).__name__}")
    enc = _Encoder()
    body = enc.encode(graph, "graph", "", "graph")
    doc = {"format": GRAPH_FORMAT, "schema_version": GRAPH_SCHEMA_VERSION, "graph": body}
    return doc, enc.arrays


def dumps_document(doc: dict) -> str:
    """The exact text of graph.json (deterministic: insertion order, fixed indent)."""
    return json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=True) + "\n"


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    """An .npz archive np.load reads, byte-identical for identical arrays (fixed timestamps)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key, arr in arrays.items():
            info = zipfile.ZipInfo(key + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with zf.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asanyarray(arr), allow_pickle=False)
    return buf.getvalue()


def save_graph(graph: Graph, directory: str | os.PathLike) -> list[str]:
    """Write directory/graph.json and directory/graph.npz; return the file names written."""
    doc, arrays = graph_to_files(graph)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / NPZ_NAME, npz_bytes(arrays))  # arrays first: graph.json refers to them
    write_atomic(out / JSON_NAME, dumps_document(doc).encode("ascii"))
    return [JSON_NAME, NPZ_NAME]


# -- reading ------------------------------------------------------------------------------------
class _Decoder:
    def __init__(self, arrays: Mapping[str, np.ndarray], json_name: str, npz_name: str) -> None:
        self.arrays = arrays
        self.json_name = json_name
        self.npz_name = npz_name
        self._loaded: dict[str, np.ndarray] = {}

    def fail(self, where: str, message: str) -> HwgenError:
        return HwgenError(f"{self.json_name}: {where}: {_one_line(message)}")

    def decode(self, v: Any, where: str) -> Any:
        if v is None or isinstance(v, (bool, int, float, str)):
            return v
        if isinstance(v, list):
            return [self.decode(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if not isinstance(v, dict):
            raise self.fail(where, f"unexpected JSON value of type {type(v).__name__}")
        if "__kind__" in v:
            return self._dataclass(v, where)
        if len(v) != 1 or next(iter(v)) not in _TAGS:
            raise self.fail(where, f"object with keys {_short(sorted(v))} is neither a tagged value "
                                   f"({', '.join(_TAGS)}) nor an object with a __kind__")
        ((tag, body),) = v.items()
        if tag == "__tuple__":
            if not isinstance(body, list):
                raise self.fail(where, "__tuple__ must hold a JSON array")
            return tuple(self.decode(x, f"{where}[{i}]") for i, x in enumerate(body))
        if tag == "__dict__":
            if not isinstance(body, dict):
                raise self.fail(where, "__dict__ must hold a JSON object")
            return {k: self.decode(x, f"{where}[{k!r}]") for k, x in body.items()}
        if tag == "__float__":
            if body not in ("nan", "inf", "-inf"):
                raise self.fail(where, f"__float__ must be 'nan', 'inf' or '-inf', not {_short(body)}")
            return float(body)
        if not isinstance(body, str):
            raise self.fail(where, f"{tag} must name an array key (a string), not {_short(body)}")
        arr = self._array(body, where)
        if tag == "__bytes__":
            if arr.dtype != np.uint8 or arr.ndim != 1:
                raise HwgenError(f"{self.npz_name}: array {body!r} (bytes at {where} in {self.json_name}) "
                                 f"must be a uint8 vector, is {arr.dtype} {arr.shape}")
            return arr.tobytes()
        return arr

    def _array(self, key: str, where: str) -> np.ndarray:
        if key in self._loaded:
            return self._loaded[key]
        try:
            arr = self.arrays[key]
        except KeyError:
            raise HwgenError(f"{self.npz_name}: has no array {key!r} (referenced by {self.json_name} at {where})") \
                from None
        except Exception as e:  # noqa: BLE001 - a lazily read archive: any failure is a corrupt member
            raise HwgenError(f"{self.npz_name}: array {key!r} is unreadable ({type(e).__name__}: "
                             f"{_one_line(e)})") from None
        if not isinstance(arr, np.ndarray) or arr.dtype.hasobject:
            raise HwgenError(f"{self.npz_name}: array {key!r} is not a plain numeric array")
        self._loaded[key] = arr
        return arr

    def _dataclass(self, v: dict, where: str) -> Any:
        kind = v["__kind__"]
        cls = REGISTRY.get(kind) if isinstance(kind, str) else None
        if cls is None:
            raise self.fail(where, f"unknown kind {_short(kind)}: not a hwgen IR class "
                                   f"(known: {', '.join(sorted(REGISTRY))})")
        saved = {f.name: f for f in saved_fields(cls)}
        kwargs = {}
        for name, raw in v.items():
            if name == "__kind__":
                continue
            if name not in saved:
                raise self.fail(where, f"{kind} has no field {_short(name)} (file from another hwgen version?)")
            kwargs[name] = self.decode(raw, f"{where}.{name}")
        missing = [n for n, f in saved.items() if n not in kwargs
                   and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
        if missing:
            raise self.fail(where, f"{kind} lacks field(s) {', '.join(missing)}")
        try:
            obj = cls(**kwargs)
        except (TypeError, ValueError) as e:
            raise self.fail(where, f"cannot build {kind}: {e}") from None
        canonical = _CANONICAL.get(cls)
        return canonical if canonical is not None and obj == canonical else obj


def _check_header(doc: Any, json_name: str) -> None:
    if not isinstance(doc, dict):
        raise HwgenError(f"{json_name}: not a hwgen graph file (the top level is not a JSON object)")
    for key in ("format", "schema_version", "graph"):
        if key not in doc:
            raise HwgenError(f"{json_name}: not a hwgen graph file (missing key {key!r})")
    if doc["format"] != GRAPH_FORMAT:
        raise HwgenError(f"{json_name}: format is {_short(doc['format'])}, expected {GRAPH_FORMAT!r}")
    version = doc["schema_version"]
    if type(version) is not int or version != GRAPH_SCHEMA_VERSION:
        raise HwgenError(f"{json_name}: schema_version {_short(version)} is not supported (this hwgen reads "
                         f"version {GRAPH_SCHEMA_VERSION}); run `hwgen compile` again to rebuild the directory")


def graph_from_files(doc: dict, arrays: Mapping[str, np.ndarray], *,
                     json_name: str = JSON_NAME, npz_name: str = NPZ_NAME) -> Graph:
    """Inverse of graph_to_files. Every problem is a one-line HwgenError naming the file."""
    _check_header(doc, json_name)
    try:
        graph = _Decoder(arrays, json_name, npz_name).decode(doc["graph"], "graph")
    except RecursionError:
        raise HwgenError(f"{json_name}: nested too deeply to be a hwgen graph") from None
    if not isinstance(graph, Graph):
        raise HwgenError(f"{json_name}: 'graph' holds a {type(graph).__name__}, not a Graph")
    try:
        graph.validate()
    except AssertionError as e:
        raise HwgenError(f"{json_name}: inconsistent graph: {_one_line(e)}") from None
    return graph


def _read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise HwgenError(f"{path}: cannot read ({_one_line(e)})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise HwgenError(f"{path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno})") from None
    except RecursionError:
        raise HwgenError(f"{path}: invalid JSON (nested too deeply)") from None


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise HwgenError(f"{path}: no such file (graph.json keeps the IR's arrays in it)")
    try:
        z = np.load(path, allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - BadZipFile, ValueError (pickled / not numpy), OSError...
        raise HwgenError(f"{path}: not a readable .npz archive ({type(e).__name__}: {_one_line(e)})") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise HwgenError(f"{path}: not an .npz archive (a single .npy array)")
    try:
        with z:
            return {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - corrupt member: BadZipFile (CRC), zlib.error, ValueError...
        raise HwgenError(f"{path}: corrupt .npz archive ({type(e).__name__}: {_one_line(e)})") from None


def load_graph(directory: str | os.PathLike) -> Graph:
    """Read directory/graph.json and directory/graph.npz (as written by save_graph)."""
    d = Path(directory)
    jpath, npath = d / JSON_NAME, d / NPZ_NAME
    if not jpath.is_file():
        hint = ""
        if (d / "graph.pkl").exists():
            hint = " (graph.pkl from an older hwgen is no longer loaded: run `hwgen compile` again)"
        raise HwgenError(f"{jpath}: no such file{hint}")
    doc = _read_json(jpath)
    _check_header(doc, str(jpath))  # before the arrays: a version mismatch says so, whatever the npz
    return graph_from_files(doc, _read_npz(npath), json_name=str(jpath), npz_name=str(npath))
