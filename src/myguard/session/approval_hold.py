"""Holding a statement for approval on the client's own connection.

The session waits (no busy loop) while approvers decide; other sessions carry on. An open
transaction stays open during the hold: nothing reaches the backend until approval, so
the held statement runs inside it if approved, and the transaction is untouched if not.
A client that disconnects, or a ``KILL QUERY`` of the session, cancels the request.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from myguard.approvals.errors import ApprovalError
from myguard.approvals.model import RequestContext
from myguard.logs import event
from myguard.net.packet_stream import ConnectionLost
from myguard.policy.decision import Decision
from myguard.protocol.errors import MySQLError
from myguard.session.statement_text import StatementText

if TYPE_CHECKING:
    from myguard.session.state import SessionState

ER_MYGUARD_APPROVALS_UNAVAILABLE = 4694


def approval_error(exc: Exception) -> MySQLError:
    """The client's error for an approval outcome, or for a queue that cannot be reached."""
    if isinstance(exc, ApprovalError):
        return MySQLError(exc.code, exc.sqlstate, exc.message)
    event(logging.ERROR, "approvals_unavailable", error=f"{type(exc).__name__}: {exc}")
    return MySQLError(
        ER_MYGUARD_APPROVALS_UNAVAILABLE,
        "HY000",
        "MYGUARD_APPROVALS_UNAVAILABLE the approval queue cannot be reached; the statement was not run",
    )


def _analysis(decision: Decision) -> dict[str, object]:
    statements = decision.statements
    return {
        "kind": ",".join(dict.fromkeys(s.kind for s in statements)),
        "tables_read": sorted({str(t) for s in statements for t in s.reads}),
        "tables_written": sorted({str(t) for s in statements for t in s.writes}),
        "columns": sorted({str(c) for s in statements for c in s.columns}),
        # What approvers see beside the statement (the console): tags and the rule's words.
        "data_tags": sorted(decision.tags),
        "rule_message": decision.message or None,
    }


async def hold(
    session: SessionState, statement: StatementText, params: list[str], decision: Decision
) -> int:
    """Return the approval id once the statement may run; raise MySQLError otherwise."""
    service = session.ctx.approvals
    identity = session.identity
    sql = statement.text
    fingerprint = str(statement.fingerprint)
    try:
        approved = await service.find_preapproved(session.user, sql, params, fingerprint)
        if approved is not None:
            return approved.id
        request = await service.request(
            RequestContext(
                requester=session.user,
                requester_groups=identity.groups,
                source_address=session.source_ip,
                client_program=session.attributes.get("program_name"),
                environment=session.backend_config.environment,
                backend=session.backend_config.name,
                session_id=session.id,
                statement=sql,
                params=tuple(params),
                fingerprint=fingerprint,
                analysis=_analysis(decision),
                rule=decision.rule,
                policy=decision.approval,
            )
        )
    except Exception as exc:  # a refusal, or a store that cannot be reached: fail closed
        raise approval_error(exc) from None
    event(
        logging.INFO,
        "approval_requested",
        session=session.id,
        user=session.user,
        request=request.id,
        rule=decision.rule,
    )
    session.held_request = request.id
    waiter = asyncio.ensure_future(service.wait(request.id))
    watcher = asyncio.ensure_future(session.client.wait_closed())
    try:
        done, _ = await asyncio.wait({waiter, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if watcher in done and watcher.result():
            waiter.cancel()
            await service.cancel(request.id, "client disconnected while held")
            raise ConnectionLost("client disconnected while its statement was held for approval")
        try:
            approved = await waiter
        except Exception as exc:
            raise approval_error(exc) from None
    finally:
        session.held_request = None
        watcher.cancel()
        waiter.cancel()
    event(
        logging.INFO,
        "approval_released",
        session=session.id,
        user=session.user,
        request=approved.id,
    )
    return approved.id
