"""Dotted globs for tables (``shop.*``) and columns (``*.customers.ssn``), compiled once."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from myguard.analysis.model import TableName


def compile_glob(pattern: str) -> re.Pattern[str]:
    """Case-insensitive shell glob (MySQL names are case-insensitive on most setups)."""
    return re.compile(fnmatch.translate(pattern), re.IGNORECASE)


def table_key(table: TableName) -> tuple[str, str]:
    return (table.db or "", table.name)


@dataclass(frozen=True, slots=True)
class TableGlob:
    """``db.table``; a whole-database reference (``DROP DATABASE shop``) matches on db alone."""

    text: str
    db: re.Pattern[str]
    table: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> TableGlob:
        parts = text.split(".") if isinstance(text, str) else []
        if len(parts) != 2 or not all(parts):
            raise ValueError("a glob of the form db.table, e.g. shop.* or *.customers")
        return cls(text, compile_glob(parts[0]), compile_glob(parts[1]))

    def matches(self, table: TableName) -> bool:
        db, name = table_key(table)
        return self.db.match(db) is not None and (name == "*" or self.table.match(name) is not None)


@dataclass(frozen=True, slots=True)
class ColumnGlob:
    """``db.table.column``."""

    text: str
    table: TableGlob
    column: re.Pattern[str]

    @classmethod
    def parse(cls, text: str) -> ColumnGlob:
        parts = text.split(".") if isinstance(text, str) else []
        if len(parts) != 3 or not all(parts):
            raise ValueError("a glob of the form db.table.column, e.g. shop.customers.ssn")
        table = TableGlob(f"{parts[0]}.{parts[1]}", compile_glob(parts[0]), compile_glob(parts[1]))
        return cls(text, table, compile_glob(parts[2]))

    def matches(self, table: TableName, column: str) -> bool:
        return self.table.matches(table) and self.column.match(column) is not None
