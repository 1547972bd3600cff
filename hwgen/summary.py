"""Per-layer facts about a compiled graph, shared by `hwgen inspect`, compile reports and benches."""
from __future__ import annotations

from .ir import Graph
from .lowering import lowering_of, walk


def layer_rows(graph: Graph) -> list[dict]:
    """One row per compute layer (ODE blocks list their body once, run `steps` times)."""
    rows = []
    for op, parent in walk(graph.core):
        row = lowering_of(op).inspect_row(op, graph, parent)
        if row is not None:
            rows.append(row)
    return rows


def format_table(rows: list[dict], columns: list[tuple[str, str]]) -> str:
    """Plain-text table; columns are (key, header) pairs."""
    cells = [[h for _, h in columns]] + [[_fmt(r.get(k)) for k, _ in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(row, widths)))
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return "x".join(str(x) for x in v)
    return str(v)


INSPECT_COLUMNS = [
    ("name", "layer"), ("op", "op"), ("block", "block"), ("input_shape", "in"), ("output_shape", "out"),
    ("input_type", "in type"), ("weight_type", "w type"), ("output_type", "out type"),
    ("macs", "MACs"), ("weight_bits", "weight bits"), ("acc_bits_exact", "acc exact"),
    ("acc_bits_a2q", "acc A2Q"), ("acc_bits_datatype", "acc dtype"),
]
