"""JSON API for approvers, served by the admin listener.

    GET  /approvals[?status=pending|approved|...|all]
    GET  /approvals/{id}
    POST /approvals/{id}/approve   body: {"reason": "..."} (optional)
    POST /approvals/{id}/deny      body: {"reason": "..."} (required)

Every call authenticates with HTTP Basic through the identity source (the admin
listener adds ``WWW-Authenticate: Basic realm="myguard"`` to every 401). A caller
sees only requests they made or could approve; others look like 404 so that the
API does not reveal what other teams are running.

Errors are ``{"code": CODE, "message": TEXT}``; CODE is stable for scripts:
authentication-required, authentication-failed (401), identity-unavailable (503),
no-such-endpoint, not-found (404), method-not-allowed (405), bad-request, no-reason
(400), not-an-approver, self-approval (403), not-pending (409).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from myguard.approvals.errors import ApprovalNotFound, ApprovalRefused
from myguard.approvals.model import ApprovalRequest, RequestStatus
from myguard.approvals.service import ApprovalService
from myguard.identity.base import AuthFailed, Identity, IdentityUnavailable

Authenticate = Callable[[str, str], Awaitable[Identity]]
Response = tuple[int, dict[str, Any]]

_ROUTE = re.compile(r"/approvals(?:/(?P<id>\d+)(?:/(?P<action>approve|deny))?)?/?")
_REFUSAL_STATUS = {"not-pending": 409, "no-reason": 400}


def _error(status: int, code: str, message: str) -> Response:
    return status, {"code": code, "message": message}


def _credentials(headers: dict[str, str]) -> tuple[str, str] | None:
    value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep and user else None


def _visible(request: ApprovalRequest, who: Identity) -> bool:
    return who.user == request.requester or bool(request.policy.approver_groups & who.groups)


def _reason(body: bytes) -> str | None:
    """The optional "reason" of a JSON body; ValueError if the body is not such JSON."""
    if not body.strip():
        return None
    data = json.loads(body)
    reason = data.get("reason") if isinstance(data, dict) else None
    if reason is not None and not isinstance(reason, str):
        raise ValueError("reason must be a string")
    return reason


async def _list(query: str, service: ApprovalService, who: Identity) -> Response:
    wanted = parse_qs(query).get("status", ["pending"])[-1]
    if wanted != "all" and wanted not in {s.value for s in RequestStatus}:
        return _error(400, "bad-request", f"unknown status {wanted!r}")
    status = None if wanted == "all" else RequestStatus(wanted)
    requests = await service.list(status)
    return 200, {"approvals": [r.to_dict() for r in requests if _visible(r, who)]}


async def _act(
    action: str, request_id: int, body: bytes, service: ApprovalService, who: Identity
) -> Response:
    try:
        reason = _reason(body)
    except ValueError as exc:
        return _error(400, "bad-request", f'body must be JSON like {{"reason": "..."}}: {exc}')
    if not _visible(await service.get(request_id), who):
        raise ApprovalNotFound(request_id)
    if action == "approve":
        done = await service.approve(request_id, who.user, who.groups, reason)
    else:
        done = await service.deny(request_id, who.user, who.groups, reason or "")
    return 200, done.to_dict()


async def handle(
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
    service: ApprovalService,
    authenticate: Authenticate,
) -> Response:
    """Answer one request: (HTTP status, JSON object)."""
    url = urlsplit(path)
    route = _ROUTE.fullmatch(url.path)
    if route is None:
        return _error(404, "no-such-endpoint", "no such endpoint")
    action = route["action"]
    if method != ("POST" if action else "GET"):
        return _error(405, "method-not-allowed", f"{url.path} takes {'POST' if action else 'GET'}")
    credentials = _credentials(headers)
    if credentials is None:
        return _error(401, "authentication-required", "HTTP Basic authentication required")
    try:
        who = await authenticate(*credentials)
    except AuthFailed:
        return _error(401, "authentication-failed", "authentication failed")
    except IdentityUnavailable:
        return _error(503, "identity-unavailable", "identity provider unavailable")
    try:
        if route["id"] is None:
            return await _list(url.query, service, who)
        request_id = int(route["id"])
        if action:
            return await _act(action, request_id, body, service, who)
        request = await service.get(request_id)
        if not _visible(request, who):
            raise ApprovalNotFound(request_id)
        return 200, request.to_dict()
    except ApprovalNotFound as missing:
        return _error(404, "not-found", missing.message)
    except ApprovalRefused as refused:
        return _error(_REFUSAL_STATUS.get(refused.why, 403), refused.why, refused.message)
