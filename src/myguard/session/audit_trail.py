"""What one session hands to the audit trail: logins, statements, session end.

Fail closed: while the audit trail cannot be written, statements are refused (unless the
backend's environment is listed in ``audit.fail_open_environments``). A statement's
record is written (handed to the kernel) when its response has ended and before the
client gets the response's last bytes, so a process crash loses no statement a client saw
complete; fsync follows per ``audit.fsync`` (docs/audit-format.md). In ``always`` mode an
intent record is on disk before a statement is forwarded.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from myguard.audit import (
    AuditUnavailable,
    AuditWriter,
    login_record,
    session_end_record,
    statement_intent_record,
)
from myguard.audit.records import (
    AuditRecord,
    PackedFields,
    StatementEncoder,
    statement_decision_fields,
    statement_session_fields,
)
from myguard.config import BackendConfig
from myguard.identity.base import Identity
from myguard.logs import event
from myguard.net.packet_stream import PacketStream
from myguard.policy.decision import Decision
from myguard.protocol.errors import MySQLError
from myguard.session.statement_text import StatementText

if TYPE_CHECKING:
    from myguard._fast.recordpack_py import StatementHead


class SessionFacts(Protocol):
    """What the trail reads of its session (a ``session.state.SessionState``)."""

    id: int
    user: str
    identity: Identity | None
    source_ip: str
    attributes: dict[str, str]
    backend_config: BackendConfig
    database: str | None
    client: PacketStream


ER_MYGUARD_AUDIT_UNAVAILABLE = 4693


@dataclass(slots=True)
class Outcome:
    """What a statement's response came to, for the audit record."""

    rows: int = 0
    affected_rows: int = 0
    error_code: int = 0
    masked: dict[str, str] = field(default_factory=dict)  # result column -> strategy


# Statement text beyond this is cut in the record (a 20 MB BLOB INSERT is not audit data).
MAX_STATEMENT_CHARS = 65536


def _text(sql: str) -> str:
    if len(sql) <= MAX_STATEMENT_CHARS:
        return sql
    return f"{sql[:MAX_STATEMENT_CHARS]}... [{len(sql) - MAX_STATEMENT_CHARS} more characters]"


def _tables(names: Iterable[object]) -> list[str]:
    return sorted({f"{t.db}.{t.name}" if t.db else t.name for t in names})


def _decision_fields(decision: Decision | None) -> PackedFields:
    # Decisions are shared by the sessions of one identity context (session/guard.py), so
    # a connection per request finds its statements' fields packed already.
    entry = _PACKED.get(id(decision))
    if entry is not None and entry[0] is decision:
        return entry[1]
    packed = _pack_decision_fields(decision)
    if len(_PACKED) >= _MAX_PACKED:
        _PACKED.clear()
    _PACKED[id(decision)] = (decision, packed)
    return packed


_PACKED: dict[int, tuple[Decision | None, PackedFields]] = {}
_MAX_PACKED = 4096


def _pack_decision_fields(decision: Decision | None) -> PackedFields:
    if decision is None:
        return PackedFields.of(statement_decision_fields(decision="allow"))
    statements = decision.statements
    return PackedFields.of(
        statement_decision_fields(
            decision=decision.action,
            kind=",".join(dict.fromkeys(st.kind for st in statements)) or None,
            tables_read=_tables(t for st in statements for t in st.reads),
            tables_written=_tables(t for st in statements for t in st.writes),
            columns=sorted({str(c) for st in statements for c in st.columns}),
            data_tags=decision.tags,
            rule=decision.rule,
            observed_rules=[f"{h.rule}:{h.action}" for h in decision.observed],
        )
    )


# Decisions are memoised per session and statement shape, so the same few objects recur.
_MAX_DECISION_FIELDS = 256


class AuditTrail:
    """The audit side of one session; ``writer`` None means audit is disabled."""

    def __init__(
        self, writer: AuditWriter | None, *, fail_open: bool, session: SessionFacts
    ) -> None:
        self.writer = writer
        self.fail_open = fail_open
        self.always = writer is not None and writer.fsync == "always"
        self.session = session
        self._encoder: StatementEncoder | None = None
        # id(decision) -> (decision, the session's and its packed fields); the decision is
        # kept so that its id stays its own.
        self._heads: dict[int, tuple[Decision | None, StatementHead]] = {}

    def _submit(self, record: AuditRecord) -> None:
        if self.writer is not None:
            self.enqueue(record.encode(self.writer.redacts_literals))

    def enqueue(self, body: bytes) -> None:
        """Write an encoded record body (the proxy core's records come this way too); a
        failure is logged, and ``require`` refuses the next statement."""
        try:
            self.writer.enqueue(body)
        except AuditUnavailable as exc:
            event(logging.ERROR, "audit_unavailable", session=self.session.id, error=str(exc))

    def require(self) -> None:
        """Refuse the statement when it could not be recorded."""
        w = self.writer
        if w is not None and not w.healthy and not self.fail_open:
            raise MySQLError(
                ER_MYGUARD_AUDIT_UNAVAILABLE,
                "HY000",
                "myguard: the audit trail cannot be written, so statements are refused "
                f"until it can ({w.last_error})",
            )

    def login(
        self,
        success: bool,
        user: str,
        reason: str | None = None,
        plugin: str | None = None,
        method: str | None = None,
    ) -> None:
        """The one record of a login: who, from where, how, and onto which backend thread."""
        s = self.session
        backend = getattr(s, "backend", None)
        identity = s.identity
        if success:
            self._encoder = None  # the statement records' session fields change with the login
            self._heads.clear()
        self._submit(
            login_record(
                success=success,
                user=user,
                reason=reason,
                groups=identity.groups if identity and success else None,
                source_address=s.source_ip,
                client_program=s.attributes.get("program_name"),
                client_attributes=s.attributes,
                backend=s.backend_config.name,
                session_id=str(s.id),
                auth_plugin=plugin,
                tls=s.client.tls_version or False,
                auth_method=method,
                backend_account=backend.account if backend is not None and success else None,
                backend_thread=backend.thread_id if backend is not None and success else None,
            )
        )

    async def intent(self, sql: str, decision: Decision) -> str | None:
        """In ``always`` mode: the intent record, on disk before the statement is forwarded."""
        if not self.always:
            return None
        record = statement_intent_record(
            user=self.session.user,
            statement=_text(sql),
            decision=decision.action,
            session_id=str(self.session.id),
            backend=self.session.backend_config.name,
            rule=decision.rule,
        )
        try:
            await self.writer.write(record)
        except AuditUnavailable as exc:
            if not self.fail_open:
                raise MySQLError(
                    ER_MYGUARD_AUDIT_UNAVAILABLE,
                    "HY000",
                    f"myguard: the audit trail cannot be written: {exc}",
                ) from None
        return record.get("intent_id")

    def refused(self, statement: StatementText, decision: Decision | None, error_code: int) -> None:
        """A statement myguard refused before it reached the backend."""
        self.statement(statement, decision, Outcome(error_code=error_code))

    def statement(
        self,
        statement: StatementText,
        decision: Decision | None,
        outcome: Outcome,
        *,
        intent_id: str | None = None,
        approval_id: str | None = None,
    ) -> None:
        self.record(
            decision,
            statement.text,
            statement.fingerprint,
            statement.started,
            outcome.rows,
            outcome.affected_rows,
            outcome.error_code,
            masked=outcome.masked or None,
            approval_id=approval_id,
            intent_id=intent_id,
        )

    def head(self, decision: Decision | None) -> StatementHead | None:
        """What the records of statements with ``decision`` begin with (the session's and
        the decision's fields); None while audit is disabled."""
        writer = self.writer
        if writer is None:
            return None
        if self._encoder is None:
            self._encoder = self._new_encoder(writer)
        entry = self._heads.get(id(decision))
        if entry is None or entry[0] is not decision:
            if len(self._heads) >= _MAX_DECISION_FIELDS:
                self._heads.clear()
            entry = (decision, self._encoder.head(_decision_fields(decision)))
            self._heads[id(decision)] = entry
        return entry[1]

    def core_head(self, decision: Decision) -> StatementHead | None:
        """The head the proxy core packs the records of ``decision``'s statements with by
        itself; None when they need Python (audit disabled, literals redacted)."""
        writer = self.writer
        if writer is None or writer.redacts_literals:
            return None
        return self.head(decision)

    def record(
        self,
        decision: Decision,
        text: str,
        fingerprint: int,
        started: float,
        rows: int,
        affected_rows: int,
        error_code: int,
        *,
        masked: dict[str, str] | None = None,
        approval_id: str | None = None,
        intent_id: str | None = None,
    ) -> None:
        """The record of a statement, by its parts: what ``statement`` writes, and what the
        handler writes for a statement the proxy core forwarded on a taught verdict (no
        value objects made for it on that path)."""
        head = self.head(decision)
        if head is None:
            return
        body = self._encoder.encode(
            head,
            statement=text,
            database=self.session.database,
            fingerprint=fingerprint,
            masked_columns=masked,
            approval_id=approval_id,
            rows_returned=rows,
            rows_affected=affected_rows,
            error_code=error_code or None,
            started_at=started,
            duration=time.time() - started,
            intent_id=intent_id,
        )
        self.enqueue(body)

    def _new_encoder(self, writer: AuditWriter) -> StatementEncoder:
        s = self.session
        identity = s.identity
        session_fields = statement_session_fields(
            user=s.user,
            groups=identity.groups if identity else None,
            source_address=s.source_ip,
            client_program=s.attributes.get("program_name"),
            client_attributes=s.attributes,
            environment=s.backend_config.environment,
            backend=s.backend_config.name,
            session_id=str(s.id),
        )
        return StatementEncoder(
            PackedFields.of(session_fields),
            redact=writer.redacts_literals,
            max_text=MAX_STATEMENT_CHARS,
        )

    def session_end(self, reason: str | None = None, duration: float | None = None) -> None:
        s = self.session
        self._submit(
            session_end_record(
                session_id=str(s.id),
                user=s.user or None,
                reason=reason,
                duration=duration,
                backend=s.backend_config.name,
            )
        )
