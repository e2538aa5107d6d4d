"""The approver commands typed in a mysql session, which the proxy answers itself.

    MYGUARD APPROVE 17 [REASON 'text']
    MYGUARD DENY 17 REASON 'text'
    MYGUARD APPROVALS
    MYGUARD SHOW APPROVAL 17

Keywords are case-insensitive; whitespace, leading comments and trailing semicolons
are tolerated. Only statements whose first word is MYGUARD are ours (no SQL
statement starts with that word); a malformed one raises MyguardCommandSyntax so
the user gets a usage hint instead of the backend's syntax error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from myguard.approvals.errors import MyguardCommandSyntax

Verb = Literal["approve", "deny", "list", "show"]

USAGE = (
    "MYGUARD APPROVE id [REASON 'text'] | MYGUARD DENY id REASON 'text' | "
    "MYGUARD APPROVALS | MYGUARD SHOW APPROVAL id"
)

_LEADING = re.compile(r"(?:\s+|/\*.*?\*/|(?:--\s|#)[^\n]*(?:\n|$))*", re.S)
_KEYWORD = re.compile(r"MYGUARD\b", re.I)
_STRING = r"""'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*\""""
_REASON = rf"(?:\s+REASON\s+(?P<reason>{_STRING}))"
_FORMS: dict[Verb, re.Pattern[str]] = {
    verb: re.compile(rf"\s+{body}\s*;*\s*", re.I | re.S)
    for verb, body in (
        ("approve", rf"APPROVE\s+(?P<id>\d+){_REASON}?"),
        ("deny", rf"DENY\s+(?P<id>\d+){_REASON}"),
        ("list", r"APPROVALS"),
        ("show", r"SHOW\s+APPROVAL\s+(?P<id>\d+)"),
    )
}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0", "Z": "\x1a", "b": "\b"}


@dataclass(frozen=True, slots=True)
class MyguardCommand:
    verb: Verb
    request_id: int | None = None
    reason: str | None = None


def _unquote(literal: str) -> str:
    quote, body = literal[0], literal[1:-1]
    body = body.replace(quote * 2, quote)
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body, flags=re.S)


def parse_myguard_command(sql: str) -> MyguardCommand | None:
    """The command in ``sql``, or None if it is not a MYGUARD command at all."""
    start = _LEADING.match(sql).end()
    keyword = _KEYWORD.match(sql, start)
    if keyword is None:
        return None
    for verb, form in _FORMS.items():
        found = form.fullmatch(sql, keyword.end())
        if found is None:
            continue
        groups = found.groupdict()
        return MyguardCommand(
            verb=verb,
            request_id=int(groups["id"]) if groups.get("id") else None,
            reason=_unquote(groups["reason"]) if groups.get("reason") else None,
        )
    raise MyguardCommandSyntax(f"usage: {USAGE}")
