"""Helpers shared by the CNN, Sub-bit and ODE trainers (train_cnn.py, train_ode.py).

The MLP trainer (train.py) owns `accuracy.json` and rewrites `README.md` from scratch; the
other trainers keep their results in their own JSON files and their tables in marked sections
of README.md that they replace in place (a `--readme-only` run re-adds them from the JSON after
`python -m quant_models.train`, which drops them).
"""

import json
from typing import Callable
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


def randomize_batchnorm(model: torch.nn.Module, example: torch.Tensor, seed: int, *,
                        target_mean: float = 0.0, target_std: float = 1.0, negative: float = 0.2) -> None:
    """Give every BatchNorm of an untrained `model` random running statistics and affine
    parameters that keep its outputs spread around `target_mean` with spread ~`target_std`
    (the activation quantizer's range), so that the activations after it are neither all
    saturated nor all zero.

    One forward pass on `example` in eval mode; a pre-hook on each BatchNorm measures its input
    per channel (mean m, standard deviation s over the batch and the spatial axes) just before
    it runs, and sets (u, n: seeded uniform / normal draws per channel)
        running_mean = m + 0.5 * s * n            running_var = (s * u[0.5, 2])**2
        weight = target_std * u[0.5, 1.5], negated for a `negative` fraction of the channels
        bias   = target_mean + target_std * u[-0.5, 0.5]
    so the later BatchNorms see the statistics the earlier ones produce. Deterministic for a
    given model, example and seed."""
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]

    def uniform(n: int, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=gen)

    def hook(bn, args):
        x = args[0]
        x = getattr(x, "value", x).detach()
        axes = [0] + list(range(2, x.dim()))
        m, s = x.mean(dim=axes), x.std(dim=axes).clamp_min(1e-3)
        n = bn.num_features
        bn.running_mean.copy_(m + 0.5 * s * torch.randn(n, generator=gen))
        bn.running_var.copy_((s * uniform(n, 0.5, 2.0)) ** 2)
        sign = torch.where(torch.rand(n, generator=gen) < negative, -1.0, 1.0)
        bn.weight.data.copy_(target_std * uniform(n, 0.5, 1.5) * sign)
        bn.bias.data.copy_(target_mean + target_std * uniform(n, -0.5, 0.5))

    hooks = [bn.register_forward_pre_hook(hook) for bn in bns]
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in hooks:
            h.remove()


def cached_export(path: Path, build: Callable[[], tuple[torch.nn.Module, torch.Tensor]]) -> Path:
    """`path` if it exists, else the model `build()` returns exported there (QONNX, via
    export_model) first. Written to a temporary name and renamed, so a concurrent or
    interrupted export never leaves a half-written file under `path`."""
    import os
    import tempfile

    path = Path(path)
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    model, example = build()
    fd, tmp = tempfile.mkstemp(prefix=path.stem + ".", suffix=".onnx", dir=path.parent)
    os.close(fd)
    try:
        export_model(model, example, Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600
        os.replace(tmp, path)
    finally:
        for leftover in (tmp, tmp + ".data"):
            if os.path.exists(leftover):
                os.unlink(leftover)
    return path
