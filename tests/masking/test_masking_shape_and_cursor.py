"""Fixes found by the end-to-end corpus: shape-keeping strategies only on plain columns;
a cursor opened under CLIENT_DEPRECATE_EOF is recognised (its rows are masked on fetch)."""

from __future__ import annotations

import asyncio

import pytest

from myguard._fast import load
from myguard.masking.lineage import analyze
from myguard.masking.plan import MaskRules, plan_result
from myguard.net.packet_stream import PacketStream
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol import column_types as ct
from myguard.protocol.column_definition import ColumnDefinition
from myguard.protocol.generic_response import ok_packet
from myguard.session.masking import _cursor_opened

COLUMNS = {"customers": ["id", "email", "ssn"], "orders": ["id", "customer_id", "item"]}
VIEWS = {"v_rev": "SELECT id, REVERSE(email) AS email FROM customers"}
RULES = MaskRules(
    [("shop.customers.email", MaskSpec("email")), ("shop.customers.ssn", MaskSpec("partial", 4))],
    lambda db, table, column: set(),
)


def lineage(sql: str):
    return analyze(
        sql, db="shop", schema=lambda d, t: COLUMNS.get(t), views=lambda d, t: VIEWS.get(t)
    )


def col(name: str) -> ColumnDefinition:
    return ColumnDefinition(
        name=name.encode(), character_set=45, column_length=400, type=ct.MYSQL_TYPE_VAR_STRING
    )


@pytest.mark.parametrize(
    ("sql", "plain"),
    [
        ("SELECT email, ssn FROM customers", (True, True)),
        ("SELECT UPPER(email), CAST(ssn AS CHAR) AS s FROM customers", (True, True)),
        ("SELECT t.e FROM (SELECT email AS e FROM customers) t", (True,)),
        ("WITH x AS (SELECT email FROM customers) SELECT email FROM x", (True,)),
        ("SELECT item FROM orders UNION ALL SELECT email FROM customers", (True,)),
        ("SELECT REVERSE(email), LEFT(ssn, 5), CONCAT(email, '') FROM customers", (False,) * 3),
        ("SELECT GROUP_CONCAT(email) FROM customers", (False,)),
        ("SELECT item FROM orders UNION ALL SELECT REVERSE(email) FROM customers", (False,)),
        ("WITH x AS (SELECT REVERSE(email) AS e FROM customers) SELECT e FROM x", (False,)),
        ("SELECT email FROM v_rev", (False,)),
    ],
)
def test_plain_columns(sql, plain):
    assert lineage(sql).plain == plain


def test_shape_keeping_strategies_become_redact_on_expressions():
    sql = "SELECT email, REVERSE(email), ssn, LEFT(ssn, 5), CONCAT(email, '@', ssn) FROM customers"
    plan = plan_result(lineage(sql), [col(n) for n in "abcde"], RULES)
    assert [s for _, s in plan.masked()] == ["email", "redact", "partial(4)", "redact", "redact"]


def _stream(data: bytes) -> PacketStream:
    stream = PacketStream(1 << 24)
    stream.buffer.feed(data)
    return stream


def test_cursor_ok_after_metadata_is_recognised():
    async def run():
        cursor_ok = ok_packet(status=0x0042)  # autocommit + SERVER_STATUS_CURSOR_EXISTS
        backend = _stream(load("framing").build_packets(b"\xfe" + cursor_ok[1:], 5)[0])
        backend.seq = 5
        packet, status = await _cursor_opened(backend)
        assert packet is not None and status & 0x40 and backend.seq == 6

    asyncio.run(run())


def test_a_row_after_metadata_is_put_back():
    async def run():
        row = b"\x00\x00" + b"\x01\x00\x00\x00"
        end = b"\xfe" + ok_packet(status=0x0002)[1:]
        framing = load("framing")
        data = framing.build_packets(row, 5)[0] + framing.build_packets(end, 6)[0]
        backend = _stream(data)
        backend.seq = 5
        assert await _cursor_opened(backend) == (None, 0)
        assert backend.seq == 5
        assert await backend.read_packet() == row
        assert await backend.read_packet() == end

    asyncio.run(run())
