"""Which source columns each result column derives from, and leaks around the result set.

``analyze(sql, db=..., schema=..., views=...)`` returns a Lineage: for each result column
a frozenset of SourceColumn, or None when it cannot be established ("unknown": the
caller must mask or refuse, never pass it through), and a list of Findings.

Findings are ways a statement can learn masked values without reading them from the
result set. Rule: for an identity with masking, the caller refuses the statement when a
finding's sources include a masked column, or are None (unknown). Kinds:

* ``predicate``: WHERE/HAVING/JOIN ON/GROUP BY/ORDER BY (any scope, subqueries too, and
  the WHERE of UPDATE/DELETE) references the column: ``WHERE ssn LIKE '123%'`` probes it.
* ``variable``: ``SELECT @x := email`` keeps the clear value in a user variable.
* ``into``: ``SELECT ... INTO @v / OUTFILE / DUMPFILE`` writes values outside the result.
* ``copy``: INSERT ... SELECT, CREATE ... AS SELECT, UPDATE SET x = email, SET @v =
  (SELECT ...) copy values somewhere the masking does not follow.
* ``metadata``: SHOW CREATE, SHOW PROCESSLIST and the like, performance_schema, mysql,
  sys and the information_schema tables holding values (histograms, full-text words,
  other sessions' statements); sources None. Plain information_schema (TABLES, COLUMNS)
  stays allowed: clients and tools need it and it holds no row values.
* ``unparsed``: the statement could not be analysed; sources None.
* ``aggregate``: an aggregate reads the column (COUNT(DISTINCT ssn) is the number of
  distinct SSNs, MIN/MAX/SUM/GROUP_CONCAT... are computed from the clear values);
  COUNT(*) reads none. ``window``: a window function or its window reads it.
* ``distinct``: SELECT DISTINCT, UNION (without ALL), INTERSECT or EXCEPT compares it:
  the number of rows tells which values are equal.
* ``error echo``: it feeds a function or conversion whose error or warning quotes the
  value (UPDATEXML, EXTRACTVALUE, GTID_SUBSET, JSON functions that parse a document or
  path, CAST to a number or date, arithmetic: "Truncated incorrect DOUBLE value: '...'").
* ``routine``: a stored function or procedure is called; sources None, since myguard has
  not read its body.

The result lineage of COUNT(col) / COUNT(DISTINCT col) is empty (a count is no value),
but the count itself is an ``aggregate`` finding.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, build_scope

from myguard.analysis.mariadb_syntax import text_for_sqlglot
from myguard.masking.expand import (
    SchemaLookup,
    Unresolvable,
    ViewLookup,
    cte_names,
    inline_views,
    schema_for,
    table_refs,
)
from myguard.masking.functions import (
    disguised_calls,
    echoes_argument,
    is_aggregate,
    stored_calls,
)
from myguard.masking.resolve import Resolver, SourceColumn, Sources, union

__all__ = ["Finding", "Lineage", "SourceColumn", "Sources", "analyze"]

# SHOW statements whose results hold names and settings, never row values.
_DATA_FREE_SHOW = frozenset(
    {
        "DATABASES", "SCHEMAS", "TABLES", "TABLE", "COLUMNS", "FIELDS", "INDEX", "INDEXES",
        "KEYS", "VARIABLES", "STATUS", "WARNINGS", "ERRORS", "GRANTS", "ENGINES", "CHARSET",
        "CHARACTER", "COLLATION", "PLUGINS", "PRIVILEGES", "TRIGGERS", "OPEN",
    }
)  # fmt: skip
_SHOW_RE = re.compile(r"\s*SHOW\s+(?:(?:FULL|GLOBAL|SESSION|EXTENDED)\s+)*(\w+)", re.I)
_INTO_RE = re.compile(r"\bINTO\s+(OUTFILE|DUMPFILE|@)", re.I)
_PREPARE_RE = re.compile(r"\s*PREPARE\s+\S+\s+FROM\s+'((?:[^'\\]|''|\\.)*)'\s*;?\s*$", re.I | re.S)
_VALUE_SCHEMAS = frozenset({"performance_schema", "mysql", "sys"})
_VALUE_INFO_TABLES = re.compile(r"^(column_statistics|processlist|innodb_ft_\w+)$", re.I)
_CALL_RE = re.compile(r"\s*CALL\s+((?:`[^`]*`|[\w$.])+)", re.I)
_CLAUSES = (("where", "WHERE"), ("having", "HAVING"), ("group", "GROUP BY"), ("order", "ORDER BY"))
_MODIFIERS = ("order", "limit", "offset")
# Conversions to these keep a string a string: no "Truncated incorrect ..." warning.
_STRING_TYPES = exp.DataType.TEXT_TYPES | {
    exp.DataType.Type.BINARY,
    exp.DataType.Type.VARBINARY,
    exp.DataType.Type.CHARACTER_SET,
}
# Operators that convert their operands to numbers; comparisons do too when one side is
# a number, which a statement's text cannot always tell.
_NUMERIC_OPERATORS = (
    exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Mod, exp.Neg, exp.BitwiseAnd,
    exp.BitwiseOr, exp.BitwiseXor, exp.BitwiseLeftShift, exp.BitwiseRightShift,
    exp.BitwiseNot, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
    exp.Between, exp.In,
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    detail: str
    sources: Sources

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}"


@dataclass(frozen=True, slots=True)
class Lineage:
    """``columns`` is None when the result's shape is unknown; ``data_free``: the result
    (whatever its columns) holds no table values, e.g. SHOW TABLES; ``plain``: per
    column, whether it is a source column's value as stored (Resolver.plain), else ()."""

    columns: tuple[Sources, ...] | None
    findings: tuple[Finding, ...] = ()
    data_free: bool = False
    plain: tuple[bool, ...] = ()


def _no_schema(db: str, table: str) -> None:
    return None


def analyze(
    sql: str,
    *,
    db: str | None = None,
    schema: SchemaLookup = _no_schema,
    views: ViewLookup = _no_schema,
) -> Lineage:
    """Lineage of the result columns of one statement, and its findings.

    ``db`` is the session's current database; ``schema(db, table)`` lists a base table's
    columns (None: unknown table); ``views(db, table)`` returns a view's SELECT (None:
    not a view). ``PREPARE s FROM '...'`` is analysed as the statement it prepares.
    """
    prepared = _PREPARE_RE.match(sql)
    if prepared:
        sql = re.sub(r"''|\\(.)", lambda m: m.group(1) or "'", prepared.group(1))
    call = _CALL_RE.match(sql)
    if call:
        return Lineage(None, (_routine("procedure", call.group(1)),))
    show = _SHOW_RE.match(sql)
    if show:
        word = show.group(1).upper()
        if word in _DATA_FREE_SHOW:
            return Lineage(None, data_free=True)
        return Lineage(None, (Finding("metadata", f"SHOW {word}", None),))
    try:
        trees = [t for t in sqlglot.parse(text_for_sqlglot(sql), read="mysql") if t]
    except (sqlglot.errors.SqlglotError, ValueError):
        trees = []
    if len(trees) != 1 or isinstance(trees[0], exp.Command):
        kind = "into" if _INTO_RE.search(sql) else "unparsed"
        return Lineage(None, (Finding(kind, "statement could not be analysed", None),))
    tree = _unwrap(trees[0])
    routines = [_routine("function", name) for name in disguised_calls(sql)]
    if isinstance(tree, exp.Query):
        columns, findings, plain = _query(tree, db, schema, views)
        findings = list(dict.fromkeys([*routines, *findings]))
        return Lineage(None if columns is None else tuple(columns), tuple(findings), plain=plain)
    routines += [_routine("function", name) for name in stored_calls(tree)]
    findings = list(dict.fromkeys([*routines, *_statement(tree, db, schema, views)]))
    return Lineage((), tuple(findings))


def _routine(kind: str, name: str) -> Finding:
    return Finding("routine", f"stored {kind} {name}, whose body myguard has not read", None)


def _unwrap(tree: exp.Expression) -> exp.Expression:
    """``((SELECT ...))`` is the query inside; ORDER BY / LIMIT after the parentheses
    move inside when the query has none of its own (otherwise it stays unknown)."""
    while isinstance(tree, exp.Subquery) and isinstance(tree.this, exp.Query):
        extra = {k: v for k, v in tree.args.items() if k != "this" and v}
        inner = tree.this
        if set(extra) - set(_MODIFIERS) or any(inner.args.get(k) for k in extra):
            return tree
        for key, value in extra.items():
            inner.set(key, value)
        tree = inner
    return tree


def _fold_column_names(tree: exp.Expression) -> None:
    """Lower-case column names and column aliases, which MySQL compares case-blind
    (``SELECT EmAiL``); table names and table aliases keep their case, as on Linux."""
    for ident in tree.find_all(exp.Identifier):
        parent, key = ident.parent, ident.arg_key
        if (
            (isinstance(parent, exp.Column) and key == "this")
            or (isinstance(parent, exp.Alias) and key == "alias")
            or (isinstance(parent, exp.TableAlias) and key == "columns")
            or (isinstance(parent, exp.Join) and key == "using")
        ):
            ident.set("this", ident.name.lower())


def _metadata(tree: exp.Expression, db: str | None) -> list[Finding]:
    out = []
    for table_db, name in table_refs(tree, db):
        lowered = (table_db or "").lower()
        if lowered in _VALUE_SCHEMAS or (
            lowered == "information_schema" and _VALUE_INFO_TABLES.match(name)
        ):
            out.append(Finding("metadata", f"{table_db}.{name}", None))
    return out


def _query(
    tree: exp.Query, db: str | None, schema: SchemaLookup, views: ViewLookup
) -> tuple[list[Sources] | None, list[Finding], tuple[bool, ...]]:
    findings: list[Finding] = []
    into = tree.args.get("into")
    try:
        tree = inline_views(tree, db, views)
        findings += _metadata(tree, db)  # views inlined: what they read counts too
        findings += [_routine("function", name) for name in stored_calls(tree)]
        _fold_column_names(tree)
        tree = qualify(
            tree,
            schema=schema_for(tree, db, schema),
            dialect="mysql",
            db=db,
            validate_qualify_columns=False,
        )
        root = build_scope(tree)
    except (Unresolvable, sqlglot.errors.SqlglotError, KeyError, ValueError) as exc:
        findings = _metadata(tree, db)
        return None, [*findings, Finding("unparsed", str(exc) or type(exc).__name__, None)], ()
    if root is None:
        return None, [*findings, Finding("unparsed", "no query scope", None)], ()
    with_ = tree.args.get("with_")
    recursive = cte_names(tree) if with_ is not None and with_.args.get("recursive") else set()
    resolver = Resolver(root, recursive)
    columns = resolver.outputs(root)
    for scope in root.traverse():
        findings += _predicates(resolver, scope)
        findings += _distinct(resolver, scope)
    findings += _variables(resolver, tree)
    findings += _side_channels(resolver, tree)
    if into is not None:
        findings.append(Finding("into", "SELECT ... INTO", union(columns or [None])))
    return columns, findings, tuple(resolver.plain(root))


def _probe(detail: str, sources: Sources) -> list[Finding]:
    return [Finding("predicate", detail, sources)] if sources is None or sources else []


def _predicates(resolver: Resolver, scope: Scope) -> list[Finding]:
    node = scope.expression
    out: list[Finding] = []
    for arg, detail in _CLAUSES:
        clause = node.args.get(arg)
        if clause is not None:
            out += _probe(detail, resolver.expr(scope, clause, aliases=arg != "where"))
    for join in node.args.get("joins") or ():
        for arg in ("on", "using"):
            clause = join.args.get(arg)
            if clause:
                parts = clause if isinstance(clause, list) else [clause]
                out += _probe("JOIN", union([resolver.expr(scope, p) for p in parts]))
    return out


def _distinct(resolver: Resolver, scope: Scope) -> list[Finding]:
    node = scope.expression
    if isinstance(node, exp.Select) and node.args.get("distinct"):
        detail = "SELECT DISTINCT"
    elif isinstance(node, exp.Intersect | exp.Except) or (
        isinstance(node, exp.Union) and node.args.get("distinct")
    ):
        detail = type(node).__name__.upper()
    else:
        return []
    outputs = resolver.outputs(scope)
    sources = None if outputs is None else union(outputs)
    return [Finding("distinct", detail, sources)] if sources is None or sources else []


def _side_channels(resolver: Resolver, tree: exp.Expression) -> list[Finding]:
    """Aggregates and windows over columns, and what echoes them in errors or warnings."""
    out = []
    for node in tree.walk():
        if is_aggregate(node):
            kind, args = "aggregate", [a for a in node.iter_expressions() if not a.is_star]
        elif isinstance(node, exp.Window):
            kind, args = "window", [node]
        elif echoes_argument(node) or isinstance(node, _NUMERIC_OPERATORS):
            kind, args = "error echo", list(node.iter_expressions())
        elif isinstance(node, exp.Cast) and not node.to.is_type(*_STRING_TYPES):
            kind, args = "error echo", [node.this]
        else:
            continue
        scope = _scope_of(resolver, node)
        sources = None if scope is None else union([resolver.expr(scope, a) for a in args])
        if sources is None or sources:
            out.append(Finding(kind, _describe(node), sources))
    return out


def _describe(node: exp.Expression) -> str:
    """A short name of a function or operator for a refusal: COUNT(DISTINCT), CAST AS
    DECIMAL(10, 2), ROW_NUMBER() OVER, operator ADD."""
    if isinstance(node, exp.Window):
        return f"{_describe(node.this)} OVER"
    if isinstance(node, exp.Cast):
        return f"CAST AS {node.to.sql('mysql')}"
    echoing = echoes_argument(node)
    if echoing:
        return f"{echoing}()"
    if not isinstance(node, exp.Func):
        return f"operator {node.key.upper()}"
    name = node.name.upper() if isinstance(node, exp.Anonymous) else node.sql("mysql")
    name = name.split("(", 1)[0]
    return f"{name}(DISTINCT)" if isinstance(node.this, exp.Distinct) else f"{name}()"


def _scope_of(resolver: Resolver, node: exp.Expression) -> Scope | None:
    current: exp.Expression | None = node
    while current is not None:
        scope = resolver.scope_of.get(id(current))
        if scope is not None:
            return scope
        current = current.parent
    return None


def _variables(resolver: Resolver, tree: exp.Expression) -> list[Finding]:
    out = []
    for node in tree.find_all(exp.PropertyEQ):
        if isinstance(node.this, exp.Parameter):
            scope = _scope_of(resolver, node)
            sources = None if scope is None else resolver.expr(scope, node.expression)
            if sources is None or sources:
                out.append(Finding("variable", node.this.sql("mysql"), sources))
    return out


def _statement(
    tree: exp.Expression, db: str | None, schema: SchemaLookup, views: ViewLookup
) -> list[Finding]:
    """Findings of a statement that is not a query: its queries' findings, the values it
    copies, the rows its WHERE selects."""
    findings = _metadata(tree, db)
    for query in _outer_queries(tree):
        # ``SET @v = (SELECT ...)``: the query inside the parentheses
        columns, inner, _ = _query(_unwrap(query.copy()), db, schema, views)
        findings += inner
        copied = union(columns if columns is not None else [None])
        if copied is None or copied:
            findings.append(Finding("copy", f"{tree.key.upper()} ... SELECT", copied))
    where = tree.args.get("where")
    if isinstance(tree, exp.Update | exp.Delete) and where is not None:
        findings += _probe("WHERE", _plain_sources(tree, where, db))
    if isinstance(tree, exp.Update):
        for assignment in tree.expressions:
            copied = _plain_sources(tree, assignment.expression, db)
            if copied is None or copied:
                findings.append(Finding("copy", "UPDATE SET", copied))
    return findings


def _outer_queries(tree: exp.Expression) -> list[exp.Query]:
    return [
        q
        for q in tree.find_all(exp.Query)
        if not any(isinstance(p, exp.Query) for p in _ancestors(q))
    ]


def _ancestors(node: exp.Expression) -> list[exp.Expression]:
    out = []
    current = node.parent
    while current is not None:
        out.append(current)
        current = current.parent
    return out


def _plain_sources(tree: exp.Expression, node: exp.Expression, db: str | None) -> Sources:
    """Columns of an UPDATE/DELETE expression, attributed by table alias (no scopes there);
    a subquery inside makes it unknown."""
    if node.find(exp.Query) is not None:
        return None
    tables = {
        t.alias_or_name: (t.db or db, t.name)
        for t in tree.find_all(exp.Table)
        if not any(isinstance(p, exp.Query) for p in _ancestors(t))
    }
    out: set[SourceColumn] = set()
    for col in node.find_all(exp.Column):
        target = tables.get(col.table) if col.table else None
        if target is None and not col.table and len(tables) == 1:
            target = next(iter(tables.values()))
        if target is None or target[0] is None:
            return None
        out.add(SourceColumn(target[0], target[1], col.name.lower()))
    return frozenset(out)
