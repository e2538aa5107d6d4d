"""The audit record of one approval step, as the service reports it (see service._audit).

Every path that decides (SQL session, HTTP API, CLI) goes through an ApprovalService
whose audit sink writes these records, so the trail reads the same whichever was used.
"""

from __future__ import annotations

from typing import Any

from myguard.audit import AuditRecord, approval_record


def step_record(step: dict[str, Any]) -> AuditRecord:
    """The ``approval`` audit record for one step dict of ApprovalService."""
    session_id = step.get("session_id")
    return approval_record(
        request_id=str(step["request_id"]),
        event=step["event"],
        actor=step.get("actor"),
        actor_groups=step.get("actor_groups"),
        reason=step.get("reason"),
        user=step.get("requester"),
        session_id=None if session_id is None else str(session_id),
        rule=step.get("rule"),
        status=step.get("status"),
        at=step.get("at"),
    )
