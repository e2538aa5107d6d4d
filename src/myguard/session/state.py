"""What one client session knows about itself: who it is, where its backend is, what it
has prepared. The session's parts (login, the handler, the commands decided with I/O,
approval holds) read and update it; it does no I/O beyond writing an OK to its client."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from myguard import metrics
from myguard.backend.connect import BackendConnection, BackendUnavailable
from myguard.backend.pool import SessionIdentity
from myguard.config import BackendConfig
from myguard.context import ServerContext
from myguard.identity.base import Identity
from myguard.logs import event
from myguard.masking.lineage import Lineage
from myguard.masking.plan import MaskRules
from myguard.net.packet_stream import PacketStream
from myguard.policy.decision import Decision
from myguard.protocol.constants import Capability, ServerStatus
from myguard.protocol.errors import CR_SERVER_LOST, MySQLError
from myguard.protocol.generic_response import ok_packet
from myguard.protocol.resultset import Column, text_resultset
from myguard.session.audit_trail import AuditTrail
from myguard.session.guard import Guard
from myguard.session.statement_text import StatementText
from myguard.session.text_reading import TextReading

if TYPE_CHECKING:
    from myguard._fast.rowmask_py import RowMasker


@dataclass(slots=True)
class PreparedStatement:
    """What myguard keeps per server-side prepared statement."""

    sql: str
    fingerprint: int
    decision: Decision
    num_params: int
    # Parameter types of the last execution: clients send them only when they change.
    param_types: list[tuple[int, int]] = field(default_factory=list)
    # For a mask decision: the rules and each statement's lineage, worked out at PREPARE.
    mask: tuple[MaskRules, list[Lineage]] | None = None
    # Rows of an open cursor are masked by this when fetched.
    cursor_masker: RowMasker | None = None

    def executed(self) -> StatementText:
        """The statement as one execution of it, starting now."""
        return StatementText.of(self.sql, self.fingerprint)


class SessionState:
    """The state of one client session, from accept to close."""

    def __init__(
        self, ctx: ServerContext, backend_config: BackendConfig, client: PacketStream
    ) -> None:
        self.ctx = ctx
        self.backend_config = backend_config
        self.id = ctx.registry.new_id()
        self.client = client
        self.source_ip = client.peer
        self.client_address = client.peer_address
        self.identity: Identity | None = None
        self.user = ""
        self.attributes: dict[str, str] = {}
        self.capabilities = 0
        self.database: str | None = None
        self.collation = 0  # the client's at login: its backend connection is set to it
        self.backend: BackendConnection | None = None
        self.pool = ctx.pool_for(backend_config)
        self.scanner: Any = None  # the response grammar (_fast.resultscan), set at login
        self.busy = False
        self.end_reason: str | None = None  # why the session ended; None: the client quit
        self.last_active = time.monotonic()
        self.guard: Guard | None = None
        self.trail = AuditTrail(
            ctx.audit,
            fail_open=backend_config.environment in ctx.config.audit.fail_open_environments,
            session=self,
        )
        self.prepared: dict[int, PreparedStatement] = {}
        self.held_request: int | None = None  # approval request id while a statement waits
        self.current_statement: str | None = (
            None  # the text of the last statement, for the process list
        )
        self.reading = TextReading(0)  # replaced once the backend session exists

    @property
    def masks_literals(self) -> bool:
        """Are this identity's statements shown with literals redacted (it has masking)?"""
        return self.guard is None or self.guard.identity_masks(self.ctx.policy) is not None

    @property
    def sees_all_sessions(self) -> bool:
        """Is the user in ``process_list_groups``: sees every session, and the backend's
        views of every session's statements?"""
        return self.identity is not None and bool(
            self.identity.groups & self.ctx.config.process_list_groups
        )

    @property
    def backend_identity(self) -> SessionIdentity:
        """Whose session the backend connection serves, as the pool sets it."""
        user = self.identity.user if self.identity is not None else self.user
        return SessionIdentity(user, self.id, self.source_ip)

    async def reset_backend(self) -> None:
        """The backend session reset to what the login left, with the client's character
        set and this session's identity (``BackendPool.reset``); BackendUnavailable, fatal,
        when the connection is gone or in an unknown state."""
        try:
            await self.pool.reset(
                self.backend, self.collation, self.database, self.backend_identity
            )
        except BackendUnavailable as exc:
            exc.fatal = True
            raise
        self.prepared.clear()
        self.read_as_logged_in()

    def read_as_logged_in(self) -> None:
        """Statements read as on a backend session just logged in or reset: its status
        flags (the last answer's, which the login's or the reset's OK carries), the
        client's character set, nothing asked yet."""
        self.scanner.known_status = self.backend.status
        self.reading = TextReading(self.backend.status, self.pool.charset(self.collation))

    @property
    def backend_thread_id(self) -> int | None:
        return self.backend.thread_id if self.backend is not None else None

    def status(self) -> int:
        """Server status flags for packets myguard answers itself (autocommit, transaction)."""
        known = self.scanner.known_status if self.scanner is not None else -1
        status = known if known >= 0 else self.backend.status
        return status & ~ServerStatus.SERVER_MORE_RESULTS_EXISTS

    def backend_lost(self, reason: str) -> MySQLError:
        """Count and log a lost backend connection; the error that ends the session. The
        client is told: silently reconnecting would lose its transaction and session
        state."""
        metrics.ERRORS.labels("backend_lost").inc()
        event(logging.WARNING, "backend_lost", session=self.id, user=self.user, detail=reason)
        return MySQLError(
            CR_SERVER_LOST,
            "HY000",
            f"myguard: lost connection to backend '{self.backend_config.name}' during query",
            fatal=True,
        )

    def ok(self) -> None:
        """Answer the current command with an OK of myguard's own."""
        self.client.write_packet(ok_packet(status=self.status()))

    def answer_rows(self, columns: Sequence[str | Column], rows: list[list[str | None]]) -> None:
        """Answer the current command with a text result set of myguard's own, in the
        session's character set."""
        for packet in text_resultset(
            list(columns),
            rows,
            deprecate_eof=bool(self.capabilities & Capability.CLIENT_DEPRECATE_EOF),
            extended_metadata=bool(self.capabilities & Capability.MARIADB_CLIENT_EXTENDED_METADATA),
            status=self.status(),
            codec=self.reading.codec,
        ):
            self.client.write_packet(packet)

    def use_database(self, database: str | None) -> None:
        self.database = database
        if self.backend is not None:
            # The pool selects the next session's database afresh (see backend/pool.py).
            self.backend.database = None
            if database is not None:
                self.backend.had_database = True  # a reset keeps it
        self.guard.use_database(database)
