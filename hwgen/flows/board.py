"""Host side of the iCEBreaker board top (rtl_templates/icebreaker_top.v): how beats travel as
UART bytes, a small runner for a serial port, and `hwgen board run` (run_board).

Each input beat is sent as ceil(payload_bits / 8) bytes, least significant byte first; each output
beat comes back the same way. report.json's "io" says how elements pack into a beat:
element e of a beat sits at payload bits [e*element_bits, (e+1)*element_bits); a signed element
is two's complement, a bipolar one is 1 for +1 and 0 for -1 (hwgen.ir.types.to_wire).

    run_board(build_dir, x, port=...) -> BoardRun: float inputs -> the build's host pre-processing
    and input quantizer (the golden model's Head, as `hwgen run`) -> the board -> the Tail -> the
    model's float outputs, and the board's integers against the golden model's.

The serial port is opened by `open_serial` (pyserial); run_on_board / run_board take
open_port=callable(port, baud, timeout_s) instead, e.g. a simulated board in the tests.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import HwgenError
from ..rtl.util import pack_ints


def beat_bytes(fmt: dict) -> int:
    return (int(fmt["payload_bits"]) + 7) // 8


def encode_beats(beats: list[int], fmt: dict) -> bytes:
    """Payload integers (non-negative, < 2**payload_bits) -> the bytes the board expects."""
    n, bits = beat_bytes(fmt), int(fmt["payload_bits"])
    out = bytearray()
    for b in beats:
        if b < 0 or b >> bits:
            raise HwgenError(f"beat value {b} does not fit {bits} payload bits")
        out += int(b).to_bytes(n, "little")
    return bytes(out)


def decode_beats(data: bytes, fmt: dict) -> list[int]:
    """Bytes from the board -> payload integers."""
    n = beat_bytes(fmt)
    if len(data) % n:
        raise HwgenError(f"{len(data)} bytes is not a whole number of {n}-byte output beats")
    mask = (1 << int(fmt["payload_bits"])) - 1
    return [int.from_bytes(data[k:k + n], "little") & mask for k in range(0, len(data), n)]


def pack_elements(elems: list[int], fmt: dict) -> list[int]:
    """One vector of integer elements -> its beats (two's complement for signed elements; bipolar
    elements, -1 / +1, as 0 / 1)."""
    bits, per = int(fmt["element_bits"]), int(fmt["elements_per_beat"])
    if len(elems) % per:
        raise HwgenError(f"{len(elems)} elements is not a whole number of {per}-element beats")
    if fmt.get("bipolar"):
        elems = [1 if int(v) > 0 else 0 for v in elems]
    return [pack_ints(elems[j:j + per], bits) for j in range(0, len(elems), per)]


def unpack_elements(beats: list[int], fmt: dict) -> list[int]:
    """Beats -> the integer elements they carry (sign-extended when the format is signed; bipolar
    as -1 / +1)."""
    bits, per = int(fmt["element_bits"]), int(fmt["elements_per_beat"])
    bipolar = bool(fmt.get("bipolar"))
    signed = bool(fmt.get("signed")) and not bipolar
    mask = (1 << bits) - 1
    out = []
    for b in beats:
        for k in range(per):
            v = (b >> (k * bits)) & mask
            if bipolar:
                v = 2 * (v & 1) - 1
            elif signed and v >> (bits - 1):
                v -= 1 << bits
            out.append(v)
    return out


def open_serial(port: str, baud: int, timeout_s: float):
    """The serial port through pyserial (serial_for_url: a device such as /dev/ttyUSB1 or COM3, or a
    URL such as socket://host:port), or a one-line HwgenError: no such port, no pyserial, busy."""
    if "://" not in port and os.name == "posix" and not os.path.exists(port):
        raise HwgenError(f"serial port {port}: no such device; is the board plugged in? (ls /dev/ttyUSB* "
                         "lists the ports; the iCEBreaker's UART is usually the second, /dev/ttyUSB1)")
    try:
        import serial  # type: ignore
    except ImportError:
        raise HwgenError("talking to the board needs pyserial: pip install pyserial") from None
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout_s)
    except (serial.SerialException, ValueError, OSError) as exc:
        why = _one_line(str(exc)) or type(exc).__name__
        raise HwgenError(f"serial port {port}: cannot open it ({why})") from None


def _one_line(text: str) -> str:
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())[:200]


def run_on_board(port: str, vectors: list[list[int]], io: dict, *, baud: int = 115200,
                 timeout_s: float = 5.0, open_port=None) -> list[list[int]]:
    """Send integer input vectors to an iCEBreaker running bitstream-ice40 and read the results.

    vectors: per inference, the core's input elements in stream order (golden integers: two's
    complement values, bipolar -1 / +1); returns the output elements the same way.
    One vector at a time, so the board never overflows. open_port(port, baud, timeout_s) opens
    the port (default open_serial: pyserial); what it returns needs write, read(n) (up to n bytes,
    fewer after timeout_s) and close.
    """
    fin, fout = io["input"], io["output"]
    n_in = int(fin["elements"])
    n_out = beat_bytes(fout) * int(fout["beats_per_inference"])
    for k, v in enumerate(vectors):
        if len(v) != n_in:
            raise HwgenError(f"input vector {k} has {len(v)} elements, the core takes {n_in}")
    ser = (open_port or open_serial)(port, baud, timeout_s)
    results = []
    try:
        if hasattr(ser, "reset_input_buffer"):  # bytes left over from an earlier, interrupted run
            ser.reset_input_buffer()
        for k, v in enumerate(vectors):
            ser.write(encode_beats(pack_elements(v, fin), fin))
            data = ser.read(n_out)
            if len(data) != n_out:
                raise HwgenError(
                    f"serial port {port}: the board answered {len(data)} of {n_out} bytes for input {k} within "
                    f"{timeout_s:g} s; is this build's bitstream loaded (hwgen synth DIR --target ice40 --stage "
                    f"bitstream, then iceprog) and its UART at {baud} baud?")
            results.append(unpack_elements(decode_beats(bytes(data), fout), fout))
    finally:
        ser.close()
    return results


@dataclass
class BoardRun:
    """What `hwgen board run` got: the model's outputs and the board's integers against golden."""

    outputs: np.ndarray                # the model's float outputs (host post-processing applied), as `hwgen run`
    core_outputs: np.ndarray           # the board's output integers [N, elements], stream order
    golden: np.ndarray                 # the golden model's output integers for the same inputs
    mismatches: list = field(default_factory=list)  # inputs whose board output differs from golden


def run_board(build_dir, x, *, port: str, baud: int = 115200, timeout_s: float = 5.0, open_port=None,
              where: str = "input", progress=None) -> BoardRun:
    """Float inputs [batch, *input shape] through build_dir's host processing and the board.

    The build directory is checked against its manifest; its golden model's Head (float
    pre-processing, input quantizer, NCHW -> NHWC) makes the integers, the board computes the core,
    the Tail (scale, NHWC -> NCHW, float post-processing) makes the outputs: the same code as
    `hwgen run`, so a correct board gives exactly its outputs. open_port: see run_on_board."""
    from ..api import check_inputs
    from ..builddir import load_build
    from ..golden import run_core, run_ops

    say = progress or (lambda *_: None)
    report, graph = load_build(build_dir)
    x = check_inputs(x, graph.head.input_shape, where=where)
    io = report.get("io") if isinstance(report, dict) else None
    head_out, core_out = graph.head.outputs[0], graph.core[-1].outputs[0]
    ints = run_ops([graph.head], {graph.input: x})[head_out]
    flat = np.asarray(ints, np.int64).reshape(len(x), -1)
    out_elems = graph.tensors[core_out].elements
    for side, n in (("input", flat.shape[1]), ("output", out_elems)):
        fmt = io.get(side) if isinstance(io, dict) else None
        if not isinstance(fmt, dict) or fmt.get("elements") != n:
            raise HwgenError(f"{build_dir}/report.json: io.{side} does not describe the graph's {n}-element "
                             f"{side}; compile again")
    n_in, n_out = (beat_bytes(io[s]) * io[s]["beats_per_inference"] for s in ("input", "output"))
    say(f"board: {len(x)} inputs to {port} at {baud} baud, {n_in} bytes out and {n_out} bytes back per inference")
    got = np.asarray(run_on_board(port, flat.tolist(), io, baud=baud, timeout_s=timeout_s, open_port=open_port),
                     np.int64).reshape(len(x), out_elems)
    values = {core_out: got.reshape(len(x), *graph.tensors[core_out].shape)}
    if graph.tail is not None:
        run_ops([graph.tail], values)
    golden = np.asarray(run_core(graph, ints)[core_out], np.int64).reshape(len(x), out_elems)
    mismatches = [k for k in range(len(x)) if not np.array_equal(got[k], golden[k])]
    return BoardRun(outputs=values[graph.output], core_outputs=got, golden=golden, mismatches=mismatches)
