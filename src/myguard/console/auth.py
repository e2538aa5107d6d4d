"""Console sign-ins: who holds which session cookie, and its CSRF token.

A sign-in is checked against the configured identity source, through the same login
throttle as the SQL path (per user and client address). The cookie holds 256 random
bits; the server keeps only their SHA-256, so a memory dump or a log line holding the
key reveals no cookie. A sign-in ends after ``idle_timeout`` seconds without a request,
``lifetime`` seconds after it was made, or at sign-out. Groups are re-read from the
identity source every ``refresh_every`` seconds, so a person removed from an approver
group loses the right within that time.

Every state-changing request carries the sign-in's CSRF token (a form field or the
``X-CSRF-Token`` header), compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from myguard.identity.base import AuthFailed, Identity, IdentitySource, IdentityUnavailable
from myguard.logs import event

COOKIE = "myguard_console"
LOGIN_COOKIE = "myguard_login"  # double-submit token of the sign-in form


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(slots=True)
class SignIn:
    identity: Identity
    csrf: str
    created: float
    last_seen: float
    refreshed: float
    address: str

    @property
    def user(self) -> str:
        return self.identity.user

    @property
    def groups(self) -> frozenset[str]:
        return self.identity.groups

    def csrf_ok(self, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(self.csrf.encode(), str(token).encode())


class SignIns:
    def __init__(
        self,
        source: IdentitySource,
        *,
        idle_timeout: float,
        lifetime: float,
        refresh_every: float = 300.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.source = source
        self.idle_timeout = idle_timeout
        self.lifetime = lifetime
        self.refresh_every = refresh_every
        self.max_entries = max_entries
        self.clock = clock
        self._by_key: OrderedDict[str, SignIn] = OrderedDict()

    def create(self, identity: Identity, address: str) -> tuple[str, SignIn]:
        """A new sign-in; returns the cookie value (never stored) and the sign-in."""
        now = self.clock()
        token = secrets.token_urlsafe(32)
        signin = SignIn(identity, secrets.token_urlsafe(32), now, now, now, address)
        self._by_key[_key(token)] = signin
        while len(self._by_key) > self.max_entries:
            self._by_key.popitem(last=False)  # the least recently used
        return token, signin

    async def get(self, token: str | None) -> SignIn | None:
        """The live sign-in for a cookie value, touched; None when unknown or ended."""
        if not token:
            return None
        key = _key(token)
        signin = self._by_key.get(key)
        if signin is None:
            return None
        now = self.clock()
        if now - signin.last_seen > self.idle_timeout or now - signin.created > self.lifetime:
            del self._by_key[key]
            return None
        signin.last_seen = now
        self._by_key.move_to_end(key)
        if now - signin.refreshed > self.refresh_every:
            try:
                signin.identity = await self.source.refresh(signin.identity)
                signin.refreshed = now
            except AuthFailed:
                del self._by_key[key]  # the user is gone or disabled in the directory
                return None
            except IdentityUnavailable as exc:
                # Keep the groups read at sign-in until the directory answers again.
                event(logging.WARNING, "console_refresh_failed", user=signin.user, error=str(exc))
        return signin

    def end(self, token: str | None) -> None:
        if token:
            self._by_key.pop(_key(token), None)

    def __len__(self) -> int:
        return len(self._by_key)
