"""Replay recorded statements through a proposed rules file: what would it decide otherwise?

Every ``statement`` record of the audit trail carries who sent it and how (user, groups,
environment, backend, source address, client program and attributes, current database),
which is all a decision depends on apart from the SQL. So a new rules file can be judged
against real traffic before it goes live.

A statement is decided again exactly as the session decided it (``session.guard.Guard``:
an identity with a mask rule has its allowed statements masked; text the session could
not read the default way is decided as unparsed). A record whose decision depended on
something the trail does not hold is not compared but counted as not replayable, with
why: a false difference would make the report useless.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from myguard.audit.records import AuditRecord
from myguard.policy.context import RequestContext
from myguard.policy.decision import Decision
from myguard.policy.engine import Policy
from myguard.session.audit_trail import MAX_STATEMENT_CHARS
from myguard.session.guard import Guard

# Why a record is not replayed.
NOT_DECIDED = "not decided by policy (EXECUTE of a statement id the session did not know)"
TRUNCATED = "statement text cut short in the trail"
ESTIMATE = "decided with a row estimate (EXPLAIN) the trail does not record"

# The session counts a statement EXPLAIN cannot estimate as this many rows: the most an
# estimate can be, so deciding with it and with 0 spans every decision an estimate allows.
_MOST_ROWS = 1 << 62
_TRUNCATION = re.compile(r"\.\.\. \[\d+ more characters\]\Z")
# Text the session read as unparsed for its session settings (sql_mode, character set).
_TEXT_READING = "the session's settings did not allow reading it the default way"


@dataclass(frozen=True, slots=True)
class Difference:
    """A recorded statement the proposed rules decide differently."""

    record: AuditRecord
    old_action: str
    old_rule: str | None
    new_action: str
    new_rule: str

    def to_dict(self) -> dict[str, Any]:
        """The statement, who sent it where, and both decisions, for JSON output."""
        return {
            **_describe(self.record),
            "recorded": {"decision": self.old_action, "rule": self.old_rule},
            "replayed": {"decision": self.new_action, "rule": self.new_rule},
        }


@dataclass(frozen=True, slots=True)
class Unreplayable:
    """A recorded statement whose decision cannot be made again faithfully, and why."""

    record: AuditRecord
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """The statement, who sent it where, its recorded decision and the reason."""
        get = self.record.get
        return {
            **_describe(self.record),
            "recorded": {"decision": get("decision"), "rule": get("rule")},
            "reason": self.reason,
        }


def _describe(record: AuditRecord) -> dict[str, Any]:
    get = record.get
    return {
        "time": record.time,
        "chain": record.chain,
        "seq": record.seq,
        "user": get("user"),
        "groups": get("groups", []),
        "environment": get("environment"),
        "backend": get("backend"),
        "database": get("database"),
        "session_id": get("session_id"),
        "statement": get("statement"),
        "error_code": get("error_code"),
    }


@dataclass(slots=True)
class ReplayReport:
    """``transitions`` counts every replayed statement by (recorded, replayed) decision;
    ``by_rule`` counts the differing ones by (deciding new rule, its decision, user);
    ``unreplayable`` lists the statements not compared, ``skipped`` counts them by reason."""

    statements: int = 0
    differences: list[Difference] = field(default_factory=list)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_rule: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    unreplayable: list[Unreplayable] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def recorded_context(record: AuditRecord) -> RequestContext:
    """The request context a statement record was decided in."""
    return RequestContext(
        user=record.get("user", ""),
        groups=frozenset(record.get("groups", ())),
        environment=record.get("environment", ""),
        backend=record.get("backend", ""),
        source_ip=record.get("source_address", ""),
        program=record.get("client_program", ""),
        attributes=record.get("client_attributes", {}),
        current_db=record.get("database"),
    )


def redecide(record: AuditRecord, policy: Policy, database: str | None) -> Decision | str:
    """The decision the session would make for a statement record under ``policy`` in
    ``database``, or why it cannot be known from the record (one of the reasons above)."""
    if record.get("rule") is None:
        return NOT_DECIDED
    sql = record.get("statement", "")
    if len(sql) > MAX_STATEMENT_CHARS and _TRUNCATION.search(sql):
        return TRUNCATED
    guard = Guard(replace(recorded_context(record), current_db=database), 0)
    touches = policy.touches(sql, guard.context.current_db)
    if "unparsed" in record.get("kind", "").split(",") and not any(
        t.statement.unparsed for t in touches
    ):
        # myguard can parse it, so the session read it as unparsed for its settings.
        return guard.decide_unanalysable(policy, sql, _TEXT_READING)
    decision = guard.decide(policy, sql)
    if not decision.wants_estimate:
        return decision
    count = len(decision.statements)
    fewest = guard.decide(policy, sql, estimated_rows=[0] * count)
    most = guard.decide(policy, sql, estimated_rows=[_MOST_ROWS] * count)
    if (fewest.action, fewest.rule) != (most.action, most.rule):
        return ESTIMATE
    return fewest


def replay(
    records: Iterable[AuditRecord], policy: Policy, *, user: str | None = None
) -> ReplayReport:
    """Decide every statement record (of ``user``, if given) with ``policy``; a statement
    differs when the decision (allow, mask, approve, block) does."""
    report = ReplayReport()
    for record in records:
        if record.type != "statement":
            continue
        if user is not None and record.get("user") != user:
            continue
        # A record's database is the one the statement arrived in (before any USE in it).
        decision = redecide(record, policy, record.get("database"))
        if isinstance(decision, str):
            report.unreplayable.append(Unreplayable(record, decision))
            report.skipped[decision] += 1
            continue
        old = record.get("decision", "")
        report.statements += 1
        report.transitions[old, decision.action] += 1
        if decision.action != old:
            report.differences.append(
                Difference(record, old, record.get("rule"), decision.action, decision.rule)
            )
            report.by_rule[decision.rule, decision.action, record.get("user", "")] += 1
    return report
