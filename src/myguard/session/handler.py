"""Statement boundaries of a session while the proxy core relays its bytes.

The core (``_fast/proxycore``) asks :meth:`StatementHandler.command` about each client
command and reports :meth:`StatementHandler.response_ended`; both run inside the core's
socket callbacks, so they decide from values at hand and do no I/O. A command that needs
I/O before it can be decided or answered (a masked identity's lineage, an approval hold,
an EXPLAIN estimate, the session's sql_mode, KILL, MYGUARD commands, CHANGE_USER) is
handed to the session's task, which runs it with the packet streams and then gives the
sockets back to the core.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import TYPE_CHECKING, Any

from myguard import metrics
from myguard._fast import load
from myguard.analysis.analyzer import used_database
from myguard.analysis.lexer import leading_words, replace_calls
from myguard.approvals.errors import MyguardCommandSyntax
from myguard.approvals.sql_command import parse_myguard_command
from myguard.logs import event
from myguard.masking.lineage import Lineage
from myguard.masking.plan import MaskRules, reads_masked
from myguard.masking.service import ER_MYGUARD_MASK_REFUSED
from myguard.policy.decision import ALLOW, Decision
from myguard.protocol.constants import Capability, Command, ServerStatus
from myguard.protocol.errors import (
    ER_NET_PACKETS_OUT_OF_ORDER,
    ER_NOT_ALLOWED_COMMAND,
    MySQLError,
    ProtocolError,
)
from myguard.protocol.generic_response import err_packet, ok_packet, parse_err
from myguard.protocol.prepared_statements import bound_types
from myguard.session import backend_views, deferred_settings, dynamic_sql, process_list
from myguard.session import kill as kill_stmt
from myguard.session.audit_trail import Outcome
from myguard.session.guard import blocked_error
from myguard.session.result_masking import rewrite_metadata, withhold_error
from myguard.session.state import PreparedStatement, SessionState
from myguard.session.statement_text import StatementText
from myguard.session.text_reading import UNKNOWN, may_change_settings
from myguard.session.text_reading import codec as charset_codec

if TYPE_CHECKING:
    from myguard._fast.recordpack_py import StatementHead

_core = load("proxycore")
_scan = load("resultscan")
_framing = load("framing")
_UNKNOWN = Lineage(None)
_CURSOR_EXISTS = ServerStatus.SERVER_STATUS_CURSOR_EXISTS

NO_RESPONSE = _core.NO_RESPONSE
ANSWERED = _core.ANSWERED
DETACH = _core.DETACH
FORWARDED = _core.FORWARDED

# Commands whose response is one packet (OK, ERR, EOF or a STATISTICS string).
_SIMPLE = frozenset(
    {
        Command.COM_PING,
        Command.COM_STATISTICS,
        Command.COM_SET_OPTION,
        Command.COM_STMT_RESET,
    }
)
COMMAND_NAMES = {c.value: c.name[4:].lower() for c in Command}
# Statement kinds after which table columns or views may differ.
_SCHEMA_CHANGES = frozenset({"create", "alter", "drop", "rename", "truncate"})
# Query shapes remembered per session (see StatementHandler._repeat).
_MAX_REPEATS = 256
_QUERY = Command.COM_QUERY
_EXECUTE = Command.COM_STMT_EXECUTE
_PREPARE = Command.COM_STMT_PREPARE
_FETCH = Command.COM_STMT_FETCH
_INIT_DB = Command.COM_INIT_DB
_STMT_CLOSE = Command.COM_STMT_CLOSE
_QUIT = Command.COM_QUIT
_RESPONSES = {
    _QUERY: _scan.RESPONSE_QUERY,
    _PREPARE: _scan.RESPONSE_PREPARE,
    _INIT_DB: _scan.RESPONSE_SIMPLE,
}


def is_myguard_command(text: str) -> bool:
    """Is ``text`` a ``MYGUARD ...`` command (well-formed or not)? myguard answers those."""
    try:
        return parse_myguard_command(text) is not None
    except MyguardCommandSyntax:
        return True


def shows_diagnostics(text: str) -> bool:
    """Is ``text`` a SHOW WARNINGS/ERRORS, in any spelling the server reads as one?"""
    return leading_words(text, 2) in (["SHOW", "WARNINGS"], ["SHOW", "ERRORS"])


def shows_status(text: str) -> bool:
    """Is ``text`` a SHOW [SESSION] STATUS (in any spelling the server reads as one)? Its
    Ssl_* rows must describe the client's leg."""
    words = leading_words(text, 3)
    if words[1:2] in (["SESSION"], ["LOCAL"]):
        del words[1]
    return words[:2] == ["SHOW", "STATUS"]


def execute_response(payload: bytes) -> int:
    """The response grammar of a COM_STMT_EXECUTE: one that may open a cursor only when its
    flags ask for one (a stored routine's own cursor sets CURSOR_EXISTS too)."""
    flags = payload[5] if len(payload) > 5 else 0
    return _scan.RESPONSE_EXECUTE if flags else _scan.RESPONSE_QUERY


# CREATE/ALTER of these keep SQL in the server, run later by other sessions.
_STORED_SQL = frozenset({"view", "procedure", "function", "trigger", "event", "package"})


def _stores_sql(decision: Decision | None) -> bool:
    return decision is not None and any(
        s.kind in ("create", "alter") and s.object_type in _STORED_SQL for s in decision.statements
    )


class Decided:
    """A command decided before it is forwarded: what its response and its end need."""

    __slots__ = (
        "command", "statement", "decision", "argument", "mask", "approval_id", "intent_id",
        "masked", "masker", "refused", "withholds", "sent",
    )  # fmt: skip

    def __init__(
        self,
        command: int,
        statement: StatementText,
        decision: Decision | None,
        argument: Any = None,
        *,
        mask: tuple[MaskRules, list[Lineage]] | None = None,
        approval_id: str | None = None,
        intent_id: str | None = None,
        sent: bytes | None = None,
    ) -> None:
        self.command = command
        self.sent = sent  # what the backend gets instead of the client's command, if rewritten
        self.statement = statement
        self.decision = decision
        self.argument = argument  # INIT_DB: the database; EXECUTE/FETCH: the prepared statement
        self.mask = mask  # rules and each statement's lineage, when result sets are masked
        self.approval_id = approval_id
        self.intent_id = intent_id
        self.masked: dict[str, str] = {}  # result column -> strategy, for the audit record
        self.masker: Any = None  # the last result set's row masker (a cursor's, for FETCH)
        self.refused = False  # masking refused a result set: 4701 was sent instead
        # It reads masked columns: its error and warning texts may quote masked values.
        self.withholds = mask is not None and any(reads_masked(lin, mask[0]) for lin in mask[1])


class StatementHandler:
    """The session's answers to its proxy core."""

    __slots__ = (
        "session", "core", "_waiter", "_running", "_command_byte", "_perf", "withheld_diagnostics",
        "_seen", "own_trackers", "_learning",
    )  # fmt: skip

    def __init__(self, session: SessionState) -> None:
        self.session = session
        self.core: Any = None
        self._waiter: asyncio.Future[tuple[bytes, Decided | None] | None] | None = None
        self._running: Decided | None = None
        self._command_byte = 0  # the command being answered, for metrics
        self._perf = 0.0
        # The backend's diagnostics area (SHOW WARNINGS/ERRORS) holds the texts of a
        # statement that read masked columns: the slow path answers those with them withheld.
        self.withheld_diagnostics = False
        self._seen: dict[int, bool] = {}  # shapes forwarded once on another session's verdict
        # The session changed its session trackers: the OKs its settings get are its own.
        self.own_trackers = False
        # A setting forwarded to learn its OK (``_learn``): statement, decision, status.
        self._learning: tuple[StatementText, Decision, deferred_settings.Setting, int] | None = None

    def wait(self) -> asyncio.Future[tuple[bytes, Decided | None] | None]:
        """What the session task waits for: a command it must run itself (with what was
        decided about it, if anything), None when the session ends, or the error ending it."""
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def _resolve(self, result: tuple[bytes, Decided | None] | None) -> None:
        # Only the first outcome counts (an error already set stays).
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(result)

    def _end(self, exc: BaseException, seq: int = 1) -> None:
        """End the session with ``exc``, reported to the client at sequence id ``seq`` by
        the session task, which gets the sockets back for that."""
        self.core.detach()
        self.session.client.seq = seq
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # -- the core's calls --------------------------------------------------------------------

    def command(self, payload: bytes) -> int:
        s = self.session
        if s.ctx.draining:  # no new command once the proxy drains; the session task closes
            self._resolve(None)
            return DETACH
        s.busy = True
        s.last_active = time.monotonic()
        self._perf = time.perf_counter()
        self._running = None
        self._learning = None
        self._command_byte = payload[0] if payload else 0
        # An error that ends the session detaches: the session task reports it and closes.
        if not payload:
            self._end(ProtocolError("malformed packet: empty command", 1835))
            return DETACH
        try:
            verdict = self._command(payload)
        except MySQLError as exc:
            if exc.fatal:
                self._end(exc)
                return DETACH
            self.core.answer([err_packet(exc.code, exc.sqlstate, exc.message)])
            self._finished("error")
            return ANSWERED
        except Exception as exc:  # a bug must cost one session, never the proxy
            self._end(exc)
            return DETACH
        if verdict == DETACH:
            if self._command_byte == _QUIT:
                # The session task ends the session; the backend connection, idle, is reused.
                s.busy = False
                self._resolve(None)
            else:
                self._resolve((payload, self._running))
        elif verdict == NO_RESPONSE:
            self._finished("ok")
        return verdict

    def response_ended(self) -> None:
        s = self.session
        scanner = s.scanner
        running = self._running
        error = scanner.error_code
        try:
            s.reading.after_response(scanner.status, error)
            if running is not None:
                self._statement_ended(running, scanner)
                if self._learning is not None and not error:
                    self._learn(*self._learning)
        except Exception as exc:
            self._end(exc)
            return
        self._finished("ok")

    def repeat_ended(self, repeat: Any, text: str, fingerprint: int, started: float) -> None:
        """The response to a command the core forwarded on a taught verdict has ended, and
        the core could not record it itself (``ProxyCore._end_taught``; it counts it)."""
        s = self.session
        scanner = s.scanner
        error = scanner.error_code
        decision = repeat.decision
        try:
            s.reading.after_response(scanner.status, error)
            self.withheld_diagnostics = False
            s.reading.after_statement(text, decision.statements, error)
            s.trail.record(
                decision, text, fingerprint, started, scanner.rows, scanner.affected_rows, error
            )
            if not error:
                self._after_success(text, decision)
            if repeat.context is None and repeat.prepared is None and repeat.quiet:
                self._shared_seen(fingerprint, repeat)
        except Exception as exc:
            self._end(exc)
            return
        s.busy = False
        if s.ctx.draining:
            self._resolve(None)

    def shared_head(self, repeat: Any, fingerprint: int) -> StatementHead | None:
        """The session's head for the record of a quiet query the core forwarded on a
        verdict another session taught (``ProxyCore._end_taught``); None when the record
        needs Python. A connection opened per request sends each of its statements once,
        each first of its shape in its session: their ends need no handler either."""
        try:
            head = self.session.trail.core_head(repeat.decision)
        except Exception:  # none may raise: repeat_ended records it, or ends the session
            return None
        if head is not None:
            self._shared_seen(fingerprint, repeat)
        return head

    def _shared_seen(self, fingerprint: int, repeat: Any) -> None:
        """A quiet query (it changed no session state) forwarded on a verdict another
        session taught: the second one of its shape here gets the session's own, whose
        ends the core records itself."""
        if fingerprint not in self._seen:
            _put(self._seen, fingerprint, True)
        elif repeat.policy is self.session.ctx.policy:
            self._teach(
                fingerprint,
                repeat.decision,
                repeat.policy,
                repeat.quiet,
                autocommit=repeat.autocommit,
                names=repeat.names,
                text=repeat.text,
                tracked=repeat.tracked,
            )

    def shows_withheld(self, text: str) -> bool:
        """Is ``text`` a SHOW WARNINGS/ERRORS whose texts must be withheld?"""
        return self.withheld_diagnostics and shows_diagnostics(text)

    def masked_error(self, run: bytes) -> bytes:
        """The last run of a masked response that ended in an error: the error's text is
        withheld (code and SQLSTATE kept) when the statement read masked columns."""
        running = self._running
        return withhold_error(run) if running is not None and running.withholds else run

    def client_lost(self, reason: str) -> None:
        s = self.session
        s.end_reason = f"client gone: {reason}"
        if s.busy:  # mid-statement: worth a line of its own; otherwise session_end says it
            event(logging.INFO, "client_gone", session=s.id, user=s.user or None, detail=reason)
        self._resolve(None)

    def backend_lost(self, reason: str, mid_response: bool) -> None:
        s = self.session
        error = s.backend_lost(reason)
        if mid_response:
            last = s.scanner.last_seq
            self._end(error, (last + 1) & 0xFF if last else 1)
        else:
            self.core.close()
            self._resolve(None)

    def core_failed(self, exc: Exception) -> None:
        if not self.session.busy and getattr(exc, "code", None) == ER_NET_PACKETS_OUT_OF_ORDER:
            unread = self.core.requests.take()
            if unread[:3] == b"\x01\x00\x00" and unread[4:] == bytes((_QUIT,)):
                # A COM_QUIT with another sequence id than 0 (mysql.connector's asyncio
                # close sends the next one of the last command): a quit all the same, and
                # the backend connection goes back to the pool.
                self._resolve(None)
                return
            self.core.requests.feed(unread)
        self._end(exc)

    def defer_commands(self, payloads: list[bytes]) -> None:
        """Commands the checkout left for the session's first command to carry."""
        self.core.defer(list(payloads))

    def settings_failed(self, run: bytes) -> None:
        """The backend refused settings answered here earlier, sent in front of the current
        command, which then ran without them: the session ends, as a lost connection
        would end it (deferred_settings.py says why they cannot fail otherwise)."""
        s = self.session
        err = parse_err(run[4:])
        s.end_reason = f"deferred settings refused: error {err.code}"
        event(logging.ERROR, "settings_failed", session=s.id, code=err.code, error=err.message)
        self._end(
            MySQLError(
                err.code,
                err.sqlstate,
                f"myguard: the backend refused this session's earlier SET ({err.message}); "
                "the statement sent after it ran without it, so the session is closed",
                fatal=True,
            )
        )

    def tracked_stale(self, repeat: Any, fingerprint: int, tail: bytes, ok: bytes) -> None:
        """The server's OK to a setting the core answered with a learned tail differed
        (its session trackers' configuration changed): the copy this identity context
        shares is unlearned too, so the next one of its text goes to the server again."""
        s = self.session
        try:
            taught = s.guard.taught
            shared = taught.get(fingerprint) if taught is not None else None
            if shared is not None and shared.text == repeat.text:
                shared.tracked = None
            metrics.ERRORS.labels("tracked_stale").inc()
            event(
                logging.WARNING,
                "tracked_stale",
                session=s.id,
                statement=repeat.text,
                answered=tail.hex(),
                server=ok[7:].hex(),
            )
        except Exception:  # none may raise; the entry itself is unlearned already
            return

    def forward(self, payload: bytes, decided: Decided) -> None:
        """Send a command the session task decided on (after ``core.attach``)."""
        self._running = decided
        command = decided.command
        if command == _FETCH:
            masker = decided.argument.cursor_masker
            self.core.mask_rows(masker, True)
            self.core.forward(payload, _scan.RESPONSE_FETCH, True)
            return
        kind = execute_response(payload) if command == _EXECUTE else _RESPONSES[command]
        masked = decided.mask is not None and command != _PREPARE
        self.core.forward(self._outgoing(decided.sent or payload, decided.decision), kind, masked)

    def columns(self, header: bytes) -> bytes:
        """A masked result set's metadata: what the client gets instead, with the row masker
        set on the core, or the refusal (4701) with the rest of the response dropped."""
        running = self._running
        rules, lineages = running.mask
        index = self.session.scanner.result_sets - 1  # statements answered by OK count too
        lineage = lineages[index] if index < len(lineages) else _UNKNOWN
        s = self.session
        out, plan = rewrite_metadata(header, lineage, rules, s.capabilities, s.reading.codec)
        if plan.refusal is not None:
            running.refused = True
            self.core.discard_rest()
            return out
        running.masked.update(plan.masked())
        binary = running.command != _QUERY
        running.masker = plan.masker(binary, self.session.ctx.masking.key)
        self.core.mask_rows(running.masker, binary)
        return out

    # -- deciding --------------------------------------------------------------------------

    def decide_now(self, statement: StatementText) -> Decision | None:
        """The decision when it needs no I/O (raises to refuse); None when it does (the
        session's sql_mode must be asked, or an EXPLAIN estimate could change it)."""
        s = self.session
        text = statement.text
        unreadable = s.reading.known_ambiguity(text)
        if unreadable is UNKNOWN:
            return None
        policy = s.ctx.policy
        if unreadable is not None:
            decision = s.guard.decide_unanalysable(policy, text, unreadable)
        else:
            decision = s.guard.decide(policy, text, statement.fingerprint)
            if decision.wants_estimate:
                return None
        return self.checked(statement, decision)

    def checked(
        self,
        statement: StatementText,
        decision: Decision,
        *,
        runs_here: bool = False,
        maps_explain: bool = False,
    ) -> Decision:
        """``decision`` when the statement may go on; raises (and audits) the refusal.
        ``runs_here``: myguard runs the statement itself (a KILL of its own sessions);
        ``maps_explain``: the caller maps the session id of a lone SHOW EXPLAIN FOR."""
        s = self.session
        if decision.blocked:
            s.trail.refused(statement, decision, decision.error_code)
            raise blocked_error(decision)
        refused = (
            None
            if runs_here
            else kill_stmt.on_backend(
                decision.statements, statement.text, maps_explain=maps_explain
            )
        )
        if refused is None and not s.sees_all_sessions:
            refused = backend_views.refusal(decision.statements, statement.text)
        if refused is not None:
            s.trail.refused(statement, decision, refused.code)
            raise refused
        s.trail.require()
        if not s.backend_config.local_infile and any(
            st.kind == "load_data" and st.local for st in decision.statements
        ):
            s.trail.refused(statement, decision, ER_NOT_ALLOWED_COMMAND)
            raise MySQLError(
                ER_NOT_ALLOWED_COMMAND,
                "42000",
                f"myguard: LOAD DATA LOCAL INFILE is disabled for backend "
                f"'{s.backend_config.name}' (set local_infile = true in its config to allow it)",
            )
        return decision

    def _command(self, payload: bytes) -> int:
        s = self.session
        command = payload[0]
        if command == _QUERY:
            return self._query(payload)
        if command == _EXECUTE:
            return self._execute(payload)
        if command == _PREPARE:
            return self._prepare(payload)
        if command == _STMT_CLOSE:
            s.prepared.pop(int.from_bytes(payload[1:5], "little"), None)
            return NO_RESPONSE
        if command == Command.COM_STMT_SEND_LONG_DATA:
            return NO_RESPONSE
        if command == _FETCH:
            statement = s.prepared.get(int.from_bytes(payload[1:5], "little"))
            if statement is not None and statement.cursor_masker is not None:
                return DETACH
            return _scan.RESPONSE_FETCH
        if command == _INIT_DB:
            return self._init_db(payload)
        if command in _SIMPLE:
            return _scan.RESPONSE_SIMPLE
        if command == Command.COM_FIELD_LIST:
            return _scan.RESPONSE_FIELD_LIST
        return DETACH  # COM_QUIT and COM_RESET_CONNECTION among them

    def _repeat(self, statement: StatementText) -> Decision | None:
        """The decision of a query whose shape (fingerprint) went straight through before,
        under the same policy and in the same database; None when it must be looked at.

        What else a query may be (KILL, MYGUARD, process list, SHOW STATUS) shows in its
        keywords and names, which the fingerprint keeps; only its literals vary, and those
        are what ``known_ambiguity`` reads."""
        s = self.session
        entry = self.core.repeats.get(statement.fingerprint)
        if (
            entry is None
            or entry.policy is not s.ctx.policy
            or entry.context is not s.guard.context
            or s.reading.known_ambiguity(statement.text) is not None
        ):
            return None
        s.trail.require()
        metrics.tally.cache_hits += 1
        return entry.decision

    def _remember(
        self,
        statement: StatementText,
        decision: Decision,
        autocommit: int = -1,
        names: str | None = None,
        tracked: bytes | None = None,
    ) -> None:
        """Teach the core a query forwarded as it was, with a plain allow from the policy's
        cache (callers check: an analysis that depends on its literals is never cached):
        the core forwards the next ones of its shape itself (``repeat_ended``), or asks
        ``_repeat``; with ``autocommit`` or ``names`` (its set's codec), a SET autocommit or
        SET NAMES it answered and deferred (``_defer``) or learned the OK of (``_learn``:
        ``tracked``), which the core answers and defers itself when its text is the same.
        (``_query`` never teaches one that changes session trackers: the handler must see
        those.)"""
        s = self.session
        policy = s.ctx.policy
        if (
            decision.observed  # each one is logged
            or s.reading.known_ambiguity(statement.text) is not None  # not decided by shape
            # a KILL or a backend view may hide in a literal
            or kill_stmt.reads_literals(decision.statements)
        ):
            return
        text = statement.text
        setting = autocommit >= 0 or names is not None
        if not setting and deferred_settings.read(text) is not None:
            return  # its shape answered here (_defer) when the session's status allows
        quiet = _quiet(text, decision)
        taught = text if setting else None
        self._teach(
            statement.fingerprint,
            decision,
            policy,
            quiet,
            autocommit=autocommit,
            names=names,
            text=taught,
            tracked=tracked,
        )
        # Without a head or context: the core takes it for any session of this identity
        # context and leaves its end to repeat_ended, which teaches the session's own.
        shared = _core.Repeat(
            decision,
            policy,
            None,
            text=taught,
            quiet=quiet,
            autocommit=autocommit,
            names=names,
            tracked=tracked,
        )
        _put(s.guard.taught_verdicts(policy), statement.fingerprint, shared)

    def _teach(
        self,
        fingerprint: int,
        decision: Decision,
        policy: Any,
        quiet: bool,
        *,
        autocommit: int = -1,
        names: str | None = None,
        text: str | None = None,
        tracked: bytes | None = None,
    ) -> None:
        """``autocommit`` (0, 1) or ``names`` (a codec) with the exact ``text``: a SET
        autocommit or SET NAMES the core answers and defers itself (``_defer``), to clients
        that track session state with ``tracked`` (``_learn``)."""
        s = self.session
        repeat = _core.Repeat(
            decision,
            policy,
            s.guard.context,
            text=text,
            head=s.trail.core_head(decision),
            quiet=quiet,
            autocommit=autocommit,
            names=names,
            tracked=tracked,
        )
        _put(self.core.repeats, fingerprint, repeat)

    def _query(self, payload: bytes) -> int:
        s = self.session
        statement = self._received(payload)
        if statement is None:
            return DETACH
        text = statement.text
        decision = self._repeat(statement)
        if decision is not None:
            s.current_statement = text
            self._running = Decided(_QUERY, statement, decision)
            return _scan.RESPONSE_QUERY
        words = text.lower()  # one copy for the cheap tests of what else it may be
        trackers = "session_track" in words
        if trackers:
            self.own_trackers = True
        if (
            ("kill" in words and kill_stmt.is_kill(payload[1:]))
            or ("myguard" in words and is_myguard_command(text))
            or ("prepare" in words and dynamic_sql.source_variable(text) is not None)
            or ("for" in words and _NAMES_SESSION(words) is not None)
        ):
            self._running = Decided(_QUERY, statement, None)
            return DETACH
        s.current_statement = text
        misses = s.ctx.policy.cache_misses
        decision = self.decide_now(statement)
        self._running = Decided(_QUERY, statement, decision)
        if (
            process_list.mentions(words)
            or ("status" in words and shows_status(text))
            or self.shows_withheld(text)
        ):
            return DETACH  # answered, or rewritten, from what the slow path gathers
        if decision is None or decision.action != ALLOW or s.trail.always:
            return DETACH  # needs I/O: an estimate, settings, lineage, approval, intent record
        cached = s.ctx.policy.cache_misses == misses
        if words.lstrip().startswith("set") and self._defer(payload, statement, decision, cached):
            return ANSWERED
        verdict = self._send(payload, _scan.RESPONSE_QUERY, decision, words)
        # SHOW WARNINGS/ERRORS: whether the slow path answers it is session state.
        if verdict != FORWARDED and cached and not trackers and not shows_diagnostics(text):
            self._remember(statement, decision)
        return verdict

    def _defer(
        self, payload: bytes, statement: StatementText, decision: Decision, cached: bool
    ) -> bool:
        """Answer a SET NAMES or SET autocommit here and leave it for the core to send in
        front of the next command (deferred_settings.py); False when it goes now: another
        statement, a change that commits, names the backend does not list, a client that
        tracks session state (its OK carries what changed: learned from this one, see
        ``_learn``), or many waiting already. Both are taught: the core answers the next
        ones of their text itself."""
        s = self.session
        core = self.core
        if len(core.deferred) >= _core.MAX_DEFERRED:
            return False
        setting = deferred_settings.read(statement.text)
        if setting is None:
            return False
        if setting.names is not None and (
            s.pool.client_charsets is None or not s.pool.client_charsets.allows(*setting.names)
        ):
            return False
        status = deferred_settings.status_after(setting, s.status())
        if status is None:
            return False
        if s.capabilities & Capability.CLIENT_SESSION_TRACK:
            if cached and not self.own_trackers:
                self._learning = (statement, decision, setting, status)
                core.keep_end = True
            return False
        core.defer([payload])
        s.scanner.known_status = status
        core.answer([ok_packet(status=status)])
        self.withheld_diagnostics = False  # the SET clears the diagnostics area when it runs
        self._recorded(Decided(_QUERY, statement, decision), Outcome())
        self._finished("ok")
        if cached:
            self._remember_setting(statement, decision, setting)
        return True

    def _remember_setting(
        self,
        statement: StatementText,
        decision: Decision,
        setting: deferred_settings.Setting,
        tracked: bytes | None = None,
    ) -> None:
        if setting.autocommit is not None:
            self._remember(statement, decision, autocommit=int(setting.autocommit), tracked=tracked)
        else:
            codec = charset_codec(setting.names[0])
            self._remember(statement, decision, names=codec, tracked=tracked)

    def _learn(
        self,
        statement: StatementText,
        decision: Decision,
        setting: deferred_settings.Setting,
        status: int,
    ) -> None:
        """A setting forwarded for a client that tracks session state has ended in an OK:
        taught with what follows the OK's status flags (``deferred_settings.tracked_tail``),
        which the core answers the next ones of its text with."""
        self._learning = None
        kept = self.core.take_kept()
        if kept is None or int.from_bytes(kept[:3], "little") != len(kept) - 4:
            return  # not one whole packet
        tail = deferred_settings.tracked_tail(kept[4:], status)
        if tail is not None:
            self._remember_setting(statement, decision, setting, tail)

    def _prepare(self, payload: bytes) -> int:
        statement = self._received(payload)
        if statement is None:
            return DETACH
        self.session.current_statement = statement.text
        decision = self.decide_now(statement)
        refused = process_list.refusal(
            statement.text, prepared=True, current_db=self.session.database
        )
        if refused is not None:
            self.session.trail.refused(statement, decision, refused.code)
            raise refused
        self._running = Decided(_PREPARE, statement, decision)
        if decision is None or decision.action != ALLOW:
            return DETACH
        return self._send(payload, _scan.RESPONSE_PREPARE, decision, statement.text.lower())

    def _received(self, payload: bytes) -> StatementText | None:
        """The statement of a COM_QUERY or COM_STMT_PREPARE, read in the session's
        character set; None when the slow path must ask for the set first (it reads the
        statement again)."""
        s = self.session
        sql = payload[1:]
        text = s.reading.text(sql)
        if text is not None:
            return StatementText.received(sql, text)
        statement = StatementText.received(sql, sql.decode("utf-8", "replace"))
        s.current_statement = statement.text
        self._running = Decided(payload[0], statement, None)
        return None

    def _send(self, payload: bytes, kind: int, decision: Decision, words: str) -> int:
        """The verdict for a statement to forward as it is, or as rewritten."""
        sent = self._outgoing(payload, decision, words)
        if sent is payload:
            return kind
        self.core.forward(sent, kind, False)
        return FORWARDED

    def _outgoing(
        self, payload: bytes, decision: Decision | None, words: str | None = None
    ) -> bytes:
        """A COM_QUERY or COM_STMT_PREPARE as the backend gets it: CONNECTION_ID() gives
        myguard's session id, the id the client was given and that KILL takes, not the
        backend thread's. (The audit trail keeps the client's text.) Not in the body of a
        view or stored program: the server would keep this session's id there for every
        later caller. ``words``: the statement's text lowercased, when the caller has it."""
        if payload[0] not in (_QUERY, _PREPARE) or _stores_sql(decision):
            return payload
        if words is None:
            words = payload[1:].decode("utf-8", "replace").lower()
        if "connection_id" not in words:
            return payload
        text = payload[1:].decode("utf-8", "surrogateescape")
        # Ten digits cast to UNSIGNED: the built-in's type exactly (INT(10) UNSIGNED NOT
        # NULL), in result metadata and in the columns a CREATE TABLE ... SELECT makes.
        rewritten = replace_calls(
            text, "CONNECTION_ID", f"CAST({self.session.id:010d} AS UNSIGNED)"
        )
        if rewritten is text:
            return payload
        return payload[:1] + rewritten.encode("utf-8", "surrogateescape")

    def _execute(self, payload: bytes) -> int:
        s = self.session
        prepared = s.prepared.get(int.from_bytes(payload[1:5], "little"))
        if prepared is None:  # the backend answers an unknown id with its error
            decided = Decided(_EXECUTE, StatementText.of(""), None)
        else:
            decision = prepared.decision
            if prepared.mask is not None or decision.action != ALLOW or s.trail.always:
                return DETACH  # masked, held, or its intent record first (I/O)
            prepared.param_types = bound_types(payload, prepared.num_params, prepared.param_types)
            s.current_statement = prepared.sql
            decided = Decided(_EXECUTE, prepared.executed(), decision, prepared)
        s.trail.require()
        self._running = decided
        return execute_response(payload)

    def _init_db(self, payload: bytes) -> int:
        database = payload[1:].decode(self.session.reading.codec, "replace")
        statement = StatementText.of("USE `" + database.replace("`", "``") + "`")
        decision = self.decide_now(statement)
        if decision is None or self.session.trail.always:
            return DETACH  # an estimate, or its intent record first (I/O)
        self._running = Decided(_INIT_DB, statement, decision, database)
        return _scan.RESPONSE_SIMPLE

    # -- after the response ----------------------------------------------------------------

    def _statement_ended(self, running: Decided, scanner: Any) -> None:
        s = self.session
        command = running.command
        decision = running.decision
        error = scanner.error_code
        if command == _PREPARE:
            if not error:
                statement = running.statement
                prepared = s.prepared[scanner.stmt_id] = PreparedStatement(
                    statement.text,
                    statement.fingerprint,
                    decision,
                    scanner.num_params,
                    mask=running.mask,
                )
                if (
                    running.mask is None
                    and decision
                    and decision.action == ALLOW
                    and not s.trail.always
                ):
                    # Its executions go straight through (_execute): the core sends them
                    # itself, without following their parameter types, which only the slow
                    # path reads, and it never runs this statement's executions. In
                    # ``always`` mode each one waits for its intent record (slow path).
                    _put(
                        self.core.executes,
                        scanner.stmt_id,
                        _core.Repeat(
                            decision,
                            None,
                            None,
                            statement.fingerprint,
                            statement.text,
                            prepared,
                            head=s.trail.core_head(decision),
                            quiet=_quiet(statement.text, decision),
                        ),
                    )
            return
        if command == _FETCH:
            return
        self.withheld_diagnostics = running.withholds
        # Records carry the database a statement arrived in (the one it was decided in),
        # so session state changes after the record.
        if command == _INIT_DB:
            s.trail.statement(
                running.statement,
                decision,
                Outcome(error_code=error),
                intent_id=running.intent_id,
            )
            if not error:
                s.use_database(running.argument)
            return
        if running.refused:
            error = ER_MYGUARD_MASK_REFUSED
        if command == _EXECUTE and running.argument is not None:
            opened = scanner.kind == _scan.RESPONSE_EXECUTE and scanner.status & _CURSOR_EXISTS
            running.argument.cursor_masker = running.masker if opened else None
        self._recorded(
            running,
            Outcome(
                rows=scanner.rows,
                affected_rows=scanner.affected_rows,
                error_code=error,
                masked=running.masked,
            ),
        )

    def _recorded(self, running: Decided, outcome: Outcome) -> None:
        """A statement's end: how later texts read, its audit record, then the session
        state it changed."""
        s = self.session
        decision = running.decision
        text = running.statement.text
        error = outcome.error_code
        s.reading.after_statement(text, decision.statements if decision else (), error)
        s.trail.statement(
            running.statement,
            decision,
            outcome,
            intent_id=running.intent_id,
            approval_id=running.approval_id,
        )
        if not error and decision is not None:
            self._after_success(text, decision)

    def _after_success(self, text: str, decision: Decision) -> None:
        """Session state that follows from statements that ran: current database, schema,
        and a backend connection never to pool again."""
        s = self.session
        if _PROFILING(text) is not None and s.backend is not None:
            # COM_RESET_CONNECTION turns profiling off but keeps the history of profiled
            # statements: the next owner's SHOW PROFILES would list this user's texts.
            s.backend.tainted = True
        for statement in decision.statements:
            if statement.kind == "use":
                database = used_database(text)
                if database is not None:
                    s.use_database(database)
            elif statement.kind in _SCHEMA_CHANGES:
                s.ctx.masking.invalidate_schema(s.backend_config.name)
            if s.backend is not None and (
                statement.opaque or statement.unparsed or statement.object_type == "database"
            ):
                # It may select another database, or drop the current one (which deselects
                # it): the pool selects the next session's afresh.
                s.backend.database = None

    def _finished(self, outcome: str) -> None:
        s = self.session
        s.busy = False
        name = COMMAND_NAMES.get(self._command_byte, "unknown")
        metrics.statement_done(name, outcome, time.perf_counter() - self._perf)
        if s.ctx.draining:
            # The session task ends and closes the sockets, after this response's last bytes.
            self._resolve(None)


_PROFILING = re.compile(r"profiling", re.IGNORECASE).search
# May be a SHOW EXPLAIN FOR, whose session id the slow path maps (lowercased text).
_NAMES_SESSION = re.compile(r"\b(?:explain|analyze)\b.*\bfor\b|\bfor\s+connection\b", re.S).search


def _put(table: dict, key: int, value: Any) -> None:
    """``table[key] = value`` in a table of at most _MAX_REPEATS entries (emptied when full)."""
    if len(table) >= _MAX_REPEATS:
        table.clear()
    table[key] = value


def _quiet(text: str, decision: Decision) -> bool:
    """Does a statement of this text and decision end without changing session state
    (``_after_success``, ``TextReading.after_statement``)? The core records such ends
    itself; for a query, other texts of its shape differ in literals, and the core leaves
    the ones that mention sql_mode to the handler."""
    statements = decision.statements
    if _PROFILING(text) is not None:  # its end may taint the backend (_after_success)
        return False
    return not may_change_settings(text, statements) and not any(
        st.kind == "use" or st.kind in _SCHEMA_CHANGES for st in statements
    )
