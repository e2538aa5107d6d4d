"""A small text query on a backend connection, for myguard's own questions (EXPLAIN,
information_schema): the rows as strings.

Where the response ends, and which of its packets are rows, is the response grammar's
call (``_fast.resultscan``, the one the proxy core relays with); this module only
decodes the packets it delimits.
"""

from __future__ import annotations

from myguard._fast import load
from myguard.net.packet_stream import PacketStream
from myguard.protocol.codec import PayloadReader
from myguard.protocol.constants import Command
from myguard.protocol.errors import MySQLError, ProtocolError
from myguard.protocol.generic_response import parse_err

_scan = load("resultscan")
_framing = load("framing")


async def text_query(
    stream: PacketStream, sql: str, *, deprecate_eof: bool, codec: str = "utf-8"
) -> tuple[list[str], list[list[str | None]]]:
    """Column names and rows of ``sql``, which goes, and whose results come, in ``codec``'s
    character set (the session's); a server error is raised as MySQLError."""
    stream.seq = 0
    stream.write_packet(bytes((Command.COM_QUERY,)) + sql.encode(codec, "replace"))
    await stream.drain()
    scanner = _scan.ResponseScanner(deprecate_eof)
    scanner.start(_scan.RESPONSE_QUERY)
    response = _framing.PacketBuffer(stream.buffer.max_payload)
    pending = b""
    while not scanner.done:
        if scanner.local_infile:
            raise ProtocolError("backend asked myguard's own query for a local file")
        data = pending + await stream.read_chunk()
        used = scanner.scan(data)
        response.feed(data[:used])
        pending = data[used:]
    if pending:
        raise ProtocolError("backend sent more than the response to myguard's own query")
    payloads = []
    seq = 1
    while (got := response.next_packet(seq)) is not None:
        payload, seq = got
        payloads.append(payload)
    if scanner.error_code:
        err = parse_err(payloads[-1])
        raise MySQLError(err.code, err.sqlstate, err.message)
    if not scanner.num_columns:
        return [], []
    if scanner.result_sets != 1:
        raise ProtocolError("myguard's own query got more than one result")
    count = scanner.num_columns
    names = []
    for payload in payloads[1 : 1 + count]:
        r = PayloadReader(payload)
        for _ in range(4):  # catalog, schema, table, org_table
            r.lenenc_str()
        names.append(r.lenenc_str().decode(codec, "replace"))
    first_row = 1 + count + (0 if deprecate_eof else 1)
    rows = payloads[first_row : first_row + scanner.rows]
    return names, [_row(p, count, codec) for p in rows]


def _row(payload: bytes, count: int, codec: str) -> list[str | None]:
    r = PayloadReader(payload)
    row: list[str | None] = []
    for _ in range(count):
        if r.data[r.pos] == 0xFB:
            r.pos += 1
            row.append(None)
        else:
            row.append(r.lenenc_str().decode(codec, "replace"))
    return row
