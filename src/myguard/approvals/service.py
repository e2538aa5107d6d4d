"""The approval flow: hold a statement, let approvers decide, release or refuse it.

Waking held sessions: a decision made through this service instance sets the
waiters' asyncio Events immediately. A decision made elsewhere — another myguard
instance on a shared MySQL store, or the ``myguard approvals`` CLI on the same
SQLite file — is seen by one poller task per service instance, which reads the
status of every waited-on request in a single query every ``poll_interval``
(default 250 ms) and only while someone is waiting. So a held statement resumes
within about a quarter second of an approval made anywhere.

The audit callback gets one dict per step; its failures are logged, never raised,
because the decision is already committed in the store when it is called.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from myguard.approvals.errors import (
    ApprovalCancelled,
    ApprovalDenied,
    ApprovalExpired,
    ApprovalHeld,
    ApprovalNotFound,
    ApprovalRefused,
    ApprovalUsedUp,
)
from myguard.approvals.model import ApprovalRequest, RequestContext, RequestStatus
from myguard.approvals.notify import Notifier
from myguard.approvals.store import ApprovalStore, NotPending

log = logging.getLogger(__name__)

AuditSink = Callable[[dict[str, Any]], Awaitable[None]]

_REFUSALS = {
    RequestStatus.DENIED: ApprovalDenied,
    RequestStatus.CANCELLED: ApprovalCancelled,
    RequestStatus.EXPIRED: ApprovalExpired,
    RequestStatus.EXECUTED: ApprovalUsedUp,
}


class ApprovalService:
    def __init__(
        self,
        store: ApprovalStore,
        *,
        notifier: Notifier | None = None,
        audit: AuditSink | None = None,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 0.25,
        decision_ttl: float = 24 * 3600.0,
        approval_ttl: float = 24 * 3600.0,
    ) -> None:
        """``decision_ttl``: how long a request can still be decided after it was made;
        ``approval_ttl``: how long an approved once/count request stays usable (window
        scope uses its own ``window_seconds``). Both count from the wall ``clock``."""
        self.store = store
        self.notifier = notifier
        self._audit_sink = audit
        self.clock = clock
        self.poll_interval = poll_interval
        self.decision_ttl = decision_ttl
        self.approval_ttl = approval_ttl
        self._waiters: dict[int, set[asyncio.Event]] = {}
        self._poller: asyncio.Task[None] | None = None

    # -- audit and wake-up -------------------------------------------------------------

    async def _audit(
        self,
        request: ApprovalRequest,
        event: str,
        actor: str,
        reason: str | None = None,
        actor_groups: Iterable[str] | None = None,
    ) -> None:
        if self._audit_sink is None:
            return
        record = {
            "type": "approval",
            "request_id": request.id,
            "event": event,
            "actor": actor,
            "actor_groups": sorted(actor_groups) if actor_groups is not None else None,
            "reason": reason,
            "at": self.clock(),
            "status": str(request.status),
            "rule": request.context.rule,
            "requester": request.requester,
            "session_id": request.context.session_id,
            "uses_left": request.uses_left,
        }
        try:
            await self._audit_sink(record)
        except Exception:
            log.exception("approval audit callback failed for %s", record)

    def _wake(self, request_id: int) -> None:
        for event in self._waiters.get(request_id, ()):
            event.set()

    def _ensure_poller(self) -> None:
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        try:
            while self._waiters:
                await asyncio.sleep(self.poll_interval)
                ids = list(self._waiters)
                try:
                    statuses = await self.store.statuses(ids)
                except Exception:
                    log.exception("polling approval store failed")
                    continue
                for request_id in ids:
                    if statuses.get(request_id) is not RequestStatus.PENDING:
                        self._wake(request_id)
        finally:
            self._poller = None

    # -- the held session's side -------------------------------------------------------

    async def request(self, context: RequestContext) -> ApprovalRequest:
        """Queue a held statement and notify approvers."""
        now = self.clock()
        ttl = max(self.decision_ttl, context.policy.hold_seconds)
        request = await self.store.create(context, now=now, expires_at=now + ttl)
        await self._audit(request, "requested", context.requester)
        if self.notifier is not None:
            self.notifier.submit({"type": "approval_request", "request": request.to_dict()})
        return request

    async def wait(self, request_id: int, timeout: float | None = None) -> ApprovalRequest:
        """Hold until a decision; return the request once a use was consumed for the caller.

        ``timeout`` defaults to the policy's ``hold_seconds``. Every outcome other than
        "run it" raises an ApprovalOutcomeError carrying the MySQL error to send:
        ApprovalHeld (timeout; the request stays open), ApprovalDenied,
        ApprovalCancelled, ApprovalExpired, ApprovalUsedUp.
        """
        event = asyncio.Event()
        # Register before the first read so that a decision landing in between still wakes us.
        self._waiters.setdefault(request_id, set()).add(event)
        self._ensure_poller()
        started = asyncio.get_running_loop().time()
        try:
            request = await self.get(request_id)
            limit = request.policy.hold_seconds if timeout is None else timeout
            try:
                async with asyncio.timeout(limit):
                    while request.status is RequestStatus.PENDING:
                        await event.wait()
                        event.clear()
                        request = await self.get(request_id)
            except TimeoutError:
                request = await self.get(request_id)
        finally:
            waiters = self._waiters.get(request_id, set())
            waiters.discard(event)
            if not waiters:
                self._waiters.pop(request_id, None)
        if request.status is RequestStatus.PENDING:
            if request.expires_at <= self.clock():
                await self.expire_due()
                raise ApprovalExpired(request)
            await self._audit(request, "hold-timeout", request.requester)
            raise ApprovalHeld(request, round(asyncio.get_running_loop().time() - started, 1))
        return await self._run_approved(request)

    async def _run_approved(self, request: ApprovalRequest) -> ApprovalRequest:
        if request.status is RequestStatus.APPROVED:
            used = await self.store.consume(request.id, now=self.clock())
            if used is not None:
                await self._audit(used, "executed", used.requester, "released from hold")
                return used
            request = await self.get(request.id)
        raise _REFUSALS.get(request.status, ApprovalUsedUp)(request)

    async def find_preapproved(
        self, requester: str, statement: str, params: Iterable[str], fingerprint: str
    ) -> ApprovalRequest | None:
        """An approved request covering this statement, with one use consumed; else None.

        Matching (same requester only): once/count scopes need the exact statement
        text and parameters, window scope the same fingerprint within its window.
        """
        used = await self.store.consume_matching(
            requester, statement, tuple(params), fingerprint, now=self.clock()
        )
        if used is not None:
            await self._audit(used, "executed", requester, "re-run after approval")
        return used

    async def cancel(self, request_id: int, reason: str, actor: str = "myguard") -> ApprovalRequest:
        """Withdraw a pending request (client gone, KILL QUERY); a decided one is returned as is."""
        try:
            request = await self.store.close(
                request_id, RequestStatus.CANCELLED, actor, reason, now=self.clock()
            )
        except KeyError:
            raise ApprovalNotFound(request_id) from None
        except NotPending as closed:
            return closed.request
        await self._audit(request, "cancelled", actor, reason)
        self._wake(request_id)
        return request

    # -- the approvers' side -----------------------------------------------------------

    async def get(self, request_id: int) -> ApprovalRequest:
        request = await self.store.get(request_id)
        if request is None:
            raise ApprovalNotFound(request_id)
        return request

    async def list(
        self,
        status: RequestStatus | None = RequestStatus.PENDING,
        *,
        limit: int = 100,
        before: int | None = None,
    ) -> list[ApprovalRequest]:
        await self.expire_due()
        return await self.store.list(status, limit=limit, before=before)

    async def visible_page(
        self,
        user: str,
        groups: frozenset[str],
        status: RequestStatus | None,
        *,
        limit: int = 50,
        before: int | None = None,
        scan: int = 5000,
    ) -> tuple[list[ApprovalRequest], int | None]:
        """Up to ``limit`` requests ``user`` may see (their own, and those their groups may
        approve), newest first, below id ``before``; and the id to continue below (None
        at the end). At most ``scan`` requests are read per call: the continuation may
        come with fewer than ``limit`` found."""
        await self.expire_due()
        found: list[ApprovalRequest] = []
        read = 0
        cursor = before
        chunk = max(limit * 2, 100)
        while read < scan:
            batch = await self.store.list(status, limit=chunk, before=cursor)
            read += len(batch)
            for request in batch:
                if request.requester == user or request.policy.approver_groups & groups:
                    found.append(request)
                    if len(found) == limit:
                        return found, request.id
            if len(batch) < chunk:
                return found, None
            cursor = batch[-1].id
        return found, cursor

    async def expire_due(self) -> list[ApprovalRequest]:
        expired = await self.store.expire_due(now=self.clock())
        for request in expired:
            await self._audit(request, "expired", "myguard")
            self._wake(request.id)
        return expired

    async def _refuse(
        self, request: ApprovalRequest, actor: str, groups: frozenset[str], why: str, detail: str
    ) -> ApprovalRefused:
        await self._audit(request, "refused", actor, f"{why}: {detail}", groups)
        return ApprovalRefused(request.id, why, detail)

    async def _checked_approver(
        self, request_id: int, approver: str, groups: frozenset[str]
    ) -> ApprovalRequest:
        request = await self.get(request_id)
        allowed = request.policy.approver_groups
        if not allowed & groups:
            raise await self._refuse(
                request,
                approver,
                groups,
                "not-an-approver",
                f"needs one of {', '.join(sorted(allowed))}",
            )
        return request

    async def _closed(
        self, request: ApprovalRequest, actor: str, groups: frozenset[str], closed: NotPending
    ) -> ApprovalRefused:
        return await self._refuse(
            request, actor, groups, "not-pending", f"request is {closed.request.status}"
        )

    async def approve(
        self,
        request_id: int,
        approver: str,
        approver_groups: Iterable[str],
        reason: str | None = None,
    ) -> ApprovalRequest:
        """Record an approval; raises ApprovalRefused / ApprovalNotFound."""
        groups = frozenset(approver_groups)
        request = await self._checked_approver(request_id, approver, groups)
        if approver == request.requester:
            raise await self._refuse(
                request, approver, groups, "self-approval", "cannot approve own request"
            )
        policy = request.policy
        now = self.clock()
        # A window starts when the approval is granted; once/count approvals wait for a re-run.
        validity = self.approval_ttl if policy.window_seconds is None else policy.window_seconds
        try:
            updated = await self.store.add_approval(
                request_id, approver, reason, now=now, valid_until=now + validity
            )
        except NotPending as closed:
            raise await self._closed(request, approver, groups, closed) from None
        await self._audit(updated, "approval", approver, reason, groups)
        if updated.status is RequestStatus.APPROVED:
            await self._audit(updated, "approved", approver, reason, groups)
            self._wake(request_id)
        return updated

    async def deny(
        self, request_id: int, approver: str, approver_groups: Iterable[str], reason: str
    ) -> ApprovalRequest:
        """Deny (any one approver suffices); raises ApprovalRefused / ApprovalNotFound."""
        groups = frozenset(approver_groups)
        request = await self._checked_approver(request_id, approver, groups)
        if not reason.strip():
            raise await self._refuse(
                request, approver, groups, "no-reason", "a denial needs a reason"
            )
        try:
            updated = await self.store.close(
                request_id, RequestStatus.DENIED, approver, reason, now=self.clock()
            )
        except NotPending as closed:
            raise await self._closed(request, approver, groups, closed) from None
        await self._audit(updated, "denied", approver, reason, groups)
        self._wake(request_id)
        return updated

    async def aclose(self) -> None:
        """Stop polling (waiters then see only local decisions until their timeout)."""
        if self._poller is not None:
            self._poller.cancel()
