"""The compressed protocol (CLIENT_COMPRESS) on the client's connection, after login.

Each compressed packet has a 7-byte header: the payload's length (3 bytes), a sequence id
of its own, and the length before compression (3 bytes; 0: the payload is stored as it
is). Its payload is a piece of the ordinary packet stream, so the packets inside keep their
own sequence ids. The compressed sequence starts at 0 with each command the client sends
and runs on across both directions, so what myguard sends next is numbered after the last
compressed packet it read. Like the server, myguard stores payloads under
``MIN_COMPRESS_LENGTH`` bytes and compresses the rest with zlib.

The layer sits on top of TLS when both are on (packets are compressed, then encrypted):
``below`` is the TLS layer then, which what arrives goes through first and what is sent
goes through last; else ``send`` is the transport's write.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Protocol

HEADER = 7
MAX_PAYLOAD = 0xFFFFFF
MIN_COMPRESS_LENGTH = 50


class Layer(Protocol):
    """What bytes pass through on their way between packets and the transport (TLS)."""

    def unwrap(self, data: bytes) -> bytes: ...

    def write(self, data: bytes) -> None: ...


class CompressedPacketError(ValueError):
    """A compressed packet that cannot be read: the connection is unusable."""


class CompressionLayer:
    """Compresses what is written and decompresses what is received."""

    __slots__ = ("_send", "_below", "_pending", "_seq")

    def __init__(self, send: Callable[[bytes], object], below: Layer | None = None) -> None:
        self._below = below
        self._send = send if below is None else below.write
        # What arrived of compressed packets not yet whole: appended to, so a 16 MiB packet
        # arriving in 64 KiB reads is not copied again with each one.
        self._pending = bytearray()
        self._seq = 0  # the sequence id of the next compressed packet myguard sends

    def unwrap(self, data: bytes) -> bytes:
        """The packet stream carried by the complete compressed packets in what has
        arrived; an incomplete one waits for its rest."""
        if self._below is not None:
            data = self._below.unwrap(data)
        buf = self._pending
        buf += data
        out = []
        at = 0
        while len(buf) - at >= HEADER:
            length = int.from_bytes(buf[at : at + 3], "little")
            if len(buf) - at - HEADER < length:
                break
            seq = buf[at + 3]
            original = int.from_bytes(buf[at + 4 : at + 7], "little")
            payload = bytes(buf[at + HEADER : at + HEADER + length])
            out.append(payload if original == 0 else _inflate(payload, original))
            self._seq = (seq + 1) & 0xFF
            at += HEADER + length
        if at:
            del buf[:at]
        return b"".join(out)

    def write(self, data: bytes) -> None:
        """Send ``data`` (whole packets or a run of them) as compressed packets."""
        view = memoryview(data)
        for start in range(0, len(data), MAX_PAYLOAD):
            self._send(self._packet(bytes(view[start : start + MAX_PAYLOAD])))

    def _packet(self, chunk: bytes) -> bytes:
        seq = self._seq
        self._seq = (seq + 1) & 0xFF
        if len(chunk) >= MIN_COMPRESS_LENGTH:
            packed = zlib.compress(chunk)
            if len(packed) < len(chunk):
                return _header(len(packed), seq, len(chunk)) + packed
        return _header(len(chunk), seq, 0) + chunk


def _header(length: int, seq: int, original: int) -> bytes:
    return length.to_bytes(3, "little") + bytes((seq,)) + original.to_bytes(3, "little")


def _inflate(payload: bytes, original: int) -> bytes:
    """``payload`` decompressed to exactly ``original`` bytes (never more: a packet that
    says it holds 1 KiB cannot make myguard inflate a gigabyte)."""
    inflater = zlib.decompressobj()
    try:
        plain = inflater.decompress(payload, original)
        more = b"" if inflater.eof else inflater.decompress(inflater.unconsumed_tail, 1)
    except zlib.error as exc:
        raise CompressedPacketError(f"malformed compressed packet: {exc}") from None
    if len(plain) != original or more or not inflater.eof or inflater.unused_data:
        raise CompressedPacketError(
            f"malformed compressed packet: {original} bytes announced, other content found"
        )
    return plain
