"""Several worker processes sharing the listening ports, under one supervisor.

Each worker is a full proxy process (``myguard serve --worker N``) that binds the
listeners with SO_REUSEPORT, so the kernel spreads connections across all cores. The
supervisor restarts a worker that dies, forwards reloads (after checking the rules file
itself, so a broken file is reported to the caller), drains the workers on SIGTERM, and
runs the admin listener: /metrics sums every worker's values (and adds its own audit
chain's), /approvals serves approvers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from prometheus_client import CollectorRegistry, multiprocess

from myguard.admin import AdminServer
from myguard.admin_api import (
    admin_tls,
    approval_service,
    approvals_route,
    install_console,
    reload_route,
)
from myguard.audit import AuditWriter
from myguard.config import Config
from myguard.config_error import ConfigError
from myguard.console.sessions import WorkerSessions
from myguard.identity.throttle import LoginThrottle
from myguard.listen_lock import lock_listen_addresses
from myguard.logs import event
from myguard.metrics import WithOwnAudit
from myguard.policy.engine import Policy
from myguard.session.workers import RUNTIME_DIR_ENV

_BACKOFF_MAX = 30.0
_STABLE = 60.0  # a worker that lived this long resets the restart backoff


class Supervisor:
    def __init__(self, config: Config, config_path: str, log_level: str, locks: list[int]) -> None:
        self.config = config
        # Listen-address locks, inherited by the workers so that they hold them as long
        # as any process of this myguard still serves.
        self.locks = locks
        self.config_path = config_path
        self.log_level = log_level
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self.stopping = False
        # Shared with the workers: metric files, and each worker's KILL socket.
        self.metrics_dir = tempfile.mkdtemp(prefix="myguard-run-")
        registry = CollectorRegistry()
        self.collector = WithOwnAudit(multiprocess.MultiProcessCollector(None, self.metrics_dir))
        registry.register(self.collector)
        self.admin = AdminServer(self._healthy, registry)
        self.audit: AuditWriter | None = None

    def _healthy(self) -> bool:
        return not self.stopping and len(self.procs) == self.config.workers

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        env = {
            **os.environ,
            "PROMETHEUS_MULTIPROC_DIR": self.metrics_dir,
            RUNTIME_DIR_ENV: self.metrics_dir,
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "myguard", "serve", "--config", self.config_path,
            "--worker", str(index), "--log-level", self.log_level, env=env,
            pass_fds=self.locks,
        )  # fmt: skip
        self.procs[index] = proc
        event(logging.INFO, "worker_started", worker=index, pid=proc.pid)
        return proc

    async def _watch(self, index: int) -> None:
        backoff = 1.0
        while not self.stopping:
            started = time.monotonic()
            proc = await self._spawn(index)
            code = await proc.wait()
            multiprocess.mark_process_dead(proc.pid, self.metrics_dir)
            self.procs.pop(index, None)
            if self.stopping:
                return
            if time.monotonic() - started > _STABLE:
                backoff = 1.0
            event(
                logging.ERROR,
                "worker_died",
                worker=index,
                pid=proc.pid,
                code=code,
                restart_in=backoff,
            )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def reload(self) -> bool:
        try:
            await asyncio.to_thread(Policy.load, self.config.rules_file)
        except (ConfigError, OSError) as exc:
            event(logging.ERROR, "reload_failed", file=str(self.config.rules_file), error=str(exc))
            return False
        for proc in list(self.procs.values()):
            proc.send_signal(signal.SIGHUP)
        event(logging.INFO, "reload_forwarded", workers=len(self.procs))
        return True

    async def _stop(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        event(logging.INFO, "draining_workers", workers=len(self.procs))
        for proc in list(self.procs.values()):
            proc.send_signal(signal.SIGTERM)

    async def run(self) -> None:
        from myguard.server import build_identity_source, open_audit

        if self.config.audit.enabled:
            self.audit = await open_audit(self.config.audit, "supervisor")
            self.collector.watch(self.audit)
        approvals = approval_service(self.config, lambda: self.audit)
        ident = self.config.identity
        source = build_identity_source(self.config)
        throttle = LoginThrottle(
            ident.max_failures,
            ident.failure_window,
            ident.lockout,
            source_max_failures=ident.source_max_failures,
        )
        self.admin.route("/reload", reload_route(self.reload))
        self.admin.route("/approvals", approvals_route(approvals, source, throttle))
        if self.config.admin_listen is not None:
            install_console(
                self.admin,
                self.config,
                approvals,
                source,
                throttle,
                WorkerSessions(Path(self.metrics_dir)),
                lambda: self.audit,
            )
            await self.admin.start(*self.config.admin_listen, tls=admin_tls(self.config))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(self._stop()))
        loop.add_signal_handler(signal.SIGHUP, lambda: asyncio.ensure_future(self.reload()))
        watchers = [asyncio.create_task(self._watch(i)) for i in range(self.config.workers)]
        await asyncio.gather(*watchers)
        await self.admin.close()
        await approvals.aclose()
        await source.close()
        if self.audit is not None:
            await self.audit.close()
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        event(logging.INFO, "stopped")


def run(config: Config, config_path: str, log_level: str) -> None:
    import uvloop

    locks = lock_listen_addresses(b.listen for b in config.backends)
    try:
        uvloop.run(Supervisor(config, config_path, log_level, locks).run())
    finally:
        for fd in locks:
            os.close(fd)
