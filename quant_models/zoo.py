"""Helpers shared by the CNN, Sub-bit and ODE trainers (train_cnn.py, train_ode.py).

The MLP trainer (train.py) owns `accuracy.json` and rewrites `README.md` from scratch; the
other trainers keep their results in their own JSON files and their tables in marked sections
of README.md that they replace in place (a `--readme-only` run re-adds them from the JSON after
`python -m quant_models.train`, which drops them).
"""

import json
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import helper

from quant_models.train import export


def export_model(model: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """train.export (QONNX from eval mode, no stack traces, no .onnx.data, A2Q fix), then:

    - ReduceMean over H and W with keepdims (the dynamo exporter's form of
      nn.AdaptiveAvgPool2d(1)) becomes the equivalent GlobalAveragePool, the op QONNX flows
      (and hwgen) know as global average pooling.
    """
    export(model, example, path)
    graph = onnx.load(path)
    inits = {i.name: i for i in graph.graph.initializer}
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in graph.graph.value_info}  # the exporter's
    changed = False
    for i, node in enumerate(graph.graph.node):
        if node.op_type != "ReduceMean" or len(node.input) != 2 or node.input[1] not in inits:
            continue
        if ranks.get(node.input[0]) != 4:
            continue
        axes = sorted(int(a) % 4 for a in onnx.numpy_helper.to_array(inits[node.input[1]]).reshape(-1))
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if axes != [2, 3] or attrs.get("keepdims", 1) != 1:
            continue
        gap = helper.make_node("GlobalAveragePool", [node.input[0]], list(node.output), name=node.name)
        graph.graph.node.remove(node)
        graph.graph.node.insert(i, gap)
        if not any(node.input[1] in n.input for n in graph.graph.node):
            # the export lists initializers as graph inputs too: drop both
            graph.graph.initializer.remove(inits[node.input[1]])
            for inp in [v for v in graph.graph.input if v.name == node.input[1]]:
                graph.graph.input.remove(inp)
        changed = True
    if changed:
        onnx.checker.check_model(graph)
        onnx.save(graph, path)


def logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """The model's float logits on x (eval mode, no grad)."""
    with torch.no_grad():
        y = model.eval()(torch.from_numpy(x))
    return getattr(y, "value", y).numpy()


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


def write_json(path: Path, results: dict) -> None:
    path.write_text(json.dumps(results, indent=2) + "\n")


def update_readme_section(folder: Path, key: str, lines: list[str]) -> None:
    """Replace (or append) the section between `<!-- key -->` and `<!-- /key -->` in README.md,
    leaving the rest of the file (the MLP table, the other sections) as it is."""
    path = Path(folder) / "README.md"
    text = path.read_text() if path.exists() else ""
    begin, end = f"<!-- {key} -->", f"<!-- /{key} -->"
    block = "\n".join([begin, *lines, end]) + "\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        tail = rest.split(end, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block if text else block
    path.write_text(text)


def pct(v: float) -> str:
    return f"{v:.2%}"


def fit(model: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, frozen_bn_epochs: int = 0,
        batch: int | None = None, lr: float | None = None) -> torch.nn.Module:
    """train.train (mini-batch Adam, cosine decay over all epochs; same batch order for the same
    seed), except that in the last `frozen_bn_epochs` epochs every BatchNorm normalises with
    its running statistics, which it no longer updates. A BatchNorm that a weight-shared block
    calls N times sees N batch statistics per step in training but has one set of running
    statistics in eval mode; the frozen epochs let the weights adapt to that single set.
    Returns the model in eval mode."""
    from quant_models.train import BATCH, LR

    batch, lr = batch or BATCH, lr or LR
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    steps = epochs * -(-len(x) // batch)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for epoch in range(epochs):
        if epoch == epochs - frozen_bn_epochs:
            for m in model.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.eval()
        for idx in torch.randperm(len(x)).split(batch):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x_t[idx]), y_t[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()
