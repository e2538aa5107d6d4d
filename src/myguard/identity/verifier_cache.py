"""Fast-auth verifiers remembered after a successful full authentication.

LDAP cannot check a scramble, so a client using mysql_native_password or the
caching_sha2_password fast path needs verifiers that only exist once its cleartext
password has been seen. After a full authentication the exchange calls ``remember``;
for ``ttl`` seconds the user can then log in with a scramble.

Trade-off: while an entry lives, the password that produced it keeps working even if it
was changed or the account disabled in LDAP; a new password takes effect at the next full
authentication, which also replaces the entry. ``get(user, allow_expired=True)`` lets a
deployment keep accepting cached verifiers during an LDAP outage (off by default: it
extends that window for as long as the outage lasts). Only stage-2 hashes are kept,
never the password.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from myguard.identity.base import FastVerifiers, Identity
from myguard.identity.verifiers import native_stage2, sha2_stage2


@dataclass(frozen=True, slots=True)
class _Entry:
    verifiers: FastVerifiers
    expires: float


class VerifierCache:
    """Per-user stage-2 verifiers with a time-to-live."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        if ttl < 0:
            raise ValueError(f"ttl must be >= 0, got {ttl!r}")
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[str, _Entry] = {}

    def remember(self, identity: Identity, password: str) -> None:
        """Keep verifiers derived from ``password`` for ``identity.user``."""
        verifiers = FastVerifiers(
            identity=identity,
            native_stage2=native_stage2(password),
            sha2_stage2=sha2_stage2(password),
        )
        self._entries[identity.user] = _Entry(verifiers, self._clock() + self.ttl)

    def get(self, user: str, *, allow_expired: bool = False) -> FastVerifiers | None:
        """The verifiers for ``user``; expired ones only when ``allow_expired``."""
        entry = self._entries.get(user)
        if entry is None:
            return None
        if allow_expired or self._clock() < entry.expires:
            return entry.verifiers
        return None

    def forget(self, user: str) -> None:
        """Drop ``user``'s verifiers, e.g. after a failed full authentication."""
        self._entries.pop(user, None)

    def purge_expired(self) -> int:
        """Drop expired entries (unless kept for outages, call this periodically)."""
        now = self._clock()
        stale = [user for user, entry in self._entries.items() if entry.expires <= now]
        for user in stale:
            del self._entries[user]
        return len(stale)

    def __len__(self) -> int:
        return len(self._entries)
