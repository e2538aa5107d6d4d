"""Text result sets that myguard itself answers with (e.g. ``MYGUARD APPROVALS``)."""

from __future__ import annotations

import struct

from myguard.protocol.codec import lenenc_int, lenenc_str
from myguard.protocol.constants import UTF8MB4_GENERAL_CI
from myguard.protocol.generic_response import eof_packet, ok_packet

MYSQL_TYPE_VAR_STRING = 0xFD


def column_definition(name: str, *, extended_metadata: bool, length: int = 1024) -> bytes:
    """A ColumnDefinition41 for a VARCHAR column with no table behind it; with
    ``extended_metadata`` (negotiated MARIADB_CLIENT_EXTENDED_METADATA), an empty one."""
    encoded = name.encode()
    return b"".join(
        (
            lenenc_str(b"def"),
            lenenc_str(b""),
            lenenc_str(b""),
            lenenc_str(b""),
            lenenc_str(encoded),
            lenenc_str(encoded),
            b"\x00" if extended_metadata else b"",
            b"\x0c",
            struct.pack("<HIBHB", UTF8MB4_GENERAL_CI, length * 4, MYSQL_TYPE_VAR_STRING, 0, 0),
            b"\x00\x00",
        )
    )


def text_resultset(
    columns: list[str],
    rows: list[list[str | None]],
    *,
    deprecate_eof: bool,
    extended_metadata: bool,
    status: int,
) -> list[bytes]:
    """The packets of a complete text result set, terminator included."""
    packets = [lenenc_int(len(columns))]
    packets += [column_definition(c, extended_metadata=extended_metadata) for c in columns]
    if not deprecate_eof:
        packets.append(eof_packet(status))
    for row in rows:
        packets.append(b"".join(b"\xfb" if v is None else lenenc_str(v.encode()) for v in row))
    packets.append(ok_packet(status=status, header=0xFE) if deprecate_eof else eof_packet(status))
    return packets
