import asyncio
import time

import pytest

from myguard.approvals.backends import open_store
from myguard.approvals.model import RequestStatus
from myguard.approvals.store import NotPending
from myguard.approvals.store_sqlite import SqliteApprovalStore


def test_sqlite_round_trip_survives_restart(tmp_path, make_context):
    path = tmp_path / "q" / "approvals.db"
    now = time.time()

    async def first_life():
        store = SqliteApprovalStore(path)
        pending = await store.create(make_context(), now=now, expires_at=now + 600)
        decided = await store.create(
            make_context(statement="DELETE FROM t", min_approvals=2), now=now, expires_at=now + 600
        )
        await store.add_approval(decided.id, "alice", "looks fine", now=now, valid_until=now + 60)
        denied = await store.create(make_context(), now=now, expires_at=now + 600)
        await store.close(denied.id, RequestStatus.DENIED, "carol", "not today", now=now)
        await store.aclose()
        return pending, decided.id, denied.id

    async def second_life(pending, decided_id, denied_id):
        store = SqliteApprovalStore(path)
        again = await store.get(pending.id)
        assert again == pending
        decided = await store.get(decided_id)
        assert decided.status is RequestStatus.PENDING
        assert [(a.approver, a.reason) for a in decided.approvals] == [("alice", "looks fine")]
        decided = await store.add_approval(decided_id, "dave", None, now=now, valid_until=now + 60)
        assert decided.status is RequestStatus.APPROVED and decided.uses_left == 1
        denied = await store.get(denied_id)
        assert (denied.denial.actor, denied.denial.reason) == ("carol", "not today")
        assert [r.id for r in await store.list(RequestStatus.PENDING)] == [pending.id]
        assert await store.statuses([pending.id, denied_id, 999]) == {
            pending.id: RequestStatus.PENDING,
            denied_id: RequestStatus.DENIED,
        }
        await store.aclose()

    asyncio.run(second_life(*asyncio.run(first_life())))


def test_sqlite_store_refuses_impossible_transitions(tmp_path, make_context):
    now = time.time()

    async def scenario():
        store = open_store(f"sqlite:{tmp_path / 'a.db'}")
        request = await store.create(make_context(), now=now, expires_at=now + 1)
        await store.close(request.id, RequestStatus.CANCELLED, "session", "gone", now=now)
        with pytest.raises(NotPending):
            await store.add_approval(request.id, "alice", None, now=now, valid_until=now + 9)
        with pytest.raises(KeyError):
            await store.add_approval(12345, "alice", None, now=now, valid_until=now + 9)
        late = await store.create(make_context(), now=now, expires_at=now + 1)
        with pytest.raises(NotPending) as refused:
            await store.add_approval(late.id, "alice", None, now=now + 5, valid_until=now + 9)
        assert refused.value.request.status is RequestStatus.EXPIRED
        assert (await store.get(late.id)).status is RequestStatus.EXPIRED
        await store.aclose()

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "spec", ["postgres://x/y", "sqlite:", "mysql://host/db", "mysql://u:secret@h/db"]
)
def test_open_store_rejects_bad_specs(spec):
    with pytest.raises(ValueError):
        open_store(spec)
