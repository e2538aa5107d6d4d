"""The proxy process: listeners for each backend, the admin listener, drain on SIGTERM."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import time
from pathlib import Path

from myguard import heap, metrics
from myguard.admin import AdminServer
from myguard.admin_api import (
    admin_tls,
    approval_service,
    approvals_route,
    install_console,
    reload_route,
)
from myguard.audit import AuditWriter
from myguard.audit.segment import read_key_file
from myguard.backend.pool import BackendPool
from myguard.config import AuditConfig, BackendConfig, Config
from myguard.config_error import ConfigError
from myguard.console.sessions import LocalSessions
from myguard.context import ServerContext
from myguard.frontend.authenticate import Authenticator
from myguard.identity.base import IdentitySource
from myguard.identity.sources import open_source
from myguard.identity.throttle import LoginThrottle
from myguard.identity.verifier_cache import VerifierCache
from myguard.listen_lock import lock_listen_addresses
from myguard.logs import event
from myguard.masking.service import Masking
from myguard.net.packet_stream import PacketStream
from myguard.policy.engine import Policy
from myguard.protocol.errors import ER_CON_COUNT_ERROR, MySQLError
from myguard.protocol.generic_response import err_packet
from myguard.session.registry import SessionRegistry
from myguard.session.session import Session
from myguard.session.workers import RUNTIME_DIR_ENV, serve_requests
from myguard.tls import load_or_create_rsa_key, server_context

ER_CLIENT_INTERACTION_TIMEOUT = 4031


async def open_audit(config: AuditConfig, chain: str | None) -> AuditWriter:
    """The audit writer for this process's chain (``chain`` None: the directory itself)."""
    return await AuditWriter.open(
        config.directory if chain is None else config.directory / chain,
        fsync=config.fsync,
        rotate_bytes=config.rotate_bytes,
        rotate_seconds=config.rotate_seconds,
        retention_days=config.retention_days,
        retention_bytes=config.retention_bytes,
        hmac_key=read_key_file(config.hmac_key_file) if config.hmac_key_file else None,
        redact_literals=config.redact_literals,
        ring_directory=config.ring_directory,
    )


def build_identity_source(config: Config) -> IdentitySource:
    return open_source(config.identity, config.file)


class Server:
    """One proxy process. ``worker`` None: the only process (it runs the admin listener
    too); an index: one of several workers under the supervisor, which runs the admin."""

    def __init__(self, config: Config, worker: int | None = None) -> None:
        self.config = config
        self.worker = worker
        ident = config.identity
        authenticator = Authenticator(
            source=build_identity_source(config),
            cache=VerifierCache(ident.verifier_ttl),
            throttle=LoginThrottle(
                ident.max_failures,
                ident.failure_window,
                ident.lockout,
                source_max_failures=ident.source_max_failures,
            ),
            rsa_key=load_or_create_rsa_key(ident.rsa_key_file),
            allow_cached_during_outage=ident.allow_cached_during_outage,
        )
        self.ctx = ServerContext(
            config=config,
            authenticator=authenticator,
            registry=SessionRegistry(worker or 0),
            tls=server_context(config.tls) if config.tls else None,
            policy=Policy.load(config.rules_file),
            masking=Masking(config.masking.hash_key, config.masking.unknown_lineage),
        )
        for backend in config.backends:
            # Each worker process has its own pool; one process alone has the whole share.
            self.ctx.pools[backend.name] = BackendPool(
                backend,
                workers=config.workers if worker is not None else 1,
                max_packet=config.max_allowed_packet,
            )
        self.admin = AdminServer(lambda: not self.ctx.draining and self._audit_healthy())
        self.admin.route("/reload", reload_route(self.reload))
        self._servers: list[asyncio.Server] = []
        self._sessions: dict[asyncio.Task[None], Session] = {}
        self._stopped = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._metrics_flusher: asyncio.Task[None] | None = None

    def _audit_healthy(self) -> bool:
        return self.ctx.audit is None or self.ctx.audit.healthy

    async def reload(self) -> bool:
        """Load the rules file again; a broken file keeps the rules in force. True on success."""
        path = self.config.rules_file
        self.ctx.authenticator.source.reload()  # the users file (logged if broken)
        try:
            policy = await asyncio.to_thread(Policy.load, path)
        except (ConfigError, OSError) as exc:
            metrics.ERRORS.labels("reload").inc()
            event(
                logging.ERROR,
                "reload_failed",
                file=str(path),
                error=str(exc),
                kept="previous rules",
            )
            return False
        self.ctx.policy = policy
        # The old rules were frozen with the rest at start (serve): back under the
        # collector, so that what of them is cyclic is freed once sessions let go.
        gc.unfreeze()
        event(logging.INFO, "reloaded", file=str(path), rules=len(policy.rules))
        return True

    async def start(self) -> None:
        self.ctx.approvals = approval_service(self.config, lambda: self.ctx.audit)
        auth = self.ctx.authenticator
        self.admin.route(
            "/approvals", approvals_route(self.ctx.approvals, auth.source, auth.throttle)
        )
        if self.config.audit.enabled:
            # One hash chain per process: workers write beside each other, never interleaved.
            name = None if self.worker is None else f"worker-{self.worker}"
            self.ctx.audit = await open_audit(self.config.audit, name)
            metrics.watch_audit(self.ctx.audit)
        for backend in self.config.backends:
            host, port = backend.listen
            try:
                server = await asyncio.get_running_loop().create_server(
                    lambda b=backend: PacketStream(
                        self.config.max_allowed_packet,
                        lambda stream: self._start_session(b, stream),
                    ),
                    host,
                    port,
                    reuse_port=True,
                )
            except OSError as exc:  # e.g. another program on the port
                raise OSError(
                    exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}"
                ) from None
            self._servers.append(server)
            event(
                logging.INFO,
                "listening",
                backend=backend.name,
                address=f"{host}:{port}",
                upstream=f"{backend.upstream[0]}:{backend.upstream[1]}",
                environment=backend.environment,
            )
        if self.config.admin_listen is not None and self.worker is None:
            install_console(
                self.admin,
                self.config,
                self.ctx.approvals,
                auth.source,
                auth.throttle,
                LocalSessions(self.ctx.registry),
                lambda: self.ctx.audit,
            )
            await self.admin.start(*self.config.admin_listen, tls=admin_tls(self.config))
        runtime = os.environ.get(RUNTIME_DIR_ENV)
        if self.worker is not None and runtime:
            path = Path(runtime) / f"worker-{self.worker}.sock"
            self._servers.append(await serve_requests(self.ctx.registry, path))
        for pool in self.ctx.pools.values():
            pool.start()
            metrics.watch_pool(pool)
        self._watcher = asyncio.create_task(self.ctx.authenticator.source.watch())
        self._sweeper = asyncio.create_task(self._sweep_idle())
        self._metrics_flusher = asyncio.create_task(metrics.flush_periodically())

    def _start_session(self, backend: BackendConfig, client: PacketStream) -> None:
        if self.ctx.draining or len(self._sessions) >= self.config.max_connections:
            client.write_packet(err_packet(ER_CON_COUNT_ERROR, "08004", "Too many connections"))
            client.close()
            return
        session = Session(self.ctx, backend, client)
        task = asyncio.get_running_loop().create_task(session.run())
        self._sessions[task] = session
        task.add_done_callback(self._sessions.pop)

    async def _sweep_idle(self) -> None:
        timeout = self.config.idle_timeout
        while True:
            await asyncio.sleep(min(timeout / 4, 5.0))
            try:
                await self.ctx.approvals.expire_due()
            except Exception as exc:  # the store may be briefly unreachable; retry next round
                event(logging.WARNING, "approvals_expire_failed", error=str(exc))
            now = time.monotonic()
            for session in list(self._sessions.values()):
                if (
                    not session.busy
                    and session.identity is not None
                    and now - session.last_active > timeout
                ):
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
        event(
            logging.INFO,
            "draining",
            sessions=len(self._sessions),
            timeout=self.config.shutdown_timeout,
        )
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
        if self._watcher is not None:
            self._watcher.cancel()
        if self._metrics_flusher is not None:
            self._metrics_flusher.cancel()
            await asyncio.wait([self._metrics_flusher])
        for pool in self.ctx.pools.values():
            await pool.close()
        await self.admin.close()
        await self.ctx.authenticator.source.close()
        await self.ctx.approvals.aclose()
        for catalog in self.ctx.masking.catalogs.values():
            catalog.close()
        if self.ctx.audit is not None:
            await self.ctx.audit.close()
        self._stopped.set()

    async def wait_stopped(self) -> None:
        await self._stopped.wait()


async def serve(config: Config, worker: int | None = None) -> None:
    server = Server(config, worker)
    await server.start()
    # What start() loaded (rules, sqlglot, pools, caches) lives as long as the process: out
    # of the collector's generations, the collections that sessions' allocations trigger
    # no longer walk it (≈ 4 % of a login's CPU, benchmarks/README.md).
    gc.freeze()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: asyncio.ensure_future(server.drain()))
    loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(server.reload()))
    await server.wait_stopped()
    event(logging.INFO, "stopped")


def run(config: Config, worker: int | None = None) -> None:
    import uvloop

    heap.keep_freed_memory()
    # A worker shares the locks its supervisor took (inherited descriptors).
    locks = [] if worker is not None else lock_listen_addresses(b.listen for b in config.backends)
    try:
        uvloop.run(serve(config, worker))
    finally:
        for fd in locks:
            os.close(fd)
