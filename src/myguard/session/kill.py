"""KILL statements: myguard maps the ids clients see to its own sessions."""

from __future__ import annotations

import re
from dataclasses import dataclass

from myguard.protocol.errors import ER_KILL_DENIED_ERROR, ER_NO_SUCH_THREAD, MySQLError
from myguard.session.registry import SessionRegistry

# KILL [HARD | SOFT] [CONNECTION | QUERY] id   (MariaDB and MySQL forms)
_KILL = re.compile(
    rb"^\s*KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(CONNECTION|QUERY)\s+)?(\d+)\s*;?\s*$",
    re.IGNORECASE,
)
_KILL_ANY = re.compile(rb"^\s*KILL\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class KillRequest:
    target: int
    query_only: bool


def parse_kill(sql: bytes) -> KillRequest | None:
    """A KILL statement myguard handles, or None when ``sql`` is not a KILL.

    KILL forms myguard cannot map (``KILL USER``, ``KILL QUERY ID``) raise an error rather
    than reaching the backend, where the ids would refer to other users' connections.
    """
    if not _KILL_ANY.match(sql):
        return None
    m = _KILL.match(sql)
    if m is None:
        raise MySQLError(
            ER_KILL_DENIED_ERROR,
            "HY000",
            "myguard: only KILL [CONNECTION | QUERY] <id> with an id from this proxy is supported",
        )
    return KillRequest(int(m.group(2)), (m.group(1) or b"").upper() == b"QUERY")


async def kill(registry: SessionRegistry, user: str, request: KillRequest) -> None:
    """Kill a session of ``user``; a user may kill only their own sessions."""
    target = registry.get(request.target)
    if target is None:
        raise MySQLError(ER_NO_SUCH_THREAD, "HY000", f"Unknown thread id: {request.target}")
    if target.user != user:
        raise MySQLError(
            ER_KILL_DENIED_ERROR, "HY000", f"You are not owner of thread {request.target}"
        )
    await target.kill(request.query_only)
