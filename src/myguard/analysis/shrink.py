"""Shrink long literals before analysis: a 20 MB BLOB INSERT must not cost a 20 MB parse.

The analysis never needs a literal's contents, except the SQL text of ``PREPARE ... FROM``
and ``EXECUTE IMMEDIATE``, which is kept. Comments and quoted identifiers are skipped
whole, so a quote inside them is not taken for a literal.
"""

from __future__ import annotations

import re

# Literals longer than this are replaced; shorter ones are left exactly as written.
MAX_LITERAL = 256
SHRINK_ABOVE = 64 * 1024

_TOKENS = re.compile(
    r"""
    /\*.*?(?:\*/|\Z)                      # block comment (executable ones stay as they are)
  | (?:\#|--[ \t\r\n])[^\n]*              # line comment
  | `(?:[^`]+|``)*(?:`|\Z)                # quoted identifier
  | (?P<str>'(?:[^'\\]+|\\.|'')*(?:'|\Z)   # string literal
  |        "(?:[^"\\]+|\\.|"")*(?:"|\Z))
  | (?P<hex>0x[0-9A-Fa-f]+|[Xx]'[0-9A-Fa-f]*')
    """,
    re.S | re.X,
)
_KEEP_BEFORE = re.compile(r"(?:\bFROM|\bIMMEDIATE)\s*$", re.I)


def shrink_literals(sql: str) -> str:
    """``sql`` with every literal longer than MAX_LITERAL replaced by a short one."""
    if len(sql) <= SHRINK_ABOVE:
        return sql

    def replace(m: re.Match[str]) -> str:
        text = m.group(0)
        if len(text) <= MAX_LITERAL:
            return text
        if m.group("str") is not None:
            if _KEEP_BEFORE.search(sql, max(0, m.start() - 20), m.start()):
                return text
            return text[0] + "long literal" + text[0]
        if m.group("hex") is not None:
            return "0x00"
        return text

    return _TOKENS.sub(replace, sql)
