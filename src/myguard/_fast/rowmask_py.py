"""Row rewriting for masked result sets. Pure-Python twin of ``rowmask.pyx``.

A RowMasker is built once per result set from the column types and one cell function
per column (None: the column passes untouched). Only the cells to mask are decoded;
every other cell is copied as the raw bytes it arrived as.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from myguard.protocol.column_types import BINARY_FIXED_WIDTH, BINARY_TEMPORAL
from myguard.protocol.errors import ProtocolError

_LENENC = -1  # binary cell layouts besides fixed widths (BINARY_FIXED_WIDTH)
_TEMPORAL = -2
_MAX_PAYLOAD = 0xFFFFFF

Cell = Callable[[bytes | None], bytes | None]


def _layout(column_type: int) -> int:
    width = BINARY_FIXED_WIDTH.get(column_type)
    if width is not None:
        return width
    return _TEMPORAL if column_type in BINARY_TEMPORAL else _LENENC


def _lenenc_header(n: int) -> bytes:
    if n < 0xFB:
        return bytes((n,))
    if n < 1 << 16:
        return b"\xfc" + n.to_bytes(2, "little")
    if n < 1 << 24:
        return b"\xfd" + n.to_bytes(3, "little")
    return b"\xfe" + n.to_bytes(8, "little")


def _lenenc_cell(payload: bytes, pos: int) -> tuple[int, int]:
    """(start of the value, end of the cell) of the length-encoded string at ``pos``."""
    size = len(payload)
    if pos >= size:
        raise ProtocolError("malformed row: truncated")
    first = payload[pos]
    if first < 0xFB:
        start, length = pos + 1, first
    elif first == 0xFC:
        start, length = pos + 3, int.from_bytes(payload[pos + 1 : pos + 3], "little")
    elif first == 0xFD:
        start, length = pos + 4, int.from_bytes(payload[pos + 1 : pos + 4], "little")
    elif first == 0xFE:
        start, length = pos + 9, int.from_bytes(payload[pos + 1 : pos + 9], "little")
    else:
        raise ProtocolError("malformed row: bad length-encoded string")
    if start + length > size:
        raise ProtocolError("malformed row: truncated")
    return start, start + length


class RowMasker:
    """Rewrites the rows of one result set, masking the cells that have a cell function."""

    def __init__(self, types: Sequence[int], cells: Sequence[Cell | None]) -> None:
        if len(types) != len(cells):
            raise ValueError("one cell function (or None) per column is needed")
        self.columns = len(types)
        self.layouts = [_layout(t) for t in types]
        self.cells = list(cells)
        self.masks = any(c is not None for c in cells)

    def rewrite_text_row(self, payload: bytes) -> bytes:
        """A text-protocol row payload with the masked cells replaced."""
        if not self.masks:
            return payload
        out: list[bytes] = []
        copied = pos = 0
        for cell in self.cells:
            start = pos
            if pos < len(payload) and payload[pos] == 0xFB:
                value: bytes | None = None
                pos += 1
            else:
                value_start, pos = _lenenc_cell(payload, pos)
                value = payload[value_start:pos]
            if cell is None:
                continue
            new = cell(value)
            out.append(payload[copied:start])
            out.append(b"\xfb" if new is None else _lenenc_header(len(new)) + new)
            copied = pos
        if pos != len(payload):
            raise ProtocolError("malformed row: more cells than columns")
        out.append(payload[copied:])
        return b"".join(out)

    def rewrite_binary_row(self, payload: bytes) -> bytes:
        """A binary-protocol row payload with the masked cells replaced.

        A cell that becomes NULL gets its NULL-bitmap bit (offset 2) set and no bytes; a
        NULL that becomes a value (value()) gets its bit cleared.
        """
        if not self.masks:
            return payload
        size = len(payload)
        body = 1 + (self.columns + 9) // 8
        if size < body or payload[0] != 0:
            raise ProtocolError("malformed binary row")
        bitmap = bytearray(payload[1:body])
        out: list[bytes] = []
        copied = pos = body
        for i, cell in enumerate(self.cells):
            bit = i + 2
            start = pos
            null = bitmap[bit >> 3] & (1 << (bit & 7))
            layout = self.layouts[i]
            if null:
                value: bytes | None = None
            elif layout >= 0:
                pos += layout
                value_start = start
            elif layout == _TEMPORAL:
                if pos >= size:
                    raise ProtocolError("malformed binary row: truncated")
                value_start = pos + 1
                pos = value_start + payload[pos]
            else:
                value_start, pos = _lenenc_cell(payload, pos)
            if pos > size:
                raise ProtocolError("malformed binary row: truncated")
            if cell is None:
                continue
            if not null:
                value = payload[value_start:pos]
            new = cell(value)
            out.append(payload[copied:start])
            copied = pos
            if new is None:
                bitmap[bit >> 3] |= 1 << (bit & 7)
                continue
            bitmap[bit >> 3] &= ~(1 << (bit & 7)) & 0xFF
            if layout >= 0:
                if len(new) != layout:
                    raise ValueError(f"masked value of column {i} must be {layout} bytes")
                out.append(new)
            elif layout == _TEMPORAL:
                if len(new) > 0xFF:
                    raise ValueError(f"masked value of column {i} is not a temporal value")
                out.append(bytes((len(new),)) + new)
            else:
                out.append(_lenenc_header(len(new)) + new)
        if pos != size:
            raise ProtocolError("malformed binary row: more bytes than columns")
        out.append(payload[copied:])
        return b"\0" + bytes(bitmap) + b"".join(out)

    def rewrite_packets(self, buf: bytes, binary: bool) -> bytes:
        """Rewrite a chunk of complete packets: rows are masked, sequence ids kept.

        Packets starting with 0xFE or 0xFF (EOF/OK terminators, ERR) and empty packets
        pass through unchanged. Rows of 16 MiB or more, before or after masking, are
        refused: they span several packets whose count masking could change, and that
        would renumber every packet after them.
        """
        if not self.masks:
            return buf
        rewrite = self.rewrite_binary_row if binary else self.rewrite_text_row
        out: list[bytes] = []
        pos, size = 0, len(buf)
        while pos < size:
            if size - pos < 4:
                raise ProtocolError("incomplete packet in a row chunk")
            length = buf[pos] | (buf[pos + 1] << 8) | (buf[pos + 2] << 16)
            end = pos + 4 + length
            if end > size:
                raise ProtocolError("incomplete packet in a row chunk")
            if length == _MAX_PAYLOAD:
                raise ProtocolError("masking rows of 16 MiB or more is not supported")
            payload = buf[pos + 4 : end]
            if length == 0 or payload[0] >= 0xFE:
                out.append(buf[pos:end])
            else:
                new = rewrite(payload)
                if len(new) >= _MAX_PAYLOAD:
                    raise ProtocolError("a masked row would reach 16 MiB; not supported")
                out.append(len(new).to_bytes(3, "little") + buf[pos + 3 : pos + 4] + new)
            pos = end
        return b"".join(out)
