"""COM_STMT_EXECUTE parameters, decoded to printable text for approvals and audit."""

from __future__ import annotations

import struct

from myguard.protocol.codec import PayloadReader

# Column types, as named in the protocol documentation.
MYSQL_TYPE_DECIMAL = 0x00
MYSQL_TYPE_TINY = 0x01
MYSQL_TYPE_SHORT = 0x02
MYSQL_TYPE_LONG = 0x03
MYSQL_TYPE_FLOAT = 0x04
MYSQL_TYPE_DOUBLE = 0x05
MYSQL_TYPE_NULL = 0x06
MYSQL_TYPE_TIMESTAMP = 0x07
MYSQL_TYPE_LONGLONG = 0x08
MYSQL_TYPE_INT24 = 0x09
MYSQL_TYPE_DATE = 0x0A
MYSQL_TYPE_TIME = 0x0B
MYSQL_TYPE_DATETIME = 0x0C
MYSQL_TYPE_YEAR = 0x0D

_UNSIGNED_FLAG = 0x80
_INTS = {
    MYSQL_TYPE_TINY: (1, "<b", "<B"),
    MYSQL_TYPE_SHORT: (2, "<h", "<H"),
    MYSQL_TYPE_YEAR: (2, "<h", "<H"),
    MYSQL_TYPE_LONG: (4, "<i", "<I"),
    MYSQL_TYPE_INT24: (4, "<i", "<I"),
    MYSQL_TYPE_LONGLONG: (8, "<q", "<Q"),
}
_TEMPORAL = (MYSQL_TYPE_DATE, MYSQL_TYPE_DATETIME, MYSQL_TYPE_TIMESTAMP)
MAX_SHOWN = 256  # characters of one parameter kept for display


def bound_types(
    payload: bytes, num_params: int, previous_types: list[tuple[int, int]]
) -> list[tuple[int, int]]:
    """The parameter types a COM_STMT_EXECUTE leaves in force (see ``parse_execute_params``)."""
    flag_at = 10 + (num_params + 7) // 8
    if not num_params or len(payload) <= flag_at or payload[flag_at] != 1:
        return previous_types
    types = payload[flag_at + 1 : flag_at + 1 + 2 * num_params]
    return [(types[i], types[i + 1]) for i in range(0, len(types) - 1, 2)]


def parse_execute_params(
    payload: bytes, num_params: int, previous_types: list[tuple[int, int]] | None
) -> tuple[list[str], list[tuple[int, int]]]:
    """Printable parameter values of a COM_STMT_EXECUTE, and the types to reuse next time.

    Types are sent only when ``new_params_bound_flag`` is set; otherwise the client
    reuses those of the previous execution. Parameters sent with SEND_LONG_DATA show as
    ``<long data>``.
    """
    if num_params == 0:
        return [], previous_types or []
    r = PayloadReader(payload, 10)  # command, stmt id, flags, iteration count
    null_bitmap = r.fixed((num_params + 7) // 8)
    types = previous_types or []
    if r.remaining() and r.int1() == 1:
        types = [(r.int1(), r.int1()) for _ in range(num_params)]
    values = []
    for i, (kind, flags) in enumerate(types or [(MYSQL_TYPE_NULL, 0)] * num_params):
        if null_bitmap[i // 8] & (1 << (i % 8)) or kind == MYSQL_TYPE_NULL:
            values.append("NULL")
        elif not r.remaining():
            values.append("<long data>")
        else:
            values.append(_value(r, kind, flags & _UNSIGNED_FLAG)[:MAX_SHOWN])
    return values, types


def _value(r: PayloadReader, kind: int, unsigned: int) -> str:
    if kind in _INTS:
        size, signed_fmt, unsigned_fmt = _INTS[kind]
        return str(struct.unpack(unsigned_fmt if unsigned else signed_fmt, r.fixed(size))[0])
    if kind == MYSQL_TYPE_FLOAT:
        return repr(struct.unpack("<f", r.fixed(4))[0])
    if kind == MYSQL_TYPE_DOUBLE:
        return repr(struct.unpack("<d", r.fixed(8))[0])
    if kind in _TEMPORAL:
        return _datetime(r.fixed(r.int1()))
    if kind == MYSQL_TYPE_TIME:
        return _time(r.fixed(r.int1()))
    raw = r.lenenc_str()
    text = raw.decode("utf-8", "replace")
    return "'" + text.replace("'", "''") + "'"


def _datetime(b: bytes) -> str:
    if not b:
        return "'0000-00-00'"
    year, month, day = struct.unpack("<HBB", b[:4])
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if len(b) >= 7:
        text += f" {b[4]:02d}:{b[5]:02d}:{b[6]:02d}"
    if len(b) == 11:
        text += f".{struct.unpack('<I', b[7:11])[0]:06d}"
    return f"'{text}'"


def _time(b: bytes) -> str:
    if not b:
        return "'00:00:00'"
    negative, days, hours, minutes, seconds = struct.unpack("<BIBBB", b[:8])
    text = f"{'-' if negative else ''}{days * 24 + hours:02d}:{minutes:02d}:{seconds:02d}"
    if len(b) == 12:
        text += f".{struct.unpack('<I', b[8:12])[0]:06d}"
    return f"'{text}'"
