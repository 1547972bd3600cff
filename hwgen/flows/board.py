"""Host side of the iCEBreaker board top (rtl_templates/icebreaker_top.v): how beats travel as
UART bytes, and a small runner for a serial port.

Each input beat is sent as ceil(payload_bits / 8) bytes, least significant byte first; each output
beat comes back the same way. report.json's "io" says how elements pack into a beat:
element e of a beat sits at payload bits [e*element_bits, (e+1)*element_bits).
"""
from __future__ import annotations

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
    """One vector of integer elements -> its beats (two's complement for signed elements)."""
    bits, per = int(fmt["element_bits"]), int(fmt["elements_per_beat"])
    if len(elems) % per:
        raise HwgenError(f"{len(elems)} elements is not a whole number of {per}-element beats")
    return [pack_ints(elems[j:j + per], bits) for j in range(0, len(elems), per)]


def unpack_elements(beats: list[int], fmt: dict) -> list[int]:
    """Beats -> the integer elements they carry (sign-extended when the format is signed)."""
    bits, per = int(fmt["element_bits"]), int(fmt["elements_per_beat"])
    signed = bool(fmt.get("signed")) and not fmt.get("bipolar")
    mask = (1 << bits) - 1
    out = []
    for b in beats:
        for k in range(per):
            v = (b >> (k * bits)) & mask
            if signed and v >> (bits - 1):
                v -= 1 << bits
            out.append(v)
    return out


def run_on_board(port: str, vectors: list[list[int]], io: dict, *, baud: int = 115200,
                 timeout_s: float = 5.0) -> list[list[int]]:
    """Send integer input vectors to an iCEBreaker running bitstream-ice40 and read the results.

    Needs pyserial (pip install pyserial); one vector at a time, so the board never overflows.
    """
    try:
        import serial  # type: ignore
    except ImportError:
        raise HwgenError("talking to the board needs pyserial: pip install pyserial") from None
    fin, fout = io["input"], io["output"]
    n_out = beat_bytes(fout) * int(fout["beats_per_inference"])
    results = []
    with serial.Serial(port, baud, timeout=timeout_s) as ser:
        for v in vectors:
            ser.write(encode_beats(pack_elements(v, fin), fin))
            data = ser.read(n_out)
            if len(data) != n_out:
                raise HwgenError(f"board answered {len(data)} of {n_out} bytes within {timeout_s} s")
            results.append(unpack_elements(decode_beats(data, fout), fout))
    return results
