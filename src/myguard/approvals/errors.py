"""Errors of the approval flow and their MySQL rendering.

Codes live in the user range 4710-4719 (the rules engine owns 4700-4709). All use
SQLSTATE 'HY000' (general error): none of the standard classes fits "held by a
governance proxy", and clients treat HY000 as non-retryable by default, which is
what we want — re-running is a human decision. Messages start with a fixed token
(``MYGUARD_APPROVAL_...``) followed by ``key=value`` pairs so that tools can parse
them; free text (reasons) comes last and everything is kept under 512 bytes.
"""

from __future__ import annotations

from myguard.approvals.model import ApprovalRequest

SQLSTATE = "HY000"

ER_APPROVAL_PENDING = 4710  # hold timed out; the request stays open
ER_APPROVAL_DENIED = 4711
ER_APPROVAL_CANCELLED = 4712
ER_APPROVAL_EXPIRED = 4713  # nobody decided before the request's deadline
ER_APPROVAL_USED_UP = 4714  # approved, but its executions were already used
ER_APPROVAL_REFUSED = (
    4715  # an approver's action was refused (self-approval, not an approver, closed)
)
ER_APPROVAL_NOT_FOUND = 4716
ER_MYGUARD_COMMAND_SYNTAX = 4717  # a MYGUARD ... command typed wrong

MAX_MESSAGE_BYTES = 511


def _fit(message: str) -> str:
    """Cut to MAX_MESSAGE_BYTES of UTF-8 without splitting a character."""
    encoded = message.encode("utf-8")
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return message
    return encoded[: MAX_MESSAGE_BYTES - 3].decode("utf-8", "ignore") + "..."


def _one_line(text: str | None) -> str:
    return " ".join((text or "").split())


class ApprovalError(Exception):
    """Anything in the approval flow that ends as a MySQL error for a client."""

    code: int = 0
    token: str = "MYGUARD_APPROVAL_ERROR"

    def __init__(self, details: str) -> None:
        self.sqlstate = SQLSTATE
        self.message = _fit(f"{self.token} {details}")
        super().__init__(self.message)


class ApprovalOutcomeError(ApprovalError):
    """A held statement will not run; ``request`` is its final (or current) state."""

    def __init__(self, request: ApprovalRequest, details: str) -> None:
        self.request = request
        super().__init__(f"id={request.id} {details}")


class ApprovalHeld(ApprovalOutcomeError):
    code = ER_APPROVAL_PENDING
    token = "MYGUARD_APPROVAL_PENDING"

    def __init__(self, request: ApprovalRequest, waited: float) -> None:
        super().__init__(
            request,
            f"rule={request.context.rule} waited={waited:g}s: statement needs approval; "
            "re-running the same statement after it is approved will run it",
        )


class ApprovalDenied(ApprovalOutcomeError):
    code = ER_APPROVAL_DENIED
    token = "MYGUARD_APPROVAL_DENIED"

    def __init__(self, request: ApprovalRequest) -> None:
        denial = request.denial
        by = denial.actor if denial else "?"
        super().__init__(request, f"by={by} reason={_one_line(denial.reason if denial else '')}")


class ApprovalCancelled(ApprovalOutcomeError):
    code = ER_APPROVAL_CANCELLED
    token = "MYGUARD_APPROVAL_CANCELLED"

    def __init__(self, request: ApprovalRequest) -> None:
        cancel = request.cancellation
        super().__init__(request, f"reason={_one_line(cancel.reason if cancel else '')}")


class ApprovalExpired(ApprovalOutcomeError):
    code = ER_APPROVAL_EXPIRED
    token = "MYGUARD_APPROVAL_EXPIRED"

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__(request, "the request expired before it was approved")


class ApprovalUsedUp(ApprovalOutcomeError):
    code = ER_APPROVAL_USED_UP
    token = "MYGUARD_APPROVAL_USED"

    def __init__(self, request: ApprovalRequest) -> None:
        super().__init__(request, "the approval was already used; request a new one")


class ApprovalRefused(ApprovalError):
    """An approver's approve/deny was refused; ``why`` is a stable short tag."""

    code = ER_APPROVAL_REFUSED
    token = "MYGUARD_APPROVAL_REFUSED"

    def __init__(self, request_id: int, why: str, detail: str) -> None:
        self.request_id = request_id
        self.why = why
        super().__init__(f"id={request_id} why={why}: {detail}")


class ApprovalNotFound(ApprovalError):
    code = ER_APPROVAL_NOT_FOUND
    token = "MYGUARD_APPROVAL_NOT_FOUND"

    def __init__(self, request_id: int) -> None:
        self.request_id = request_id
        super().__init__(f"id={request_id}")


class MyguardCommandSyntax(ApprovalError):
    code = ER_MYGUARD_COMMAND_SYNTAX
    token = "MYGUARD_COMMAND_SYNTAX"
