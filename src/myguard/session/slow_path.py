"""Commands the proxy core hands to the session task, because deciding or answering them
needs I/O: a masked identity's column lineage (the schema catalog), an approval hold, an
EXPLAIN estimate or the session's sql_mode (questions to the backend), KILL, ``MYGUARD``
commands. Each returns what the core is to send (a ``Decided``), or None once the command
is answered here. The packet streams own the sockets meanwhile."""

from __future__ import annotations

import logging

from myguard.analysis import analyze
from myguard.approvals.errors import MyguardCommandSyntax
from myguard.approvals.sql_command import MyguardCommand, parse_myguard_command
from myguard.backend.query import text_query
from myguard.logs import event
from myguard.masking.lineage import Lineage
from myguard.masking.plan import MaskRules
from myguard.policy.decision import APPROVE, Decision
from myguard.protocol.column_types import (
    BINARY_FLAG,
    MYSQL_TYPE_LONG,
    NO_DEFAULT_VALUE_FLAG,
    NOT_NULL_FLAG,
    UNSIGNED_FLAG,
)
from myguard.protocol.constants import Capability, Command
from myguard.protocol.errors import (
    ER_CONNECTION_KILLED,
    ER_NOT_ALLOWED_COMMAND,
    ER_QUERY_INTERRUPTED,
    ER_TARGET_NOT_EXPLAINABLE,
    ER_UNKNOWN_COM_ERROR,
    MySQLError,
    ProtocolError,
)
from myguard.protocol.prepared_statements import parse_execute_params
from myguard.protocol.resultset import Column
from myguard.session import approval_hold, dynamic_sql, myguard_sql, process_list, workers
from myguard.session import kill as kill_stmt
from myguard.session.audit_trail import Outcome
from myguard.session.handler import (
    COMMAND_NAMES,
    Decided,
    StatementHandler,
    shows_status,
)
from myguard.session.result_masking import WITHHELD
from myguard.session.state import SessionState
from myguard.session.statement_text import StatementText

# A statement EXPLAIN cannot estimate counts as this many rows: an impact rule then errs
# on the side of holding it.
_UNKNOWN_ROWS = 1 << 62
_NOT_EXPLAINABLE = "Target is not executing an operation with a query plan"
_SHOW_PROCESSLIST_ALONE = (
    "myguard: SHOW PROCESSLIST is answered by myguard as a statement of its own; among"
    " other statements the backend would list every user's sessions"
)


def myguard_command(text: str) -> MyguardCommand | None:
    """The ``MYGUARD ...`` command in ``text``; a malformed one is the client's error."""
    try:
        return parse_myguard_command(text)
    except MyguardCommandSyntax as exc:
        raise MySQLError(exc.code, exc.sqlstate, exc.message) from None


# SHOW WARNINGS/ERRORS's columns as the server types them: drivers hand Code on as an int.
_DIAGNOSTIC_COLUMNS = {
    "Level": Column("Level", length=28, flags=NOT_NULL_FLAG),
    "Code": Column("Code", MYSQL_TYPE_LONG, 4, NOT_NULL_FLAG | UNSIGNED_FLAG | BINARY_FLAG),
    "Message": Column("Message", length=2048, flags=NOT_NULL_FLAG),
}

# SHOW STATUS's columns as the server types them (information_schema.SESSION_STATUS).
_STATUS_COLUMNS = {
    name: Column(name, length=length, flags=NOT_NULL_FLAG | NO_DEFAULT_VALUE_FLAG)
    for name, length in (("Variable_name", 256), ("Value", 16384))
}


class SlowPath:
    """The commands of one session that are decided with I/O."""

    __slots__ = ("state", "handler")

    def __init__(self, state: SessionState, handler: StatementHandler) -> None:
        self.state = state
        self.handler = handler

    async def run(self, payload: bytes, decided: Decided | None) -> Decided | None:
        command = payload[0]
        s = self.state
        if command == Command.COM_QUERY:
            return await self._query(payload, decided)
        if command == Command.COM_STMT_PREPARE:
            return await self._prepare(payload, decided)
        if command == Command.COM_STMT_EXECUTE:
            return await self._execute(payload)
        if command == Command.COM_INIT_DB:
            return await self._init_db(payload)
        if command == Command.COM_STMT_FETCH:
            prepared = s.prepared[int.from_bytes(payload[1:5], "little")]
            return Decided(command, prepared.executed(), prepared.decision, prepared)
        if command == Command.COM_RESET_CONNECTION:
            await self._reset_connection()
            return None
        if command == Command.COM_PROCESS_KILL:
            if len(payload) < 5:
                raise ProtocolError("malformed COM_PROCESS_KILL", 1835)
            target = int.from_bytes(payload[1:5], "little")
            # Decided and audited as the statement it stands for.
            statement = StatementText.of(f"KILL {target}")
            await self._kill(statement, kill_stmt.KillRequest(target, False))
            return None
        name = COMMAND_NAMES.get(command, f"0x{command:02x}")
        raise MySQLError(ER_UNKNOWN_COM_ERROR, "08S01", f"myguard: command {name} is not supported")

    async def _query(self, payload: bytes, decided: Decided | None) -> Decided | None:
        s = self.state
        if decided is not None and decided.decision is not None:
            statement, decision = decided.statement, decided.decision
        else:
            sql = payload[1:]
            statement = await self._received(sql, decided)
            try:
                request = kill_stmt.parse_kill(sql, s.id)
            except MySQLError as exc:  # a KILL form myguard cannot map
                s.trail.refused(statement, None, exc.code)
                raise
            if request is not None:
                await self._kill(statement, request)
                await s.client.drain()
                return None
            command = myguard_command(statement.text)
            if command is not None:
                await myguard_sql.run(s, command)
                await s.client.drain()
                return None
            statement = await self._with_source(statement)
            decision = await self._decide(statement, maps_explain=True)
        sent = None
        explain = kill_stmt.explain_for(decision.statements, statement.text)
        if explain is not None:
            sent = await self._explain_for(statement, decision, explain)
        if self.handler.shows_withheld(statement.text):
            await self._withheld_diagnostics(statement, decision)
            return None
        if shows_status(statement.text):
            await self._session_status(statement, decision)
            return None
        if process_list.mentions(statement.text.lower()):
            sent = await self._process_list(statement, decision)
            if sent is None:
                return None
        mask = await self._mask_plan(statement, decision)
        approval_id = await self._approve(statement, [], decision)
        return Decided(
            Command.COM_QUERY,
            statement,
            decision,
            mask=mask,
            approval_id=approval_id,
            intent_id=await s.trail.intent(statement.text, decision),
            sent=sent,
        )

    async def _kill(self, statement: StatementText, request: kill_stmt.KillRequest) -> None:
        """A KILL myguard runs on its own sessions: the rules decide it (an approval
        included), the trail records it with its outcome."""
        s = self.state
        decision = s.guard.decide(s.ctx.policy, statement.text, statement.fingerprint)
        decision = self.handler.checked(statement, decision, runs_here=True)
        approval_id = await self._approve(statement, [], decision)
        own = s.ctx.registry.find(request.target) is s
        try:
            if not (own and request.query_only):  # its own statement is the KILL itself
                await workers.kill(s.ctx.registry, s.user, request)
        except MySQLError as exc:
            s.trail.refused(statement, decision, exc.code)
            raise
        if own:  # as the server answers: the KILL is what was killed
            error = (
                MySQLError(ER_QUERY_INTERRUPTED, "70100", "Query execution was interrupted")
                if request.query_only
                else MySQLError(ER_CONNECTION_KILLED, "70100", "Connection was killed", fatal=True)
            )
            s.trail.statement(
                statement, decision, Outcome(error_code=error.code), approval_id=approval_id
            )
            raise error
        s.trail.statement(statement, decision, Outcome(), approval_id=approval_id)
        s.ok()

    async def _reset_connection(self) -> None:
        """COM_RESET_CONNECTION (``SessionState.reset_backend``), answered with OK."""
        s = self.state
        await s.reset_backend()
        s.ok()
        await s.client.drain()

    async def _with_source(self, statement: StatementText) -> StatementText:
        """``PREPARE name FROM @v`` as ``PREPARE name FROM '<what @v holds>'``, the text
        decided and audited (the client's text is what is sent); other statements, and a
        variable that holds no text (NULL), as they are."""
        variable = dynamic_sql.source_variable(statement.text)
        if variable is None:
            return statement
        _, rows = await self._ask_backend(f"SELECT {variable}")
        value = rows[0][0] if rows and rows[0] else None
        if value is None:
            return statement
        text = dynamic_sql.with_source(statement.text, value)
        # Its own fingerprint: the analysis of a PREPARE of a literal is never cached.
        resolved = StatementText.of(text)
        resolved.started = statement.started
        return resolved

    async def _process_list(self, statement: StatementText, decision: Decision) -> bytes | None:
        """``SHOW [FULL] PROCESSLIST`` answered from myguard's sessions (None), or the
        COM_QUERY to send: the statement with myguard's rows in place of
        information_schema.PROCESSLIST."""
        s = self.state
        refused = process_list.refusal(statement.text)
        if refused is not None:
            s.trail.refused(statement, decision, refused.code)
            raise refused
        rows = await self._with_backend_states(
            await workers.list_sessions(s.ctx.registry, s.user, s.sees_all_sessions)
        )
        full = process_list.show_full(statement.text)
        if full is None and any(st.object_type == "processlist" for st in decision.statements):
            # SHOW PROCESSLIST among other statements: the backend would answer it with
            # every user's sessions.
            refused = MySQLError(ER_NOT_ALLOWED_COMMAND, "42000", _SHOW_PROCESSLIST_ALONE)
            s.trail.refused(statement, decision, refused.code)
            raise refused
        if full is None:
            sql = process_list.with_rows(statement.text, rows, s.database)
            return bytes((Command.COM_QUERY,)) + sql.encode(s.reading.codec, "replace")
        answer = process_list.show_rows(rows, full)
        s.answer_rows(process_list.SHOW_COLUMNS, answer)
        s.trail.statement(statement, decision, Outcome(rows=len(answer)))
        return None

    async def _with_backend_states(self, rows: list[dict[str, object]]) -> list[dict[str, object]]:
        """``rows`` with the states the backend reports for its busy threads; as they were
        when it cannot say (the list is still answered)."""
        s = self.state
        backend = s.backend_config.name
        question = process_list.state_query(rows, backend, s.id)
        if question is None:
            return rows
        try:
            _, found = await self._ask_backend(question)
        except MySQLError as exc:
            event(logging.WARNING, "process_list_states", session=s.id, error=exc.message)
            return rows
        return process_list.with_backend_states(rows, backend, found)

    async def _explain_for(
        self, statement: StatementText, decision: Decision, explain: kill_stmt.ExplainFor
    ) -> bytes:
        """The COM_QUERY to send for SHOW EXPLAIN FOR a session of this proxy: naming its
        backend thread, on the same backend."""
        s = self.state
        try:
            target = explain.session_id()
            backend, thread = await workers.backend_thread(
                s.ctx.registry, s.user, s.sees_all_sessions, target
            )
            if backend != s.backend_config.name:
                raise MySQLError(
                    ER_NOT_ALLOWED_COMMAND,
                    "42000",
                    f"myguard: session {target} runs on backend '{backend}', this session on"
                    f" '{s.backend_config.name}'",
                )
            if thread is None:  # still logging in: the server's answer for an idle thread
                raise MySQLError(ER_TARGET_NOT_EXPLAINABLE, "HY000", _NOT_EXPLAINABLE)
        except MySQLError as exc:
            s.trail.refused(statement, decision, exc.code)
            raise
        sql = explain.on_thread(thread)
        return bytes((Command.COM_QUERY,)) + sql.encode("utf-8", "surrogateescape")

    async def _session_status(self, statement: StatementText, decision: Decision) -> None:
        """SHOW [SESSION] STATUS with the TLS and compression variables of the client's leg
        (the backend reports its own connection to myguard, or nothing)."""
        s = self.state
        names, rows = await self._ask_backend(statement.text)
        client_leg = {
            "ssl_cipher": s.client.tls_cipher or "",
            "ssl_version": s.client.tls_version or "",
            "compression": "ON" if s.client.compressed else "OFF",
        }
        rows = [[row[0], client_leg.get((row[0] or "").lower(), row[1]), *row[2:]] for row in rows]
        s.answer_rows([_STATUS_COLUMNS.get(n, n) for n in names], rows)
        s.trail.statement(statement, decision, Outcome(rows=len(rows)))

    async def _withheld_diagnostics(self, statement: StatementText, decision: Decision) -> None:
        """SHOW WARNINGS/ERRORS after a statement that read masked columns: the backend's
        list with each message withheld (level and code kept)."""
        s = self.state
        names, rows = await self._ask_backend(statement.text)
        if "Message" in names:
            at = names.index("Message")
            rows = [[*row[:at], WITHHELD, *row[at + 1 :]] for row in rows]
        s.answer_rows([_DIAGNOSTIC_COLUMNS.get(n, n) for n in names], rows)
        s.trail.statement(statement, decision, Outcome(rows=len(rows)))

    async def _prepare(self, payload: bytes, decided: Decided | None) -> Decided:
        if decided is not None and decided.decision is not None:
            statement, decision = decided.statement, decided.decision
        else:
            statement = await self._received(payload[1:], decided)
            decision = await self._decide(statement)
        mask = await self._mask_plan(statement, decision)
        return Decided(Command.COM_STMT_PREPARE, statement, decision, mask=mask)

    async def _execute(self, payload: bytes) -> Decided:
        """An execution the handler could not send at once: masked, held for approval, or
        whose intent record must be on disk first (audit ``always``)."""
        s = self.state
        prepared = s.prepared[int.from_bytes(payload[1:5], "little")]
        statement = prepared.executed()
        params, prepared.param_types = parse_execute_params(
            payload, prepared.num_params, prepared.param_types
        )
        s.trail.require()
        approval_id = await self._approve(statement, params, prepared.decision)
        return Decided(
            Command.COM_STMT_EXECUTE,
            statement,
            prepared.decision,
            prepared,
            mask=prepared.mask,
            approval_id=approval_id,
            intent_id=await s.trail.intent(statement.text, prepared.decision),
        )

    async def _init_db(self, payload: bytes) -> Decided:
        database = payload[1:].decode(self.state.reading.codec, "replace")
        statement = StatementText.of("USE `" + database.replace("`", "``") + "`")
        decision = await self._decide(statement)
        return Decided(
            Command.COM_INIT_DB,
            statement,
            decision,
            database,
            intent_id=await self.state.trail.intent(statement.text, decision),
        )

    # -- deciding with I/O -----------------------------------------------------------------

    async def _decide(self, statement: StatementText, *, maps_explain: bool = False) -> Decision:
        """As ``StatementHandler.decide_now``, asking the backend what that cannot know;
        ``maps_explain``: as for ``StatementHandler.checked``."""
        s = self.state
        policy = s.ctx.policy
        text, fingerprint = statement.text, statement.fingerprint
        unreadable = await s.reading.ambiguity(text, self._read_settings)
        if unreadable is not None:
            decision = s.guard.decide_unanalysable(policy, text, unreadable)
        else:
            decision = s.guard.decide(policy, text, fingerprint)
            if decision.wants_estimate:
                estimates = await self._estimate_rows(text)
                decision = s.guard.decide(policy, text, fingerprint, estimates)
        return self.handler.checked(statement, decision, maps_explain=maps_explain)

    async def _mask_plan(
        self, statement: StatementText, decision: Decision
    ) -> tuple[MaskRules, list[Lineage]] | None:
        """For an identity with masking: the rules and lineages, or the refusal when data
        would leak. Held (approve) statements of such identities are masked too."""
        s = self.state
        masks = decision.masks
        if decision.action == APPROVE:
            found = s.guard.identity_masks(s.ctx.policy)
            masks = found[1] if found else ()
        if not masks:
            return None
        masking = s.ctx.masking
        rules = masking.rules(s.ctx.policy, masks)
        try:
            return rules, await masking.lineages(s.backend_config, s.database, decision, rules)
        except MySQLError as exc:
            s.trail.refused(statement, decision, exc.code)
            raise

    async def _approve(
        self, statement: StatementText, params: list[str], decision: Decision | None
    ) -> str | None:
        """Hold an ``approve`` decision until approved; the approval id, or None when not needed."""
        if decision is None or decision.action != APPROVE:
            return None
        try:
            return str(await approval_hold.hold(self.state, statement, params, decision))
        except MySQLError as exc:
            self.state.trail.refused(statement, decision, exc.code)
            raise

    async def _estimate_rows(self, text: str) -> list[int]:
        """Rows the backend expects each statement of ``text`` to touch (EXPLAIN). From
        this text's own analysis: the cached one is of another text of its shape, whose
        literals may select other rows."""
        estimates = []
        for statement in analyze(text, self.state.guard.context.current_db):
            try:
                names, rows = await self._ask_backend(f"EXPLAIN {statement.sql}")
                column = names.index("rows")
                estimates.append(sum(int(row[column] or 0) for row in rows))
            except (MySQLError, ValueError):
                estimates.append(_UNKNOWN_ROWS)
        event(logging.DEBUG, "estimated_rows", session=self.state.id, rows=estimates)
        return estimates

    async def _received(self, sql: bytes, decided: Decided | None) -> StatementText:
        """The statement the handler passed on, or read again once the backend has said
        which character set it is in (the handler could not tell)."""
        text = await self.state.reading.read_text(sql, self._read_settings)
        if decided is not None and decided.statement.text == text:
            return decided.statement
        return StatementText.received(sql, text)

    async def _read_settings(self) -> tuple[str, str]:
        """The session's sql_mode and character_set_client, for reading its statements."""
        _, rows = await self._ask_backend(
            "SELECT @@SESSION.sql_mode, @@SESSION.character_set_client"
        )
        sql_mode, charset = rows[0]
        return sql_mode or "", charset or ""

    async def _ask_backend(self, sql: str) -> tuple[list[str], list[list[str | None]]]:
        """A question of myguard's own on the session's backend connection."""
        s = self.state
        deprecate_eof = bool(s.capabilities & Capability.CLIENT_DEPRECATE_EOF)
        return await text_query(
            s.backend.stream, sql, deprecate_eof=deprecate_eof, codec=s.reading.codec
        )
