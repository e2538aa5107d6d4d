"""Masking's process-wide state, and its work before a statement runs: lineage, and the
refusal when data would leak.

Before forwarding, every statement of a ``mask`` decision gets its column lineage (with
table columns and view definitions from the backend's information_schema) and is refused
when masked data would leak around the result (predicates, variables, INTO, metadata).
Each result set's column definitions then pick the strategy per column
(``StatementHandler.columns``), and the proxy core streams its rows through the compiled
RowMasker.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict

from myguard.analysis.model import TableName
from myguard.backend.catalog import SchemaCatalog
from myguard.config import BackendConfig
from myguard.logs import event
from myguard.masking.lineage import Lineage, analyze
from myguard.masking.plan import MaskRules, refusal_before
from myguard.policy.decision import Decision
from myguard.policy.engine import Policy
from myguard.protocol.errors import MySQLError

ER_MYGUARD_MASK_REFUSED = 4701
_LINEAGE_CACHE = 2048


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
            lineage = self._lineage(statement.sql, db, catalog)
            message = refusal_before(lineage, rules)
            if message is not None:
                raise refused(message)
            result.append(lineage)
        return result

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
