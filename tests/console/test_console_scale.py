"""Large queues and trails: 1,000 pending requests page through the console; a trail of
many records in several chains and segments pages newest first with nothing lost or
repeated, filters and time ranges included; records are found by their place; charts
count what the trail holds. Paging is checked for what it returns, not timed."""

from __future__ import annotations

import asyncio
import re
import time

import pytest
from console_web import ALICE, BOB, Web

from myguard.approvals.model import ApprovalPolicy, RequestContext
from myguard.approvals.store_sqlite import SqliteApprovalStore
from myguard.audit import AuditWriter, approval_record, login_record, statement_record
from myguard.console.trail import BadCursor, Query, Trail

USERS = ["ann", "ben", "cid", "dora"]
TABLES = ["shop.orders", "shop.customers", "hr.salaries"]


def context(i: int) -> RequestContext:
    return RequestContext(
        requester=f"dev{i % 7}",
        requester_groups=frozenset({"dev"}),
        source_address=f"10.0.{i % 250}.1",
        client_program="mysql",
        environment="production",
        backend="main",
        session_id=1000 + i,
        statement=f"ALTER TABLE shop.t{i} ADD COLUMN c INT",
        params=(),
        fingerprint="alter table shop.t? add column c int",
        analysis={"kind": "ddl", "tables_written": [f"shop.t{i}"]},
        rule="approve-production-ddl",
        policy=ApprovalPolicy(approver_groups=frozenset({"dba"}), hold_seconds=300),
    )


def test_a_thousand_pending_requests_page_through(console_proxy):
    async def seed():
        store = SqliteApprovalStore(console_proxy.base / "approvals.db")
        now = time.time()
        try:
            return [
                (await store.create(context(i), now=now, expires_at=now + 3600)).id
                for i in range(1000)
            ]
        finally:
            await store.aclose()

    seeded = set(asyncio.run(seed()))
    alice = Web(console_proxy.admin_port)
    alice.signin(*ALICE)
    seen: list[int] = []
    path = "/console/approvals?status=pending"
    pages = 0
    while path:
        page = alice.get(path)
        assert page.status == 200, page.body[:300]
        ids = [int(i) for i in re.findall(r'<tr id="request-(\d+)"', page.body)]
        assert len(ids) <= 50 and ids == sorted(ids, reverse=True)
        seen += ids
        pages += 1
        found = re.search(r'<a id="older" href="([^"]+)"', page.body)
        path = found.group(1).replace("&amp;", "&") if found else None
    assert seeded <= set(seen) and len(seen) == len(set(seen))
    assert pages >= 20
    # bob (analysts) may decide none of them and made none: nothing to page through.
    bob = Web(console_proxy.admin_port)
    bob.signin(*BOB)
    assert not re.findall(r'<tr id="request-(\d+)"', bob.get(path or "/console/approvals").body)


async def write_trail(directory, chains=2, per_chain=6000, rotate_bytes=64 * 1024):
    """Records of ``chains`` chains (several segments each), at the time they are written,
    as the proxy writes them (segment headers say when each segment began)."""
    expected = []
    for c in range(chains):
        writer = await AuditWriter.open(
            directory / f"worker-{c}", fsync="off", rotate_bytes=rotate_bytes
        )
        try:
            for n in range(per_chain):
                at = None
                user = USERS[n % len(USERS)]
                if n % 50 == 0:
                    record = login_record(success=True, user=user, at=at)
                elif n % 97 == 0:
                    record = approval_record(
                        request_id=str(n), event="approved", actor="alice", user=user, at=at
                    )
                else:
                    record = statement_record(
                        user=user,
                        statement=f"SELECT {n} FROM {TABLES[n % 3]}",
                        decision="block" if n % 10 == 0 else "allow",
                        groups=["dev"] if n % 2 else ["ops"],
                        tables_read=[TABLES[n % 3]],
                        at=at,
                    )
                await writer.write(record)
                expected.append(record)
        finally:
            await writer.close()
    return expected


@pytest.fixture(scope="module")
def trail(tmp_path_factory):
    directory = tmp_path_factory.mktemp("trail")
    expected = asyncio.run(write_trail(directory))
    return Trail(directory), expected


def page_all(trail, query, visible=lambda r: True, limit=50, budget=200_000):
    found, cursor, pages = [], None, 0
    while True:
        page = trail.search(query, visible, cursor, limit=limit, budget=budget)
        found += page.records
        pages += 1
        if page.cursor is None:
            return found, pages
        cursor = page.cursor


def test_trail_pages_newest_first_without_loss_or_repeats(trail):
    t, expected = trail
    segments = sum(1 for _ in t.directory.rglob("audit-*.seg"))
    assert segments > 10  # several segments per chain
    found, pages = page_all(t, Query())
    assert [r.time for r in found] == sorted((r.time for r in expected), reverse=True)
    assert pages == -(-len(expected) // 50)
    first = t.search(Query(), lambda r: True)
    assert first.scanned <= 50 + 2  # a page reads about what it shows


def test_trail_filters_time_ranges_and_visibility(trail):
    t, expected = trail
    query = Query(user="cid", decision="block", table="orders")
    found, _ = page_all(t, query)
    want = [r for r in expected if query.matches(r)]
    assert found and [r.time for r in found] == sorted((r.time for r in want), reverse=True)
    times = sorted(r.time for r in expected)
    since, until = times[len(times) // 5], times[len(times) // 2]
    ranged = Query(since=since, until=until, group="ops")
    found, _ = page_all(t, ranged)
    want = [r for r in expected if since <= r.time <= until and "ops" in r.get("groups", [])]
    assert len(found) == len(want) > 0
    mine, _ = page_all(t, Query(type="approval"), visible=lambda r: r.get("user") == "cid")
    assert mine and all(r.get("user") == "cid" and r.type == "approval" for r in mine)


def test_a_rare_match_continues_after_the_budget(trail):
    t, expected = trail
    oldest = min(expected, key=lambda r: r.time)
    query = Query(since=oldest.time, until=oldest.time)
    page = t.search(query, lambda r: True, budget=1000)
    assert page.records == [] and page.budget_spent and page.cursor
    found, pages = page_all(t, query, budget=1000)
    assert [r.time for r in found] == [oldest.time] and pages > 2


def test_records_are_found_by_their_place_and_bad_places_are_not(trail):
    t, _ = trail
    page = t.search(Query(type="login"), lambda r: True, limit=5)
    for record in page.records:
        again = t.record(record.chain, record.segment, record.offset)
        assert again is not None and again.to_dict() == record.to_dict()
    record = page.records[0]
    assert t.record(record.chain, record.segment, record.offset + 1) is None
    assert t.record("../etc", record.segment, record.offset) is None
    assert t.record(record.chain, "passwd", record.offset) is None
    with pytest.raises(BadCursor):
        t.search(Query(), lambda r: True, "worker-0=abc")


def test_charts_count_statements_per_user_and_table(trail):
    t, expected = trail
    statements = [r for r in expected if r.type == "statement"]
    until = max(r.time for r in expected)
    since = min(r.time for r in expected)
    users, tables = t.charts(since, until, None)
    per_user = {s.name: sum(s.values) for s in users.series}
    assert per_user == {u: sum(1 for r in statements if r.get("user") == u) for u in USERS}
    per_table = {s.name: sum(s.values) for s in tables.series}
    assert per_table == {
        name: sum(1 for r in statements if name in r.get("tables_read")) for name in TABLES
    }
    only, _ = t.charts(since, until, "ann")
    assert [s.name for s in only.series] == ["ann"]
    assert t.verify_now().report.ok
