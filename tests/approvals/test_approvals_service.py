import asyncio
import time

import pytest

from myguard.approvals import errors
from myguard.approvals.model import RequestStatus
from myguard.approvals.service import ApprovalService
from myguard.approvals.store_sqlite import SqliteApprovalStore


class Clock:
    """Wall clock that tests can move forward (expiry), while asyncio time runs normally."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def run_with_service(tmp_path, scenario, **options):
    async def main():
        events = []

        async def audit(event):
            events.append(event)

        store = SqliteApprovalStore(tmp_path / "approvals.db")
        service = ApprovalService(store, audit=audit, **options)
        try:
            await scenario(service, events)
        finally:
            await service.aclose()
            await store.aclose()

    asyncio.run(main())


def test_approval_releases_waiter_and_audits(tmp_path, make_context):
    async def scenario(service, events):
        request = await service.request(make_context())
        waiter = asyncio.create_task(service.wait(request.id, timeout=10))
        await asyncio.sleep(0.05)
        assert not waiter.done()
        await service.approve(request.id, "alice", {"dba"}, "ok")
        released = await asyncio.wait_for(waiter, 2)
        assert released.status is RequestStatus.EXECUTED and released.uses_left == 0
        kinds = [e["event"] for e in events]
        assert kinds == ["requested", "approval", "approved", "executed"]
        assert all(e["type"] == "approval" and e["request_id"] == request.id for e in events)
        assert events[1]["actor"] == "alice" and events[1]["reason"] == "ok"

    run_with_service(tmp_path, scenario)


def test_self_approval_and_non_approver_are_refused(tmp_path, make_context):
    async def scenario(service, events):
        request = await service.request(make_context(requester="bob"))
        with pytest.raises(errors.ApprovalRefused) as refused:
            await service.approve(request.id, "bob", {"dba"}, None)
        assert refused.value.why == "self-approval"
        with pytest.raises(errors.ApprovalRefused) as refused:
            await service.approve(request.id, "mallory", {"dev", "ops"}, None)
        assert refused.value.why == "not-an-approver"
        assert refused.value.code == errors.ER_APPROVAL_REFUSED
        with pytest.raises(errors.ApprovalRefused):
            await service.deny(request.id, "mallory", {"dev"}, "no")
        with pytest.raises(errors.ApprovalNotFound):
            await service.approve(9999, "alice", {"dba"}, None)
        assert (await service.get(request.id)).status is RequestStatus.PENDING
        assert [e["event"] for e in events].count("refused") == 3

    run_with_service(tmp_path, scenario)


def test_min_approvals_needs_distinct_approvers(tmp_path, make_context):
    async def scenario(service, events):
        request = await service.request(make_context(min_approvals=2))
        first = await service.approve(request.id, "alice", {"dba"}, None)
        again = await service.approve(request.id, "alice", {"dba"}, "really")
        assert first.status is again.status is RequestStatus.PENDING
        assert len(again.approvals) == 1
        done = await service.approve(request.id, "carol", {"dba", "ops"}, None)
        assert done.status is RequestStatus.APPROVED
        assert {a.approver for a in done.approvals} == {"alice", "carol"}
        with pytest.raises(errors.ApprovalRefused) as refused:
            await service.approve(request.id, "dave", {"dba"}, None)
        assert refused.value.why == "not-pending"

    run_with_service(tmp_path, scenario)


def test_deny_raises_for_the_waiter(tmp_path, make_context):
    async def scenario(service, events):
        request = await service.request(make_context())
        waiter = asyncio.create_task(service.wait(request.id, timeout=10))
        await asyncio.sleep(0.05)
        with pytest.raises(errors.ApprovalRefused) as refused:
            await service.deny(request.id, "alice", {"dba"}, "  ")
        assert refused.value.why == "no-reason"
        await service.deny(request.id, "alice", {"dba"}, "use the archive job")
        with pytest.raises(errors.ApprovalDenied) as denied:
            await asyncio.wait_for(waiter, 2)
        assert denied.value.code == errors.ER_APPROVAL_DENIED
        assert denied.value.message == (
            f"MYGUARD_APPROVAL_DENIED id={request.id} by=alice reason=use the archive job"
        )
        assert (
            await service.find_preapproved(
                "bob", request.context.statement, (), request.context.fingerprint
            )
            is None
        )

    run_with_service(tmp_path, scenario)


def test_cancel_wakes_waiter_and_is_idempotent(tmp_path, make_context):
    async def scenario(service, events):
        request = await service.request(make_context())
        waiter = asyncio.create_task(service.wait(request.id, timeout=10))
        await asyncio.sleep(0.05)
        cancelled = await service.cancel(request.id, "KILL QUERY")
        assert cancelled.status is RequestStatus.CANCELLED
        with pytest.raises(errors.ApprovalCancelled) as raised:
            await asyncio.wait_for(waiter, 2)
        assert raised.value.message.startswith(f"MYGUARD_APPROVAL_CANCELLED id={request.id}")
        assert (await service.cancel(request.id, "again")).status is RequestStatus.CANCELLED
        with pytest.raises(errors.ApprovalRefused):
            await service.approve(request.id, "alice", {"dba"}, None)

    run_with_service(tmp_path, scenario)


def test_hold_timeout_then_rerun_consumes_once(tmp_path, make_context):
    async def scenario(service, events):
        ctx = make_context(params=("2020-01-01",), hold_seconds=0.2)
        request = await service.request(ctx)
        with pytest.raises(errors.ApprovalHeld) as held:
            await service.wait(request.id)
        message = held.value.message
        assert message.startswith(f"MYGUARD_APPROVAL_PENDING id={request.id} ")
        assert "re-running the same statement after it is approved will run it" in message
        assert held.value.code == errors.ER_APPROVAL_PENDING and held.value.sqlstate == "HY000"

        def rerun(requester="bob", statement=ctx.statement, params=ctx.params):
            return service.find_preapproved(requester, statement, params, ctx.fingerprint)

        assert await rerun() is None  # not approved yet
        await service.approve(request.id, "alice", {"dba"}, None)
        assert await rerun(params=("2021-01-01",)) is None
        assert await rerun(statement=ctx.statement + " ") is None
        assert await rerun(requester="eve") is None
        used = await rerun()
        assert used.id == request.id and used.status is RequestStatus.EXECUTED
        assert await rerun() is None

    run_with_service(tmp_path, scenario)


def test_count_scope_allows_n_executions(tmp_path, make_context):
    async def scenario(service, events):
        ctx = make_context(scope="count", scope_count=3)
        request = await service.request(ctx)
        await service.approve(request.id, "alice", {"dba"}, None)
        found = [
            await service.find_preapproved("bob", ctx.statement, (), ctx.fingerprint)
            for _ in range(4)
        ]
        assert [f and f.uses_left for f in found] == [2, 1, 0, None]

    run_with_service(tmp_path, scenario)


def test_window_scope_matches_fingerprint_until_expiry(tmp_path, make_context):
    clock = Clock()

    async def scenario(service, events):
        ctx = make_context(scope="window", window_seconds=300)
        request = await service.request(ctx)
        await service.approve(request.id, "alice", {"dba"}, None)
        for created in ("2019-01-01", "2018-06-30", "2017-01-01"):
            statement = f"DELETE FROM orders WHERE created < '{created}'"
            used = await service.find_preapproved("bob", statement, (), ctx.fingerprint)
            assert used.id == request.id and used.status is RequestStatus.APPROVED
        assert await service.find_preapproved("bob", ctx.statement, (), "other") is None
        assert await service.find_preapproved("eve", ctx.statement, (), ctx.fingerprint) is None
        clock.offset = 301
        assert await service.find_preapproved("bob", ctx.statement, (), ctx.fingerprint) is None
        expired = await service.expire_due()
        assert [r.id for r in expired] == [request.id]
        assert events[-1]["event"] == "expired"

    run_with_service(tmp_path, scenario, clock=clock)


def test_pending_request_expires_after_decision_ttl(tmp_path, make_context):
    clock = Clock()

    async def scenario(service, events):
        request = await service.request(make_context(hold_seconds=1))
        clock.offset = 11
        assert await service.list() == []
        assert (await service.get(request.id)).status is RequestStatus.EXPIRED
        with pytest.raises(errors.ApprovalExpired):
            await service.wait(request.id, timeout=1)

    run_with_service(tmp_path, scenario, clock=clock, decision_ttl=10)


def test_fifty_concurrent_waiters_all_released(tmp_path, make_context):
    async def scenario(service, events):
        requests = [
            await service.request(make_context(statement=f"DELETE FROM t{i}")) for i in range(50)
        ]
        waiters = [asyncio.create_task(service.wait(r.id, timeout=30)) for r in requests]
        await asyncio.sleep(0.1)
        assert not any(w.done() for w in waiters)
        for request in requests:
            await service.approve(request.id, "alice", {"dba"}, None)
        released = await asyncio.wait_for(asyncio.gather(*waiters), 10)
        assert sorted(r.id for r in released) == sorted(r.id for r in requests)
        assert service._waiters == {}

    run_with_service(tmp_path, scenario)


def test_decision_from_another_process_is_seen_by_polling(tmp_path, make_context):
    async def scenario(service, events):
        request = await service.request(make_context())
        waiter = asyncio.create_task(service.wait(request.id, timeout=10))
        # A second service on the same file stands in for the CLI: no shared Events.
        other_store = SqliteApprovalStore(tmp_path / "approvals.db")
        other = ApprovalService(other_store)
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await other.approve(request.id, "alice", {"dba"}, None)
        released = await asyncio.wait_for(waiter, 5)
        assert time.monotonic() - started < 2
        assert released.id == request.id
        await other_store.aclose()

    run_with_service(tmp_path, scenario)


def test_error_messages_stay_under_512_bytes(tmp_path, make_context):
    async def scenario(service, events):
        request = await service.request(make_context(rule="r" * 300))
        await service.deny(request.id, "alice", {"dba"}, "ü" * 600)
        denied = errors.ApprovalDenied(await service.get(request.id))
        assert len(denied.message.encode()) <= 511
        assert denied.message.startswith(f"MYGUARD_APPROVAL_DENIED id={request.id} by=alice")
        held = errors.ApprovalHeld(await service.get(request.id), 60)
        assert len(held.message.encode()) <= 511

    run_with_service(tmp_path, scenario)
