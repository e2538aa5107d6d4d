"""How the backend session reads a statement's text, and where myguard cannot follow.

A statement's bytes are read in the session's client character set (``text``): ASCII and
UTF-8 as they are, and a set whose characters never hold an ASCII byte (latin1, cp1251,
koi8r, ...) with its own codec once the set is known, so that the rules, the masking and
the audit trail see the characters the server sees. myguard analyses that text as MySQL
reads it in the default sql_mode. Three session settings move where strings and names end:

* ``ANSI_QUOTES`` (sql_mode): ``"name"`` is an identifier, not a string (a double quote
  inside a single-quoted string or a comment is read alike in both modes);
* ``NO_BACKSLASH_ESCAPES`` (sql_mode): a backslash does not escape a quote;
* a client character set (big5, cp932, gbk, sjis) in which a backslash or a backtick can
  be the second byte of a two-byte character: ``0xBF 0x5C`` is one character to the
  server, a broken character and a backslash to a UTF-8 reader.

Each would let a statement hide what it reads from rules and masking
(``SELECT "email" FROM customers``; ``SELECT 'a\\', email FROM t -- '``). A statement
whose reading depends on such a setting is not guessed at: it is analysed as unparsed,
which fails closed.

The backend reports ``NO_BACKSLASH_ESCAPES`` in the status flags of every OK and EOF
packet. The other two it does not report, so they are asked for (``@@SESSION.sql_mode``,
``@@SESSION.character_set_client``) the first time a statement could depend on them, and
asked again after anything that may have changed them.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Awaitable, Callable, Collection

from myguard.analysis.lexer import double_quote_in_code
from myguard.analysis.model import Statement
from myguard.protocol.constants import ServerStatus
from myguard.protocol.errors import MySQLError

_NO_BACKSLASH_ESCAPES = ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES
# Statements that may change those settings under names their text does not show: EXECUTE
# of a prepared statement, a CALL (the procedure may SET them), whatever could not be
# analysed, and a SET run from a literal (EXECUTE IMMEDIATE '...': escapes may spell the
# name, see ``_hides_settings``). A plain SET must name what it sets.
_HIDING_KINDS = frozenset({"execute", "unparsed", "call"})
_MENTIONS_SQL_MODE = re.compile("sql_mode", re.IGNORECASE).search  # no lowered copy of big texts
# What may change the client character set: SET NAMES, SET CHARACTER SET, SET CHARSET, the
# character_set_* and collation_* variables by any spelling, or what hides its statements.
_MENTIONS_CHARSET = re.compile("names|char|collat", re.IGNORECASE).search
# The set drivers name after login (PyMySQL, mysqlclient, Connector/J, PHP), followed
# rather than asked for: SET NAMES cs [COLLATE c], SET CHARACTER SET cs, SET CHARSET cs.
_SETS_CHARSET = re.compile(
    r"\s*set\s+(?:names|character\s+set|charset)\s+(?:'(\w+)'|\"(\w+)\"|`?(\w+)`?)"
    r"(?:\s+collate\s+\S+)?\s*;?\s*",
    re.IGNORECASE,
).fullmatch
# Client character sets whose two-byte characters may end in an ASCII byte such as \ or `.
_ASCII_TRAIL_CHARSETS = frozenset({"big5", "cp932", "gbk", "sjis", "gb18030"})
# A non-ASCII character right before a backslash or backtick: in those sets, one character.
# Their text is read as UTF-8 (a broken character then shows, and the hazard with it).
_TRAIL_HAZARD = re.compile("[^\x00-\x7f][\\\\`]").search

BACKSLASH_REASON = (
    "the session's sql_mode has NO_BACKSLASH_ESCAPES, under which myguard cannot tell where "
    "a string with a backslash ends; write the statement without backslashes"
)
ANSI_QUOTES_REASON = (
    "the session's sql_mode has ANSI_QUOTES, under which myguard cannot tell double-quoted "
    "names from strings; quote names with backticks and strings with single quotes"
)
UNKNOWN_REASON = "myguard could not read the session's sql_mode and character set"
# MariaDB's names of client character sets where Python's differ (MariaDB's latin1 is
# cp1252); the others are looked up as they are. None: not text (read as UTF-8).
_CODEC_NAMES = {
    "utf8mb4": "utf-8",
    "utf8mb3": "utf-8",
    "utf8": "utf-8",
    "latin1": "cp1252",
    "koi8r": "koi8_r",
    "koi8u": "koi8_u",
    "macce": "mac_latin2",
    "eucjpms": "euc_jp",
    "binary": None,
}


def charset_reason(charset: str) -> str:
    return (
        f"the session's client character set is {charset}, in which a backslash or backtick "
        "after a non-ASCII byte may be part of a character, so myguard cannot tell where "
        "strings and names end; use utf8mb4, or keep \\ and ` away from non-ASCII text"
    )


class Unknown:
    """The type of ``UNKNOWN``."""


UNKNOWN = Unknown()


def codec(charset: str) -> str:
    """The Python codec that reads text in the client character set ``charset`` as the
    server does; UTF-8 for the sets whose characters may end in an ASCII byte and for one
    Python does not know (as before the set was known: fail closed where it matters)."""
    if charset in _ASCII_TRAIL_CHARSETS:
        return "utf-8"
    name = _CODEC_NAMES.get(charset, charset)
    if name is None:
        return "utf-8"
    try:
        return codecs.lookup(name).name
    except LookupError:
        return "utf-8"


def may_change_settings(sql: str, statements: Collection[Statement] = ()) -> bool:
    """May ``sql`` change the settings that decide how texts read (sql_mode, charset)? Not
    every SET: a plain one names what it sets (``SET autocommit = 0``, which drivers send
    at every login, leaves them as they were)."""
    return _MENTIONS_SQL_MODE(sql) is not None or _may_change_charset(sql, statements)


def _may_change_charset(sql: str, statements: Collection[Statement]) -> bool:
    """May ``sql`` change the client character set? Not every SET: a session that SETs
    autocommit around binary inserts (bytes that are not UTF-8) is not asked each time."""
    if _hides_settings(statements):
        return True
    sets = not statements or any(s.kind == "set" for s in statements)
    return sets and _MENTIONS_CHARSET(sql) is not None


def _hides_settings(statements: Collection[Statement]) -> bool:
    """Statements that may set sql_mode or the character set without naming them in
    ``sql``. The SET in ``EXECUTE IMMEDIATE 'SET NAM\\ES sjis'`` (``prepared``: read from a
    literal) names NAMES only after the server unescapes it."""
    return any(
        s.kind in _HIDING_KINDS or s.opaque or (s.prepared and s.kind == "set") for s in statements
    )


class TextReading:
    """What one backend session's settings do to reading SQL, as far as they are known."""

    __slots__ = ("no_backslash_escapes", "_settings", "_codec")

    def __init__(self, status: int, charset: str | None = None) -> None:
        self.no_backslash_escapes = bool(status & _NO_BACKSLASH_ESCAPES)
        # (ANSI_QUOTES on, character_set_client) once asked; None: ask before relying on it
        self._settings: tuple[bool, str] | None = None
        # The codec of character_set_client (``charset``: the login's, when known), kept
        # while nothing may have changed the set.
        self._codec = codec(charset) if charset else None

    def after_response(self, status: int, error_code: int) -> None:
        """Follow the flag the backend reports; an error carries no status, and a
        multi-statement's earlier OK may have set it, so only a clean end clears it."""
        if status & _NO_BACKSLASH_ESCAPES:
            self.no_backslash_escapes = True
        elif not error_code:
            self.no_backslash_escapes = False

    def after_statement(
        self, sql: str, statements: Collection[Statement] = (), error: int = 0
    ) -> None:
        """Forget the asked settings when ``sql`` (ended with ``error``) may have changed
        them; follow the character set a plain SET NAMES that ran names."""
        if self._settings is not None and may_change_settings(sql, statements):
            self._settings = None
        if not _may_change_charset(sql, statements):
            return
        named = None if error else _SETS_CHARSET(sql)
        charset = named and next(filter(None, named.groups())).lower()
        self._codec = codec(charset) if charset and charset != "default" else None

    def unchanged_by_names(self, codec: str) -> bool:
        """Would a ``SET NAMES`` of a set read with ``codec`` leave this reading as it is
        (``after_statement``): texts read with it already, no asked settings to forget?"""
        return self._settings is None and self._codec == codec

    @property
    def codec(self) -> str:
        """The codec of the session's character set as far as it is known (UTF-8 until
        asked): for the names in result metadata, which come in it too."""
        return self._codec or "utf-8"

    def text(self, sql: bytes) -> str | None:
        """``sql`` as the server reads it in this session's client character set; None
        when that set must be asked first (bytes that are not UTF-8, the set not known)."""
        if sql.isascii():
            return sql.decode("ascii")
        if self._codec is not None:
            return sql.decode(self._codec, "replace")
        try:
            return sql.decode("utf-8")
        except UnicodeDecodeError:
            return None

    async def read_text(
        self, sql: bytes, read_settings: Callable[[], Awaitable[tuple[str, str]]]
    ) -> str:
        """``text``, asking the backend for the character set when it must; read as UTF-8
        when that fails (the set stays unknown, so ``ambiguity`` refuses what it must)."""
        text = self.text(sql)
        if text is None and await self._ask(read_settings):
            text = self.text(sql)
        return text if text is not None else sql.decode("utf-8", "replace")

    def known_ambiguity(self, sql: str) -> str | None | Unknown:
        """Why ``sql`` cannot be read the default way in this session, or None; ``UNKNOWN``
        when that depends on settings not asked for yet (``ambiguity`` asks)."""
        if self.no_backslash_escapes and "\\" in sql:
            return BACKSLASH_REASON
        # A double quote inside a single-quoted string (JSON, a driver's \" escape) reads
        # the same under ANSI_QUOTES; only one in code is a name there.
        quotes = '"' in sql and double_quote_in_code(sql)
        hazard = not sql.isascii() and _TRAIL_HAZARD(sql) is not None
        if not quotes and not hazard:
            return None
        if self._settings is None:
            return UNKNOWN
        ansi_quotes, charset = self._settings
        if quotes and ansi_quotes:
            return ANSI_QUOTES_REASON
        if hazard and charset in _ASCII_TRAIL_CHARSETS:
            return charset_reason(charset)
        return None

    async def ambiguity(
        self, sql: str, read_settings: Callable[[], Awaitable[tuple[str, str]]]
    ) -> str | None:
        """Why ``sql`` cannot be read the default way in this session, or None.

        ``read_settings`` asks the backend for (sql_mode, character_set_client)."""
        found = self.known_ambiguity(sql)
        if found is not UNKNOWN:
            return found
        if not await self._ask(read_settings):  # a refusal, not a guess
            return UNKNOWN_REASON
        return self.known_ambiguity(sql)

    async def _ask(self, read_settings: Callable[[], Awaitable[tuple[str, str]]]) -> bool:
        """Ask the backend for the settings; False when it cannot say (asked again next
        time)."""
        try:
            sql_mode, charset = await read_settings()
        except MySQLError:
            return False
        charset = charset.lower()
        self._settings = ("ANSI_QUOTES" in sql_mode.upper().split(","), charset)
        self._codec = codec(charset)
        return True
