"""The store logic shared by the SQLite and MySQL backends.

Both speak DB-API 2 from a worker thread; a backend supplies the connection, the
transaction wrapper (which must lock what it reads: BEGIN IMMEDIATE on SQLite,
SELECT ... FOR UPDATE on MySQL) and its DDL. The queries are written with ``?``
placeholders and ``{ignore}``/``{lock}`` slots that the backend fills in.
"""

from __future__ import annotations

import abc
import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from myguard.approvals.model import (
    Approval,
    ApprovalPolicy,
    ApprovalRequest,
    Decision,
    RequestContext,
    RequestStatus,
)
from myguard.approvals.store import ApprovalStore, NotPending

T = TypeVar("T")
Cursor = Any  # a DB-API 2 cursor (sqlite3 or PyMySQL)

REQUESTS = "myguard_approval_requests"
VOTES = "myguard_approval_votes"

_COLUMNS = (
    "id, created_at, status, expires_at, uses_left, context, closed_by, closed_at, close_reason"
)


def statement_key(statement: str, params: Iterable[str]) -> str:
    """Fixed-size index key for the exact statement text and its bound parameters."""
    return hashlib.sha256(json.dumps([statement, list(params)]).encode()).hexdigest()


def fingerprint_key(fingerprint: str) -> str:
    return hashlib.sha256(fingerprint.encode()).hexdigest()


def _context_json(ctx: RequestContext) -> str:
    data = dataclasses.asdict(ctx)
    data["requester_groups"] = sorted(ctx.requester_groups)
    data["params"] = list(ctx.params)
    data["policy"] = ctx.policy.to_dict()
    return json.dumps(data)


def _context_from_json(text: str) -> RequestContext:
    data = json.loads(text)
    data["requester_groups"] = frozenset(data["requester_groups"])
    data["params"] = tuple(data["params"])
    data["policy"] = ApprovalPolicy.from_dict(data["policy"])
    return RequestContext(**data)


class SqlApprovalStore(ApprovalStore):
    ignore = "INSERT OR IGNORE"
    lock = ""

    @abc.abstractmethod
    async def _transaction(self, work: Callable[[Cursor], T]) -> T:
        """Run ``work(cursor)`` in one committed transaction in a worker thread."""

    def _sql(self, text: str) -> str:
        return text.format(ignore=self.ignore, lock=self.lock)

    def _exec(self, cur: Cursor, text: str, args: Iterable[Any] = ()) -> None:
        cur.execute(self._sql(text), tuple(args))

    def _load(
        self,
        cur: Cursor,
        where: str,
        args: Iterable[Any],
        suffix: str = "",
        *,
        lock: bool = False,
    ) -> list[ApprovalRequest]:
        locking = "{lock}" if lock else ""
        self._exec(cur, f"SELECT {_COLUMNS} FROM {REQUESTS} WHERE {where} {suffix} {locking}", args)
        rows = cur.fetchall()
        if not rows:
            return []
        ids = [row[0] for row in rows]
        marks = ",".join("?" * len(ids))
        self._exec(
            cur,
            f"SELECT request_id, approver, at, reason FROM {VOTES} "
            f"WHERE request_id IN ({marks}) ORDER BY at, approver",
            ids,
        )
        votes: dict[int, list[Approval]] = {}
        for request_id, approver, at, reason in cur.fetchall():
            votes.setdefault(request_id, []).append(Approval(approver, at, reason))
        return [self._request(row, votes.get(row[0], [])) for row in rows]

    @staticmethod
    def _request(row: tuple, votes: list[Approval]) -> ApprovalRequest:
        rid, created_at, status, expires_at, uses_left, context, closed_by, closed_at, why = row
        status = RequestStatus(status)
        closing = Decision(closed_by, closed_at, why) if closed_by is not None else None
        return ApprovalRequest(
            id=int(rid),
            created_at=created_at,
            context=_context_from_json(context),
            status=status,
            expires_at=expires_at,
            approvals=tuple(votes),
            denial=closing if status is RequestStatus.DENIED else None,
            cancellation=closing if status is RequestStatus.CANCELLED else None,
            uses_left=uses_left,
        )

    def _reload(self, cur: Cursor, request_id: int) -> ApprovalRequest:
        return self._load(cur, "id = ?", [request_id])[0]

    def _locked(self, cur: Cursor, request_id: int) -> ApprovalRequest:
        found = self._load(cur, "id = ?", [request_id], lock=True)
        if not found:
            raise KeyError(request_id)
        return found[0]

    async def create(
        self, context: RequestContext, *, now: float, expires_at: float
    ) -> ApprovalRequest:
        def work(cur: Cursor) -> ApprovalRequest:
            self._exec(
                cur,
                f"INSERT INTO {REQUESTS} (created_at, status, scope, requester, statement_key,"
                " fingerprint_key, expires_at, uses_left, context)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)",
                (
                    now,
                    RequestStatus.PENDING.value,
                    context.policy.scope,
                    context.requester,
                    statement_key(context.statement, context.params),
                    fingerprint_key(context.fingerprint),
                    expires_at,
                    _context_json(context),
                ),
            )
            return self._reload(cur, cur.lastrowid)

        return await self._transaction(work)

    async def get(self, request_id: int) -> ApprovalRequest | None:
        found = await self._transaction(lambda cur: self._load(cur, "id = ?", [request_id]))
        return found[0] if found else None

    async def list(
        self, status: RequestStatus | None = None, *, limit: int = 100, before: int | None = None
    ) -> list[ApprovalRequest]:
        where, args = ("status = ?", [status.value]) if status else ("1 = 1", [])
        if before is not None:
            where, args = f"{where} AND id < ?", [*args, int(before)]
        return await self._transaction(
            lambda cur: self._load(cur, where, args, f"ORDER BY id DESC LIMIT {int(limit)}")
        )

    async def version(self) -> tuple[object, ...]:
        def work(cur: Cursor) -> tuple[object, ...]:
            self._exec(
                cur,
                f"SELECT status, COUNT(*), MAX(id), SUM(COALESCE(uses_left, 0)),"
                f" MAX(COALESCE(closed_at, 0)) FROM {REQUESTS} GROUP BY status ORDER BY status",
            )
            by_status = tuple(tuple(row) for row in cur.fetchall())
            self._exec(cur, f"SELECT COUNT(*) FROM {VOTES}")
            return (*by_status, cur.fetchone()[0])

        return await self._transaction(work)

    async def statuses(self, request_ids: Iterable[int]) -> dict[int, RequestStatus]:
        ids = list(request_ids)
        if not ids:
            return {}

        def work(cur: Cursor) -> dict[int, RequestStatus]:
            marks = ",".join("?" * len(ids))
            self._exec(cur, f"SELECT id, status FROM {REQUESTS} WHERE id IN ({marks})", ids)
            return {int(rid): RequestStatus(status) for rid, status in cur.fetchall()}

        return await self._transaction(work)

    def _expire(self, cur: Cursor, request: ApprovalRequest) -> ApprovalRequest:
        self._exec(cur, f"UPDATE {REQUESTS} SET status = ? WHERE id = ?", ("expired", request.id))
        return dataclasses.replace(request, status=RequestStatus.EXPIRED)

    def _open_for_decision(self, cur: Cursor, request_id: int, now: float) -> ApprovalRequest:
        """The locked request if it can still be decided, else NotPending (after expiring it)."""
        request = self._locked(cur, request_id)
        if request.status is RequestStatus.PENDING and request.expires_at <= now:
            request = self._expire(cur, request)
        if request.status is not RequestStatus.PENDING:
            raise NotPending(request)
        return request

    async def _deciding(self, work: Callable[[Cursor], ApprovalRequest]) -> ApprovalRequest:
        # NotPending must not roll back the lazy expiry done while detecting it, so the
        # transaction returns it and it is raised only after the commit.
        def guarded(cur: Cursor) -> ApprovalRequest | NotPending:
            try:
                return work(cur)
            except NotPending as refused:
                return refused

        result = await self._transaction(guarded)
        if isinstance(result, NotPending):
            raise result
        return result

    async def add_approval(
        self,
        request_id: int,
        approver: str,
        reason: str | None,
        *,
        now: float,
        valid_until: float,
    ) -> ApprovalRequest:
        def work(cur: Cursor) -> ApprovalRequest:
            request = self._open_for_decision(cur, request_id, now)
            self._exec(
                cur,
                f"{{ignore}} INTO {VOTES} (request_id, approver, at, reason) VALUES (?, ?, ?, ?)",
                (request_id, approver, now, reason),
            )
            self._exec(cur, f"SELECT COUNT(*) FROM {VOTES} WHERE request_id = ?", [request_id])
            if cur.fetchone()[0] >= request.policy.min_approvals:
                self._exec(
                    cur,
                    f"UPDATE {REQUESTS} SET status = ?, uses_left = ?, expires_at = ? WHERE id = ?",
                    ("approved", request.policy.granted_uses, valid_until, request_id),
                )
            return self._reload(cur, request_id)

        return await self._deciding(work)

    async def close(
        self,
        request_id: int,
        status: RequestStatus,
        actor: str,
        reason: str | None,
        *,
        now: float,
    ) -> ApprovalRequest:
        if status not in (RequestStatus.DENIED, RequestStatus.CANCELLED):
            raise ValueError(f"cannot close a request as {status}")

        def work(cur: Cursor) -> ApprovalRequest:
            self._open_for_decision(cur, request_id, now)
            self._exec(
                cur,
                f"UPDATE {REQUESTS} SET status = ?, closed_by = ?, closed_at = ?, close_reason = ?"
                " WHERE id = ?",
                (status.value, actor, now, reason, request_id),
            )
            return self._reload(cur, request_id)

        return await self._deciding(work)

    def _use(self, cur: Cursor, request: ApprovalRequest, now: float) -> ApprovalRequest | None:
        usable = (
            request.status is RequestStatus.APPROVED
            and request.expires_at > now
            and (request.uses_left is None or request.uses_left > 0)
        )
        if not usable:
            return None
        if request.uses_left is not None:
            left = request.uses_left - 1
            status = RequestStatus.EXECUTED if left == 0 else RequestStatus.APPROVED
            self._exec(
                cur,
                f"UPDATE {REQUESTS} SET uses_left = ?, status = ? WHERE id = ?",
                (left, status.value, request.id),
            )
        return self._reload(cur, request.id)

    async def consume(self, request_id: int, *, now: float) -> ApprovalRequest | None:
        return await self._transaction(
            lambda cur: self._use(cur, self._locked(cur, request_id), now)
        )

    async def consume_matching(
        self,
        requester: str,
        statement: str,
        params: tuple[str, ...],
        fingerprint: str,
        *,
        now: float,
    ) -> ApprovalRequest | None:
        def covers(request: ApprovalRequest) -> bool:
            ctx = request.context
            if ctx.policy.scope == "window":
                return ctx.fingerprint == fingerprint
            return ctx.statement == statement and ctx.params == tuple(params)

        def work(cur: Cursor) -> ApprovalRequest | None:
            candidates = self._load(
                cur,
                "status = 'approved' AND expires_at > ? AND requester = ? AND"
                " ((scope <> 'window' AND statement_key = ?)"
                " OR (scope = 'window' AND fingerprint_key = ?))",
                (now, requester, statement_key(statement, params), fingerprint_key(fingerprint)),
                "ORDER BY id",
                lock=True,
            )
            for request in candidates:
                if covers(request):
                    return self._use(cur, request, now)
            return None

        return await self._transaction(work)

    async def expire_due(self, *, now: float) -> list[ApprovalRequest]:
        def work(cur: Cursor) -> list[ApprovalRequest]:
            due = self._load(
                cur,
                "status IN ('pending', 'approved') AND expires_at <= ?",
                [now],
                "ORDER BY id",
                lock=True,
            )
            return [self._expire(cur, request) for request in due]

        return await self._transaction(work)
