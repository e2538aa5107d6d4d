"""The two sql_mode flags that change how the backend reads a statement's text.

myguard analyses SQL as MySQL reads it by default. Under ``ANSI_QUOTES`` a ``"name"`` is
an identifier, not a string; under ``NO_BACKSLASH_ESCAPES`` a backslash does not escape a
quote, so a string ends where the default reading runs on. Either would let a statement
hide what it reads (``SELECT "email" FROM customers``; ``SELECT 'a\\', email FROM t -- '``)
from rules and masking. A statement whose reading depends on such a mode is therefore not
guessed at: it is analysed as unparsed, which fails closed.

The backend reports ``NO_BACKSLASH_ESCAPES`` in the status flags of every OK and EOF
packet. ``ANSI_QUOTES`` it does not report, so it is asked for (``@@SESSION.sql_mode``) the
first time a statement holds a double quote, and asked again after anything that may have
changed the session's sql_mode.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable

from myguard.analysis.model import Statement
from myguard.protocol.constants import ServerStatus
from myguard.protocol.errors import MySQLError

_NO_BACKSLASH_ESCAPES = ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES
# Statements whose effect on session variables cannot be seen in their text.
_OPAQUE_KINDS = frozenset({"execute", "unparsed"})
_MENTIONS_SQL_MODE = re.compile("sql_mode", re.IGNORECASE).search  # no lowered copy of big texts

BACKSLASH_REASON = (
    "the session's sql_mode has NO_BACKSLASH_ESCAPES, under which myguard cannot tell where "
    "a string with a backslash ends; write the statement without backslashes"
)
ANSI_QUOTES_REASON = (
    "the session's sql_mode has ANSI_QUOTES, under which myguard cannot tell double-quoted "
    "names from strings; quote names with backticks and strings with single quotes"
)
UNKNOWN_REASON = "myguard could not read the session's sql_mode to tell what double quotes mean"


class SqlModeReading:
    """What one backend session's sql_mode does to reading SQL, as far as it is known."""

    __slots__ = ("no_backslash_escapes", "ansi_quotes")

    def __init__(self, status: int) -> None:
        self.no_backslash_escapes = bool(status & _NO_BACKSLASH_ESCAPES)
        self.ansi_quotes: bool | None = None  # None: not known, ask before trusting '"'

    def after_response(self, status: int, error_code: int) -> None:
        """Follow the flag the backend reports; an error carries no status, and a
        multi-statement's earlier OK may have set it, so only a clean end clears it."""
        if status & _NO_BACKSLASH_ESCAPES:
            self.no_backslash_escapes = True
        elif not error_code:
            self.no_backslash_escapes = False

    def after_statement(self, sql: str, statements: Iterable[Statement] = ()) -> None:
        """Forget ANSI_QUOTES when ``sql`` may have changed the session's sql_mode."""
        if _MENTIONS_SQL_MODE(sql) or any(s.kind in _OPAQUE_KINDS or s.opaque for s in statements):
            self.ansi_quotes = None

    def forget(self) -> None:
        """The session was reset (COM_RESET_CONNECTION, COM_CHANGE_USER)."""
        self.ansi_quotes = None

    async def ambiguity(self, sql: str, read_sql_mode: Callable[[], Awaitable[str]]) -> str | None:
        """Why ``sql`` cannot be read the default way in this session, or None."""
        if self.no_backslash_escapes and "\\" in sql:
            return BACKSLASH_REASON
        if '"' not in sql:
            return None
        if self.ansi_quotes is None:
            try:
                modes = (await read_sql_mode()).upper().split(",")
            except MySQLError:  # a refusal, not a guess; asked again next time
                return UNKNOWN_REASON
            self.ansi_quotes = "ANSI_QUOTES" in modes
        return ANSI_QUOTES_REASON if self.ansi_quotes else None
