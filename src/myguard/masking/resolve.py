"""Column lineage over sqlglot scopes of a qualified query.

A lineage is a frozenset of SourceColumn, or None when it cannot be established. Every
column reference inside an expression counts (conditions of CASE, arguments of any
function, window specs), except the arguments of COUNT when they are plain columns: a
count carries no value of what it counts. A subquery inside an expression counts with
every column it references anywhere, predicates included, because EXISTS/IN/scalar
subqueries turn their filters into values.
"""

from __future__ import annotations

from typing import NamedTuple

from sqlglot import exp
from sqlglot.optimizer.scope import Scope

from myguard.analysis.mariadb_syntax import SEQUENCE_FUNCTIONS
from myguard.masking.functions import name_of

Sources = frozenset["SourceColumn"] | None
MAX_FIXPOINT_ROUNDS = 32
# Wrappers that keep a value's characters where they were: a column under them is still
# "plain" for the shape-keeping strategies (email, partial).
_SHAPE_KEEPING = (exp.Alias, exp.Paren, exp.Cast, exp.Lower, exp.Upper)


class SourceColumn(NamedTuple):
    db: str
    table: str
    column: str


def union(parts: list[Sources]) -> Sources:
    out: set[SourceColumn] = set()
    for part in parts:
        if part is None:
            return None
        out |= part
    return frozenset(out)


def _plain_count(node: exp.Count) -> bool:
    arg = node.this
    items = arg.expressions if isinstance(arg, exp.Distinct) else [arg]
    return all(isinstance(a, exp.Column | exp.Star) for a in items)


def _cte_name(query: exp.Expression) -> str:
    """The CTE that ``query`` (or the set operation it is a branch of) defines, or ""."""
    node = query
    while isinstance(node.parent, exp.SetOperation):
        node = node.parent
    return node.parent.alias_or_name.lower() if isinstance(node.parent, exp.CTE) else ""


class Resolver:
    def __init__(self, root: Scope, recursive_ctes: set[str]) -> None:
        self.scope_of = {id(s.expression): s for s in root.traverse()}
        self.recursive_ctes = recursive_ctes
        self._memo: dict[int, list[Sources] | None] = {}
        self._approx: dict[str, tuple[list[str], list[Sources]]] = {}

    # outputs -------------------------------------------------------------------

    def outputs(self, scope: Scope) -> list[Sources] | None:
        """The lineage of each output column of ``scope``; None when its shape is unknown."""
        key = id(scope)
        if key in self._memo:
            return self._memo[key]
        cte = scope.expression.parent
        name = cte.alias_or_name.lower() if isinstance(cte, exp.CTE) else ""
        if name in self.recursive_ctes and name not in self._approx:
            result = self._fixpoint(scope, name)
        else:
            result = self._outputs(scope)
        if not self._approx:
            self._memo[key] = result
        return result

    def _fixpoint(self, scope: Scope, name: str) -> list[Sources] | None:
        names = list(scope.expression.named_selects)
        current: list[Sources] = [frozenset()] * len(names)
        for _ in range(MAX_FIXPOINT_ROUNDS):
            self._approx[name] = (names, current)
            try:
                result = self._outputs(scope)
            finally:
                del self._approx[name]
            if result is None or result == current:
                return result
            current = result
        return None

    def _outputs(self, scope: Scope) -> list[Sources] | None:
        if isinstance(scope.expression, exp.SetOperation):
            branches = [self.outputs(s) for s in scope.set_operation_scopes]
            if any(b is None for b in branches) or len({len(b) for b in branches}) != 1:
                return None
            return [union(list(parts)) for parts in zip(*branches, strict=True)]  # type: ignore[arg-type]
        select = scope.expression
        if not isinstance(select, exp.Select):
            return None
        if any(isinstance(p, exp.Star) or p.is_star for p in select.selects):
            return None  # a star qualify could not expand: the shape is unknown
        return [self.expr(scope, p) for p in select.selects]

    def everything(self, scope: Scope) -> Sources:
        """Every column referenced anywhere in ``scope`` and the scopes inside it."""
        parts: list[Sources] = []
        for inner in scope.traverse():
            parts.extend(self.column(inner, c) for c in inner.columns)
            if isinstance(inner.expression, exp.Select) and any(
                p.is_star for p in inner.expression.selects
            ):
                return None
        return union(parts)

    def plain(self, scope: Scope, _seen: frozenset[int] = frozenset()) -> list[bool]:
        """For each output column of ``scope``: True when it is a source column's value as
        stored (a column reference, perhaps cast or case-changed, through derived tables,
        CTEs, views and every branch of a set operation). Only such columns may keep part
        of the value (email, partial): any other expression could move the hidden part of
        a value to where those strategies show it (REVERSE(email), LEFT(ssn, 5),
        GROUP_CONCAT(email))."""
        if id(scope) in _seen:
            return []
        seen = _seen | {id(scope)}
        node = scope.expression
        if isinstance(node, exp.SetOperation):
            branches = [self.plain(s, seen) for s in scope.set_operation_scopes]
            if not branches or len({len(b) for b in branches}) != 1:
                return []
            return [all(flags) for flags in zip(*branches, strict=True)]
        if not isinstance(node, exp.Select):
            return []
        return [self._plain_expr(scope, p, seen) for p in node.selects]

    def _plain_expr(self, scope: Scope, node: exp.Expression, seen: frozenset[int]) -> bool:
        while isinstance(node, _SHAPE_KEEPING):
            node = node.this
        if not isinstance(node, exp.Column) or not node.table:
            return False
        current: Scope | None = scope
        while current is not None:
            source = current.sources.get(node.table)
            if isinstance(source, exp.Table):
                return True
            if isinstance(source, Scope):
                names = list(source.expression.named_selects)
                flags = self.plain(source, seen)
                if node.name not in names or len(flags) != len(names):
                    return False
                return flags[names.index(node.name)]
            current = current.parent
        return False

    # expressions ---------------------------------------------------------------

    def expr(self, scope: Scope, node: exp.Expression, aliases: bool = False) -> Sources:
        """The lineage of one expression evaluated in ``scope``.

        ``aliases``: bare names may refer to output columns (ORDER BY, GROUP BY, HAVING).
        """
        parts: list[Sources] = []
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, exp.Subquery):
                stack.append(n.this)  # scopes belong to the query inside the parentheses
            elif isinstance(n, exp.Query):
                inner = self.scope_of.get(id(n))
                parts.append(None if inner is None else self.everything(inner))
            elif isinstance(n, exp.Column):
                parts.append(self._column_or_alias(scope, n) if aliases else self.column(scope, n))
            elif isinstance(n, exp.Count) and _plain_count(n):
                continue
            elif name_of(n) in SEQUENCE_FUNCTIONS:
                stack.extend(n.expressions[1:])  # the first names a sequence: no column
            elif isinstance(n, exp.Star):
                parts.append(None)
            else:
                stack.extend(n.iter_expressions())
        return union(parts)

    def _column_or_alias(self, scope: Scope, col: exp.Column) -> Sources:
        select = scope.expression
        if not col.table and isinstance(select, exp.Query):
            for i, name in enumerate(select.named_selects):
                if name == col.name:
                    outputs = self.outputs(scope)
                    return None if outputs is None else outputs[i]
        return self.column(scope, col)

    def column(self, scope: Scope, col: exp.Column) -> Sources:
        """The lineage of a column reference, looking outwards for correlated references."""
        if not col.table:
            return None  # qualify could not tell which table it belongs to
        current: Scope | None = scope
        while current is not None:
            source = current.sources.get(col.table)
            if source is not None:
                return self._from_source(source, col.name)
            current = current.parent
        return None

    def _from_source(self, source: exp.Table | Scope, name: str) -> Sources:
        if isinstance(source, Scope):
            cte = _cte_name(source.expression)
            if cte in self._approx:
                # A recursive CTE reading itself (sqlglot hands out its anchor's scope):
                # the current approximation of the whole CTE, refined to a fixpoint.
                names, current = self._approx[cte]
                return current[names.index(name)] if name in names else None
            outputs = self.outputs(source)
            names = list(source.expression.named_selects)
            if outputs is None or name not in names:
                return None
            return outputs[names.index(name)]
        if not source.db:
            return None  # a base table outside any database: cannot be attributed
        return frozenset({SourceColumn(source.db, source.name, name.lower())})
