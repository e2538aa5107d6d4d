"""Masking's process-wide state, and its work before a statement runs: lineage, and the
refusal when data would leak.

Before forwarding, every statement of a ``mask`` decision gets its column lineage (with
table columns and view definitions from the backend's information_schema) and is refused
when masked data would leak around the result (predicates, variables, INTO, metadata).
Code that runs later outside myguard is read too: a write is refused when a trigger it
fires (or a trigger those fire) reads a masked column or cannot be analysed, and so is
creating a trigger, event or stored routine whose body does (masking.routines).
Each result set's column definitions then pick the strategy per column
(``StatementHandler.columns``), and the proxy core streams its rows through the compiled
RowMasker.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict

from myguard.analysis import analyze as analyze_tables
from myguard.analysis.kinds import CODE_OBJECTS
from myguard.analysis.model import Statement, TableName
from myguard.backend.catalog import SchemaCatalog, Table
from myguard.config import BackendConfig
from myguard.logs import event
from myguard.masking.lineage import Finding, Lineage, analyze
from myguard.masking.plan import MaskRules, refusal_before
from myguard.masking.resolve import Sources
from myguard.masking.routines import body_reads, parse_created, split_body
from myguard.policy.decision import Decision
from myguard.policy.engine import Policy
from myguard.protocol.errors import MySQLError

ER_MYGUARD_MASK_REFUSED = 4701
_LINEAGE_CACHE = 2048
# The trigger events a write fires: INSERT ... ON DUPLICATE KEY UPDATE updates, REPLACE
# and LOAD DATA ... REPLACE delete the rows they replace.
_FIRES = {
    "insert": frozenset({"INSERT", "UPDATE"}),
    "replace": frozenset({"INSERT", "DELETE"}),
    "load_data": frozenset({"INSERT", "DELETE"}),
    "update": frozenset({"UPDATE"}),
    "delete": frozenset({"DELETE"}),
}
_UNREAD = ", whose body myguard cannot analyse"
# A body's column sources, and the (kind, table) of each table its statements write.
Body = tuple[Sources, tuple[tuple[str, Table], ...]]


def refused(message: str) -> MySQLError:
    return MySQLError(ER_MYGUARD_MASK_REFUSED, "42000", message)


class Masking:
    """Process-wide masking state: the hash key, schema catalogs, caches."""

    def __init__(self, key: bytes | None, unknown: str) -> None:
        if key is None:
            event(
                logging.WARNING,
                "masking_key_random",
                detail="no masking hash key configured: hashed values differ after a restart",
            )
        self.key = key or os.urandom(32)
        self.unknown = unknown
        self.catalogs: dict[str, SchemaCatalog] = {}
        self._rules: dict[tuple[int, tuple], MaskRules] = {}
        self._tags: dict[tuple[int, str, str, str], frozenset[str]] = {}
        self._lineages: OrderedDict[tuple[str, str | None], Lineage] = OrderedDict()
        self._bodies: dict[tuple, Body] = {}

    def rules(self, policy: Policy, masks: tuple) -> MaskRules:
        key = (id(policy), masks)
        rules = self._rules.get(key)
        if rules is None:
            if len(self._rules) > 256:
                self._rules.clear()

            def tags(db: str, table: str, column: str) -> frozenset[str]:
                k = (id(policy), db, table, column)
                found = self._tags.get(k)
                if found is None:
                    name = TableName(db, table)
                    found = frozenset(
                        tag
                        for tag, globs in policy.tags.items()
                        if any(g.matches(name, column) for g in globs)
                    )
                    self._tags[k] = found
                return found

            rules = self._rules[key] = MaskRules(masks, tags, self.unknown)
        return rules

    async def lineages(
        self, backend: BackendConfig, db: str | None, decision: Decision, rules: MaskRules
    ) -> list[Lineage]:
        """Lineage of each statement, its unqualified names read in database ``db``; raises
        the refusal when masked data would leak."""
        catalog = self.catalogs.get(backend.name)
        if catalog is None:
            catalog = self.catalogs[backend.name] = SchemaCatalog(backend)
        tables = {
            (t.db or db or "", t.name)
            for s in decision.statements
            for t in (*s.reads, *s.writes, *s.star_tables)
            if t.name != "*"
        }
        if tables:
            await catalog.prefetch(tables)
        result = []
        for statement in decision.statements:
            if statement.object_type in CODE_OBJECTS and (
                statement.kind == "create"
                or (statement.kind, statement.object_type) == ("alter", "event")
            ):
                lineage = await self._created(statement, db, catalog)
            else:
                lineage = self._lineage(statement.sql, db, catalog)
            message = refusal_before(lineage, rules)
            if message is None and statement.kind in _FIRES:
                message = await self._fired(statement, db, catalog, rules)
            if message is not None:
                raise refused(message)
            result.append(lineage)
        return result

    async def _created(
        self, statement: Statement, db: str | None, catalog: SchemaCatalog
    ) -> Lineage:
        """A CREATE TRIGGER / EVENT / FUNCTION / PROCEDURE or ALTER EVENT: what its body reads,
        as one finding (the statement itself returns nothing)."""
        kind = statement.object_type or ""
        created = parse_created(statement.sql, kind)
        if created is None:
            return Lineage((), (Finding("stored code", f"{kind}{_UNREAD}", None),))
        if created.body is None:
            return Lineage(())
        qualified = created.name.split(".")
        table_db = created.table[0] if created.table else None
        home = qualified[0] if len(qualified) > 1 else table_db or db
        row = (table_db or home or "", created.table[1]) if created.table else None
        sources, _ = await self._body(catalog, created.body, home, row, created.params)
        detail = f"{kind} {created.name}" + (_UNREAD if sources is None else "")
        return Lineage((), (Finding("stored code", detail, sources),))

    async def _fired(
        self, statement: Statement, db: str | None, catalog: SchemaCatalog, rules: MaskRules
    ) -> str | None:
        """Why a write must not run: a trigger it fires, or one those fire in turn, reads a
        masked column or cannot be analysed. None when none does."""
        pending = [(t, _FIRES[statement.kind]) for t in _targets(statement, db)]
        seen: set[tuple[str, str]] = set()
        while pending:
            await catalog.prefetch_triggers({table for table, _ in pending})
            fired = []
            for table, events in pending:
                found = catalog.triggers(*table)
                if found is None:  # hidden from the service account: fail closed
                    detail = f"on {'.'.join(table)}, which the service account cannot see"
                    return refusal_before(Lineage((), (Finding("trigger", detail, None),)), rules)
                for trigger in found:
                    if trigger.event not in events or (trigger.db, trigger.name) in seen:
                        continue
                    seen.add((trigger.db, trigger.name))
                    sources, writes = await self._body(
                        catalog, trigger.body, trigger.db, trigger.table, ()
                    )
                    detail = f"{trigger.db}.{trigger.name} on {'.'.join(trigger.table)}"
                    finding = Finding(
                        "trigger", detail + (_UNREAD if sources is None else ""), sources
                    )
                    message = refusal_before(Lineage((), (finding,)), rules)
                    if message is not None:
                        return message
                    fired += [(t, _FIRES[kind]) for kind, t in writes if kind in _FIRES]
            pending = fired
        return None

    async def _body(
        self,
        catalog: SchemaCatalog,
        body: str,
        db: str | None,
        row: Table | None,
        params: tuple[str, ...],
    ) -> Body:
        """What a stored body reads, and what it writes (cached until the schema changes)."""
        key = (catalog.config.name, body, db, row, params)
        found = self._bodies.get(key)
        if found is not None:
            return found
        statements = split_body(body)
        if statements is None:
            found = (None, ())
        else:
            analysed = [s for tree in statements for s in analyze_tables(tree.sql("mysql"), db)]
            tables = {
                (t.db or db or "", t.name)
                for s in analysed
                for t in (*s.reads, *s.writes, *s.star_tables)
                if t.name != "*"
            }
            await catalog.prefetch(tables)
            sources = body_reads(
                statements,
                db=db,
                schema=catalog.columns,
                views=catalog.view,
                row=row,
                params=params,
            )
            writes = tuple((s.kind, t) for s in analysed for t in _targets(s, db))
            found = (sources, writes)
        if len(self._bodies) > _LINEAGE_CACHE:
            self._bodies.clear()
        self._bodies[key] = found
        return found

    def _lineage(self, sql: str, db: str | None, catalog: SchemaCatalog) -> Lineage:
        key = (sql, db)
        lineage = self._lineages.get(key)
        if lineage is None:
            lineage = analyze(sql, db=db, schema=catalog.columns, views=catalog.view)
            self._lineages[key] = lineage
            if len(self._lineages) > _LINEAGE_CACHE:
                self._lineages.popitem(last=False)
        return lineage

    def invalidate_schema(self, backend: str) -> None:
        """After DDL: columns and views may have changed."""
        catalog = self.catalogs.get(backend)
        if catalog is not None:
            catalog.invalidate()
        self._lineages.clear()
        self._bodies.clear()


def _targets(statement: Statement, db: str | None) -> set[Table]:
    """The tables whose triggers a write may fire. A multi-table UPDATE or DELETE names its
    targets by alias, so every table it reads counts."""
    tables = statement.writes
    if statement.kind in ("update", "delete"):
        tables = tables | statement.reads
    return {(t.db or db or "", t.name) for t in tables if t.name != "*"}
