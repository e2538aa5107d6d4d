"""Length-encoded integers and strings, and a small cursor to read packet payloads."""

from __future__ import annotations

import struct

from myguard.protocol.errors import ProtocolError

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def lenenc_int(value: int) -> bytes:
    """Encode ``value`` as a length-encoded integer."""
    if value < 0xFB:
        return bytes((value,))
    if value < 1 << 16:
        return b"\xfc" + _U16.pack(value)
    if value < 1 << 24:
        return b"\xfd" + value.to_bytes(3, "little")
    return b"\xfe" + _U64.pack(value)


def lenenc_str(value: bytes) -> bytes:
    return lenenc_int(len(value)) + value


class PayloadReader:
    """Reads fields from one packet payload; truncation raises ProtocolError."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise ProtocolError("malformed packet: truncated field")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def int1(self) -> int:
        return self._take(1)[0]

    def int2(self) -> int:
        return _U16.unpack(self._take(2))[0]

    def int3(self) -> int:
        return int.from_bytes(self._take(3), "little")

    def int4(self) -> int:
        return _U32.unpack(self._take(4))[0]

    def int8(self) -> int:
        return _U64.unpack(self._take(8))[0]

    def lenenc_int(self) -> int:
        pos = self.pos
        if pos >= len(self.data):
            raise ProtocolError("malformed packet: truncated field")
        first = self.data[pos]
        self.pos = pos + 1
        if first < 0xFB:  # the usual one-byte length, read without a slice
            return first
        if first == 0xFC:
            return self.int2()
        if first == 0xFD:
            return self.int3()
        if first == 0xFE:
            return self.int8()
        raise ProtocolError(f"malformed packet: bad length-encoded integer 0x{first:02x}")

    def fixed(self, n: int) -> bytes:
        return self._take(n)

    def lenenc_str(self) -> bytes:
        return self._take(self.lenenc_int())

    def null_str(self) -> bytes:
        end = self.data.find(b"\x00", self.pos)
        if end < 0:
            raise ProtocolError("malformed packet: unterminated string")
        chunk = self.data[self.pos : end]
        self.pos = end + 1
        return chunk

    def rest(self) -> bytes:
        chunk = self.data[self.pos :]
        self.pos = len(self.data)
        return chunk
