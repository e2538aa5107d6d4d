"""ColumnDefinition41 packets: parse, build, and adjust for masked values."""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

from myguard.protocol.charsets import max_bytes_per_char
from myguard.protocol.codec import PayloadReader, lenenc_int, lenenc_str
from myguard.protocol.column_types import NOT_NULL_FLAG, UNSIGNED_FLAG, value_class
from myguard.protocol.constants import Capability
from myguard.protocol.errors import ProtocolError

_FIXED = struct.Struct("<HIBHB2s")  # character_set, column_length, type, flags, decimals, filler
_FIXED_LENGTH = 0x0C


@dataclass(frozen=True, slots=True)
class ColumnDefinition:
    """One ColumnDefinition41 packet; field names follow the MySQL protocol documentation.

    ``extra`` keeps whatever follows the fixed fields (the default value of a
    COM_FIELD_LIST answer) so that a parsed packet builds back byte for byte.
    ``extended_metadata``: MariaDB's extended metadata (type byte + lenenc value pairs,
    e.g. format=json), which follows org_name when MARIADB_CLIENT_EXTENDED_METADATA is
    negotiated; None when it is not (the field is then absent from the packet).
    """

    catalog: bytes = b"def"
    schema: bytes = b""
    table: bytes = b""
    org_table: bytes = b""
    name: bytes = b""
    org_name: bytes = b""
    character_set: int = 0
    column_length: int = 0
    type: int = 0
    flags: int = 0
    decimals: int = 0
    extra: bytes = b""
    extended_metadata: bytes | None = None

    @property
    def value_class(self) -> str:
        return value_class(self.type, self.flags, self.character_set)

    @property
    def unsigned(self) -> bool:
        return bool(self.flags & UNSIGNED_FLAG)


def parse_column_definition(payload: bytes, capabilities: int = 0) -> ColumnDefinition:
    """Parse a ColumnDefinition41 payload (without the 4-byte packet header) sent under
    the negotiated ``capabilities``."""
    reader = PayloadReader(payload)
    strings = [reader.lenenc_str() for _ in range(6)]
    extended = None
    if capabilities & Capability.MARIADB_CLIENT_EXTENDED_METADATA:
        extended = reader.lenenc_str()
    if reader.lenenc_int() != _FIXED_LENGTH:
        raise ProtocolError("malformed column definition: bad length of fixed fields")
    charset, length, col_type, flags, decimals, _ = _FIXED.unpack(reader.fixed(_FIXED.size))
    return ColumnDefinition(
        *strings,
        character_set=charset,
        column_length=length,
        type=col_type,
        flags=flags,
        decimals=decimals,
        extra=reader.rest(),
        extended_metadata=extended,
    )


def build_column_definition(col: ColumnDefinition) -> bytes:
    """The ColumnDefinition41 payload for ``col`` (without the packet header)."""
    head = b"".join(
        lenenc_str(s)
        for s in (col.catalog, col.schema, col.table, col.org_table, col.name, col.org_name)
    )
    if col.extended_metadata is not None:
        head += lenenc_str(col.extended_metadata)
    fixed = _FIXED.pack(
        col.character_set, col.column_length, col.type, col.flags, col.decimals, b"\0\0"
    )
    return head + lenenc_int(_FIXED_LENGTH) + fixed + col.extra


def adjust_definition(
    col: ColumnDefinition, *, max_chars: int | None, may_be_null: bool
) -> ColumnDefinition:
    """The definition the client must see once a column's values are masked.

    ``max_chars``: the longest masked value in characters (None: lengths unchanged);
    column_length counts bytes in the result charset, so it grows to fit that many of
    the widest characters — clients size buffers from it. ``may_be_null``: the strategy
    can turn values into NULL, so NOT_NULL_FLAG must go. Extended metadata is dropped:
    a masked JSON or UUID value is no longer one.
    """
    length = col.column_length
    if max_chars is not None:
        length = max(length, min(max_chars * max_bytes_per_char(col.character_set), 0xFFFFFFFF))
    flags = col.flags & ~NOT_NULL_FLAG if may_be_null else col.flags
    extended = None if col.extended_metadata is None else b""
    if (length, flags, extended) == (col.column_length, col.flags, col.extended_metadata):
        return col
    return replace(col, column_length=length, flags=flags, extended_metadata=extended)
