"""A raw-socket client that keeps every byte it receives, for the masking end-to-end corpus.

It speaks just enough of the protocol to read whole responses: text result sets
(COM_QUERY), prepared statements (COM_STMT_PREPARE / EXECUTE, binary rows, read-only
cursors with COM_STMT_FETCH), OK and ERR. ``received`` holds the exact bytes off the
socket, headers included, so a test can scan them for values that must not be there.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass, field

from myguard.protocol.codec import PayloadReader
from myguard.protocol.column_definition import ColumnDefinition, parse_column_definition
from myguard.protocol.column_types import BINARY_FIXED_WIDTH, BINARY_TEMPORAL
from myguard.protocol.constants import Capability, ServerStatus
from myguard.protocol.generic_response import ErrPacket, eof_status, parse_err, parse_ok
from raw_client import RawClient

MORE = ServerStatus.SERVER_MORE_RESULTS_EXISTS
CURSOR = ServerStatus.SERVER_STATUS_CURSOR_EXISTS
LAST_ROW = ServerStatus.SERVER_STATUS_LAST_ROW_SENT
COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE, COM_STMT_CLOSE, COM_STMT_FETCH = (
    0x03, 0x16, 0x17, 0x19, 0x1C,
)  # fmt: skip
CURSOR_TYPE_READ_ONLY = 1
REFUSED = 4701

Cell = bytes | None


class _Recording:
    """A socket whose received bytes are also appended to ``log``."""

    def __init__(self, sock, log: bytearray) -> None:
        self._sock = sock
        self._log = log

    def recv(self, n: int) -> bytes:
        data = self._sock.recv(n)
        self._log += data
        return data

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


@dataclass
class Result:
    """One result of a command: an ERR, an OK, or a result set (columns and rows)."""

    error: ErrPacket | None = None
    columns: list[ColumnDefinition] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    status: int = 0

    @property
    def names(self) -> list[str]:
        return [c.name.decode() for c in self.columns]

    def column(self, name: str) -> list[Cell]:
        i = self.names.index(name)
        return [row[i] for row in self.rows]


class WireClient(RawClient):
    def __init__(self, port: int) -> None:
        super().__init__(port)
        self.received = bytearray()
        self.sock = _Recording(self.sock, self.received)
        self.deprecate_eof = False

    def login(
        self,
        user: str,
        password: str,
        database: str | None = None,
        *,
        extended_metadata: bool = False,
    ) -> bytes:
        reply = super().login(user, password, database, extended_metadata=extended_metadata)
        assert reply[:1] == b"\x00", f"login failed: {reply!r}"
        assert self.greeting is not None
        self.deprecate_eof = bool(self.greeting.capabilities & Capability.CLIENT_DEPRECATE_EOF)
        return reply

    # --- commands ---------------------------------------------------------------------

    def query(self, sql: str) -> list[Result]:
        self.command(bytes((COM_QUERY,)) + sql.encode())
        return self._results(self._last, binary=False)

    def prepare(self, sql: str) -> tuple[int, int, int] | ErrPacket:
        """(statement id, columns, params), or the ERR."""
        first = self.command(bytes((COM_STMT_PREPARE,)) + sql.encode())
        if first[:1] == b"\xff":
            return parse_err(first)
        stmt_id, columns, params = struct.unpack_from("<IHH", first, 1)
        for count in (params, columns):
            if count:
                for _ in range(count):
                    self.read_packet()
                if not self.deprecate_eof:
                    self.read_packet()
        return stmt_id, columns, params

    def execute(self, stmt_id: int, *, cursor: bool = False) -> list[Result]:
        flags = CURSOR_TYPE_READ_ONLY if cursor else 0
        self.command(struct.pack("<BIBI", COM_STMT_EXECUTE, stmt_id, flags, 1))
        return self._results(self._last, binary=True)

    def fetch(self, stmt_id: int, rows: int, columns: list[ColumnDefinition]) -> Result:
        """One COM_STMT_FETCH: binary rows up to the terminator."""
        self.command(struct.pack("<BII", COM_STMT_FETCH, stmt_id, rows))
        result = Result(columns=columns)
        self._rows(self._last, result, binary=True)
        return result

    def close_statement(self, stmt_id: int) -> None:
        self.seq = 0
        self.write_packet(struct.pack("<BI", COM_STMT_CLOSE, stmt_id))

    def command(self, payload: bytes) -> bytes:
        self._last = super().command(payload)
        return self._last

    # --- responses --------------------------------------------------------------------

    def _results(self, first: bytes, *, binary: bool) -> list[Result]:
        out: list[Result] = []
        while True:
            head = first[0]
            if head == 0xFF:
                out.append(Result(error=parse_err(first)))
                return out
            if head == 0x00:
                ok = parse_ok(first)
                out.append(Result(status=ok.status))
                if not ok.status & MORE:
                    return out
                first = self.read_packet()
                continue
            count = PayloadReader(first).lenenc_int()
            result = Result(
                columns=[
                    parse_column_definition(self.read_packet(), self.capabilities)
                    for _ in range(count)
                ]
            )
            out.append(result)
            terminator = None if self.deprecate_eof else self.read_packet()
            if terminator is not None and eof_status(terminator) & CURSOR:
                result.status = eof_status(terminator)
                return out  # rows come through COM_STMT_FETCH
            self._rows(self.read_packet(), result, binary=binary)
            if result.error is not None or not result.status & MORE:
                return out
            first = self.read_packet()

    def _rows(self, packet: bytes, result: Result, *, binary: bool) -> None:
        while True:
            if packet[:1] == b"\xff":
                result.error = parse_err(packet)
                return
            if packet[:1] == b"\xfe" and len(packet) < 0xFFFFFF:
                result.status = (
                    parse_ok(packet).status if self.deprecate_eof else eof_status(packet)
                )
                return
            parse = binary_row if binary else text_row
            result.rows.append(parse(packet, result.columns))
            packet = self.read_packet()


def text_row(payload: bytes, columns: list[ColumnDefinition]) -> list[Cell]:
    r = PayloadReader(payload)
    cells: list[Cell] = []
    for _ in columns:
        if payload[r.pos] == 0xFB:
            r.pos += 1
            cells.append(None)
        else:
            cells.append(r.lenenc_str())
    assert r.remaining() == 0, "text row longer than its columns"
    return cells


def binary_row(payload: bytes, columns: list[ColumnDefinition]) -> list[Cell]:
    """Each cell's raw binary body (fixed width, temporal body or string), None for NULL."""
    assert payload[0] == 0
    body = 1 + (len(columns) + 9) // 8
    bitmap = payload[1:body]
    r = PayloadReader(payload, body)
    cells: list[Cell] = []
    for i, col in enumerate(columns):
        bit = i + 2
        if bitmap[bit >> 3] & (1 << (bit & 7)):
            cells.append(None)
            continue
        width = BINARY_FIXED_WIDTH.get(col.type)
        if width is not None:
            cells.append(r.fixed(width))
        elif col.type in BINARY_TEMPORAL:
            cells.append(r.fixed(r.fixed(1)[0]))
        else:
            cells.append(r.lenenc_str())
    assert r.remaining() == 0, "binary row longer than its columns"
    return cells


# --- what must never reach a masked client ---------------------------------------------


def forbidden_forms(values: list[str]) -> set[bytes]:
    """Every spelling of the original values a leak could take: as stored, lower and upper
    case, reversed, hex (both cases) and base64, plus the local part of each email."""
    out: set[bytes] = set()
    for value in values:
        forms = {value, value.lower(), value.upper(), value[::-1]}
        if "@" in value:
            local = value.split("@", 1)[0]
            forms |= {local, local.upper()}
        for form in forms:
            raw = form.encode()
            out |= {raw, raw.hex().encode(), raw.hex().upper().encode(), base64.b64encode(raw)}
    return out


class LeakScanner:
    """Finds any forbidden form in a byte string. Forms shorter than 5 bytes must stand
    alone (no letters or digits around them): "ada" must not match "metadata"."""

    def __init__(self, values: list[str]) -> None:
        self.forms = sorted(forbidden_forms(values))
        long_forms = [re.escape(f) for f in self.forms if len(f) >= 5]
        short = [re.escape(f) for f in self.forms if len(f) < 5]
        parts = []
        if long_forms:
            parts.append(b"|".join(long_forms))
        if short:
            parts.append(b"(?<![A-Za-z0-9])(?:" + b"|".join(short) + b")(?![A-Za-z0-9])")
        self._re = re.compile(b"|".join(b"(?:" + p + b")" for p in parts))

    def leaks(self, data: bytes) -> list[bytes]:
        return sorted({m.group(0) for m in self._re.finditer(bytes(data))})
