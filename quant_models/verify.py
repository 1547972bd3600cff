"""Checks of the exported CNN / Sub-bit / ODE models: `python -m quant_models.verify [names]`.

For every model: the qonnx reference executor (qonnx clean-up, ChangeBatchSize, InferShapes,
execute_onnx) on the whole test split gives the same argmax as the Brevitas model rebuilt from
its `.pt`, with logits within 1e-4, and every Quant / BipolarQuant scale in the file is a power
of two. Also reported: the number of distinct 3x3 sign patterns of each binary conv (the
Sub-bit codebook size), and for the ODE / ResNet models which initializers the N steps use.
"""

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from quant_models.cnn import to_images
from quant_models.digits import load_digits_split
from quant_models.mlp import ONNX_DIR

QUANTIZERS = ("Quant", "BipolarQuant")
TOLERANCE = 1e-4


def qonnx_forward(path: Path | str, x: np.ndarray) -> np.ndarray:
    """qonnx's reference executor on the cleaned model, batched to len(x)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.cleanup import cleanup_model

    model = cleanup_model(ModelWrapper(str(path)))
    model = model.transform(ChangeBatchSize(len(x))).transform(InferShapes())
    name = model.graph.input[0].name
    return execute_onnx(model, {name: x.astype(np.float32)})[model.graph.output[0].name]


def _inits(graph: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer}


def is_power_of_two(v: np.ndarray) -> bool:
    v = np.asarray(v, np.float64)
    mantissa, _ = np.frexp(v)
    return bool(np.all(v > 0) and np.all(mantissa == 0.5))


def quant_scales(graph: onnx.ModelProto) -> list[tuple[str, str, np.ndarray | None]]:
    """(node, op, scale) of every Quant / BipolarQuant; scale None when not an initializer."""
    inits = _inits(graph)
    return [(n.name, n.op_type, inits.get(n.input[1])) for n in graph.graph.node if n.op_type in QUANTIZERS]


def conv_weights(graph: onnx.ModelProto) -> list[tuple[str, str, str, np.ndarray]]:
    """(conv node, weight quantizer op, weight initializer, weight) for every Conv whose weight
    is a quantized initializer (Conv <- Quant/BipolarQuant <- initializer)."""
    inits = _inits(graph)
    producer = {o: n for n in graph.graph.node for o in n.output}
    out = []
    for node in graph.graph.node:
        if node.op_type != "Conv":
            continue
        q = producer.get(node.input[1])
        if q is not None and q.op_type in QUANTIZERS and q.input[0] in inits:
            out.append((node.name, q.op_type, q.input[0], inits[q.input[0]]))
    return out


def kernel_patterns(graph: onnx.ModelProto) -> list[dict]:
    """Distinct sign patterns of the 3x3 kernels of every dense binary (BipolarQuant) conv."""
    result = []
    for name, quant, init, w in conv_weights(graph):
        if quant != "BipolarQuant" or w.shape[2:] != (3, 3):
            continue
        signs = np.where(w >= 0, 1, -1).reshape(-1, 9)
        result.append({"conv": name, "weight": init, "kernels": len(signs),
                       "patterns": int(len(np.unique(signs, axis=0)))})
    return result


def step_sharing(graph: onnx.ModelProto) -> dict:
    """Which initializers the residual steps use. The convs after the stem come in pairs
    (depthwise, pointwise) per step; per step: the two weight initializers and the BN inputs."""
    consumers = {}
    for n in graph.graph.node:
        for t in n.input:
            consumers.setdefault(t, []).append(n)
    convs = conv_weights(graph)[1:]  # drop the stem
    nodes = {n.name: n for n in graph.graph.node}
    steps = []
    for (dw, _, dw_init, _), (pw, _, pw_init, _) in zip(convs[::2], convs[1::2]):
        bns = [consumers[nodes[c].output[0]][0] for c in (dw, pw)]
        steps.append({"weights": (dw_init, pw_init),
                      "batchnorm": tuple(tuple(bn.input[1:]) for bn in bns)})
    inits = _inits(graph)
    first = steps[0]
    same_names = all(s["weights"] == first["weights"] and s["batchnorm"] == first["batchnorm"] for s in steps)
    same_values = all(
        all(np.array_equal(inits[a], inits[b]) for a, b in zip(s["weights"], first["weights"])) and
        all(np.array_equal(inits[a], inits[b]) for sa, sb in zip(s["batchnorm"], first["batchnorm"])
            for a, b in zip(sa, sb))
        for s in steps)
    return {"steps": len(steps), "same_initializer_names": same_names, "same_values": same_values,
            "weight_initializers": [s["weights"] for s in steps]}


def node_list(path: Path | str) -> list[str]:
    """One line per node of the file as stored: op, inputs -> outputs."""
    graph = onnx.load(str(path))
    return [f"{n.op_type:<18} {', '.join(n.input)} -> {', '.join(n.output)}" for n in graph.graph.node]


def check_model(path: Path | str, model, x: np.ndarray) -> dict:
    """qonnx reference vs the Brevitas model on x, and power-of-two scales; raises on failure."""
    from quant_models.zoo import logits

    path = Path(path)
    graph = onnx.load(str(path))
    ref = qonnx_forward(path, x)
    ours = logits(model, x)
    diff = float(np.max(np.abs(ref - ours)))
    argmax_equal = bool(np.array_equal(ref.argmax(1), ours.argmax(1)))
    scales = quant_scales(graph)
    bad = [(n, s) for n, _, s in scales if s is None or not is_power_of_two(s)]
    result = {"model": path.stem, "samples": len(x), "argmax_equal": argmax_equal, "max_abs_diff": diff,
              "quantizers": len(scales), "scales_power_of_two": not bad}
    if not argmax_equal or diff > TOLERANCE or bad:
        raise AssertionError(f"{path.name}: {result}, non-power-of-two scales: {bad}")
    return result


def loader(name: str):
    """The load_trained helper that rebuilds the Brevitas model of `name`."""
    if name.startswith(("digits_cnn_", "digits_subbit_")):
        from quant_models.cnn import load_trained_cnn
        return load_trained_cnn
    if name.startswith(("digits_odenet_", "digits_resnet_")):
        from quant_models.odenet import load_trained_odenet
        return load_trained_odenet
    raise ValueError(f"no loader for {name!r}")


PATTERNS = ("digits_cnn_*.onnx", "digits_subbit_*.onnx", "digits_odenet_*.onnx", "digits_resnet_*.onnx")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="model names (default: every CNN / Sub-bit / ODE file)")
    parser.add_argument("--folder", type=Path, default=ONNX_DIR)
    parser.add_argument("--nodes", action="append", default=[], help="also print this model's node list")
    args = parser.parse_args(argv)
    names = args.names or sorted(p.stem for pat in PATTERNS for p in args.folder.glob(pat))
    _, _, x_test, _ = load_digits_split()
    x = to_images(x_test)
    failed = 0
    for name in names:
        path = args.folder / f"{name}.onnx"
        try:
            r = check_model(path, loader(name)(name, args.folder), x)
            status = "ok"
        except AssertionError as exc:
            r, status, failed = {}, f"FAILED {exc}", failed + 1
        graph = onnx.load(str(path))
        line = f"{name:<22} {status}"
        if r:
            line += (f"  argmax equal on {r['samples']}, max |logit diff| {r['max_abs_diff']:.1e}, "
                     f"{r['quantizers']} quantizers, all scales powers of two")
        print(line)
        for i, p in enumerate(kernel_patterns(graph), 1):
            print(f"    binary conv {i} ({p['conv']}): {p['patterns']} distinct 3x3 sign patterns "
                  f"in {p['kernels']} kernels")
        if name.startswith(("digits_odenet_", "digits_resnet_")):
            s = step_sharing(graph)
            print(f"    {s['steps']} steps; same initializer names in every step: {s['same_initializer_names']}; "
                  f"same values: {s['same_values']}; step weights {s['weight_initializers']}")
    for name in args.nodes:
        print(f"\nnodes of {name}.onnx:")
        print("\n".join("  " + line for line in node_list(args.folder / f"{name}.onnx")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
