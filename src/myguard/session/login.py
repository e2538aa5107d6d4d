"""The connection phase of a session: greeting, TLS, authentication, backend login,
and COM_CHANGE_USER, which runs the same exchange again mid-session."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace

from myguard import metrics
from myguard._fast import load
from myguard.backend.connect import BackendUnavailable
from myguard.backend.pool import PoolExhausted
from myguard.config import BackendAccount
from myguard.frontend.authenticate import AuthResult, Exchange, LoginDenied
from myguard.identity.base import Identity, IdentityUnavailable
from myguard.logs import event
from myguard.policy.context import RequestContext
from myguard.protocol.auth import MYSQL_NATIVE_PASSWORD
from myguard.protocol.constants import (
    PROXY_CAPABILITIES,
    UTF8MB4_GENERAL_CI,
    Capability,
    ServerStatus,
)
from myguard.protocol.errors import (
    ER_MYGUARD_IDENTITY_UNAVAILABLE,
    ER_SECURE_TRANSPORT_REQUIRED,
    MySQLError,
    ProtocolError,
)
from myguard.protocol.generic_response import ok_packet, parse_err, parse_ok
from myguard.protocol.handshake import (
    Greeting,
    HandshakeResponse,
    build_greeting,
    parse_change_user,
    parse_handshake_response,
)
from myguard.session.guard import Guard

ResponseScanner = load("resultscan").ResponseScanner
_DEFAULT_VERSION = "5.5.5-10.11.0-MariaDB-myguard"


# Printable, NUL-free bytes: some clients treat the scramble as a C string.
_PRINTABLE = bytes(33 + b % 94 for b in range(256))


def scramble() -> bytes:
    return os.urandom(20).translate(_PRINTABLE)


class LoginPhase:
    """The connection-phase half of Session (mixed in; uses the session's attributes)."""

    async def _login(self) -> None:
        cfg = self.ctx.config
        backend_greeting = await self.ctx.backend_greeting(self.backend_config)
        offered = self._offered_capabilities(backend_greeting)
        greeting = Greeting(
            server_version=backend_greeting.server_version
            if backend_greeting
            else _DEFAULT_VERSION,
            connection_id=self.id,
            scramble=self.scramble,
            capabilities=offered,
            charset=(backend_greeting.charset if backend_greeting else 0) or UTF8MB4_GENERAL_CI,
            status=ServerStatus.SERVER_STATUS_AUTOCOMMIT,
            auth_plugin=cfg.identity.greeting_plugin,
        )
        self.client.write_packet(build_greeting(greeting))
        await self.client.drain()
        response = parse_handshake_response(await self.client.read_packet())
        if response.ssl_request:
            if self.ctx.tls is None:
                raise ProtocolError("Bad handshake: TLS requested but not offered")
            await self.client.start_tls(self.ctx.tls, server_side=True)
            response = parse_handshake_response(await self.client.read_packet())
        self.capabilities = response.capabilities & offered
        self.user = response.user
        self.attributes = response.attributes
        self.database = response.database
        if cfg.require_tls and not self.client.tls:
            self._login_failed(self.user, "TLS required")
            raise MySQLError(
                ER_SECURE_TRANSPORT_REQUIRED,
                "08004",
                "Connections using insecure transport are prohibited while"
                " --require_secure_transport=ON.",
                fatal=True,
            )
        result = await self._authenticate(
            response.user, self._plugin(response.auth_plugin), response.auth_response
        )
        await self._connect_backend(result.identity, response, response.database)
        self.guard = Guard(
            RequestContext(
                user=result.identity.user,
                groups=result.identity.groups,
                environment=self.backend_config.environment,
                backend=self.backend_config.name,
                source_ip=self.source_ip,
                program=self.attributes.get("program_name", ""),
                attributes=self.attributes,
                current_db=self.database,
            ),
            self.id,
        )
        self.guard.find_taught(self.ctx.policy)
        self.trail.login(True, self.user, plugin=result.plugin, method=result.method)
        self.client.write_packet(ok_packet(status=self.backend.status))
        if self.capabilities & Capability.CLIENT_COMPRESS:
            self.client.start_compression()  # what follows the OK goes compressed
        await self.client.drain()
        metrics.login(self.backend_config.name, "success")
        event(
            logging.INFO,
            "login",
            session=self.id,
            user=self.user,
            groups=",".join(sorted(result.identity.groups)),
            source=self.source_ip,
            program=self.attributes.get("program_name"),
            plugin=result.plugin,
            method=result.method,
            tls=self.client.tls,
            backend=self.backend_config.name,
            backend_thread=self.backend.thread_id,
        )

    def _login_failed(self, user: str, reason: str, plugin: str | None = None) -> None:
        """A login refused (before or at authentication): counted, logged and audited
        with its real reason, under the user the client named."""
        metrics.login(self.backend_config.name, "denied")
        event(
            logging.WARNING,
            "login_failed",
            session=self.id,
            user=user,
            source=self.source_ip,
            reason=reason,
        )
        self.trail.login(False, user, reason, plugin)

    def _plugin(self, plugin: str) -> str:
        if self.capabilities & Capability.CLIENT_PLUGIN_AUTH and plugin:
            return plugin
        return MYSQL_NATIVE_PASSWORD

    def _offered_capabilities(self, backend: Greeting | None) -> int:
        caps = int(PROXY_CAPABILITIES)
        if backend is not None:
            # Never promise a result format the backend cannot produce: rows pass through as-is.
            caps &= backend.capabilities | ~int(_FORMAT_CAPABILITIES)
        if self.ctx.tls is not None:
            caps |= Capability.CLIENT_SSL
        if self.backend_config.local_infile:
            caps |= Capability.CLIENT_LOCAL_FILES
        return caps

    async def _authenticate(self, user: str, plugin: str, response: bytes) -> AuthResult:
        exchange = Exchange(
            self.ctx.authenticator, self.client, self.scramble, self.capabilities, self.source_ip
        )
        try:
            result = await exchange.run(user, plugin, response)
        except LoginDenied as exc:
            self._login_failed(user, exc.reason, plugin)
            raise
        except IdentityUnavailable as exc:
            metrics.login(self.backend_config.name, "identity_unavailable")
            self.trail.login(False, user, f"identity provider unavailable: {exc}", plugin)
            raise MySQLError(
                ER_MYGUARD_IDENTITY_UNAVAILABLE,
                "08004",
                f"myguard: the identity provider is unavailable, try again later ({exc})",
                fatal=True,
            ) from None
        self.identity = result.identity
        return result

    def _account(self) -> BackendAccount:
        groups = self.identity.groups if self.identity else frozenset()
        for group, account in self.backend_config.group_accounts:
            if group in groups:
                return account
        return self.backend_config.account

    async def _connect_backend(
        self, identity: Identity, response: HandshakeResponse, database: str | None
    ) -> None:
        attrs = {
            "program_name": "myguard",
            "myguard_user": identity.user,
            "myguard_session": str(self.id),
        }
        if "program_name" in response.attributes:
            attrs["myguard_client_program"] = response.attributes["program_name"][:64]
        started = time.perf_counter()
        self.collation = response.charset or UTF8MB4_GENERAL_CI
        try:
            self.backend = await self.pool.checkout(
                self._account(),
                client_capabilities=self.capabilities,
                collation=self.collation,
                database=database,
                identity=self.backend_identity,
                attributes=attrs,
                defer=True,  # sent in front of the session's first command (core)
            )
        except BackendUnavailable:
            metrics.login(self.backend_config.name, "backend_unavailable")
            raise
        except PoolExhausted:
            metrics.login(self.backend_config.name, "pool_exhausted")
            raise
        metrics.backend_connected(self.backend_config.name, time.perf_counter() - started)
        self.scanner = ResponseScanner(bool(self.capabilities & Capability.CLIENT_DEPRECATE_EOF))
        self.read_as_logged_in()

    # -- command phase ---------------------------------------------------------------

    async def _change_user(self, payload: bytes) -> None:
        change = parse_change_user(payload, self.capabilities, self.reading.codec)
        previous, self.user = self.user, change.user
        try:
            result = await self._authenticate(
                change.user, self._plugin(change.auth_plugin), change.auth_response
            )
        except LoginDenied as exc:
            # As the server does: the session stays the previous user's, reset.
            self.user = previous
            await self.reset_backend()
            raise MySQLError(exc.code, exc.sqlstate, exc.message) from None
        self.attributes = change.attributes or self.attributes
        # The session starts over as the new user: its connection goes back (reset) and it
        # takes one for the new user's service account (often the same one, reset).
        old, self.backend = self.backend, None
        self.pool.release(old, reusable=True)
        response = HandshakeResponse(
            self.capabilities, 0, change.charset or UTF8MB4_GENERAL_CI, attributes=self.attributes
        )
        await self._connect_backend(result.identity, response, change.database)
        self.database = change.database
        self.prepared.clear()
        self.guard = Guard(
            replace(
                self.guard.context,
                user=result.identity.user,
                groups=result.identity.groups,
                program=self.attributes.get("program_name", ""),
                attributes=self.attributes,
                current_db=self.database,
            ),
            self.id,
        )
        self.guard.find_taught(self.ctx.policy)
        self.trail.login(True, self.user, plugin=result.plugin, method=result.method)
        self.ok()
        await self.client.drain()
        event(logging.INFO, "change_user", session=self.id, user=self.user, method=result.method)

    async def _backend_command(self, payload: bytes) -> int:
        """Run a one-packet command on the backend for myguard itself; errors go to the client.

        Returns the server status of the OK."""
        self._send_backend(payload)
        response = await self.backend.stream.read_packet()
        if response[:1] == b"\xff":
            err = parse_err(response)
            raise MySQLError(err.code, err.sqlstate, err.message)
        return parse_ok(response).status


# CLIENT_MYSQL (CLIENT_LONG_PASSWORD) is mirrored too: a MariaDB backend clears it to send
# extended capabilities, and only a greeting without it makes a MariaDB client send its own.
_FORMAT_CAPABILITIES = (
    Capability.CLIENT_LONG_PASSWORD
    | Capability.MARIADB_CLIENT_EXTENDED_METADATA
    | Capability.CLIENT_DEPRECATE_EOF
    | Capability.CLIENT_SESSION_TRACK
    | Capability.CLIENT_MULTI_RESULTS
    | Capability.CLIENT_PS_MULTI_RESULTS
    | Capability.CLIENT_MULTI_STATEMENTS
    | Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
)
