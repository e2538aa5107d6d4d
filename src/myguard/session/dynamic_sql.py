"""``PREPARE name FROM @var``: the SQL a user variable holds, made visible to the decision.

The server reads the variable when it prepares, so the text it will run is the variable's
value at that moment; nothing else runs on the session's backend connection in between.
myguard reads that value first and decides (and audits) ``PREPARE name FROM '<value>'``.
Only a statement that is the whole COM_QUERY qualifies: in a multi-statement text an earlier
statement could set the variable after myguard read it. Anything else stays opaque.
"""

from __future__ import annotations

import re

_NAME = r"`(?:[^`]|``)+`|[\w$]+"
_VARIABLE = r"""@(?:`(?:[^`]|``)+`|'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*"|[\w$.]+)"""
_FROM_VARIABLE = re.compile(
    rf"\s*PREPARE\s+(?P<name>{_NAME})\s+FROM\s+(?P<variable>{_VARIABLE})\s*;?\s*",
    re.IGNORECASE,
)


def source_variable(text: str) -> str | None:
    """The variable (as written, ``@v``) that ``text``, a lone ``PREPARE name FROM @v``,
    prepares from; None for any other text."""
    found = _FROM_VARIABLE.fullmatch(text)
    return found["variable"] if found else None


def with_source(text: str, value: str) -> str:
    """``text`` (a lone ``PREPARE name FROM @v``) with the variable's ``value`` written in
    as a string literal."""
    found = _FROM_VARIABLE.fullmatch(text)
    if found is None:
        raise ValueError("not a PREPARE ... FROM @variable statement")
    literal = value.replace("\\", "\\\\").replace("'", "''")
    return f"PREPARE {found['name']} FROM '{literal}'"
