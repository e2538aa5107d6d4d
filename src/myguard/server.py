"""The proxy process: listeners for each backend, the admin listener, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import logging
import signal
import time

from myguard._fast import load
from myguard.admin import AdminServer
from myguard.config import BackendConfig, Config
from myguard.context import ServerContext
from myguard.frontend.authenticate import Authenticator
from myguard.identity.base import IdentitySource
from myguard.identity.throttle import LoginThrottle
from myguard.identity.verifier_cache import VerifierCache
from myguard.logs import event
from myguard.protocol.errors import ER_CON_COUNT_ERROR, MySQLError
from myguard.protocol.generic_response import err_packet
from myguard.session.registry import SessionRegistry
from myguard.session.session import Session
from myguard.tls import load_or_create_rsa_key, server_context

ER_CLIENT_INTERACTION_TIMEOUT = 4031
_framing = load("framing")


def build_identity_source(config: Config) -> IdentitySource:
    ident = config.identity
    if ident.source == "ldap":
        from myguard.identity.ldap import LdapIdentitySource
        from myguard.identity.ldap_config import LdapConfig

        return LdapIdentitySource(LdapConfig.from_table(ident.ldap_table, str(config.file), "identity.ldap"))
    from myguard.identity.users_file import UsersFileSource

    return UsersFileSource(ident.users_file)


class Server:
    def __init__(self, config: Config, worker: int = 0) -> None:
        self.config = config
        ident = config.identity
        authenticator = Authenticator(
            source=build_identity_source(config),
            cache=VerifierCache(ident.verifier_ttl),
            throttle=LoginThrottle(ident.max_failures, ident.failure_window, ident.lockout),
            rsa_key=load_or_create_rsa_key(ident.rsa_key_file),
            allow_cached_during_outage=ident.allow_cached_during_outage,
        )
        self.ctx = ServerContext(
            config=config,
            authenticator=authenticator,
            registry=SessionRegistry(worker),
            tls=server_context(config.tls) if config.tls else None,
        )
        self.admin = AdminServer(lambda: not self.ctx.draining)
        self._servers: list[asyncio.Server] = []
        self._sessions: dict[asyncio.Task[None], Session] = {}
        self._stopped = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None

    async def start(self) -> None:
        for backend in self.config.backends:
            host, port = backend.listen
            server = await asyncio.start_server(
                lambda r, w, b=backend: self._accept(b, r, w), host, port, reuse_port=True, limit=1 << 20
            )
            self._servers.append(server)
            event(logging.INFO, "listening", backend=backend.name, address=f"{host}:{port}",
                  upstream=f"{backend.upstream[0]}:{backend.upstream[1]}", environment=backend.environment)
        if self.config.admin_listen is not None:
            await self.admin.start(*self.config.admin_listen)
        self._sweeper = asyncio.create_task(self._sweep_idle())

    async def _accept(self, backend: BackendConfig, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.ctx.draining or len(self._sessions) >= self.config.max_connections:
            writer.write(_framing.build_packets(err_packet(ER_CON_COUNT_ERROR, "08004", "Too many connections"), 0)[0])
            writer.close()
            return
        session = Session(self.ctx, backend, reader, writer)
        task = asyncio.current_task()
        self._sessions[task] = session
        try:
            await session.run()
        finally:
            del self._sessions[task]

    async def _sweep_idle(self) -> None:
        timeout = self.config.idle_timeout
        while True:
            await asyncio.sleep(min(timeout / 4, 5.0))
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if not session.busy and session.identity is not None and now - session.last_active > timeout:
                    event(logging.INFO, "idle_timeout", session=session.id, user=session.user)
                    session.client.seq = 0
                    session._send_error(
                        MySQLError(
                            ER_CLIENT_INTERACTION_TIMEOUT,
                            "HY000",
                            "The client was disconnected by the server because of inactivity.",
                        )
                    )
                    session.task.cancel()

    async def drain(self) -> None:
        """Stop accepting, let running commands finish up to the timeout, then close."""
        if self.ctx.draining:
            return
        self.ctx.draining = True
        event(logging.INFO, "draining", sessions=len(self._sessions), timeout=self.config.shutdown_timeout)
        for server in self._servers:
            server.close()
        for task, session in list(self._sessions.items()):
            if not session.busy:
                task.cancel()
        tasks = list(self._sessions)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=self.config.shutdown_timeout)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.admin.close()
        await self.ctx.authenticator.source.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(config: Config) -> None:
    server = Server(config)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.drain()))
    await server.wait_stopped()
    event(logging.INFO, "stopped")


def run(config: Config) -> None:
    import uvloop

    uvloop.run(serve(config))
