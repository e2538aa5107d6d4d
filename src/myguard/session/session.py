"""One client connection: login, then commands relayed to its backend connection."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from myguard import metrics
from myguard._fast import load
from myguard.analysis.analyzer import used_database
from myguard.approvals.errors import MyguardCommandSyntax
from myguard.approvals.sql_command import MyguardCommand, parse_myguard_command
from myguard.backend.connect import (
    INTERNAL_CAPABILITIES,
    BackendConnection,
    connect,
)
from myguard.backend.query import text_query
from myguard.config import BackendConfig
from myguard.context import ServerContext
from myguard.identity.base import Identity
from myguard.logs import event
from myguard.masking.lineage import Lineage
from myguard.masking.plan import MaskRules
from myguard.net.packet_stream import ConnectionLost, PacketStream
from myguard.policy.decision import APPROVE, Decision
from myguard.protocol.constants import (
    UTF8MB4_GENERAL_CI,
    Capability,
    Command,
    ServerStatus,
)
from myguard.protocol.errors import (
    CR_SERVER_LOST,
    ER_NOT_ALLOWED_COMMAND,
    ER_UNKNOWN_COM_ERROR,
    MySQLError,
    ProtocolError,
)
from myguard.protocol.generic_response import err_packet, ok_packet
from myguard.protocol.prepared_statements import parse_execute_params
from myguard.session import approval_hold, myguard_sql
from myguard.session import kill as kill_stmt
from myguard.session.audit_trail import AuditTrail
from myguard.session.guard import Guard, blocked_error
from myguard.session.handler import Decided, StatementHandler
from myguard.session.login import LoginPhase, scramble
from myguard.session.statement_text import StatementText
from myguard.session.text_reading import UNKNOWN, TextReading

if TYPE_CHECKING:
    from myguard._fast.rowmask_py import RowMasker


_UNKNOWN_ROWS = 1 << 62
_core = load("proxycore")
# Statement kinds after which table columns or views may differ.
_SCHEMA_CHANGES = frozenset({"create", "alter", "drop", "rename", "truncate"})
_COMMAND_NAMES = {c.value: c.name[4:].lower() for c in Command}


def _myguard_command(text: str) -> MyguardCommand | None:
    try:
        return parse_myguard_command(text)
    except MyguardCommandSyntax as exc:
        raise MySQLError(exc.code, exc.sqlstate, exc.message) from None


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


class Session(LoginPhase):
    """A client session. ``run()`` owns it from accept to close."""

    def __init__(
        self,
        ctx: ServerContext,
        backend_config: BackendConfig,
        client: PacketStream,
    ) -> None:
        self.ctx = ctx
        self.backend_config = backend_config
        self.id = ctx.registry.new_id()
        self.client = client
        self.source_ip = self.client.peer
        self.identity: Identity | None = None
        self.user = ""
        self.attributes: dict[str, str] = {}
        self.capabilities = 0
        self.database: str | None = None
        self.backend: BackendConnection | None = None
        self.scanner: Any = None  # the response grammar (_fast.resultscan), set at login
        self.scramble = scramble()
        self.busy = False
        self.last_active = time.monotonic()
        self.task: asyncio.Task[None] | None = None
        self.guard: Guard | None = None
        self.trail = AuditTrail(
            ctx.audit,
            fail_open=backend_config.environment in ctx.config.audit.fail_open_environments,
            session=self,
        )
        self.prepared: dict[int, PreparedStatement] = {}
        self.held_request: int | None = None
        self.reading = TextReading(0)  # replaced once the backend session exists

    # -- lifecycle -------------------------------------------------------------------

    async def run(self) -> None:
        self.task = asyncio.current_task()
        name = self.backend_config.name
        gauge = metrics.SESSIONS_OPEN.labels(name)
        gauge.inc()
        try:
            try:
                # asyncio.timeout, unlike wait_for, runs _login without a task of its own
                async with asyncio.timeout(self.ctx.config.handshake_timeout):
                    await self._login()
            except TimeoutError:
                self._fail(ProtocolError("Bad handshake: handshake timed out"), "handshake_timeout")
                return
            self.ctx.registry.add(self)
            await self._serve()
        except MySQLError as exc:
            self._fail(exc, "protocol" if isinstance(exc, ProtocolError) else "error")
        except ConnectionLost as exc:
            event(
                logging.INFO,
                "client_gone",
                session=self.id,
                user=self.user or None,
                detail=str(exc),
            )
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug must cost one session, never the proxy
            metrics.ERRORS.labels("internal").inc()
            logging.getLogger("myguard").exception("session %s failed", self.id)
            self._send_error(
                MySQLError(4692, "HY000", f"myguard internal error: {type(exc).__name__}")
            )
        finally:
            self.ctx.registry.remove(self.id)
            gauge.dec()
            if self.backend is not None:
                self.backend.close()
            self.client.close()
            if self.identity is not None:
                self.trail.session_end()
            event(logging.INFO, "session_end", session=self.id, user=self.user or None)

    def _fail(self, exc: MySQLError, kind: str) -> None:
        metrics.ERRORS.labels(kind).inc()
        event(
            logging.WARNING,
            "session_error",
            session=self.id,
            user=self.user or None,
            code=exc.code,
            error=exc.message,
            reason=getattr(exc, "reason", None),
        )
        self._send_error(exc)

    def _send_error(self, exc: MySQLError) -> None:
        try:
            self.client.write_packet(err_packet(exc.code, exc.sqlstate, exc.message))
        except Exception:  # the socket may already be gone; the error is logged
            return

    async def kill(self, query_only: bool) -> None:
        """KILL from another session (or this one): stop the running statement or the session."""
        if self.held_request is not None:
            # The statement has not reached the backend: withdrawing the request stops it.
            await self.ctx.approvals.cancel(self.held_request, "KILL QUERY of the held session")
            if query_only:
                return
        if self.backend is not None:
            await self._kill_backend_thread(self.backend.thread_id, query_only)
        if not query_only and self.task is not None and self.task is not asyncio.current_task():
            self.task.cancel()

    async def _kill_backend_thread(self, thread_id: int, query_only: bool) -> None:
        conn = await connect(
            self.backend_config,
            self._account(),
            client_capabilities=INTERNAL_CAPABILITIES,
            charset=UTF8MB4_GENERAL_CI,
            database=None,
            attributes={"program_name": "myguard", "myguard_purpose": "kill"},
            max_packet=1 << 20,
        )
        try:
            word = "QUERY" if query_only else "CONNECTION"
            conn.stream.seq = 0
            conn.stream.write_packet(
                bytes((Command.COM_QUERY,)) + f"KILL {word} {thread_id}".encode()
            )
            await conn.stream.drain()
            await conn.stream.read_packet()
        finally:
            conn.close()

    # -- connection phase ------------------------------------------------------------

    async def _serve(self) -> None:
        """Hand the sockets to the proxy core; run here only what needs I/O to decide."""
        handler = StatementHandler(self)
        core = None
        forward: tuple[bytes, Decided] | None = None
        while True:
            if core is None or core.scanner is not self.scanner:
                core = handler.core = _core.ProxyCore(
                    handler, self.scanner, self.client.buffer.max_payload
                )
            waiter = handler.wait()
            core.attach(self.client, self.backend.stream)
            if forward is None:
                core.serve()
            else:
                handler.forward(*forward)
            work = await waiter
            if work is None:
                return
            forward = await self._run_command(*work)
            if self.ctx.draining and forward is None:
                return

    async def _run_command(
        self, payload: bytes, decided: Decided | None
    ) -> tuple[bytes, Decided] | None:
        """A command the core handed over: answered here, or decided for the core to send."""
        self.client.seq = 1
        command = payload[0]
        started = time.perf_counter()
        outcome = "ok"
        try:
            forward = await self._dispatch(command, payload, decided)
            if forward is not None:
                return payload, forward  # the handler counts it when its response ends
        except MySQLError as exc:
            outcome = "error"
            if exc.fatal:
                raise
            self.client.write_packet(err_packet(exc.code, exc.sqlstate, exc.message))
            await self.client.drain()
        self.busy = False
        name = _COMMAND_NAMES.get(command, "unknown")
        metrics.statement_done(name, outcome, time.perf_counter() - started)
        return None

    async def _dispatch(
        self, command: int, payload: bytes, decided: Decided | None
    ) -> Decided | None:
        if command == Command.COM_QUERY:
            return await self._query(payload, decided)
        if command == Command.COM_STMT_PREPARE:
            return await self._prepare(payload, decided)
        if command == Command.COM_STMT_EXECUTE:
            return await self._execute(payload)
        if command == Command.COM_INIT_DB:
            return await self._init_db(payload)
        if command == Command.COM_STMT_FETCH:
            prepared = self.prepared[int.from_bytes(payload[1:5], "little")]
            return Decided(command, prepared.executed(), prepared.decision, prepared)
        if command == Command.COM_PROCESS_KILL:
            if len(payload) < 5:
                raise ProtocolError("malformed COM_PROCESS_KILL", 1835)
            target = int.from_bytes(payload[1:5], "little")
            await kill_stmt.kill(self.ctx.registry, self.user, kill_stmt.KillRequest(target, False))
            self._ok()
            return None
        if command == Command.COM_CHANGE_USER:
            await self._change_user(payload)
            return None
        name = _COMMAND_NAMES.get(command, f"0x{command:02x}")
        raise MySQLError(ER_UNKNOWN_COM_ERROR, "08S01", f"myguard: command {name} is not supported")

    def status(self) -> int:
        """Server status flags for packets myguard answers itself (autocommit, transaction)."""
        status = (
            self.scanner.status if self.scanner and self.scanner.status else self.backend.status
        )
        return status & ~ServerStatus.SERVER_MORE_RESULTS_EXISTS

    def _ok(self) -> None:
        self.client.write_packet(ok_packet(status=self.status()))

    def _send_backend(self, payload: bytes) -> None:
        stream = self.backend.stream
        stream.seq = 0
        stream.write_packet(payload)
        metrics.tally.bytes_to_backend += len(payload) + 4

    async def _query(self, payload: bytes, decided: Decided | None) -> Decided | None:
        if decided is not None and decided.decision is not None:
            statement, decision = decided.statement, decided.decision
        else:
            sql = payload[1:]
            request = kill_stmt.parse_kill(sql)
            if request is not None:
                await kill_stmt.kill(self.ctx.registry, self.user, request)
                self._ok()
                await self.client.drain()
                return None
            statement = decided.statement if decided else StatementText.received(sql)
            command = _myguard_command(statement.text)
            if command is not None:
                await myguard_sql.run(self, command)
                await self.client.drain()
                return None
            decision = await self._decide(statement)
        mask = await self._mask_plan(statement, decision)
        approval_id = await self._approve(statement, [], decision)
        return Decided(
            Command.COM_QUERY,
            statement,
            decision,
            mask=mask,
            approval_id=approval_id,
            intent_id=await self.trail.intent(statement.text, decision),
        )

    def after_success(self, text: str, decision: Decision) -> None:
        """Session state that follows from statements that ran: current database, schema."""
        for statement in decision.statements:
            if statement.kind == "use":
                database = used_database(text)
                if database is not None:
                    self.use_database(database)
            elif statement.kind in _SCHEMA_CHANGES:
                self.ctx.masking.invalidate_schema(self.backend_config.name)

    async def _mask_plan(
        self, statement: StatementText, decision: Decision
    ) -> tuple[MaskRules, list[Lineage]] | None:
        """For an identity with masking: the rules and lineages, or the refusal when data
        would leak. Held (approve) statements of such identities are masked too."""
        masks = decision.masks
        if decision.action == APPROVE:
            found = self.guard.identity_masks(self.ctx.policy)
            masks = found[1] if found else ()
        if not masks:
            return None
        masking = self.ctx.masking
        rules = masking.rules(self.ctx.policy, masks)
        try:
            return rules, await masking.lineages(self, decision, rules)
        except MySQLError as exc:
            self.trail.refused(statement, decision, exc.code)
            raise

    def use_database(self, database: str) -> None:
        self.database = database
        self.guard.use_database(database)

    def is_myguard_command(self, text: str) -> bool:
        return _myguard_command(text) is not None

    def remember_prepared(
        self,
        stmt_id: int,
        statement: StatementText,
        decision: Decision,
        num_params: int,
        mask: tuple[MaskRules, list[Lineage]] | None = None,
    ) -> None:
        self.prepared[stmt_id] = PreparedStatement(
            statement.text, statement.fingerprint, decision, num_params, mask=mask
        )

    def decide_now(self, statement: StatementText) -> Decision | None:
        """The decision when it needs no I/O (raises to refuse); None when it does (the
        session's sql_mode must be asked, or an EXPLAIN estimate could change it)."""
        text = statement.text
        unreadable = self.reading.known_ambiguity(text)
        if unreadable is UNKNOWN:
            return None
        policy = self.ctx.policy
        if unreadable is not None:
            decision = self.guard.decide_unanalysable(policy, text, unreadable)
        else:
            decision = self.guard.decide(policy, text, statement.fingerprint)
            if decision.wants_estimate:
                return None
        return self._checked(statement, decision)

    async def _decide(self, statement: StatementText) -> Decision:
        """Policy and audit checks before anything reaches the backend; raises to refuse."""
        policy = self.ctx.policy
        text, fingerprint = statement.text, statement.fingerprint
        unreadable = await self.reading.ambiguity(text, self._read_settings)
        if unreadable is not None:
            decision = self.guard.decide_unanalysable(policy, text, unreadable)
        else:
            decision = self.guard.decide(policy, text, fingerprint)
            if decision.wants_estimate:
                estimates = await self._estimate_rows(decision)
                decision = self.guard.decide(policy, text, fingerprint, estimates)
        return self._checked(statement, decision)

    def _checked(self, statement: StatementText, decision: Decision) -> Decision:
        if decision.blocked:
            self.trail.refused(statement, decision, decision.error_code)
            raise blocked_error(decision)
        self.trail.require()
        if not self.backend_config.local_infile and any(
            s.kind == "load_data" and s.local for s in decision.statements
        ):
            raise MySQLError(
                ER_NOT_ALLOWED_COMMAND,
                "42000",
                f"myguard: LOAD DATA LOCAL INFILE is disabled for backend '{self.backend_config.name}' "
                "(set local_infile = true in its config to allow it)",
            )
        return decision

    async def _estimate_rows(self, decision: Decision) -> list[int]:
        """Rows the backend expects each statement to touch (EXPLAIN); a statement it cannot
        estimate counts as huge, so that an impact rule errs on the side of holding it."""
        estimates = []
        for statement in decision.statements:
            try:
                names, rows = await self._ask_backend(f"EXPLAIN {statement.sql}")
                column = names.index("rows")
                estimates.append(sum(int(row[column] or 0) for row in rows))
            except (MySQLError, ValueError):
                estimates.append(_UNKNOWN_ROWS)
        event(logging.DEBUG, "estimated_rows", session=self.id, rows=estimates)
        return estimates

    async def _ask_backend(self, sql: str) -> tuple[list[str], list[list[str | None]]]:
        """A question of myguard's own on the session's backend connection."""
        deprecate_eof = bool(self.capabilities & Capability.CLIENT_DEPRECATE_EOF)
        return await text_query(self.backend.stream, sql, deprecate_eof=deprecate_eof)

    async def _read_settings(self) -> tuple[str, str]:
        """The session's sql_mode and character_set_client, for reading its statements."""
        _, rows = await self._ask_backend(
            "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client"
        )
        sql_mode, charset = rows[0]
        return sql_mode or "", charset or ""

    async def _approve(
        self, statement: StatementText, params: list[str], decision: Decision | None
    ) -> str | None:
        """Hold an ``approve`` decision until approved; the approval id, or None when not needed."""
        if decision is None or decision.action != APPROVE:
            return None
        try:
            return str(await approval_hold.hold(self, statement, params, decision))
        except MySQLError as exc:
            self.trail.refused(statement, decision, exc.code)
            raise

    async def _prepare(self, payload: bytes, decided: Decided | None) -> Decided:
        if decided is not None and decided.decision is not None:
            statement, decision = decided.statement, decided.decision
        else:
            statement = decided.statement if decided else StatementText.received(payload[1:])
            decision = await self._decide(statement)
        mask = await self._mask_plan(statement, decision)
        return Decided(Command.COM_STMT_PREPARE, statement, decision, mask=mask)

    async def _execute(self, payload: bytes) -> Decided:
        """An execution the handler could not send at once: masked, or held for approval."""
        prepared = self.prepared[int.from_bytes(payload[1:5], "little")]
        statement = prepared.executed()
        params, prepared.param_types = parse_execute_params(
            payload, prepared.num_params, prepared.param_types
        )
        self.trail.require()
        approval_id = await self._approve(statement, params, prepared.decision)
        return Decided(
            Command.COM_STMT_EXECUTE,
            statement,
            prepared.decision,
            prepared,
            mask=prepared.mask,
            approval_id=approval_id,
        )

    async def _init_db(self, payload: bytes) -> Decided:
        database = payload[1:].decode("utf-8", "replace")
        statement = StatementText.of("USE `" + database.replace("`", "``") + "`")
        decision = await self._decide(statement)
        return Decided(Command.COM_INIT_DB, statement, decision, database)

    def backend_lost(self, detail: str) -> MySQLError:
        """The backend died mid-command: the client is told and the session ends, since
        silently reconnecting would lose its transaction and session state."""
        metrics.ERRORS.labels("backend_lost").inc()
        event(logging.WARNING, "backend_lost", session=self.id, user=self.user, detail=detail)
        return MySQLError(
            CR_SERVER_LOST,
            "HY000",
            f"myguard: lost connection to backend '{self.backend_config.name}' during query",
            fatal=True,
        )
