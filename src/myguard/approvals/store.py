"""The durable approval queue, as the service sees it.

Every state change is a single atomic step in the backend (a transaction that locks
the request row), so several myguard instances sharing one MySQL store can decide
at the same moment and only one transition wins. Policy checks that need the
caller's identity (self-approval, approver groups) belong to the service; the store
only refuses transitions that are impossible from the current state.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable

from myguard.approvals.model import ApprovalRequest, RequestContext, RequestStatus


class NotPending(Exception):
    """The request is no longer open for decision; ``request`` is its current state."""

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__(f"approval request {request.id} is {request.status}")
        self.request = request


class StoreMissing(Exception):
    """The store does not exist, and it was opened for reading only (nothing is created)."""


class ApprovalStore(abc.ABC):
    @abc.abstractmethod
    async def create(
        self, context: RequestContext, *, now: float, expires_at: float
    ) -> ApprovalRequest:
        """Store a new pending request and return it with its id."""

    @abc.abstractmethod
    async def get(self, request_id: int) -> ApprovalRequest | None: ...

    @abc.abstractmethod
    async def list(
        self, status: RequestStatus | None = None, *, limit: int = 100, before: int | None = None
    ) -> list[ApprovalRequest]:
        """Newest first; ``before``: only requests with a smaller id (the next page)."""

    @abc.abstractmethod
    async def version(self) -> tuple[object, ...]:
        """A value that changes whenever a request is added, decided, used or expired (one
        cheap query: what live views poll to know when to read the queue again)."""

    @abc.abstractmethod
    async def statuses(self, request_ids: Iterable[int]) -> dict[int, RequestStatus]:
        """Current status of many requests in one round trip (used by waiters' polling)."""

    @abc.abstractmethod
    async def add_approval(
        self,
        request_id: int,
        approver: str,
        reason: str | None,
        *,
        now: float,
        valid_until: float,
    ) -> ApprovalRequest:
        """Record one approver's vote; a second vote by the same approver is ignored.

        When the distinct votes reach the policy's ``min_approvals`` the request becomes
        approved with its granted uses and ``expires_at = valid_until``. Raises NotPending
        if it is not pending or its deadline has passed; KeyError if unknown.
        """

    @abc.abstractmethod
    async def close(
        self,
        request_id: int,
        status: RequestStatus,
        actor: str,
        reason: str | None,
        *,
        now: float,
    ) -> ApprovalRequest:
        """Pending -> DENIED or CANCELLED. Raises NotPending otherwise; KeyError if unknown."""

    @abc.abstractmethod
    async def consume(self, request_id: int, *, now: float) -> ApprovalRequest | None:
        """Use one execution of an approved, unexpired request; None if none is left."""

    @abc.abstractmethod
    async def consume_matching(
        self,
        requester: str,
        statement: str,
        params: tuple[str, ...],
        fingerprint: str,
        *,
        now: float,
    ) -> ApprovalRequest | None:
        """Use one execution of the oldest approved request that covers this statement.

        once/count scopes match the exact statement text and parameters; window scope
        matches the fingerprint. Both only for the same requester: an approval is for a
        person's action, not for anybody who types the same statement.
        """

    @abc.abstractmethod
    async def expire_due(self, *, now: float) -> list[ApprovalRequest]:
        """Mark pending/approved requests past ``expires_at`` as expired; return them."""

    @abc.abstractmethod
    async def aclose(self) -> None:
        """Release connections and threads."""
