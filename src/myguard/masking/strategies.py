"""Masking strategies: a MaskSpec plus a column definition → a function over cells.

A cell function takes one cell's value (None for NULL) and returns the masked value.
Text-protocol cells are the text spelling; binary-protocol cells are what the binary
row holds for the type (fixed-width integers and floats, the temporal body after its
length byte, the string content for everything sent length-encoded).

Every masked value stays valid for the column type the client sees:

* numbers: redact → 0, hash → a keyed number within the type's range, partial(N) →
  the last N digits of the integer part; email → as redact.
* DATE/DATETIME/TIMESTAMP/TIME/YEAR: redact → 1970-01-01 [00:00:00] / 00:00:00 / 1970,
  hash → a keyed value within a century of 1970; partial and email → as redact.
* strings: redact → ``****``, partial(N) → ``*`` for all but the last N characters (all
  of them when the value has N characters or fewer, so a short value is never shown
  whole), email → ``****@domain``, hash → the first 16 hex digits of HMAC-SHA256.
* binary strings/BLOBs: as strings, byte-wise. JSON: a JSON string literal (``"****"``,
  ``"<hash>"``). ENUM/SET: the empty string (the error member, always valid).
  BIT: zero bits. GEOMETRY: POINT(0 0).
* null → NULL for every type. value(TEXT) → TEXT, also for NULL, when TEXT is valid for
  the type (JSON: TEXT itself when it is JSON, else TEXT as a JSON string); otherwise
  the type's redact value. NULL stays NULL for every other strategy.

Hashes cover the value's bytes only (not the column), so equal values in different
columns still join.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import struct
from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, timedelta
from decimal import Decimal

from myguard._fast.cell_ops import (
    CONSTANT,
    EMAIL,
    HASH,
    HASH_HEX_DIGITS,
    PARTIAL,
    REPLACE,
    TEXT_MODES,
    CellOp,
)
from myguard.masking import temporal
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol import column_types as ct
from myguard.protocol.charsets import codec, max_bytes_per_char
from myguard.protocol.column_definition import ColumnDefinition, adjust_definition

Cell = Callable[[bytes | None], bytes | None]
_Mask = Callable[[bytes], bytes]

REDACTED = "****"
_EPOCH = datetime(1970, 1, 1)
_CENTURY_DAYS = 36525
_INT_BITS = {
    ct.MYSQL_TYPE_TINY: 8,
    ct.MYSQL_TYPE_SHORT: 16,
    ct.MYSQL_TYPE_INT24: 24,
    ct.MYSQL_TYPE_LONG: 32,
    ct.MYSQL_TYPE_LONGLONG: 64,
}
# SRID 0 + WKB little-endian POINT(0 0): the smallest valid geometry.
_POINT_ZERO = b"\0\0\0\0\x01\x01\0\0\0" + b"\0" * 16


class _Hasher:
    """Keyed HMAC-SHA256 with the key schedule done once."""

    __slots__ = ("_base", "key")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self._base = hmac.new(key, digestmod=hashlib.sha256)

    def digest(self, data: bytes) -> bytes:
        h = self._base.copy()
        h.update(data)
        return h.digest()

    def number(self, data: bytes) -> int:
        return int.from_bytes(self.digest(data)[:8], "big")

    def hex(self, data: bytes) -> str:
        return self.digest(data).hex()[:HASH_HEX_DIGITS]


# --- numbers -------------------------------------------------------------------------


def _int_range(col: ColumnDefinition) -> tuple[int, int]:
    bits = _INT_BITS.get(col.type, 64)
    if col.unsigned:
        return 0, (1 << bits) - 1
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def _decimal_digits(col: ColumnDefinition) -> tuple[int, int]:
    """(integer digits, fraction digits) a DECIMAL column can hold.

    column_length is the precision plus one for the point (when there are decimals) and
    one for the sign (when signed).
    """
    scale = col.decimals if col.decimals <= 30 else 0
    whole = col.column_length - scale - (1 if scale else 0) - (0 if col.unsigned else 1)
    return max(1, min(whole, 18)), scale


def _number_text(whole: int, col: ColumnDefinition) -> bytes:
    if col.value_class == ct.CLASS_DECIMAL:
        scale = _decimal_digits(col)[1]
        return (f"{whole}.{'0' * scale}" if scale else str(whole)).encode()
    return str(whole).encode()


def _number_masker(spec: MaskSpec, col: ColumnDefinition, hasher: _Hasher) -> _Mask | None:
    cls = col.value_class
    if spec.strategy == "hash":
        if cls == ct.CLASS_INTEGER:
            low, high = _int_range(col)
            span = high - max(low, 0) + 1
            return lambda v: str(hasher.number(v) % span).encode()
        if cls == ct.CLASS_DECIMAL:
            whole, scale = _decimal_digits(col)

            def hashed(v: bytes) -> bytes:
                n = hasher.number(v)
                frac = f".{n % 10**scale:0{scale}d}" if scale else ""
                return f"{(n >> 8) % 10**whole}{frac}".encode()

            return hashed
        return lambda v: str(hasher.number(v) % (1 << 24)).encode()  # exact in a FLOAT
    if spec.strategy == "partial":
        modulus = 10 ** int(spec.arg or 0)
        # abs() of a signed minimum (-128) overflows its type by one: clamp.
        high = _int_range(col)[1] if cls == ct.CLASS_INTEGER else modulus
        return lambda v: _number_text(min(abs(int(Decimal(v.decode()))) % modulus, high), col)
    return None


def _valid_number(text: bytes, col: ColumnDefinition) -> bool:
    try:
        if col.value_class == ct.CLASS_INTEGER:
            low, high = _int_range(col)
            return low <= int(text) <= high
        float(text)
    except ValueError:
        return False
    return True


# --- dates and times -----------------------------------------------------------------


def _fraction(col: ColumnDefinition) -> str:
    return "." + "0" * col.decimals if 0 < col.decimals <= 6 else ""


def _temporal_text(cls: str, moment: datetime, col: ColumnDefinition) -> bytes:
    if cls == ct.CLASS_DATE:
        return moment.strftime("%Y-%m-%d").encode()
    if cls == ct.CLASS_DATETIME:
        return (moment.strftime("%Y-%m-%d %H:%M:%S") + _fraction(col)).encode()
    if cls == ct.CLASS_TIME:
        return (moment.strftime("%H:%M:%S") + _fraction(col)).encode()
    return str(1901 + (moment - _EPOCH).days % 255 if moment != _EPOCH else 1970).encode()


def _temporal_masker(spec: MaskSpec, col: ColumnDefinition, hasher: _Hasher) -> _Mask | None:
    if spec.strategy != "hash":
        return None
    cls = col.value_class

    def hashed(v: bytes) -> bytes:
        n = hasher.number(v)
        if cls == ct.CLASS_TIME:
            moment = _EPOCH + timedelta(seconds=n % 86400)
        else:
            moment = _EPOCH + timedelta(days=n % _CENTURY_DAYS, seconds=(n >> 20) % 86400)
        return _temporal_text(cls, moment, col)

    return hashed


def _valid_temporal(text: bytes, col: ColumnDefinition) -> bool:
    cls = col.value_class
    try:
        if cls == ct.CLASS_YEAR:
            return 1901 <= int(text) <= 2155 or int(text) == 0
        if cls == ct.CLASS_TIME:
            temporal.time_binary(text)
        else:
            temporal.date_binary(text)
            # clients parse a DATE or a DATETIME by its full shape
            if (b" " in text.strip()) != (cls == ct.CLASS_DATETIME):
                return False
            date.fromisoformat(text.decode("ascii").strip()[:10])
    except (ValueError, struct.error):
        return False
    return True


# --- strings -------------------------------------------------------------------------


def _replace_with(value: bytes) -> CellOp:
    return CellOp(REPLACE, lambda v: value, value)


def _string_masker(spec: MaskSpec, col: ColumnDefinition, hasher: _Hasher) -> _Mask:
    cls = col.value_class
    charset = "latin-1" if cls == ct.CLASS_BINARY else codec(col.character_set)
    redacted = REDACTED.encode(charset)
    text = TEXT_MODES.get(charset, 0)  # 0: no compiled form, the function is called
    if spec.strategy == "partial":
        keep = int(spec.arg or 0)

        def partial(v: bytes) -> bytes:
            chars = v.decode(charset, "replace")
            shown = chars[-keep:] if keep and len(chars) > keep else ""
            return ("*" * (len(chars) - len(shown)) + shown).encode(charset, "replace")

        return CellOp(PARTIAL, partial, keep, text)
    if spec.strategy == "email" and cls == ct.CLASS_STRING:

        def email(v: bytes) -> bytes:
            chars = v.decode(charset, "replace")
            at = chars.rfind("@")
            return (REDACTED + chars[at:]).encode(charset, "replace") if at >= 0 else redacted

        return CellOp(EMAIL, email, None, text)
    if spec.strategy == "hash":
        return CellOp(HASH, lambda v: hasher.hex(v).encode(charset), hasher.key, text)
    return _replace_with(redacted)


def _json_masker(spec: MaskSpec, hasher: _Hasher) -> _Mask:
    if spec.strategy == "hash":
        return lambda v: f'"{hasher.hex(v)}"'.encode()
    return _replace_with(f'"{REDACTED}"'.encode())


def _json_value(text: str) -> bytes:
    try:
        json.loads(text)
    except ValueError:
        return json.dumps(text).encode()
    return text.encode()


# --- assembly ------------------------------------------------------------------------


def redact_value(col: ColumnDefinition) -> bytes:
    """The text spelling of the redacted value for the column's type."""
    cls = col.value_class
    if cls in (ct.CLASS_INTEGER, ct.CLASS_DECIMAL, ct.CLASS_FLOAT):
        return _number_text(0, col)
    if cls in (ct.CLASS_DATE, ct.CLASS_DATETIME, ct.CLASS_TIME, ct.CLASS_YEAR):
        return _temporal_text(cls, _EPOCH, col)
    if cls == ct.CLASS_JSON:
        return f'"{REDACTED}"'.encode()
    if cls == ct.CLASS_ENUM:
        return b""
    if cls == ct.CLASS_GEOMETRY:
        return _POINT_ZERO
    if cls == ct.CLASS_BIT:
        return b"\0" * max(1, (col.column_length + 7) // 8)
    return REDACTED.encode(codec(col.character_set) if cls == ct.CLASS_STRING else "latin-1")


def _constant(spec: MaskSpec, col: ColumnDefinition) -> bytes:
    """What value(TEXT) yields: TEXT when it is valid for the type, else the redact value."""
    text = str(spec.arg)
    cls = col.value_class
    if cls == ct.CLASS_JSON:
        return _json_value(text)
    if cls in (ct.CLASS_STRING, ct.CLASS_ENUM):
        return text.encode(codec(col.character_set), "replace")
    if cls == ct.CLASS_BINARY:
        return text.encode()
    raw = text.encode()
    if cls in (ct.CLASS_INTEGER, ct.CLASS_DECIMAL, ct.CLASS_FLOAT):
        return raw if _valid_number(raw, col) else redact_value(col)
    if cls in (ct.CLASS_DATE, ct.CLASS_DATETIME, ct.CLASS_TIME, ct.CLASS_YEAR):
        return raw if _valid_temporal(raw, col) else redact_value(col)
    return redact_value(col)


def _masker(spec: MaskSpec, col: ColumnDefinition, hasher: _Hasher) -> _Mask:
    cls = col.value_class
    found: _Mask | None = None
    if cls in (ct.CLASS_INTEGER, ct.CLASS_DECIMAL, ct.CLASS_FLOAT):
        found = _number_masker(spec, col, hasher)
    elif cls in (ct.CLASS_DATE, ct.CLASS_DATETIME, ct.CLASS_TIME, ct.CLASS_YEAR):
        found = _temporal_masker(spec, col, hasher)
    elif cls in (ct.CLASS_STRING, ct.CLASS_BINARY):
        found = _string_masker(spec, col, hasher)
    elif cls == ct.CLASS_JSON:
        found = _json_masker(spec, hasher)
    elif cls == ct.CLASS_BIT and spec.strategy == "hash":
        return lambda v: hasher.digest(v)[: len(v)]
    if found is not None:
        return found
    if cls == ct.CLASS_BIT:
        return lambda v: b"\0" * len(v)
    return _replace_with(redact_value(col))


def text_cell(spec: MaskSpec, col: ColumnDefinition, key: bytes) -> Cell:
    """The text-protocol cell function for ``spec`` on ``col``; ``key`` keys the hash."""
    if spec.strategy == "null" or col.value_class == ct.CLASS_NULL:
        return CellOp(CONSTANT, lambda v: None)
    if spec.strategy == "value":
        constant = _constant(spec, col)
        return CellOp(CONSTANT, lambda v: constant, constant)
    mask = _masker(spec, col, _Hasher(key))

    def cell(v: bytes | None) -> bytes | None:
        return None if v is None else mask(v)

    # The compiled RowMasker runs a CellOp itself, NULL kept as NULL, as ``cell`` does.
    return replace(mask, fn=cell) if isinstance(mask, CellOp) else cell


def _binary_codec(col: ColumnDefinition) -> tuple[_Mask, _Mask] | None:
    """(binary → text, text → binary) for types not sent as length-encoded strings."""
    t = col.type
    width = ct.BINARY_FIXED_WIDTH.get(t)
    if t in (ct.MYSQL_TYPE_FLOAT, ct.MYSQL_TYPE_DOUBLE):
        fmt = struct.Struct("<f" if t == ct.MYSQL_TYPE_FLOAT else "<d")
        return (
            lambda v: repr(fmt.unpack(v)[0]).encode(),
            lambda v: fmt.pack(float(v)),
        )
    if width:
        signed = not col.unsigned and t != ct.MYSQL_TYPE_YEAR
        return (
            lambda v: str(int.from_bytes(v, "little", signed=signed)).encode(),
            lambda v: int(v).to_bytes(width, "little", signed=signed),
        )
    if t in (ct.MYSQL_TYPE_TIME, ct.MYSQL_TYPE_TIME2):
        return (lambda v: temporal.time_text(v, col.decimals), temporal.time_binary)
    if t in ct.BINARY_TEMPORAL:
        with_clock = col.value_class == ct.CLASS_DATETIME
        return (lambda v: temporal.date_text(v, col.decimals, with_clock), temporal.date_binary)
    return None


def binary_cell(spec: MaskSpec, col: ColumnDefinition, key: bytes) -> Cell:
    """The binary-protocol (prepared statement) cell function for ``spec`` on ``col``."""
    text = text_cell(spec, col, key)
    pair = _binary_codec(col)
    if pair is None:
        return text
    decode, encode = pair

    def cell(v: bytes | None) -> bytes | None:
        out = text(None if v is None else decode(v))
        return None if out is None else encode(out)

    return cell


def masked_definition(spec: MaskSpec, col: ColumnDefinition) -> ColumnDefinition:
    """The column definition the client must see once ``spec`` masks ``col``."""
    if spec.strategy == "null":
        return adjust_definition(col, max_chars=None, may_be_null=True)
    cls = col.value_class
    if spec.strategy == "value":
        longest: int | None = len(_constant(spec, col).decode("utf-8", "replace"))
    elif cls in (ct.CLASS_STRING, ct.CLASS_BINARY):
        longest = {"redact": len(REDACTED), "hash": HASH_HEX_DIGITS}.get(spec.strategy)
        if spec.strategy == "email":
            # "****" replaces at least one character of the local part
            longest = col.column_length // max_bytes_per_char(col.character_set) + 3
    elif cls == ct.CLASS_JSON:
        longest = HASH_HEX_DIGITS + 2
    elif cls == ct.CLASS_INTEGER and spec.strategy == "hash":
        longest = len(str(_int_range(col)[1]))
    else:
        longest = None
    return adjust_definition(col, max_chars=longest, may_be_null=False)
