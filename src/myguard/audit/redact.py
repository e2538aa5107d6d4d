"""Replace literal values in SQL text with ``?`` for audit logs that must not hold data.

A small tokenizer, not a parser: it knows MySQL quoting and comments well enough that a
literal is never mistaken for an identifier (``t1``, backquoted names) and text inside a
string or comment is never mistaken for SQL. It is separate from analysis's lexer and the
fingerprint because it must keep the statement as written (case, spacing, list lengths,
optimizer hints) with only the data taken out; see analysis/lexer.py.

- '...' and "..." strings (backslash and doubled-quote escapes, optional ``N``/``X``/``B``
  or ``_charset`` prefix) become ``?``. Double-quoted text is treated as a string even
  though ANSI_QUOTES makes it an identifier: redacting too much is the safe side.
- Numbers (decimal, exponent, ``0x..``, ``0b..``) become ``?``.
- Backquoted identifiers and ``?`` placeholders are kept.
- Ordinary comments are dropped (replaced by a space): they are not executed and may
  carry data. Executable comments (``/*! */``, ``/*M! */``) and optimizer hints
  (``/*+ */``) are kept, with the literals inside them redacted.
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""
    (?P<executable>/\*(?:!\d*|M!\d*|\+))(?P<inner>.*?)(?:\*/|\Z)
  | (?P<comment>/\*.*?(?:\*/|\Z) | --(?=\s|\Z)[^\n]* | \#[^\n]*)
  | (?P<string>
        (?:(?<![\w$])(?:[nNxXbB]|_\w+))?'(?:[^'\\]|\\.|'')*(?:'|\Z)
      | "(?:[^"\\]|\\.|"")*(?:"|\Z)
    )
  | (?P<identifier>`(?:[^`]|``)*(?:`|\Z))
  | (?P<number>
        (?<![\w$.])
        (?:0[xX][0-9a-fA-F]+|0[bB][01]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
        (?![\w$])
    )
    """,
    re.VERBOSE | re.DOTALL,
)


def _replace(match: re.Match[str]) -> str:
    kind = match.lastgroup
    if kind == "inner":
        opener = match.group("executable")
        return f"{opener}{redact_literals(match.group('inner'))}*/"
    if kind == "comment":
        return " "
    if kind == "identifier":
        return match.group(0)
    return "?"


def redact_literals(sql: str) -> str:
    """``sql`` with every string and numeric literal replaced by ``?``."""
    return _TOKEN.sub(_replace, sql)
