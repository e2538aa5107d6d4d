"""Audit record types, their constructors and the msgpack body encoding.

A record body is a msgpack map with short keys (see docs/audit-format.md): ``t`` is the
record type code, ``ts`` the wall-clock time, the rest are the fields below. Constructors
build the short-key map directly because the proxy creates one record per statement and
a second dict per record would be measurable at 20k statements/s. Absent (None) fields
are left out of the map.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import msgpack

from myguard._fast import load
from myguard.audit.redact import redact_literals

_pack = load("recordpack")

# Record type name <-> code stored under "t".
TYPE_CODES: dict[str, int] = {
    "login": 1,
    "statement": 2,
    "statement_intent": 3,
    "approval": 4,
    "session_end": 5,
    "restart": 6,
}
TYPE_NAMES: dict[int, str] = {code: name for name, code in TYPE_CODES.items()}

# Field name <-> short key. Keys are part of the format: never reuse or rename one.
FIELD_KEYS: dict[str, str] = {
    "user": "u",
    "groups": "g",
    "source_address": "sa",
    "client_program": "cp",
    "client_attributes": "ca",
    "environment": "env",
    "backend": "b",
    "session_id": "sid",
    "success": "ok",
    "reason": "rsn",
    "auth_plugin": "ap",
    "tls": "tls",
    "statement": "q",
    "fingerprint": "fp",
    "kind": "k",
    "tables_read": "tr",
    "tables_written": "tw",
    "columns": "col",
    "data_tags": "tag",
    "decision": "d",
    "rule": "r",
    "observed_rules": "or",
    "masked_columns": "mc",
    "approval_id": "aid",
    "rows_returned": "rr",
    "rows_affected": "ra",
    "error_code": "ec",
    "started_at": "st",
    "duration": "du",
    "intent_id": "iid",
    "request_id": "rid",
    "event": "ev",
    "actor": "ac",
    "statements": "ns",
    "segment": "seg",
    "offset": "off",
    "truncated_bytes": "tb",
    "pid": "pid",
    "database": "db",
    "status": "sts",
    "actor_groups": "acg",
    "auth_method": "am",
    "backend_account": "bu",
    "backend_thread": "bt",
}
FIELD_NAMES: dict[str, str] = {key: name for name, key in FIELD_KEYS.items()}
_STATEMENT_KEY = FIELD_KEYS["statement"]

APPROVAL_EVENTS = frozenset(
    {
        "requested",
        "approval",
        "approved",
        "denied",
        "expired",
        "executed",
        "cancelled",
        "hold-timeout",
        "refused",
    }
)

# Intent ids must be unique across proxy restarts without coordination: a random
# per-process prefix plus a counter is cheaper than uuid4 per statement.
_INTENT_PREFIX = os.urandom(6).hex()
_intent_counter = itertools.count(1)


class AuditFormatError(ValueError):
    """A record body or segment does not follow the documented format."""


@dataclass(slots=True)
class AuditRecord:
    """One audit record: its type, time and short-key field map.

    ``seq``, ``segment``, ``offset`` and ``end`` are filled in by readers (record number
    in the chain, segment file name, byte offset of the frame and of the byte after it);
    ``chain`` names the chain subdirectory when a reader was given a root of several
    chains (see myguard.audit.chains), and is empty for a single chain directory.
    """

    type: str
    time: float
    data: dict[str, Any]
    seq: int = 0
    segment: str = ""
    offset: int = 0
    end: int = 0
    chain: str = ""

    def get(self, name: str, default: Any = None) -> Any:
        """The field ``name`` (long name, e.g. ``"user"``) or ``default``."""
        return self.data.get(FIELD_KEYS[name], default)

    def __getitem__(self, name: str) -> Any:
        return self.data[FIELD_KEYS[name]]

    def fields(self) -> dict[str, Any]:
        """All fields with long names; unknown short keys (newer writers) are kept as is."""
        return {FIELD_NAMES.get(key, key): value for key, value in self.data.items()}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-friendly view: type, time, seq, chain (if any) and the fields with long names."""
        head: dict[str, Any] = {"type": self.type, "time": self.time, "seq": self.seq}
        if self.chain:
            head["chain"] = self.chain
        return {**head, **self.fields()}

    def encode(self, redact: bool = False) -> bytes:
        """The msgpack body; ``redact`` replaces literals in the statement text with ``?``."""
        data = self.data
        if redact and _STATEMENT_KEY in data:
            data = {**data, _STATEMENT_KEY: redact_literals(data[_STATEMENT_KEY])}
        return msgpack.packb({"t": TYPE_CODES[self.type], "ts": self.time, **data})

    @classmethod
    def decode(cls, body: bytes) -> AuditRecord:
        """Parse a msgpack body; raises AuditFormatError when it is not a record map."""
        try:
            data = msgpack.unpackb(body, strict_map_key=False)
        except (ValueError, msgpack.UnpackException) as exc:
            raise AuditFormatError(f"record body is not msgpack: {exc}") from exc
        if not isinstance(data, dict):
            raise AuditFormatError("record body is not a map")
        code = data.pop("t", None)
        stamp = data.pop("ts", None)
        if code not in TYPE_NAMES or not isinstance(stamp, int | float):
            raise AuditFormatError(f"record has unknown type {code!r} or no time")
        return cls(TYPE_NAMES[code], float(stamp), data)


def _record(type_name: str, data: dict[str, Any], at: float | None) -> AuditRecord:
    return AuditRecord(
        type_name,
        time.time() if at is None else at,
        {key: value for key, value in data.items() if value is not None},
    )


def _names(values: Iterable[str] | None, ordered: bool = False) -> list[str] | None:
    """Sets (groups, tags) are sorted so equal inputs encode to equal bytes."""
    if values is None:
        return None
    return list(values) if ordered else sorted(values)


def login_record(
    *,
    success: bool,
    user: str,
    reason: str | None = None,
    groups: Iterable[str] | None = None,
    source_address: str | None = None,
    client_program: str | None = None,
    client_attributes: Mapping[str, str] | None = None,
    backend: str | None = None,
    session_id: str | None = None,
    auth_plugin: str | None = None,
    tls: bool | str | None = None,
    auth_method: str | None = None,
    backend_account: str | None = None,
    backend_thread: int | None = None,
    at: float | None = None,
) -> AuditRecord:
    """A login attempt; ``reason`` says why it failed. ``tls`` may name the protocol;
    ``auth_method`` is fast, full or cached-during-outage; ``backend_account`` and
    ``backend_thread`` say which service account and backend thread the session got."""
    return _record(
        "login",
        {
            "ok": success,
            "u": user,
            "rsn": reason,
            "g": _names(groups),
            "sa": source_address,
            "cp": client_program,
            "ca": dict(client_attributes) if client_attributes is not None else None,
            "b": backend,
            "sid": session_id,
            "ap": auth_plugin,
            "tls": tls,
            "am": auth_method,
            "bu": backend_account,
            "bt": backend_thread,
        },
        at,
    )


def statement_record(
    *,
    user: str,
    statement: str,
    decision: str,
    groups: Iterable[str] | None = None,
    source_address: str | None = None,
    client_program: str | None = None,
    client_attributes: Mapping[str, str] | None = None,
    environment: str | None = None,
    backend: str | None = None,
    session_id: str | None = None,
    database: str | None = None,
    fingerprint: int | None = None,
    kind: str | None = None,
    tables_read: Iterable[str] | None = None,
    tables_written: Iterable[str] | None = None,
    columns: Iterable[str] | None = None,
    data_tags: Iterable[str] | None = None,
    rule: str | None = None,
    observed_rules: Iterable[str] | None = None,
    masked_columns: Mapping[str, str] | None = None,
    approval_id: str | None = None,
    rows_returned: int | None = None,
    rows_affected: int | None = None,
    error_code: int | None = None,
    started_at: float | None = None,
    duration: float | None = None,
    intent_id: str | None = None,
    at: float | None = None,
) -> AuditRecord:
    """One statement and what myguard decided (``rule`` is the deciding rule).

    ``database`` is the session's current database when the statement arrived (what
    unqualified table names resolved against); ``myguard rules replay`` needs it.

    ``masked_columns`` maps column -> masking strategy; ``intent_id`` points at the
    ``statement_intent`` record written before forwarding (fsync="always").
    """
    return _record(
        "statement",
        {
            **statement_session_fields(
                user=user,
                groups=groups,
                source_address=source_address,
                client_program=client_program,
                client_attributes=client_attributes,
                environment=environment,
                backend=backend,
                session_id=session_id,
            ),
            **statement_decision_fields(
                decision=decision,
                kind=kind,
                tables_read=tables_read,
                tables_written=tables_written,
                columns=columns,
                data_tags=data_tags,
                rule=rule,
                observed_rules=observed_rules,
            ),
            **_statement_outcome_fields(
                statement=statement,
                database=database,
                fingerprint=fingerprint,
                masked_columns=masked_columns,
                approval_id=approval_id,
                rows_returned=rows_returned,
                rows_affected=rows_affected,
                error_code=error_code,
                started_at=started_at,
                duration=duration,
                intent_id=intent_id,
            ),
        },
        at,
    )


# A statement record's fields fall in three groups: fixed for a session, fixed for a
# policy decision, and new for every statement. StatementEncoder packs the first two once.


def statement_session_fields(
    *,
    user: str,
    groups: Iterable[str] | None = None,
    source_address: str | None = None,
    client_program: str | None = None,
    client_attributes: Mapping[str, str] | None = None,
    environment: str | None = None,
    backend: str | None = None,
    session_id: str | None = None,
) -> dict[str, Any]:
    """The statement-record fields that only change when the session's identity does."""
    return {
        "u": user,
        "g": _names(groups),
        "sa": source_address,
        "cp": client_program,
        "ca": dict(client_attributes) if client_attributes is not None else None,
        "env": environment,
        "b": backend,
        "sid": session_id,
    }


def statement_decision_fields(
    *,
    decision: str,
    kind: str | None = None,
    tables_read: Iterable[str] | None = None,
    tables_written: Iterable[str] | None = None,
    columns: Iterable[str] | None = None,
    data_tags: Iterable[str] | None = None,
    rule: str | None = None,
    observed_rules: Iterable[str] | None = None,
) -> dict[str, Any]:
    """The statement-record fields that follow from the policy decision alone."""
    return {
        "d": decision,
        "k": kind,
        "tr": _names(tables_read),
        "tw": _names(tables_written),
        "col": _names(columns, ordered=True),
        "tag": _names(data_tags),
        "r": rule,
        "or": _names(observed_rules, ordered=True),
    }


# The fields new for every statement, in the order recordpack.StatementHead.pack takes them.
_OUTCOME_KEYS = ("t", "ts", "q", "db", "fp", "mc", "aid", "rr", "ra", "ec", "st", "du", "iid")
_STATEMENT_CODE = TYPE_CODES["statement"]


def _statement_outcome_fields(
    *,
    statement: str,
    database: str | None,
    fingerprint: int | None,
    masked_columns: Mapping[str, str] | None,
    approval_id: str | None,
    rows_returned: int | None,
    rows_affected: int | None,
    error_code: int | None,
    started_at: float | None,
    duration: float | None,
    intent_id: str | None,
) -> dict[str, Any]:
    masked = dict(masked_columns) if masked_columns is not None else None
    values = (statement, database, fingerprint, masked, approval_id, rows_returned)
    values += (rows_affected, error_code, started_at, duration, intent_id)
    return dict(zip(_OUTCOME_KEYS[2:], values, strict=True))


@dataclass(frozen=True, slots=True)
class PackedFields:
    """Record fields (None ones left out) as msgpack key/value pairs without a map header."""

    count: int
    data: bytes

    @classmethod
    def of(cls, fields: Mapping[str, Any]) -> PackedFields:
        present = {key: value for key, value in fields.items() if value is not None}
        packed = msgpack.packb(present)
        return cls(len(present), packed[len(_pack.map_header(len(present))) :])

    def __add__(self, other: PackedFields) -> PackedFields:
        return PackedFields(self.count + other.count, self.data + other.data)


class StatementEncoder:
    """Encodes the statement records of one session identity, the hot path of the audit trail.

    The body is the same msgpack map as ``statement_record(...).encode()`` (key order
    aside): the session's fields are packed once, each decision's once (``head``), and
    the fields new for each statement by the compiled ``recordpack``.
    """

    __slots__ = ("_session", "_redact", "_max_text")

    def __init__(
        self, session: PackedFields, *, redact: bool = False, max_text: int = 1 << 62
    ) -> None:
        self._session = session
        self._redact = redact
        self._max_text = max_text

    def head(self, decision: PackedFields) -> Any:
        """What :meth:`encode` takes for the statements with this decision's fields: a
        ``recordpack.StatementHead``, which the proxy core packs records with itself."""
        fields = self._session + decision
        return _pack.StatementHead(
            _OUTCOME_KEYS, _STATEMENT_CODE, fields.data, fields.count, self._max_text
        )

    def encode(
        self,
        head: Any,
        *,
        statement: str,
        database: str | None = None,
        fingerprint: int | None = None,
        masked_columns: Mapping[str, str] | None = None,
        approval_id: str | None = None,
        rows_returned: int | None = None,
        rows_affected: int | None = None,
        error_code: int | None = None,
        started_at: float | None = None,
        duration: float | None = None,
        intent_id: str | None = None,
        at: float | None = None,
    ) -> bytes:
        return head.pack(
            time.time() if at is None else at,
            redact_literals(statement) if self._redact else statement,
            database,
            fingerprint,
            dict(masked_columns) if masked_columns is not None else None,
            approval_id,
            rows_returned,
            rows_affected,
            error_code,
            started_at,
            duration,
            intent_id,
        )


def statement_intent_record(
    *,
    user: str,
    statement: str,
    decision: str,
    session_id: str | None = None,
    backend: str | None = None,
    fingerprint: int | None = None,
    rule: str | None = None,
    intent_id: str | None = None,
    at: float | None = None,
) -> AuditRecord:
    """Written (and fsynced) before a statement is forwarded; gets a fresh ``intent_id``.

    Pass ``intent.get("intent_id")`` to the later :func:`statement_record`.
    """
    if intent_id is None:
        intent_id = f"{_INTENT_PREFIX}-{next(_intent_counter):x}"
    return _record(
        "statement_intent",
        {
            "iid": intent_id,
            "u": user,
            "q": statement,
            "d": decision,
            "sid": session_id,
            "b": backend,
            "fp": fingerprint,
            "r": rule,
        },
        at,
    )


def approval_record(
    *,
    request_id: str,
    event: str,
    actor: str | None = None,
    actor_groups: Iterable[str] | None = None,
    reason: str | None = None,
    user: str | None = None,
    session_id: str | None = None,
    rule: str | None = None,
    status: str | None = None,
    at: float | None = None,
) -> AuditRecord:
    """A step in an approval's life; ``user`` is the requester, ``actor`` who acted.

    ``event`` "approval" is one approver's vote; "approved" follows when the votes reach
    the rule's min_approvals. ``status`` is the request's status after the step and
    ``actor_groups`` the groups the actor was authenticated with (what made them an approver).
    """
    if event not in APPROVAL_EVENTS:
        raise ValueError(f"approval event must be one of {sorted(APPROVAL_EVENTS)}, got {event!r}")
    return _record(
        "approval",
        {
            "rid": request_id,
            "ev": event,
            "ac": actor,
            "acg": _names(actor_groups),
            "rsn": reason,
            "u": user,
            "sid": session_id,
            "r": rule,
            "sts": status,
        },
        at,
    )


def session_end_record(
    *,
    session_id: str,
    user: str | None = None,
    reason: str | None = None,
    statements: int | None = None,
    duration: float | None = None,
    backend: str | None = None,
    at: float | None = None,
) -> AuditRecord:
    """A client session ended (``reason``: quit, error, killed ...)."""
    return _record(
        "session_end",
        {
            "sid": session_id,
            "u": user,
            "rsn": reason,
            "ns": statements,
            "du": duration,
            "b": backend,
        },
        at,
    )


def restart_record(
    *,
    reason: str,
    segment: str | None = None,
    offset: int | None = None,
    truncated_bytes: int | None = None,
    at: float | None = None,
) -> AuditRecord:
    """The writer resumed the chain; ``segment``/``offset``/``truncated_bytes`` describe a repair."""
    return _record(
        "restart",
        {"rsn": reason, "seg": segment, "off": offset, "tb": truncated_bytes, "pid": os.getpid()},
        at,
    )
