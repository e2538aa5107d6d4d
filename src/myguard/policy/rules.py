"""A compiled rule: its ``when`` conditions and what it does when they hold."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING

from myguard.policy.context import RequestContext
from myguard.policy.globs import ColumnGlob, TableGlob
from myguard.policy.mask_spec import MaskSpec
from myguard.policy.touch import Touch

if TYPE_CHECKING:
    from myguard.approvals.model import ApprovalPolicy

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_RESTRICTIVE = frozenset({"block", "approve"})


@lru_cache(maxsize=4096)
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    # An IPv4 client seen on an IPv6 socket still matches IPv4 CIDRs.
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


@dataclass(frozen=True, slots=True)
class Identity:
    """The ``when`` keys about the client. None means the key is absent (matches anyone)."""

    users: frozenset[str] | None = None
    groups: frozenset[str] | None = None
    not_groups: frozenset[str] | None = None
    environments: frozenset[str] | None = None
    backends: frozenset[str] | None = None
    sources: tuple[Network, ...] | None = None
    programs: tuple[re.Pattern[str], ...] | None = None
    attributes: tuple[tuple[str, re.Pattern[str]], ...] | None = None

    def matches(self, ctx: RequestContext) -> bool:
        if self.users is not None and ctx.user not in self.users:
            return False
        if self.groups is not None and self.groups.isdisjoint(ctx.groups):
            return False
        if self.not_groups is not None and not self.not_groups.isdisjoint(ctx.groups):
            return False
        if self.environments is not None and ctx.environment not in self.environments:
            return False
        if self.backends is not None and ctx.backend not in self.backends:
            return False
        if self.sources is not None and not _in_networks(ctx.source_ip, self.sources):
            return False
        if self.programs is not None and not any(p.match(ctx.program) for p in self.programs):
            return False
        return self.attributes is None or _attributes_match(ctx.attributes, self.attributes)


def _in_networks(source_ip: str, networks: tuple[Network, ...]) -> bool:
    address = _address(source_ip)
    return address is not None and any(address in network for network in networks)


def _attributes_match(
    attributes: Mapping[str, str], wanted: tuple[tuple[str, re.Pattern[str]], ...]
) -> bool:
    for name, pattern in wanted:
        value = attributes.get(name)
        if value is None or pattern.match(value) is None:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Target:
    """The ``when`` keys about the statement. None means the key is absent."""

    kinds: frozenset[str] | None = None
    tables: tuple[TableGlob, ...] | None = None
    columns: tuple[ColumnGlob, ...] | None = None
    tags: frozenset[str] | None = None
    no_where: bool = False
    opaque: bool = False
    unparsed: bool = False
    # Impact: the rows the backend estimates an UPDATE/DELETE (or any statement) touches.
    rows_over: int | None = None

    @property
    def empty(self) -> bool:
        return self == _NO_TARGET

    def matches(self, touch: Touch, estimated_rows: int | None = None) -> bool:
        """``estimated_rows`` None: not estimated (yet); a rows_over rule then does not match."""
        if self.rows_over is not None and (
            estimated_rows is None or estimated_rows <= self.rows_over
        ):
            return False
        statement = touch.statement
        if self.unparsed and not statement.unparsed:
            return False
        if self.opaque and not statement.opaque:
            return False
        if self.no_where and not statement.no_where:
            return False
        if self.kinds is not None and self.kinds.isdisjoint(statement.names):
            return False
        if self.tables is not None and not any(
            glob.matches(table) for glob in self.tables for table in statement.tables
        ):
            return False
        if self.columns is not None and not any(map(touch.matches, self.columns)):
            return False
        return self.tags is None or not self.tags.isdisjoint(touch.tags)


_NO_TARGET = Target()


@dataclass(frozen=True, slots=True)
class Rule:
    name: str
    description: str
    identity: Identity
    target: Target
    action: str
    message: str
    observe: bool
    masks: tuple[tuple[str, MaskSpec], ...] = ()
    approval: ApprovalPolicy | None = None

    def matches(self, ctx: RequestContext, touch: Touch, estimated_rows: int | None = None) -> bool:
        """Whether the rule applies to one statement of this request."""
        if touch.statement.unparsed and not self.target.unparsed:
            # Nothing is known about unparsed SQL: only a rule that asks for it may let it
            # through; rules about the client alone may still refuse it.
            if not (self.target.empty and self.action in _RESTRICTIVE):
                return False
        return self.identity.matches(ctx) and self.target.matches(touch, estimated_rows)

    def wants_estimate(self, ctx: RequestContext, touch: Touch) -> bool:
        """A rows_over rule that applies to this statement whatever its row count."""
        if self.target.rows_over is None or self.observe:
            return False
        return self.identity.matches(ctx) and replace(self.target, rows_over=None).matches(touch)
