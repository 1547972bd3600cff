"""Train the digits MLP zoo and export it: `python -m quant_models.train [--kinds ...]`.

Writes, per kind, `digits_mlp_<kind>.onnx` (QONNX, from eval mode, input [1, 64]) and
`digits_mlp_<kind>.pt` (state_dict for `mlp.load_trained`), then `accuracy.json` and
`README.md` (merged with the entries of kinds not retrained). A float MLP of the same shape is
retrained every run as the baseline. Each kind is seeded on its own, so a kind's result does
not depend on which other kinds are trained in the same run.
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from brevitas.export import export_qonnx
from brevitas.nn import QuantLinear
from onnx import numpy_helper
from torch import nn

from quant_models.digits import load_digits_split
from quant_models.mlp import ACC_TARGETS, BITS, MLP_KINDS, ONNX_DIR, build_float_mlp, build_mlp

BATCH = 64
LR = 1e-2


def seed_everything(seed: int) -> None:
    """Seed before building each model: initial weights and batch order both depend on it."""
    torch.manual_seed(seed)
    np.random.seed(seed)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int) -> nn.Module:
    """Mini-batch Adam with a cosine learning-rate decay; returns the model in eval mode."""
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    steps = epochs * -(-len(x) // BATCH)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    model.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x)).split(BATCH):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x_t[idx]), y_t[idx]).backward()
            opt.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    """Top-1 accuracy of the model's own (Brevitas) forward in eval mode."""
    return float((model.eval()(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def export(model: nn.Module, example: torch.Tensor, path: Path) -> None:
    """QONNX export, made faithful for A2Q and reproducible.

    brevitas 0.13.4 writes the raw float weight of an A2Q / A2Q+ layer under a Quant node with
    the post-clipping scale and ROUND, but A2Q quantizes with a different pre-clipping scale
    (the L1-norm bound), a zero-centering offset (A2Q+) and round-to-zero: the exported graph
    would compute other weights. Storing the quantized weights (integer * post-scale, already on
    the Quant node's grid) makes the Quant node an identity on them and the graph faithful.
    The dynamo exporter also records per-node stack traces (absolute paths, line numbers):
    dropped, so that the files only change when the model does.
    """
    export_qonnx(model, example, export_path=str(path))
    # The dynamo exporter leaves a copy of the raw weights in `<name>.onnx.data` that the
    # final (self-contained) model does not reference.
    path.with_name(path.name + ".data").unlink(missing_ok=True)
    graph = onnx.load(path)
    for node in graph.graph.node:
        del node.metadata_props[:]
    layers = [m for m in model.modules()
              if isinstance(m, QuantLinear) and m.weight_quant.requires_quant_input]
    inputs = {}  # A2Q needs the layer's quantized input (bit width, sign) to quantize weights
    hooks = [m.register_forward_pre_hook(lambda layer, args: inputs.__setitem__(layer, args[0]))
             for m in layers]
    with torch.no_grad():
        model(example)
        for m in layers:
            raw = m.weight.numpy()
            init = next(i for i in graph.graph.initializer if tuple(i.dims) == raw.shape
                        and np.array_equal(numpy_helper.to_array(i), raw))
            init.CopyFrom(numpy_helper.from_array(m.quant_weight(inputs[m]).value.numpy(), init.name))
    for hook in hooks:
        hook.remove()
    onnx.save(graph, path)


def write_readme(results: dict, out: Path) -> None:
    """Accuracy table of every kind in `results` (the accuracy.json content)."""
    float_acc = next(iter(results.values()))["float_baseline"]
    lines = [
        "# Digits MLP zoo (64-64-64-10, scikit-learn digits, 25 % stratified test split)",
        "",
        "| kind | weight bits | act bits | accumulator target (A2Q) | test accuracy |",
        "|---|---|---|---|---|",
        f"| float | 32 | 32 | - | {float_acc:.2%} |",
    ]
    for kind in (k for k in MLP_KINDS if k in results):
        w_bits, a_bits, in_bits = BITS[kind]
        target = ", ".join(map(str, ACC_TARGETS.get(kind, []))) or "-"
        lines.append(f"| {kind} | {w_bits} | {a_bits} (input {in_bits}) | {target} "
                     f"| {results[kind]['test_accuracy']:.2%} |")
    lines += ["", "Regenerate with `python -m quant_models.train` from the repository root "
              "(deterministic for a given `--seed` and `--epochs`)."]
    from quant_models.zoo import update_readme_section

    update_readme_section(out, "quant_models.train", lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", choices=MLP_KINDS, default=list(MLP_KINDS))
    parser.add_argument("--out", type=Path, default=ONNX_DIR)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    args.out.mkdir(parents=True, exist_ok=True)
    x_train, y_train, x_test, y_test = load_digits_split(args.seed)

    seed_everything(args.seed)
    float_acc = accuracy(train(build_float_mlp(), x_train, y_train, args.epochs), x_test, y_test)
    print(f"float: {float_acc:.4f}")

    acc_path = args.out / "accuracy.json"
    results = json.loads(acc_path.read_text()) if acc_path.exists() else {}
    for kind in args.kinds:
        start = time.perf_counter()
        seed_everything(args.seed)
        model = train(build_mlp(kind), x_train, y_train, args.epochs)
        acc = accuracy(model, x_test, y_test)
        stem = args.out / f"digits_mlp_{kind}"
        torch.save(model.state_dict(), stem.with_suffix(".pt"))
        export(model, torch.from_numpy(x_test[:1]), stem.with_suffix(".onnx"))
        w_bits, a_bits, in_bits = BITS[kind]
        results[kind] = {"test_accuracy": acc, "float_baseline": float_acc, "weight_bits": w_bits,
                         "act_bits": a_bits, "input_bits": in_bits,
                         "acc_targets": ACC_TARGETS.get(kind)}
        print(f"{kind}: {acc:.4f} ({time.perf_counter() - start:.1f} s)")
    for entry in results.values():
        entry["float_baseline"] = float_acc
    acc_path.write_text(json.dumps(results, indent=2) + "\n")
    write_readme(results, args.out)


if __name__ == "__main__":
    main()
