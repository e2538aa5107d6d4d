"""A small text query on a backend connection, for myguard's own questions (EXPLAIN,
information_schema): the rows as strings."""

from __future__ import annotations

from myguard.net.packet_stream import PacketStream
from myguard.protocol.codec import PayloadReader
from myguard.protocol.constants import Command
from myguard.protocol.errors import MySQLError
from myguard.protocol.generic_response import parse_err


async def text_query(
    stream: PacketStream, sql: str, *, deprecate_eof: bool
) -> tuple[list[str], list[list[str | None]]]:
    """Column names and rows of ``sql``; a server error is raised as MySQLError."""
    stream.seq = 0
    stream.write_packet(bytes((Command.COM_QUERY,)) + sql.encode())
    await stream.drain()
    first = await stream.read_packet()
    if first[:1] == b"\xff":
        err = parse_err(first)
        raise MySQLError(err.code, err.sqlstate, err.message)
    if first[:1] == b"\x00":
        return [], []
    count = PayloadReader(first).lenenc_int()
    names = []
    for _ in range(count):
        r = PayloadReader(await stream.read_packet())
        for _ in range(4):  # catalog, schema, table, org_table
            r.lenenc_str()
        names.append(r.lenenc_str().decode("utf-8", "replace"))
    if not deprecate_eof:
        await stream.read_packet()
    rows: list[list[str | None]] = []
    while True:
        packet = await stream.read_packet()
        if packet[:1] == b"\xfe" and len(packet) < 0xFFFFFF:
            return names, rows
        if packet[:1] == b"\xff":
            err = parse_err(packet)
            raise MySQLError(err.code, err.sqlstate, err.message)
        r = PayloadReader(packet)
        row: list[str | None] = []
        for _ in range(count):
            if r.data[r.pos] == 0xFB:
                r.pos += 1
                row.append(None)
            else:
                row.append(r.lenenc_str().decode("utf-8", "replace"))
        rows.append(row)
