"""What every session of one worker process shares."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

from myguard.approvals.service import ApprovalService
from myguard.audit import AuditWriter
from myguard.backend.connect import BackendUnavailable, probe
from myguard.backend.pool import BackendPool
from myguard.config import BackendConfig, Config
from myguard.frontend.authenticate import Authenticator
from myguard.logs import event
from myguard.masking.service import Masking
from myguard.policy.engine import Policy
from myguard.protocol.handshake import Greeting
from myguard.session.registry import SessionRegistry


@dataclass(slots=True)
class ServerContext:
    config: Config
    authenticator: Authenticator
    registry: SessionRegistry
    tls: ssl.SSLContext | None
    # Swapped whole on reload: a session reads it afresh for every statement.
    policy: Policy
    audit: AuditWriter | None = None
    approvals: ApprovalService | None = None
    masking: Masking | None = None
    draining: bool = False
    # Backend name -> its connection pool in this process.
    pools: dict[str, BackendPool] = field(default_factory=dict)
    _greetings: dict[str, Greeting] = field(default_factory=dict)

    def pool_for(self, backend: BackendConfig) -> BackendPool:
        """The backend's connection pool in this process (made on first use, not started)."""
        pool = self.pools.get(backend.name)
        if pool is None:
            pool = self.pools[backend.name] = BackendPool(
                backend, workers=self.config.workers, max_packet=self.config.max_allowed_packet
            )
        return pool

    async def backend_greeting(self, backend: BackendConfig) -> Greeting | None:
        """The backend's greeting (version, capabilities), cached after the first success."""
        greeting = self._greetings.get(backend.name)
        if greeting is None:
            pool = self.pools.get(backend.name)
            # A pooled connection's greeting says the same without another connection.
            if pool is not None and pool.greeting is not None:
                self._greetings[backend.name] = pool.greeting
                return pool.greeting
            try:
                greeting = await probe(backend)
            except BackendUnavailable as exc:
                event(30, "backend_probe_failed", backend=backend.name, detail=exc.detail)
                return None
            self._greetings[backend.name] = greeting
        return greeting
