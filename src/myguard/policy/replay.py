"""Replay recorded statements through a proposed rules file: what would it decide otherwise?

Every ``statement`` record of the audit trail carries who sent it and how (user, groups,
environment, backend, source address, client program and attributes, current database),
which is all a decision depends on apart from the SQL. So a new rules file can be judged
against real traffic before it goes live.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from myguard.audit.records import AuditRecord
from myguard.policy.context import RequestContext
from myguard.policy.engine import Policy


@dataclass(frozen=True, slots=True)
class Difference:
    """A recorded statement the proposed rules decide differently."""

    record: AuditRecord
    old_action: str
    old_rule: str | None
    new_action: str
    new_rule: str

    def to_dict(self) -> dict[str, Any]:
        get = self.record.get
        return {
            "time": self.record.time,
            "chain": self.record.chain,
            "seq": self.record.seq,
            "user": get("user"),
            "groups": get("groups", []),
            "environment": get("environment"),
            "backend": get("backend"),
            "database": get("database"),
            "session_id": get("session_id"),
            "statement": get("statement"),
            "recorded": {"decision": self.old_action, "rule": self.old_rule},
            "replayed": {"decision": self.new_action, "rule": self.new_rule},
        }


@dataclass(slots=True)
class ReplayReport:
    """``transitions`` counts every replayed statement by (recorded, replayed) decision;
    ``by_rule`` counts the differing ones by (deciding new rule, its decision, user)."""

    statements: int = 0
    differences: list[Difference] = field(default_factory=list)
    transitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    by_rule: Counter[tuple[str, str, str]] = field(default_factory=Counter)


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


def replay(
    records: Iterable[AuditRecord], policy: Policy, *, user: str | None = None
) -> ReplayReport:
    """Decide every statement record (of ``user``, if given) with ``policy``; a statement
    differs when the decision (allow, mask, approve, block) does."""
    report = ReplayReport()
    for record in records:
        if record.type != "statement" or (user is not None and record.get("user") != user):
            continue
        decision = policy.decide(recorded_context(record), record.get("statement", ""))
        old = record.get("decision", "")
        report.statements += 1
        report.transitions[old, decision.action] += 1
        if decision.action != old:
            report.differences.append(
                Difference(record, old, record.get("rule"), decision.action, decision.rule)
            )
            report.by_rule[decision.rule, decision.action, record.get("user", "")] += 1
    return report
