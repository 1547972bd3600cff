"""`hwgen board run DIR --port P --input X.npy`: float inputs through DIR's host processing, the
board (here a simulated iCEBreaker UART that answers every input with the golden model's output
beats) and back, equal to `hwgen run` on the same model and input, bit for bit; and every way it
can fail is one line with exit code 2.

The simulated board decodes the bytes and encodes its answer without hwgen.flows.board: beats as
ceil(payload_bits / 8) little-endian bytes (rtl_templates/icebreaker_top.v), elements unpacked
with hwgen.ir.types.from_wire, outputs packed with sim.vectors.pack_vector_beats.
"""
from __future__ import annotations

import sys

import numpy as np
import pytest
from onnx_builders import GraphBuilder, bipolar_cnn, random_cnn, random_mlp

import hwgen
import hwgen.flows.board as board
from hwgen.builddir import load_build
from hwgen.cli import main
from hwgen.golden import run, run_core
from hwgen.ir.types import from_wire
from sim.vectors import input_dtype, output_dtype, pack_vector_beats


def signed_mlp(path) -> str:
    """Signed 4-bit input (two's complement on the wire), signed output."""
    rng = np.random.default_rng(3)
    b = GraphBuilder(8, name="smlp")
    b.quant(0.25, 4, signed=True)
    b.linear(rng.integers(-7, 8, (6, 8)), 0.5)
    b.op("Relu")
    b.quant(0.5, 3, signed=False)
    b.linear(rng.integers(-3, 4, (3, 6)), 0.25, bias=rng.normal(size=3))
    return b.save(path)


MODELS = {  # unsigned input, one beat | NHWC feature map, 64 beats | bipolar input | signed input
    "mlp": lambda p: random_mlp(p),
    "cnn": lambda p: random_cnn(p),
    "bipolar": lambda p: bipolar_cnn(p, cin=2, cout=4, size=4),
    "signed": signed_mlp,
}


class SimulatedBoard:
    """A serial port whose far end is the board top: every whole inference of input bytes is
    answered with the golden model's output bytes for it (flip: XOR the first output byte of
    these inferences; silent: answer nothing)."""

    def __init__(self, build_dir, *, flip=(), silent=False):
        report, self.graph = load_build(build_dir)
        self.fin, self.fout = report["io"]["input"], report["io"]["output"]
        self.in_bytes = (self.fin["payload_bits"] + 7) // 8
        self.out_bytes = (self.fout["payload_bits"] + 7) // 8
        self.flip, self.silent = set(flip), silent
        self.rx, self.tx = bytearray(), bytearray()
        self.inferences, self.closed = 0, False

    def _elements(self, data: bytes) -> np.ndarray:
        bits, per = self.fin["element_bits"], self.fin["elements_per_beat"]
        wire = []
        for k in range(0, len(data), self.in_bytes):
            beat = int.from_bytes(data[k:k + self.in_bytes], "little")
            wire += [(beat >> (e * bits)) & ((1 << bits) - 1) for e in range(per)]
        return from_wire(np.array(wire, np.int64), input_dtype(self.graph))

    def write(self, data: bytes) -> int:
        self.rx += data
        frame = self.in_bytes * self.fin["beats_per_inference"]
        while len(self.rx) >= frame:
            ints = self._elements(bytes(self.rx[:frame]))
            del self.rx[:frame]
            shape = self.graph.tensors[self.graph.head.outputs[0]].shape
            y = run_core(self.graph, ints.reshape(1, *shape))[self.graph.core[-1].outputs[0]].reshape(1, -1)
            beats = pack_vector_beats(y, output_dtype(self.graph), self.fout["elements_per_beat"])[0]
            answer = bytearray(b"".join(int(b).to_bytes(self.out_bytes, "little") for b in beats))
            if self.inferences in self.flip:
                answer[0] ^= 1
            if not self.silent:
                self.tx += answer
            self.inferences += 1
        return len(data)

    def read(self, n: int) -> bytes:
        out = bytes(self.tx[:n])
        del self.tx[:n]
        return out

    def close(self):
        self.closed = True


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    """name -> (model file, build directory), compiled on first use."""
    cache = {}

    def get(name):
        if name not in cache:
            d = tmp_path_factory.mktemp(name)
            model = MODELS[name](str(d / f"{name}.onnx"))
            hwgen.compile(model).write(d / "build")
            cache[name] = (model, d / "build")
        return cache[name]
    return get


def inputs(model_dir_shape, seed, n=6):
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 1.0, (n, *model_dir_shape)).astype(np.float32)


def cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name", list(MODELS))
def test_board_run_equals_hwgen_run(builds, tmp_path, capsys, monkeypatch, name):
    model, d = builds(name)
    boards = []

    def open_port(port, baud, timeout_s):
        assert (port, baud, timeout_s) == ("/dev/ttyUSB1", 115200, 5.0)
        boards.append(SimulatedBoard(d))
        return boards[-1]

    monkeypatch.setattr(board, "open_serial", open_port)
    x = inputs(load_build(d)[1].head.input_shape, seed=len(name))
    np.save(tmp_path / "x.npy", x)
    code, out, err = cli(capsys, "board", "run", d, "--port", "/dev/ttyUSB1", "--input", tmp_path / "x.npy",
                         "--output", tmp_path / "board.npy")
    assert code == 0 and err == "", (out, err)
    assert f"ran {len(x)} inputs on the board at /dev/ttyUSB1" in out
    assert f"the board's outputs equal the golden model's on all {len(x)} inputs" in out
    assert len(boards) == 1 and boards[0].closed and boards[0].inferences == len(x)
    assert boards[0].rx == bytearray() and boards[0].tx == bytearray()

    code, out, err = cli(capsys, "run", model, "--input", tmp_path / "x.npy", "--output", tmp_path / "run.npy")
    assert code == 0, err
    got, want = np.load(tmp_path / "board.npy"), np.load(tmp_path / "run.npy")
    assert got.dtype == want.dtype and got.shape == want.shape == (len(x), *want.shape[1:])
    assert np.array_equal(got, want)


def test_run_board_api_and_a_wrong_answer(builds, tmp_path, capsys, monkeypatch):
    """open_port= as a parameter; a board that gets one bit wrong is found and named (exit 1)."""
    _, d = builds("mlp")
    x = inputs((16,), seed=5, n=4)
    res = board.run_board(d, x, port="sim", open_port=lambda *a: SimulatedBoard(d))
    assert res.mismatches == [] and np.array_equal(res.core_outputs, res.golden)
    assert np.array_equal(res.outputs, run(load_build(d)[1], x))  # the golden model, as `hwgen run`
    assert res.core_outputs.shape == (4, 8) and res.core_outputs.dtype == np.int64

    res = board.run_board(d, x, port="sim", open_port=lambda *a: SimulatedBoard(d, flip=[2]))
    assert res.mismatches == [2]
    assert np.array_equal(res.core_outputs[[0, 1, 3]], res.golden[[0, 1, 3]])
    assert (res.core_outputs[2] != res.golden[2]).sum() == 1

    monkeypatch.setattr(board, "open_serial", lambda *a: SimulatedBoard(d, flip=[1, 3]))
    np.save(tmp_path / "x.npy", x)
    code, out, err = cli(capsys, "board", "run", d, "--port", "sim", "--input", tmp_path / "x.npy")
    assert code == 1
    assert err.strip().splitlines() == ["hwgen: board run: 2 of 4 inputs gave outputs that differ from the golden "
                                        "model's (first: input 1)"]
    assert "ran 4 inputs on the board at sim: output [4, 8]" in out  # printed, as no --output was given


def assert_one_line(code, err, *phrases):
    assert code == 2, (code, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for p in phrases:
        assert p in lines[0], (p, lines[0])


def test_no_such_port(builds, tmp_path, capsys):
    _, d = builds("mlp")
    np.save(tmp_path / "x.npy", inputs((16,), seed=1))
    code, _, err = cli(capsys, "board", "run", d, "--port", tmp_path / "ttyUSB9", "--input", tmp_path / "x.npy")
    assert_one_line(code, err, f"serial port {tmp_path / 'ttyUSB9'}: no such device", "is the board plugged in?")


def test_pyserial_missing(builds, tmp_path, capsys, monkeypatch):
    _, d = builds("mlp")
    np.save(tmp_path / "x.npy", inputs((16,), seed=1))
    port = tmp_path / "ttyUSB1"
    port.write_text("")  # a port that exists
    monkeypatch.setitem(sys.modules, "serial", None)  # `import serial` raises ImportError
    code, _, err = cli(capsys, "board", "run", d, "--port", port, "--input", tmp_path / "x.npy")
    assert_one_line(code, err, "talking to the board needs pyserial: pip install pyserial")


def test_wrong_input_shape_and_missing_build(builds, tmp_path, capsys, monkeypatch):
    _, d = builds("mlp")
    monkeypatch.setattr(board, "open_serial", lambda *a: pytest.fail("must not open the port"))
    np.save(tmp_path / "x.npy", np.zeros((3, 15), np.float32))
    code, _, err = cli(capsys, "board", "run", d, "--port", "sim", "--input", tmp_path / "x.npy")
    assert_one_line(code, err, "x.npy: input shape [3, 15] does not match the model input [batch, 16]")
    code, _, err = cli(capsys, "board", "run", tmp_path / "none", "--port", "sim", "--input", tmp_path / "x.npy")
    assert_one_line(code, err, "no such build directory")
    code, _, err = cli(capsys, "board", "run", d, "--port", "sim", "--input", tmp_path / "x.npy", "--baud", "0")
    assert_one_line(code, err, "--baud: must be an integer >= 1")
    code, _, err = cli(capsys, "board", "--port", "sim")
    assert_one_line(code, err, "hwgen board: error:")


def test_silent_board_is_a_timeout(builds, tmp_path, capsys, monkeypatch):
    _, d = builds("mlp")
    sim = SimulatedBoard(d, silent=True)
    monkeypatch.setattr(board, "open_serial", lambda *a: sim)
    np.save(tmp_path / "x.npy", inputs((16,), seed=1))
    code, _, err = cli(capsys, "board", "run", d, "--port", "sim", "--input", tmp_path / "x.npy",
                       "--baud", 9600, "--timeout", 0.5)
    fout_bytes = (SimulatedBoard(d).fout["payload_bits"] + 7) // 8
    assert_one_line(code, err, f"serial port sim: the board answered 0 of {fout_bytes} bytes for input 0 within 0.5 s",
                    "at 9600 baud")
    assert sim.closed


@pytest.mark.parametrize("fmt", [
    {"element_bits": 1, "elements_per_beat": 3, "payload_bits": 3, "signed": False, "bipolar": True},
    {"element_bits": 4, "elements_per_beat": 2, "payload_bits": 8, "signed": True, "bipolar": False},
    {"element_bits": 3, "elements_per_beat": 3, "payload_bits": 9, "signed": False, "bipolar": False},
])
def test_pack_unpack_round_trip(fmt):
    rng = np.random.default_rng(fmt["element_bits"])
    bits = fmt["element_bits"]
    if fmt["bipolar"]:
        elems = rng.choice([-1, 1], 12).tolist()
    elif fmt["signed"]:
        elems = rng.integers(-(1 << (bits - 1)), 1 << (bits - 1), 12).tolist()
    else:
        elems = rng.integers(0, 1 << bits, 12).tolist()
    beats = board.pack_elements(elems, fmt)
    assert all(0 <= b < (1 << fmt["payload_bits"]) for b in beats)
    data = board.encode_beats(beats, fmt)
    assert len(data) == len(beats) * ((fmt["payload_bits"] + 7) // 8)
    assert board.unpack_elements(board.decode_beats(data, fmt), fmt) == elems
