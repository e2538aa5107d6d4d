"""The outcome of a policy decision and how a block is shown to the client."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from myguard.analysis.model import Statement
from myguard.policy.mask_spec import MaskSpec

if TYPE_CHECKING:
    from myguard.approvals.model import ApprovalPolicy

# myguard's codes live in 4690-4799, a range neither MySQL nor MariaDB uses, and below
# 32768: some clients (PyMySQL) read error codes as signed 16-bit numbers.
ER_MYGUARD_BLOCKED = 4700
SQLSTATE_BLOCKED = "42000"

ALLOW = "allow"
MASK = "mask"
APPROVE = "approve"
BLOCK = "block"
# Most restrictive last: the engine keeps the highest rank among matching rules.
RANK = {ALLOW: 0, MASK: 1, APPROVE: 2, BLOCK: 3}


@dataclass(frozen=True, slots=True)
class ObservedHit:
    """A rule in observe mode that matched: what it would have done, and to which statement."""

    rule: str
    action: str
    statement: int


@dataclass(frozen=True, slots=True)
class Decision:
    """What to do with a COM_QUERY text (all its statements).

    ``masks`` lists (tag or column glob, spec) from every matching mask rule in file order:
    the first entry that applies to a result column wins.
    """

    action: str
    rule: str
    message: str
    statements: tuple[Statement, ...]
    observed: tuple[ObservedHit, ...] = ()
    masks: tuple[tuple[str, MaskSpec], ...] = ()
    approval: ApprovalPolicy | None = None
    error_code: int | None = None
    # Data tags of every column the statements touch (for the audit record).
    tags: frozenset[str] = frozenset()
    # A rows_over rule would apply if the statement touched enough rows: the caller asks
    # the backend for an estimate (EXPLAIN) and decides again with it.
    wants_estimate: bool = False

    @property
    def blocked(self) -> bool:
        return self.action == BLOCK

    def client_message(self) -> str:
        """The error text the client sees for a block (sent with SQLSTATE 42000)."""
        return f"myguard: blocked by rule '{self.rule}': {self.message}"
