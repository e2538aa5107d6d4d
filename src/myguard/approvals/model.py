"""What an approval rule asks for (ApprovalPolicy) and one held statement (ApprovalRequest)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, cast

from myguard.config_error import ConfigError

Scope = Literal["once", "count", "window"]
SCOPES: tuple[Scope, ...] = ("once", "count", "window")

_POLICY_KEYS = frozenset(
    {"approver_groups", "min_approvals", "hold_seconds", "scope", "scope_count", "window_seconds"}
)


class RequestStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    EXECUTED = "executed"


def _int_at_least(table: dict, name: str, minimum: int, file: str, key: str) -> int:
    value = table[name]
    # bool is an int subclass; "true" is never a sensible count.
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(file, f"{key}.{name}", f"an integer >= {minimum}", value)
    return value


def _positive_seconds(table: dict, name: str, file: str, key: str) -> float:
    value = table[name]
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(file, f"{key}.{name}", "a positive number of seconds", value)
    return float(value)


@dataclass(frozen=True, slots=True)
class ApprovalPolicy:
    """Who must approve, how many of them, how long the client is held, what the approval covers.

    scope "once": this exact statement text and parameters, one execution;
    "count": ``scope_count`` executions of the exact statement;
    "window": any statement with the same fingerprint for ``window_seconds`` after approval.
    """

    approver_groups: frozenset[str]
    min_approvals: int = 1
    hold_seconds: float = 60
    scope: Scope = "once"
    scope_count: int | None = None
    window_seconds: float | None = None

    def __post_init__(self) -> None:
        if not self.approver_groups:
            raise ValueError("approver_groups must not be empty")
        if self.min_approvals < 1 or self.hold_seconds <= 0:
            raise ValueError("min_approvals must be >= 1 and hold_seconds > 0")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}")
        if (self.scope == "count") != (self.scope_count is not None):
            raise ValueError("scope_count is required for, and only for, scope 'count'")
        if (self.scope == "window") != (self.window_seconds is not None):
            raise ValueError("window_seconds is required for, and only for, scope 'window'")

    @property
    def granted_uses(self) -> int | None:
        """Executions one approval allows; None = unlimited (within the window)."""
        if self.scope == "once":
            return 1
        if self.scope == "count":
            return self.scope_count
        return None

    @classmethod
    def from_table(cls, table: dict, file: str, key: str) -> ApprovalPolicy:
        """Build from a config table; errors name the full dotted key under ``key``."""
        if not isinstance(table, dict):
            raise ConfigError(file, key, "a table", table)
        unknown = sorted(set(table) - _POLICY_KEYS)
        if unknown:
            raise ConfigError(
                file, f"{key}.{unknown[0]}", f"one of {', '.join(sorted(_POLICY_KEYS))}"
            )
        if "approver_groups" not in table:
            raise ConfigError(file, f"{key}.approver_groups", "a non-empty list of group names")
        groups = table["approver_groups"]
        if (
            not isinstance(groups, list)
            or not groups
            or not all(isinstance(g, str) and g for g in groups)
        ):
            raise ConfigError(
                file, f"{key}.approver_groups", "a non-empty list of group names", groups
            )
        kwargs: dict[str, Any] = {"approver_groups": frozenset(groups)}
        if "min_approvals" in table:
            kwargs["min_approvals"] = _int_at_least(table, "min_approvals", 1, file, key)
        if "hold_seconds" in table:
            kwargs["hold_seconds"] = _positive_seconds(table, "hold_seconds", file, key)
        scope = table.get("scope", "once")
        if scope not in SCOPES:
            raise ConfigError(file, f"{key}.scope", "one of once, count, window", scope)
        kwargs["scope"] = scope
        for name, wanted in (("scope_count", "count"), ("window_seconds", "window")):
            if scope == wanted and name not in table:
                raise ConfigError(file, f"{key}.{name}", f"a value when scope is {wanted!r}")
            if scope != wanted and name in table:
                raise ConfigError(
                    file, f"{key}.{name}", f"no value unless scope is {wanted!r}", table[name]
                )
        if scope == "count":
            kwargs["scope_count"] = _int_at_least(table, "scope_count", 1, file, key)
        if scope == "window":
            kwargs["window_seconds"] = _positive_seconds(table, "window_seconds", file, key)
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "approver_groups": sorted(self.approver_groups),
            "min_approvals": self.min_approvals,
            "hold_seconds": self.hold_seconds,
            "scope": self.scope,
            "scope_count": self.scope_count,
            "window_seconds": self.window_seconds,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ApprovalPolicy:
        return cls(
            approver_groups=frozenset(data["approver_groups"]),
            min_approvals=int(data["min_approvals"]),
            hold_seconds=float(data["hold_seconds"]),
            scope=cast(Scope, data["scope"]),
            scope_count=data["scope_count"],
            window_seconds=data["window_seconds"],
        )


@dataclass(frozen=True, slots=True)
class Approval:
    approver: str
    at: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    """Who closed a request without approving it (denial or cancellation) and why."""

    actor: str
    at: float
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Everything about the held statement that the proxy knows when it holds it."""

    requester: str
    requester_groups: frozenset[str]
    source_address: str
    client_program: str | None
    environment: str
    backend: str
    session_id: int
    statement: str
    # Bound parameters of a prepared statement, already rendered printable.
    params: tuple[str, ...]
    fingerprint: str
    # Plain data only ({"kind": ..., "tables": [...], "columns": {...}}), it is stored as JSON.
    analysis: dict[str, Any]
    rule: str
    policy: ApprovalPolicy


@dataclass(frozen=True, slots=True)
class ApprovalRequest:
    id: int
    created_at: float
    context: RequestContext
    status: RequestStatus
    # Until approval: the deadline for deciding. After: the end of validity of the approval.
    expires_at: float
    approvals: tuple[Approval, ...] = ()
    denial: Decision | None = None
    cancellation: Decision | None = None
    # Executions still allowed once approved; None = unlimited until expires_at (window scope).
    uses_left: int | None = None

    @property
    def policy(self) -> ApprovalPolicy:
        return self.context.policy

    @property
    def requester(self) -> str:
        return self.context.requester

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready view for the API, the CLI and webhooks."""
        ctx = self.context
        return {
            "id": self.id,
            "created_at": self.created_at,
            "status": str(self.status),
            "expires_at": self.expires_at,
            "requester": ctx.requester,
            "requester_groups": sorted(ctx.requester_groups),
            "source_address": ctx.source_address,
            "client_program": ctx.client_program,
            "environment": ctx.environment,
            "backend": ctx.backend,
            "session_id": ctx.session_id,
            "statement": ctx.statement,
            "params": list(ctx.params),
            "fingerprint": ctx.fingerprint,
            "analysis": ctx.analysis,
            "rule": ctx.rule,
            "policy": ctx.policy.to_dict(),
            "approvals": [
                {"approver": a.approver, "at": a.at, "reason": a.reason} for a in self.approvals
            ],
            "denial": _decision_dict(self.denial),
            "cancellation": _decision_dict(self.cancellation),
            "uses_left": self.uses_left,
        }


def _decision_dict(decision: Decision | None) -> dict[str, Any] | None:
    if decision is None:
        return None
    return {"actor": decision.actor, "at": decision.at, "reason": decision.reason}
