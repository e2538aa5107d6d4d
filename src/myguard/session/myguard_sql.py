"""``MYGUARD ...`` commands typed in a client session: answered by myguard, never forwarded."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from myguard.approvals.model import ApprovalRequest
from myguard.approvals.sql_command import MyguardCommand
from myguard.protocol.generic_response import ok_packet
from myguard.session.approval_hold import approval_error

if TYPE_CHECKING:
    from myguard.session.state import SessionState

_COLUMNS = [
    "id",
    "status",
    "requester",
    "environment",
    "rule",
    "statement",
    "params",
    "created",
    "approvals",
]


def _row(r: ApprovalRequest) -> list[str | None]:
    created = datetime.datetime.fromtimestamp(r.created_at, datetime.UTC).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    return [
        str(r.id),
        str(r.status),
        r.requester,
        r.context.environment,
        r.context.rule,
        r.context.statement,
        ", ".join(r.context.params) or None,
        created,
        ", ".join(a.approver for a in r.approvals) or None,
    ]


async def run(session: SessionState, command: MyguardCommand) -> None:
    """Answer ``command`` on the session's client stream."""
    service = session.ctx.approvals
    identity = session.identity
    try:
        if command.verb == "approve":
            await service.approve(command.request_id, session.user, identity.groups, command.reason)
            session.client.write_packet(ok_packet(status=session.status()))
            return
        if command.verb == "deny":
            await service.deny(command.request_id, session.user, identity.groups, command.reason)
            session.client.write_packet(ok_packet(status=session.status()))
            return
        if command.verb == "show":
            request = await service.get(command.request_id)
            visible = (
                request.requester == session.user
                or request.policy.approver_groups & identity.groups
            )
            rows = [_row(request)] if visible else []
        else:
            rows = [
                _row(r)
                for r in await service.list()
                if r.requester == session.user or r.policy.approver_groups & identity.groups
            ]
    except Exception as exc:  # refusals, and a queue that cannot be reached
        raise approval_error(exc) from None
    session.answer_rows(_COLUMNS, rows)
