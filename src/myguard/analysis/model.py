"""What the analysis learns about one statement."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, order=True)
class TableName:
    """A table (``name="*"`` for a whole database); ``db`` is None when no database applies."""

    db: str | None
    name: str

    def __str__(self) -> str:
        return f"{self.db}.{self.name}" if self.db is not None else self.name


@dataclass(frozen=True, slots=True, order=True)
class ColumnName:
    """A column; ``table`` is None when the statement does not say which table it belongs to."""

    table: TableName | None
    name: str

    def __str__(self) -> str:
        return f"{self.table}.{self.name}" if self.table is not None else self.name


EMPTY_TABLES: frozenset[TableName] = frozenset()
EMPTY_COLUMNS: frozenset[ColumnName] = frozenset()

UNPARSED = "unparsed"


@dataclass(frozen=True, slots=True)
class Statement:
    """One analysed statement.

    ``kind`` is the effective kind (for ``PREPARE s FROM 'sql'`` the inner statement's) and
    ``names`` everything a rule's ``kinds`` may match: the kind, ``kind:object`` and groups.
    ``cacheable`` is False when the analysis depends on literal text the fingerprint erases.
    ``sql`` is the text as analysed: comments out, and without MariaDB's ``SET STATEMENT ...
    FOR`` and ``LIMIT ... ROWS EXAMINED n``, which sqlglot cannot read and which change
    neither what is read nor where a result column comes from.
    """

    sql: str
    kind: str
    object_type: str | None = None
    names: frozenset[str] = frozenset()
    reads: frozenset[TableName] = EMPTY_TABLES
    writes: frozenset[TableName] = EMPTY_TABLES
    columns: frozenset[ColumnName] = EMPTY_COLUMNS
    star_tables: frozenset[TableName] = EMPTY_TABLES
    has_where: bool = False
    where_tautology: bool = False
    has_limit: bool = False
    into: str | None = None
    local: bool = False
    prepared: bool = False
    opaque: bool = False
    cacheable: bool = True
    error: str | None = field(default=None, compare=False)

    @property
    def tables(self) -> frozenset[TableName]:
        """Every table read or written."""
        return self.reads | self.writes

    @property
    def no_where(self) -> bool:
        """An UPDATE or DELETE that touches every row: no WHERE, or a WHERE that is always true."""
        return self.kind in ("update", "delete") and (not self.has_where or self.where_tautology)

    @property
    def unparsed(self) -> bool:
        return self.kind == UNPARSED
