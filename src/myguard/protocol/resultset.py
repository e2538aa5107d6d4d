"""Text result sets that myguard itself answers with (e.g. ``MYGUARD APPROVALS``), in the
client's character set (as the server converts to ``character_set_results``)."""

from __future__ import annotations

import struct
from typing import NamedTuple

from myguard.protocol.charsets import collation_of
from myguard.protocol.codec import lenenc_int, lenenc_str
from myguard.protocol.column_types import BINARY_CHARSET, BINARY_FLAG, MYSQL_TYPE_VAR_STRING
from myguard.protocol.generic_response import eof_packet, ok_packet


class Column(NamedTuple):
    """A column of myguard's own answer; a plain name is a VARCHAR(1024) one."""

    name: str
    type: int = MYSQL_TYPE_VAR_STRING
    length: int = 1024 * 4  # in bytes, as the protocol counts it
    flags: int = 0
    decimals: int = 0


def column_definition(
    column: str | Column, *, extended_metadata: bool, codec: str = "utf-8"
) -> bytes:
    """A ColumnDefinition41 for a column with no table behind it, its name and text in
    ``codec``'s character set; with ``extended_metadata`` (negotiated
    MARIADB_CLIENT_EXTENDED_METADATA), an empty one."""
    if isinstance(column, str):
        column = Column(column)
    encoded = column.name.encode(codec, "replace")
    charset = BINARY_CHARSET if column.flags & BINARY_FLAG else collation_of(codec)
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
            struct.pack(
                "<HIBHB", charset, column.length, column.type, column.flags, column.decimals
            ),
            b"\x00\x00",
        )
    )


def text_resultset(
    columns: list[str | Column],
    rows: list[list[str | None]],
    *,
    deprecate_eof: bool,
    extended_metadata: bool,
    status: int,
    codec: str = "utf-8",
) -> list[bytes]:
    """The packets of a complete text result set, terminator included, its text in
    ``codec``'s character set (what it cannot hold becomes ``?``, as the server's
    conversion does)."""
    packets = [lenenc_int(len(columns))]
    packets += [
        column_definition(c, extended_metadata=extended_metadata, codec=codec) for c in columns
    ]
    if not deprecate_eof:
        packets.append(eof_packet(status))
    for row in rows:
        packets.append(
            b"".join(b"\xfb" if v is None else lenenc_str(v.encode(codec, "replace")) for v in row)
        )
    packets.append(ok_packet(status=status, header=0xFE) if deprecate_eof else eof_packet(status))
    return packets
