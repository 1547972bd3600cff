"""Train the digits dsODENet-lite and ResNet zoo and export it: `python -m quant_models.train_ode`.

Writes `digits_odenet_n{2,4,8}` (one weight-shared ODE block, N Euler steps) and
`digits_resnet_n{2,4,8}` (the same graph with independent weights per step), each as `.onnx`
(QONNX from eval mode, input [1, 1, 8, 8]) and `.pt` (state_dict for
`odenet.load_trained_odenet`), `accuracy_ode.json` (merged with the entries of models not
retrained) and the ODE section of `README.md`. Each model is seeded on its own, and every
export is checked against the qonnx reference executor (`verify.check_model`).

Training is train.py's (Adam, lr 1e-2, batch 64, cosine decay) for EPOCHS epochs, the last
FROZEN_BN_EPOCHS of them with every BatchNorm normalising with its running statistics
(`zoo.fit`): the ODE block's BatchNorms are called N times per forward, so in training mode they
normalise each step with that step's batch statistics, while the exported model has one set of
statistics for all steps. Without the frozen epochs the dsODENet loses most of its accuracy in
eval mode (86 / 70 / 49 % for N = 2 / 4 / 8, against ~95 % with batch statistics). The ResNets
get the same schedule.
`--readme-only` rewrites the README section from `accuracy_ode.json` without training.

The results depend on the torch thread count (`--threads`, 2 for the committed files). On a
loaded machine `OMP_WAIT_POLICY=PASSIVE` makes 2-thread training many times faster without
changing a bit of the result.
"""

import argparse
import time
from pathlib import Path

import onnx
import torch

from quant_models.cnn import to_images
from quant_models.digits import load_digits_split
from quant_models.mlp import ONNX_DIR
from quant_models.odenet import (A_BITS, H_BITS, ODE_ARCHS, ODE_STEPS, W_BITS, build_odenet, load_trained_odenet,
                                 model_name, parameter_counts, parse_name)
from quant_models.train import accuracy, seed_everything
from quant_models.verify import check_model, step_sharing
from quant_models.zoo import export_model, fit, pct, read_json, update_readme_section, write_json

MODELS = tuple(model_name(a, n) for a in ODE_ARCHS for n in ODE_STEPS)
JSON_NAME = "accuracy_ode.json"
EPOCHS = 20
FROZEN_BN_EPOCHS = 10


def train_and_export(name: str, args, data) -> dict:
    x_train, y_train, x_test, y_test = data
    arch, steps = parse_name(name)
    seed_everything(args.seed)
    model = fit(build_odenet(arch, steps), x_train, y_train, args.epochs, args.frozen_bn_epochs)
    stem = args.out / name
    torch.save(model.state_dict(), stem.with_suffix(".pt"))
    export_model(model, torch.from_numpy(x_test[:1]), stem.with_suffix(".onnx"))
    check_model(stem.with_suffix(".onnx"), load_trained_odenet(name, args.out), x_test)
    sharing = step_sharing(onnx.load(stem.with_suffix(".onnx")))
    counts = parameter_counts(model)
    return {"test_accuracy": accuracy(model, x_test, y_test), "arch": arch, "steps": steps, "dt": 1 / steps,
            "weight_bits": W_BITS, "h_bits": H_BITS, "act_bits": A_BITS, "input_bits": 4,
            "h_scale": float(model.quant_h.act_quant.scale()), "params_total": counts["total"],
            "params_block": counts["block"], "steps_share_initializers": sharing["same_initializer_names"],
            "epochs": args.epochs, "frozen_bn_epochs": args.frozen_bn_epochs}


def write_readme(results: dict, out: Path) -> None:
    """The ODE / ResNet table (a section of README.md) from the accuracy_ode.json content."""
    lines = [
        "# Digits dsODENet-lite vs ResNet (stem conv3x3 16 -> N residual steps -> GAP -> linear 10)",
        "",
        "Regenerate with `python -m quant_models.train_ode` (`odenet.py`); check with "
        "`python -m quant_models.verify`.",
        "",
        "| N (dt = 1/N) | dsODENet accuracy | params total / block | ResNet accuracy | params total / block |",
        "|---|---|---|---|---|",
    ]
    for n in ODE_STEPS:
        cells = []
        for arch in ODE_ARCHS:
            r = results.get(model_name(arch, n))
            cells += [pct(r["test_accuracy"]), f"{r['params_total']} / {r['params_block']}"] if r else ["-", "-"]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Both: 4-bit unsigned input (scale 1/16), 4-bit power-of-two weights, state h signed 4-bit with "
        "one learned power-of-two scale shared by h, f(h) and every sum h + dt * f(h) (one quantizer), "
        "4-bit unsigned ReLU inside f = depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN. "
        "`digits_odenet_n<N>` runs one f N times (its N copies in the file use the same initializers); "
        "`digits_resnet_n<N>` has its own f per step (same dt). Parameters are trainable tensors "
        "(weights, BN affine, learned quantizer scales); block = the f modules. Training: Adam, batch 64, "
        "cosine decay; in the last epochs every BatchNorm uses its running statistics, so that the "
        "ODE block's BatchNorm, called N times per forward, is trained with the one set of statistics "
        "it is exported with (see `train_ode.py`).",
        "",
    ]
    update_readme_section(out, "quant_models.train_ode", lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--out", type=Path, default=ONNX_DIR)
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--frozen-bn-epochs", type=int, default=FROZEN_BN_EPOCHS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads; the results depend on it (the committed files use 2)")
    parser.add_argument("--readme-only", action="store_true", help="only rewrite the README section")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    acc_path = args.out / JSON_NAME
    results = read_json(acc_path)
    if not args.readme_only:
        torch.set_num_threads(args.threads)
        x_train, y_train, x_test, y_test = load_digits_split(args.seed)
        data = (to_images(x_train), y_train, to_images(x_test), y_test)
        total = time.perf_counter()
        for name in args.models:
            start = time.perf_counter()
            results[name] = train_and_export(name, args, data)
            print(f"{name}: {results[name]['test_accuracy']:.4f} ({time.perf_counter() - start:.1f} s)")
        print(f"total {time.perf_counter() - total:.1f} s")
        results = {k: results[k] for k in MODELS if k in results}
        write_json(acc_path, results)
    write_readme(results, args.out)


if __name__ == "__main__":
    main()
