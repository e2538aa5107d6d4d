"""OK, ERR and EOF packets (the "generic response packets" of the protocol)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from myguard.protocol.codec import PayloadReader, lenenc_int
from myguard.protocol.constants import EOF_HEADER, ERR_HEADER, OK_HEADER, Capability

_ERR = struct.Struct("<BH")


def ok_packet(
    *,
    affected_rows: int = 0,
    last_insert_id: int = 0,
    status: int = 0,
    warnings: int = 0,
    info: bytes = b"",
    header: int = OK_HEADER,
) -> bytes:
    return (
        bytes((header,))
        + lenenc_int(affected_rows)
        + lenenc_int(last_insert_id)
        + struct.pack("<HH", status, warnings)
        + info
    )


def eof_packet(status: int = 0, warnings: int = 0) -> bytes:
    return struct.pack("<BHH", EOF_HEADER, warnings, status)


def err_packet(code: int, sqlstate: str, message: str) -> bytes:
    # Some clients keep only 512 bytes of a message; keep the start, which says the most.
    text = message.encode("utf-8", "replace")[:512]
    return _ERR.pack(ERR_HEADER, code) + b"#" + sqlstate.encode("ascii")[:5].ljust(5, b"0") + text


@dataclass(frozen=True, slots=True)
class OkPacket:
    affected_rows: int
    last_insert_id: int
    status: int
    warnings: int


def parse_ok(payload: bytes) -> OkPacket:
    """Parse an OK packet (header 0x00, or 0xFE when it ends a result set)."""
    r = PayloadReader(payload, 1)
    affected = r.lenenc_int()
    insert_id = r.lenenc_int()
    status = r.int2() if r.remaining() >= 2 else 0
    warnings = r.int2() if r.remaining() >= 2 else 0
    return OkPacket(affected, insert_id, status, warnings)


def eof_status(payload: bytes) -> int:
    """Status flags of a classic 5-byte EOF packet."""
    return payload[3] | (payload[4] << 8) if len(payload) >= 5 else 0


@dataclass(frozen=True, slots=True)
class ErrPacket:
    code: int
    sqlstate: str
    message: str


def parse_err(payload: bytes, capabilities: int = Capability.CLIENT_PROTOCOL_41) -> ErrPacket:
    code = payload[1] | (payload[2] << 8) if len(payload) >= 3 else 0
    rest = payload[3:]
    state = "HY000"
    if capabilities & Capability.CLIENT_PROTOCOL_41 and rest[:1] == b"#":
        state = rest[1:6].decode("ascii", "replace")
        rest = rest[6:]
    return ErrPacket(code, state, rest.decode("utf-8", "replace"))
