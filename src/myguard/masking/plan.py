"""The mask plan: which strategy masks which result column, or why a statement is refused.

Per statement, for an identity whose matching rule has ``action = "mask"``:

1. ``rules = MaskRules(rule.masks, tags)`` once per rule and identity;
2. ``lineage = analyze(sql, db=..., schema=..., views=...)`` (masking.lineage);
3. ``refusal_before(lineage, rules)``: a message when the statement must be refused
   before it runs (its findings touch masked or unknown columns);
4. per result set, once its column definitions arrived:
   ``plan = plan_result(lineage, definitions, rules)``; refuse when ``plan.refusal``;
   else send ``plan.definitions()`` instead of the originals, and feed the rows through
   ``plan.masker(binary, key)`` (None: nothing to mask).

A result column's sources are its lineage plus its origin from the column definition
(schema.org_table.org_name, which the server fills for direct column references). A
column glob naming a source column beats a tag it carries; when several specs of the
same kind apply, or a result column derives from several masked sources, the strongest
wins: null > redact > hash > partial = email > value (ties: the first in the rule). The
strategies that show part of a value (partial, email) apply only to a column's value as
stored (``Lineage.plain``); on any other expression (REVERSE(email), LEFT(ssn, 5),
GROUP_CONCAT(email)) they become redact. A column whose lineage is unknown
is refused (``unknown="refuse"``, the default) or redacted (``unknown="redact"``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from myguard._fast import load
from myguard.analysis.model import TableName
from myguard.masking.lineage import Lineage, SourceColumn, Sources
from myguard.masking.strategies import binary_cell, masked_definition, text_cell
from myguard.policy.globs import ColumnGlob
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol.column_definition import ColumnDefinition

if TYPE_CHECKING:
    from myguard._fast.rowmask_py import RowMasker

TagLookup = Callable[[str, str, str], set[str] | frozenset[str]]

STRENGTH = {"null": 5, "redact": 4, "hash": 3, "partial": 2, "email": 2, "value": 1}
# Strategies that show part of the value: only for a column's value as stored.
SHAPE_KEEPING = frozenset({"partial", "email"})
UNKNOWN_POLICIES = ("refuse", "redact")
_REDACT = MaskSpec("redact")


class MaskRules:
    """A mask rule's specs (tag or db.table.column glob → MaskSpec) with the column tags."""

    def __init__(
        self, masks: Sequence[tuple[str, MaskSpec]], tags: TagLookup, unknown: str = "refuse"
    ) -> None:
        if unknown not in UNKNOWN_POLICIES:
            raise ValueError(f"unknown lineage policy must be one of {UNKNOWN_POLICIES}")
        self.unknown = unknown
        self._tags = tags
        self._specs = [
            (ColumnGlob.parse(target) if "." in target else target, spec) for target, spec in masks
        ]
        self._cache: dict[SourceColumn, MaskSpec | None] = {}

    def spec_for(self, source: SourceColumn) -> MaskSpec | None:
        """The spec for one source column, or None.

        A column glob that names the column is more specific than a tag it carries, so
        column specs win over tag specs (``"shop.customers.email" = "email"`` beats
        ``pii = "redact"``); among several of the same kind the strongest wins.
        """
        if source not in self._cache:
            tags = self._tags(source.db, source.table, source.column)
            table = TableName(source.db, source.table)
            by_column: MaskSpec | None = None
            by_tag: MaskSpec | None = None
            for target, spec in self._specs:
                if isinstance(target, str):
                    if target in tags:
                        by_tag = _stronger(by_tag, spec)
                elif target.matches(table, source.column):
                    by_column = _stronger(by_column, spec)
            self._cache[source] = by_column or by_tag
        return self._cache[source]

    def spec_for_all(self, sources: frozenset[SourceColumn]) -> MaskSpec | None:
        best: MaskSpec | None = None
        for source in sorted(sources):
            spec = self.spec_for(source)
            if spec is not None and (
                best is None or STRENGTH[spec.strategy] > STRENGTH[best.strategy]
            ):
                best = spec
        return best


def _stronger(best: MaskSpec | None, spec: MaskSpec) -> MaskSpec:
    return spec if best is None or STRENGTH[spec.strategy] > STRENGTH[best.strategy] else best


def refusal_before(lineage: Lineage, rules: MaskRules) -> str | None:
    """Why the statement must not run at all, or None: a finding that reads masked or
    unknown columns (a predicate probing them, a copy, a variable, INTO, metadata, an
    aggregate, an error echo, a stored routine). The message names the masked columns."""
    for finding in lineage.findings:
        if finding.sources is None:
            return (
                f"myguard: statement refused: masked data would leak through {finding.kind} "
                f"({finding.detail})"
            )
        masked = sorted(s for s in finding.sources if rules.spec_for(s) is not None)
        if masked:
            names = ", ".join(".".join(s) for s in masked)
            return (
                f"myguard: statement refused: masked data would leak through {finding.kind} "
                f"({finding.detail}) of masked column {names}"
            )
    return None


def reads_masked(lineage: Lineage, rules: MaskRules) -> bool:
    """Does the statement read a column masked for this identity, or one whose origin is
    unknown? Then its error and warning texts may quote masked values."""
    if lineage.data_free:
        return False
    if lineage.columns is None:
        return True
    groups = (*lineage.columns, *(f.sources for f in lineage.findings))
    return any(s is None or any(rules.spec_for(c) is not None for c in s) for s in groups)


@dataclass(frozen=True, slots=True)
class ColumnPlan:
    """How one result column is masked; ``spec`` None: it passes untouched."""

    name: str
    spec: MaskSpec | None
    sources: Sources


@dataclass(frozen=True, slots=True)
class MaskPlan:
    columns: tuple[ColumnPlan, ...]
    originals: tuple[ColumnDefinition, ...]
    refusal: str | None = None

    def masked(self) -> list[tuple[str, str]]:
        """(result column name, strategy) of every masked column, for the audit record."""
        return [(c.name, str(c.spec)) for c in self.columns if c.spec is not None]

    def definitions(self) -> list[ColumnDefinition]:
        """The column definitions to send instead of the backend's."""
        return [
            col if plan.spec is None else masked_definition(plan.spec, col)
            for plan, col in zip(self.columns, self.originals, strict=True)
        ]

    def masker(self, binary: bool, key: bytes) -> RowMasker | None:
        """A RowMasker for this result set's rows (binary: COM_STMT_EXECUTE rows), or None
        when no column is masked. ``key`` keys the hash strategy."""
        if all(c.spec is None for c in self.columns):
            return None
        make = binary_cell if binary else text_cell
        cells = [
            None if plan.spec is None else make(plan.spec, col, key)
            for plan, col in zip(self.columns, self.originals, strict=True)
        ]
        return load("rowmask").RowMasker([c.type for c in self.originals], cells)


def _origin(col: ColumnDefinition, codec: str) -> frozenset[SourceColumn]:
    if not (col.schema and col.org_table and col.org_name):
        return frozenset()
    schema, table, name = (
        n.decode(codec, "replace") for n in (col.schema, col.org_table, col.org_name)
    )
    return frozenset({SourceColumn(schema, table, name.lower())})


def plan_result(
    lineage: Lineage,
    definitions: Sequence[ColumnDefinition],
    rules: MaskRules,
    codec: str = "utf-8",
) -> MaskPlan:
    """The plan of one result set from the statement's lineage and its column definitions,
    whose names are in the session's character set (``codec``). A name read wrongly only
    adds a source no rule names: the lineage still holds the statement's own."""
    count = len(definitions)
    known = lineage.columns
    if known is not None and len(known) != count:
        known = None  # the statement's shape and the result's disagree: trust neither
    if known is None:
        empty: Sources = frozenset()
        known = (empty if lineage.data_free else None,) * count
    plain = lineage.plain if known is lineage.columns and len(lineage.plain) == count else ()
    plain = plain or (False,) * count
    columns = []
    refusal = None
    for i, (sources, col) in enumerate(zip(known, definitions, strict=True)):
        name = col.name.decode(codec, "replace")
        if sources is None:
            if rules.unknown == "refuse" and refusal is None:
                refusal = (
                    f"myguard: result column {i + 1} ({name}) refused: cannot tell which "
                    "columns it comes from, and masking applies to this identity"
                )
            columns.append(ColumnPlan(name, _REDACT, None))
            continue
        sources = sources | _origin(col, codec)
        spec = rules.spec_for_all(sources)
        if spec is not None and spec.strategy in SHAPE_KEEPING and not plain[i]:
            spec = _REDACT  # REVERSE(email), LEFT(ssn, 5): the shown part could be anything
        columns.append(ColumnPlan(name, spec, sources))
    return MaskPlan(tuple(columns), tuple(definitions), refusal)
