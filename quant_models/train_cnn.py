"""Train the digits CNN and Sub-bit zoo and export it: `python -m quant_models.train_cnn`.

Writes `digits_cnn_{w4a4,w1a1}` and `digits_subbit_tau{4,5,6}` (`.onnx`: QONNX from eval mode,
input [1, 1, 8, 8]; `.pt`: state_dict for `cnn.load_trained_cnn`), `accuracy_cnn.json` (merged
with the entries of models not retrained) and the CNN section of `README.md`. A float CNN of
the same shape is retrained every run as the baseline. Each model is seeded on its own, and
every export is checked against the qonnx reference executor (`verify.check_model`).

A Sub-bit model trains as `subbit.SubBitCNN` and is exported as its equivalent
`QuantCNN("w1a1")` (`subbit.to_binary_cnn`): the `.pt` holds that binary model.
`--readme-only` rewrites the README section from `accuracy_cnn.json` without training.

The results depend on the torch thread count (`--threads`, 2 for the committed files). On a
loaded machine `OMP_WAIT_POLICY=PASSIVE` makes 2-thread training many times faster without
changing a bit of the result.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import onnx
import torch

from quant_models.cnn import CNN_KINDS, build_cnn, build_float_cnn, load_trained_cnn, to_images
from quant_models.digits import load_digits_split
from quant_models.mlp import BITS, ONNX_DIR
from quant_models.subbit import SUBBIT_TAUS, build_subbit, to_binary_cnn
from quant_models.train import accuracy, seed_everything, train
from quant_models.verify import check_model, kernel_patterns
from quant_models.zoo import export_model, logits, pct, read_json, update_readme_section, write_json

MODELS = tuple(f"digits_cnn_{k}" for k in CNN_KINDS) + tuple(f"digits_subbit_tau{t}" for t in SUBBIT_TAUS)
JSON_NAME = "accuracy_cnn.json"


def _patterns(path: Path) -> dict[str, int]:
    """conv1 / conv2 -> distinct 3x3 sign patterns, for the binary convs of an exported file."""
    return {f"conv{i}": p["patterns"] for i, p in enumerate(kernel_patterns(onnx.load(path)), 1)}


def train_and_export(name: str, args, data) -> dict:
    x_train, y_train, x_test, y_test = data
    seed_everything(args.seed)
    entry = {}
    if name.startswith("digits_subbit_tau"):
        tau = int(name.removeprefix("digits_subbit_tau"))
        trained = build_subbit(tau)
        initial = trained.conv2.codebook().detach().clone()
        trained = train(trained, x_train, y_train, args.epochs)
        final = trained.conv2.codebook().detach()
        model = to_binary_cnn(trained)
        for x in (x_train, x_test):  # the folded binary model computes the same logits
            a, b = logits(trained, x), logits(model, x)
            if not np.array_equal(a.argmax(1), b.argmax(1)) or np.max(np.abs(a - b)) > 1e-5:
                raise AssertionError(f"{name}: the exported binary model differs from the trained one")
        entry.update(tau=tau, codebook_size=2**tau, codebook_layers=["conv2"],
                     training_model_accuracy=accuracy(trained, x_test, y_test),
                     # refinement: codewords whose sign pattern changed in training (of 2^tau)
                     codewords_changed=int((final != initial).any(1).sum()),
                     codewords_used=int(len(trained.conv2.assignment().unique())))
        bits = BITS["w1a1"]
    else:
        kind = name.removeprefix("digits_cnn_")
        model = train(build_cnn(kind), x_train, y_train, args.epochs)
        bits = BITS[kind]
    stem = args.out / name
    torch.save(model.state_dict(), stem.with_suffix(".pt"))
    export_model(model, torch.from_numpy(x_test[:1]), stem.with_suffix(".onnx"))
    check_model(stem.with_suffix(".onnx"), load_trained_cnn(name, args.out), x_test)
    entry = {"test_accuracy": accuracy(model, x_test, y_test), "weight_bits": bits[0], "act_bits": bits[1],
             "input_bits": bits[2], **entry, "kernel_patterns": _patterns(stem.with_suffix(".onnx"))}
    return entry


def write_readme(results: dict, out: Path) -> None:
    """The CNN / Sub-bit tables (a section of README.md) from the accuracy_cnn.json content."""
    base = results.get("digits_cnn_w1a1", {}).get("test_accuracy")
    lines = [
        "# Digits CNNs (1x8x8 -> conv3x3 16 -> conv3x3 32 -> maxpool 2 -> linear 10)",
        "",
        "Regenerate with `python -m quant_models.train_cnn` (`cnn.py`, `subbit.py`); check with "
        "`python -m quant_models.verify`.",
        "",
        "| model | weight bits | act bits | binary 3x3 sign patterns (conv1, conv2) | test accuracy |",
        "|---|---|---|---|---|",
    ]
    if "float" in results:
        lines.append(f"| float CNN | 32 | 32 | - | {pct(results['float']['test_accuracy'])} |")
    for name in (m for m in MODELS if m in results):
        r = results[name]
        pats = ", ".join(str(v) for v in r["kernel_patterns"].values()) or "-"
        lines.append(f"| {name} | {r['weight_bits']} | {r['act_bits']} (input {r['input_bits']}) | {pats} "
                     f"| {pct(r['test_accuracy'])} |")
    subbit = [m for m in MODELS if m in results and "tau" in results[m]]
    if subbit:
        lines += [
            "",
            "Sub-bit (Wang et al., ICCV 2021): `digits_subbit_tau<t>` is `digits_cnn_w1a1` whose conv2 "
            "kernels (32 x 16 = 512) come from a learned codebook of 2^t binary 3x3 patterns "
            "(`subbit.py`); conv1 (16 kernels, so at most 16 patterns anyway) stays plain binary. The "
            "file is an ordinary binary CNN (alpha = mean |W| folded into the BatchNorm after conv2); "
            "the codebook is the set of distinct sign patterns of conv2. One seed each: on this 450-image "
            "test split, binary models of this size move by 1-2 points from seed to seed.",
            "",
            "| model | codebook 2^tau | conv2 patterns in the file | codewords changed by training "
            "| bits per conv2 kernel | test accuracy | vs digits_cnn_w1a1 |",
            "|---|---|---|---|---|---|---|",
        ]
        for name in subbit:
            r = results[name]
            delta = f"{(r['test_accuracy'] - base) * 100:+.2f} pt" if base is not None else "-"
            lines.append(f"| {name} | {r['codebook_size']} | {r['kernel_patterns']['conv2']} "
                         f"| {r['codewords_changed']} | {r['tau']} (vs 9) | {pct(r['test_accuracy'])} | {delta} |")
    lines.append("")
    update_readme_section(out, "quant_models.train_cnn", lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--out", type=Path, default=ONNX_DIR)
    parser.add_argument("--epochs", type=int, default=40)
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
        start = time.perf_counter()
        seed_everything(args.seed)
        float_acc = accuracy(train(build_float_cnn(), data[0], y_train, args.epochs), data[2], y_test)
        results["float"] = {"test_accuracy": float_acc}
        print(f"float CNN: {float_acc:.4f} ({time.perf_counter() - start:.1f} s)")
        for name in args.models:
            start = time.perf_counter()
            results[name] = train_and_export(name, args, data)
            print(f"{name}: {results[name]['test_accuracy']:.4f}, patterns {results[name]['kernel_patterns']} "
                  f"({time.perf_counter() - start:.1f} s)")
        print(f"total {time.perf_counter() - total:.1f} s")
        results = {k: results[k] for k in ("float", *MODELS) if k in results}
        write_json(acc_path, results)
    write_readme(results, args.out)


if __name__ == "__main__":
    main()
