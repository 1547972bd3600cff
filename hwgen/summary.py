"""Per-layer facts about a compiled graph, shared by `hwgen inspect`, compile reports and benches."""
from __future__ import annotations

from .ir import Conv, Dot, Graph, KernelBankConv, ODEBlock, Threshold


def layer_rows(graph: Graph) -> list[dict]:
    """One row per compute layer (a MatVec and the activation that follows it)."""
    rows = []
    flat = []
    for op in graph.core:  # ODE blocks list their body once, run `steps` times
        flat += [(inner, op) for inner in op.body] if isinstance(op, ODEBlock) else [(op, None)]
    following = {a.inputs[0]: a for a, _ in flat if isinstance(a, Threshold)}
    for op, block in flat:
        if not isinstance(op, Dot):
            continue
        act = following.get(op.outputs[0])
        repeats = block.steps if block else 1
        bounds = op.acc_bounds
        rows.append({
            "name": op.name,
            "op": op.kind,
            "input_shape": list(graph.tensors[op.inputs[0]].shape),
            "output_shape": list(graph.tensors[op.outputs[0]].shape),
            "input_type": str(op.in_type),
            "weight_type": str(op.w_type),
            "output_type": str(act.out_type) if act else f"acc {op.acc_type}",
            "activation": act.name if act else None,
            "thresholds_per_channel": int(act.thresholds.shape[1]) if act else 0,
            "block": f"{block.name} x{block.steps}" if block else None,
            "macs": int(op.weights.size * (op.out_shape[0] * op.out_shape[1] if isinstance(op, Conv) else 1)
                        * repeats),
            "weight_bits": int(op.indices.size * op.tau + op.codebook.size if isinstance(op, KernelBankConv)
                               else op.weights.size * op.w_type.bits),
            "nonzero_weights": int((op.weights != 0).sum()),
            "acc_bits_exact": bounds.get("exact"),
            "acc_bits_a2q": bounds.get("a2q"),
            "acc_bits_datatype": bounds.get("datatype"),
            "pe": op.pe,
            "simd": op.simd,
        })
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
