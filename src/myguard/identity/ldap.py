"""LDAP as an identity source, safe to call from the event loop.

ldap3 is blocking, so every conversation runs in a private thread pool of
``max_concurrency`` threads; a semaphore holds each slot until its thread has really
finished (even if the caller gave up), so a login storm or a dead server queues work
instead of piling up threads, and the event loop never waits on a socket.

Groups: ``authenticate`` always resolves them. ``refresh`` reuses them while younger than
``group_ttl`` and otherwise re-reads the user with the service account (``bind_dn``);
a user who vanished or became disabled makes ``refresh`` raise AuthFailed. In pure
direct-bind mode (no ``bind_dn``) there is no identity to search with between logins,
so ``refresh`` returns the identity unchanged and groups change at the next login.

LDAP has no scramble verifiers: ``fast_verifiers`` is always None and fast auth relies on
``myguard.identity.verifier_cache.VerifierCache``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from ldap3.core.exceptions import LDAPException

from myguard.identity.base import (
    AuthFailed,
    FastVerifiers,
    Identity,
    IdentitySource,
    IdentityUnavailable,
)
from myguard.identity.ldap_config import LdapConfig
from myguard.identity.ldap_directory import Directory, UserRecord

T = TypeVar("T")

# One login is at most len(urls) connection attempts per session plus a few operations,
# each bounded by ldap3; this backstop only catches what slips past those bounds.
_OPERATIONS_PER_CALL = 8


class LdapIdentitySource(IdentitySource):
    name = "ldap"

    def __init__(self, config: LdapConfig, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._directory = Directory(config)
        self._pool = ThreadPoolExecutor(config.max_concurrency, thread_name_prefix="myguard-ldap")
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self.deadline = config.timeout * (len(config.urls) + _OPERATIONS_PER_CALL)
        self._clock = clock
        self._resolved: dict[str, tuple[float, UserRecord]] = {}
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    async def authenticate(self, user: str, password: str) -> Identity:
        # Checked here as well as in the thread: an empty password is an LDAP
        # "unauthenticated bind" that many servers answer with success.
        if not password:
            raise AuthFailed("empty password refused (LDAP would treat it as unauthenticated)")
        record = await self._call(self._directory.authenticate, user, password)
        self._resolved[record.name] = (self._clock(), record)
        return Identity(
            user=record.name,
            groups=record.groups,
            source=self.name,
            attributes=dict(record.attributes),
        )

    async def fast_verifiers(self, user: str) -> FastVerifiers | None:
        return None

    async def refresh(self, identity: Identity) -> Identity:
        if not self.config.has_service_account:
            return identity
        cached = self._resolved.get(identity.user)
        ttl = self.config.group_ttl
        age = self._clock() - cached[0] if cached is not None else ttl
        if age < ttl:
            record = cached[1]
            if age >= ttl / 2:
                # Refresh ahead, in the background: a login with cached verifiers and
                # groups never waits for LDAP while the user keeps logging in.
                self._refresh_ahead(identity.user)
        else:
            try:
                record = await self._call(self._directory.lookup, identity.user)
            except AuthFailed:
                self._resolved.pop(identity.user, None)
                raise
            self._resolved[identity.user] = (self._clock(), record)
        return dataclasses.replace(
            identity, groups=record.groups, attributes=dict(record.attributes)
        )

    def _refresh_ahead(self, user: str) -> None:
        if user in self._refreshing:
            return
        task = asyncio.get_running_loop().create_task(self._lookup_later(user))
        self._refreshing[user] = task
        task.add_done_callback(lambda _: self._refreshing.pop(user, None))

    async def _lookup_later(self, user: str) -> None:
        try:
            record = await self._call(self._directory.lookup, user)
        except AuthFailed:
            self._resolved.pop(user, None)  # the next login asks LDAP and is refused
        except IdentityUnavailable:
            pass  # the cached groups stay until they expire
        else:
            self._resolved[user] = (self._clock(), record)

    async def close(self) -> None:
        for task in list(self._refreshing.values()):
            task.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._directory.close()

    async def _call(self, function: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.deadline):
                await self._slots.acquire()
                try:
                    job = loop.run_in_executor(self._pool, function, *args)
                except BaseException:
                    self._slots.release()
                    raise
                job.add_done_callback(self._job_done)
                # shield: on timeout the thread keeps its slot until it really ends.
                return await asyncio.shield(job)
        except TimeoutError:
            raise IdentityUnavailable(f"ldap: no answer within {self.deadline:g}s") from None
        except (LDAPException, OSError) as exc:
            raise IdentityUnavailable(f"ldap: {type(exc).__name__}: {exc}") from exc

    def _job_done(self, job: asyncio.Future) -> None:
        self._slots.release()
        if not job.cancelled():
            job.exception()  # an abandoned job's error must not be reported as "never retrieved"
