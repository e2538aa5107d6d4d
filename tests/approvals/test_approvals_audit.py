"""Every step the approval service reports becomes a valid audit record."""

import asyncio
import time

import pytest

from myguard.approvals import errors
from myguard.approvals.audit import step_record
from myguard.approvals.service import ApprovalService
from myguard.approvals.store_sqlite import SqliteApprovalStore
from myguard.audit import AuditRecord


class Clock:
    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def test_every_step_is_an_audit_record(tmp_path, make_context):
    records: list[AuditRecord] = []
    clock = Clock()

    async def sink(step):
        records.append(AuditRecord.decode(step_record(step).encode()))

    async def main():
        store = SqliteApprovalStore(tmp_path / "approvals.db")
        service = ApprovalService(store, audit=sink, clock=clock, decision_ttl=60)
        try:
            two = await service.request(make_context(min_approvals=2, statement="DELETE 1"))
            with pytest.raises(errors.ApprovalRefused):
                await service.approve(two.id, "bob", {"dba"})  # bob made the request
            await service.approve(two.id, "alice", {"dba", "ops"}, "fine")
            await service.approve(two.id, "dave", {"dba"})
            await service.wait(two.id, timeout=1)
            denied = await service.request(make_context(statement="DELETE 2"))
            await service.deny(denied.id, "alice", {"dba"}, "not now")
            held = await service.request(make_context(statement="DELETE 3"))
            with pytest.raises(errors.ApprovalHeld):
                await service.wait(held.id, timeout=0.05)
            await service.cancel(held.id, "client gone")
            late = await service.request(make_context(statement="DELETE 4"))
            clock.offset = 120
            await service.expire_due()
        finally:
            await service.aclose()
            await store.aclose()
        return two, late

    two, late = asyncio.run(main())
    steps = [(r["event"], r.get("actor"), r["request_id"]) for r in records]
    assert [event for event, _, _ in steps] == [
        "requested",
        "refused",
        "approval",
        "approval",
        "approved",
        "executed",
        "requested",
        "denied",
        "requested",
        "hold-timeout",
        "cancelled",
        "requested",
        "expired",
    ]
    refused, first_vote = records[1], records[2]
    assert refused.get("reason").startswith("self-approval")
    assert first_vote.get("actor_groups") == ["dba", "ops"] and first_vote["status"] == "pending"
    assert records[4]["status"] == "approved" and records[4]["actor"] == "dave"
    assert all(r["user"] == "bob" and r["rule"] == "big-delete" for r in records)
    assert records[0]["session_id"] == "42" and records[0]["request_id"] == str(two.id)
    assert records[-1]["request_id"] == str(late.id) and records[-1]["actor"] == "myguard"
