"""Blocking LDAP conversations (ldap3) over a bounded pool of open connections.

Everything here runs in a worker thread of ``LdapIdentitySource``. ldap3 enforces
``timeout`` on each connect (``connect_timeout``) and each answer (``receive_timeout``,
which ldap3 needs as whole seconds, so it is rounded up).

Connections are kept open and reused across logins (at most ``max_concurrency`` idle of
each kind, none older than ``_MAX_IDLE`` seconds idle): those bound as the service account
search and resolve groups; the others check a user's password by binding on them again
(an LDAP bind on an open connection replaces its identity), so a login costs no TCP
connect and no StartTLS handshake. A pooled connection that fails is dropped and the
operation retried once on a fresh one, so a restarted LDAP server costs no login.
"""

from __future__ import annotations

import contextlib
import math
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import ldap3
from ldap3.core.exceptions import LDAPException
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from myguard.identity.base import AuthFailed, IdentityUnavailable
from myguard.identity.ldap_config import LdapConfig
from myguard.identity.ldap_groups import resolve_groups, search

# Bind results that mean "these credentials are not accepted" rather than "the server
# is in trouble": constraintViolation, inappropriateAuthentication, invalidCredentials,
# insufficientAccessRights, unwillingToPerform (e.g. a locked account).
_REFUSED = frozenset({19, 48, 49, 50, 53})
_MAX_USER_LENGTH = 256
# Idle pooled connections older than this are closed rather than reused (servers and
# firewalls drop idle connections; a reuse would then cost a failed round trip).
_MAX_IDLE = 60.0


class _Pooled:
    """Idle open connections of one kind, most recently used first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._idle: list[tuple[float, int, ldap3.Connection]] = []
        self.reused = 0
        self.opened = 0

    def take(self) -> tuple[ldap3.Connection, int] | None:
        now = time.monotonic()
        with self._lock:
            while self._idle:
                since, index, conn = self._idle.pop()
                if now - since <= _MAX_IDLE and not conn.closed:
                    self.reused += 1
                    return conn, index
                _close(conn)
        return None

    def give(self, conn: ldap3.Connection, index: int) -> None:
        with self._lock:
            if len(self._idle) < self.size and not conn.closed:
                self._idle.append((time.monotonic(), index, conn))
                return
        _close(conn)

    def clear(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for _, _, conn in idle:
            _close(conn)


def _close(conn: ldap3.Connection) -> None:
    with contextlib.suppress(LDAPException, OSError):
        conn.unbind()


@dataclass(frozen=True, slots=True)
class UserRecord:
    """What one lookup found: canonical name, DN, group names, configured attributes."""

    name: str
    dn: str
    groups: frozenset[str]
    attributes: dict[str, str] = field(default_factory=dict)


class Directory:
    def __init__(self, config: LdapConfig) -> None:
        self._config = config
        self._receive_timeout = max(1, math.ceil(config.timeout))
        self._read_attributes = [config.user_attribute, *config.attributes]
        if config.member_of_attribute:
            self._read_attributes.append(config.member_of_attribute)
        self.service_pool = _Pooled(config.max_concurrency)
        self.bind_pool = _Pooled(config.max_concurrency)

    def close(self) -> None:
        self.service_pool.clear()
        self.bind_pool.clear()

    def _server(self, url: str) -> ldap3.Server:
        # A fresh Server per attempt: ldap3 Server objects blacklist an address for some
        # seconds after a failure, which would keep a just-restarted LDAP "down".
        tls = None
        if self._config.tls != "none":
            tls = ldap3.Tls(
                validate=ssl.CERT_REQUIRED if self._config.verify else ssl.CERT_NONE,
                ca_certs_file=self._config.ca_file,
            )
        return ldap3.Server(
            url,
            use_ssl=self._config.tls == "ldaps",
            tls=tls,
            connect_timeout=self._config.timeout,
            get_info=ldap3.NONE,
        )

    def authenticate(self, user: str, password: str) -> UserRecord:
        """Check ``password`` by binding as the user; raise AuthFailed or IdentityUnavailable."""
        _check_user(user)
        return self._retrying(self._authenticate, user, password)

    def lookup(self, user: str) -> UserRecord:
        """Re-read ``user`` with the service account (for refresh); AuthFailed if gone or disabled."""
        return self._retrying(self._lookup, user)

    def _retrying(self, operation, *args):  # noqa: ANN001, ANN202
        """Run ``operation``; when it failed on pooled connections (the server restarted,
        dropped idle ones), drop them and run it once more on fresh ones."""
        reused = self.service_pool.reused + self.bind_pool.reused
        try:
            return operation(*args)
        except (LDAPException, OSError, IdentityUnavailable):
            if self.service_pool.reused + self.bind_pool.reused == reused:
                raise  # fresh connections failed: a real outage
            self.close()
            return operation(*args)

    def _authenticate(self, user: str, password: str) -> UserRecord:
        config = self._config
        if config.user_dn_template is None:
            with self._service() as (service, index):
                entry = self._find_user(service, user)
                self._refuse_disabled(service, entry["dn"])
                with self._session(entry["dn"], password, prefer=index):
                    pass
                return self._record(service, entry, user)
        dn = config.user_dn_template.format(user=escape_rdn(user))
        with self._session(dn, password) as (conn, index):
            if not config.has_service_account:
                return self._read_own_entry(conn, dn, user)
        with self._service(prefer=index) as (service, _):
            return self._read_own_entry(service, dn, user)

    def _lookup(self, user: str) -> UserRecord:
        with self._service() as (service, _):
            if self._config.user_dn_template is None:
                entry = self._find_user(service, user)
            else:
                dn = self._config.user_dn_template.format(user=escape_rdn(user))
                entry = self._read_entry(service, dn)
                if entry is None:
                    raise AuthFailed(f"{dn} no longer exists")
            self._refuse_disabled(service, entry["dn"])
            return self._record(service, entry, user)

    def _read_own_entry(self, conn: ldap3.Connection, dn: str, user: str) -> UserRecord:
        entry = self._read_entry(conn, dn)
        if entry is None:
            raise AuthFailed(f"bound as {dn} but its entry is not readable (check ACLs)")
        self._refuse_disabled(conn, dn)
        return self._record(conn, entry, user)

    def _service(self, prefer: int = 0) -> contextlib.AbstractContextManager:
        password = self._config.bind_password
        if self._config.bind_dn is None or not password:
            raise IdentityUnavailable("ldap: no service account configured")
        return self._session(self._config.bind_dn, password, prefer=prefer, service=True)

    @contextlib.contextmanager
    def _session(
        self, dn: str, password: str, *, prefer: int = 0, service: bool = False
    ) -> Iterator[tuple[ldap3.Connection, int]]:
        """A connection bound as ``dn``, from the pool or from the first server (``prefer``
        first) that answers; back to the pool afterwards unless it failed."""
        if not password:
            raise AuthFailed("empty password refused (LDAP would treat it as unauthenticated)")
        pool = self.service_pool if service else self.bind_pool
        conn, index, bound = self._pooled_bind(pool, dn, password, service, prefer)
        healthy = False
        try:
            if not bound:
                result = conn.result or {}
                description = result.get("description", "bind failed")
                if service:
                    raise IdentityUnavailable(f"ldap: service account bind refused: {description}")
                if result.get("result") in _REFUSED:
                    healthy = True  # a refused password leaves the connection usable
                    raise AuthFailed(f"bind as {dn} refused: {description}")
                raise IdentityUnavailable(f"ldap: bind failed: {description}")
            try:
                yield conn, index
            except AuthFailed:
                healthy = True  # a verdict about the user, not about the connection
                raise
            healthy = True
        finally:
            if healthy:
                pool.give(conn, index)
            else:
                _close(conn)

    def _pooled_bind(
        self, pool: _Pooled, dn: str, password: str, service: bool, prefer: int
    ) -> tuple[ldap3.Connection, int, bool]:
        """A pooled connection bound as ``dn`` (a service connection is bound already), or
        a fresh one when none is idle or the pooled one failed."""
        while (taken := pool.take()) is not None:
            conn, index = taken
            if service:
                return conn, index, True
            conn.user, conn.password = dn, password
            try:
                bound = conn.bind()
            except (LDAPException, OSError):
                _close(conn)
                continue
            result = (conn.result or {}).get("result")
            if bound or result in _REFUSED:
                return conn, index, bound
            _close(conn)  # not a verdict on the password: try elsewhere
        pool.opened += 1
        return self._bind_first_answering(dn, password, prefer)

    def _bind_first_answering(
        self, dn: str, password: str, prefer: int
    ) -> tuple[ldap3.Connection, int, bool]:
        # A server that accepts TCP but never answers the bind counts as down too,
        # so failover also covers hung servers, not just refused connections.
        order = [prefer, *(i for i in range(len(self._config.urls)) if i != prefer)]
        errors = []
        for index in order:
            conn = ldap3.Connection(
                self._server(self._config.urls[index]),
                user=dn,
                password=password,
                authentication=ldap3.SIMPLE,
                receive_timeout=self._receive_timeout,
                read_only=True,
                auto_referrals=False,
                raise_exceptions=False,
            )
            try:
                conn.open()
                if self._config.tls == "starttls" and not conn.start_tls():
                    raise IdentityUnavailable("StartTLS was not accepted")
                return conn, index, conn.bind()
            except (LDAPException, OSError, IdentityUnavailable) as exc:
                errors.append(f"{self._config.urls[index]}: {exc}")
                with contextlib.suppress(LDAPException, OSError):
                    conn.unbind()
        raise IdentityUnavailable("ldap: no server reachable (" + "; ".join(errors) + ")")

    def _find_user(self, conn: ldap3.Connection, user: str) -> dict:
        config = self._config
        query = config.user_filter.format(user=escape_filter_chars(user))
        base = config.base_dn or ""
        entries = search(conn, base, query, ldap3.SUBTREE, self._read_attributes, size_limit=2)
        if not entries:
            raise AuthFailed(f"no entry matches {query} under {base}")
        if len(entries) > 1:
            raise AuthFailed(f"more than one entry matches {query}: refusing to guess")
        return entries[0]

    def _read_entry(self, conn: ldap3.Connection, dn: str) -> dict | None:
        entries = search(conn, dn, "(objectClass=*)", ldap3.BASE, self._read_attributes)
        return entries[0] if entries else None

    def _refuse_disabled(self, conn: ldap3.Connection, dn: str) -> None:
        disabled = self._config.disabled_filter
        if disabled and search(conn, dn, disabled, ldap3.BASE, ldap3.NO_ATTRIBUTES):
            raise AuthFailed(f"{dn} matches disabled_filter {disabled}")

    def _record(self, conn: ldap3.Connection, entry: dict, typed: str) -> UserRecord:
        config = self._config
        attributes = entry.get("attributes") or {}
        name = _canonical_name(_values(attributes, config.user_attribute), typed)
        member_of = (
            _values(attributes, config.member_of_attribute) if config.member_of_attribute else []
        )
        groups = resolve_groups(conn, config, entry["dn"], name, member_of)
        kept = {}
        for attribute in config.attributes:
            values = _values(attributes, attribute)
            if values:
                kept[attribute] = values[0]
        return UserRecord(name=name, dn=entry["dn"], groups=groups, attributes=kept)


def _check_user(user: str) -> None:
    if not user or len(user) > _MAX_USER_LENGTH or "\x00" in user:
        raise AuthFailed("unusable user name")


def _canonical_name(stored: list[str], typed: str) -> str:
    """The directory's spelling of the name the client typed, so policy sees one spelling."""
    for value in stored:
        if value.casefold() == typed.casefold():
            return value
    return stored[0] if stored else typed


def _values(attributes: dict, name: str) -> list[str]:
    raw = attributes.get(name)
    if raw is None:
        return []
    items = raw if isinstance(raw, list | tuple) else [raw]
    return [v.decode(errors="replace") if isinstance(v, bytes) else str(v) for v in items]
