"""Token-level helpers for the statements sqlglot does not understand."""

from __future__ import annotations

from myguard.analysis.lexer import Token
from myguard.analysis.model import TableName


def is_word(tokens: list[Token], index: int, *words: str) -> bool:
    """Whether tokens[index] is one of ``words`` (upper case)."""
    return index < len(tokens) and tokens[index].kind == "word" and tokens[index].upper in words


def find_word(tokens: list[Token], word: str, start: int = 0) -> int:
    """Index of the first top-level ``word`` at or after ``start``, or -1."""
    depth = 0
    for index in range(start, len(tokens)):
        token = tokens[index]
        if token.kind == "op" and token.text == "(":
            depth += 1
        elif token.kind == "op" and token.text == ")":
            depth -= 1
        elif depth == 0 and token.kind == "word" and token.upper == word:
            return index
    return -1


def skip_words(tokens: list[Token], index: int, words: frozenset[str]) -> int:
    """First index at or after ``index`` that is not one of ``words``."""
    while is_word(tokens, index, *words):
        index += 1
    return index


def name_at(tokens: list[Token], index: int) -> tuple[list[str], int]:
    """A dotted name (``db.t``, `` `db`.`t` ``) starting at ``index``: its parts and the next index."""
    parts: list[str] = []
    while index < len(tokens) and tokens[index].kind in ("word", "qid"):
        parts.append(tokens[index].value)
        index += 1
        if not (index < len(tokens) and tokens[index].text == "." and tokens[index].kind == "op"):
            break
        index += 1
    return parts, index


def table_at(
    tokens: list[Token], index: int, current_db: str | None
) -> tuple[TableName | None, int]:
    """The table named at ``index`` resolved against ``current_db``, and the next index."""
    parts, after = name_at(tokens, index)
    if not parts:
        return None, index
    if len(parts) == 1:
        return TableName(current_db, parts[0]), after
    return TableName(parts[-2], parts[-1]), after


def table_list(tokens: list[Token], index: int, current_db: str | None) -> list[TableName]:
    """``a, db.b, c``: the tables of a comma-separated list, stopping at anything else."""
    tables: list[TableName] = []
    while True:
        table, index = table_at(tokens, index, current_db)
        if table is None:
            return tables
        tables.append(table)
        if not (index < len(tokens) and tokens[index].text == ","):
            return tables
        index += 1


def top_level_chunks(tokens: list[Token], start: int) -> list[list[Token]]:
    """tokens[start:] split on commas outside parentheses."""
    chunks: list[list[Token]] = [[]]
    depth = 0
    for token in tokens[start:]:
        if token.kind == "op" and token.text == "(":
            depth += 1
        elif token.kind == "op" and token.text == ")":
            depth -= 1
        elif depth == 0 and token.kind == "op" and token.text == ",":
            chunks.append([])
            continue
        chunks[-1].append(token)
    return chunks


def string_literal(tokens: list[Token], index: int) -> tuple[str | None, int]:
    """A literal string at ``index`` (with optional ``_charset``/``N`` introducer and MySQL's
    adjacent-literal concatenation ``'DROP ' 'TABLE t'``), or None when there is none."""
    if (
        index + 1 < len(tokens)
        and tokens[index].kind == "word"
        and (tokens[index].upper.startswith("_") or tokens[index].upper == "N")
        and tokens[index + 1].kind == "str"
        and not tokens[index + 1].gap
    ):
        index += 1
    pieces: list[str] = []
    while index < len(tokens) and tokens[index].kind == "str":
        pieces.append(tokens[index].value)
        index += 1
    return ("".join(pieces) if pieces else None), index
