"""SqlModeReading: which statements myguard must not read the default way, and when it asks."""

from __future__ import annotations

import asyncio

import pytest

from myguard.analysis.analyzer import analyze
from myguard.protocol.constants import ServerStatus
from myguard.protocol.errors import MySQLError
from myguard.session.sql_mode import (
    ANSI_QUOTES_REASON,
    BACKSLASH_REASON,
    UNKNOWN_REASON,
    SqlModeReading,
)

NBE = ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES
AUTOCOMMIT = ServerStatus.SERVER_STATUS_AUTOCOMMIT


class Backend:
    """Answers ``@@SESSION.sql_mode`` and counts how often it was asked."""

    def __init__(self, sql_mode: str = "STRICT_TRANS_TABLES") -> None:
        self.sql_mode = sql_mode
        self.asked = 0

    async def __call__(self) -> str:
        self.asked += 1
        if self.sql_mode is None:
            raise MySQLError(1064, "42000", "no")
        return self.sql_mode


def ambiguity(reading: SqlModeReading, sql: str, backend: Backend) -> str | None:
    return asyncio.run(reading.ambiguity(sql, backend))


def test_default_mode_reads_everything_and_asks_only_for_double_quotes():
    reading, backend = SqlModeReading(AUTOCOMMIT), Backend()
    assert ambiguity(reading, r"SELECT 'it\'s' FROM t", backend) is None
    assert backend.asked == 0
    assert ambiguity(reading, 'SELECT "x"', backend) is None
    assert ambiguity(reading, 'SELECT "y"', backend) is None
    assert backend.asked == 1  # known now, until something may change it


def test_no_backslash_escapes_from_the_status_refuses_only_backslashes():
    reading, backend = SqlModeReading(AUTOCOMMIT | NBE), Backend()
    assert ambiguity(reading, r"SELECT 'a\', email FROM t -- '", backend) == BACKSLASH_REASON
    assert ambiguity(reading, "SELECT 'a', email FROM t", backend) is None


def test_the_backslash_flag_follows_responses_but_an_error_never_clears_it():
    reading = SqlModeReading(AUTOCOMMIT)
    reading.after_response(AUTOCOMMIT | NBE, 0)
    assert reading.no_backslash_escapes
    reading.after_response(0, 1064)  # an ERR carries no status
    assert reading.no_backslash_escapes
    reading.after_response(AUTOCOMMIT | NBE, 1064)  # set by an earlier OK of the same text
    assert reading.no_backslash_escapes
    reading.after_response(0, 0)  # an OK without the flag (autocommit off)
    assert not reading.no_backslash_escapes


@pytest.mark.parametrize(
    "mode",
    [
        "ANSI_QUOTES",
        "REAL_AS_FLOAT,PIPES_AS_CONCAT,ANSI_QUOTES,IGNORE_SPACE,ANSI",
        "oracle,ansi_quotes",
    ],
)
def test_ansi_quotes_refuses_double_quotes(mode):
    reading, backend = SqlModeReading(AUTOCOMMIT), Backend(mode)
    assert ambiguity(reading, 'SELECT "email" FROM customers', backend) == ANSI_QUOTES_REASON
    assert ambiguity(reading, "SELECT `email` FROM customers", backend) is None


def test_a_mode_that_only_looks_alike_is_not_ansi_quotes():
    reading, backend = SqlModeReading(AUTOCOMMIT), Backend("NO_ANSI_QUOTES_HERE,ANSI_QUOTESX")
    assert ambiguity(reading, 'SELECT "x"', backend) is None


@pytest.mark.parametrize(
    "sql",
    [
        "SET SESSION sql_mode = 'ANSI_QUOTES'",
        "SET @@SQL_MODE := @m",
        "set `sql_mode`='ansi'",
        "SET STATEMENT sql_mode='' FOR SELECT 1",
        "EXECUTE s",
        "EXECUTE IMMEDIATE @q",
    ],
)
def test_statements_that_may_change_sql_mode_make_it_asked_again(sql):
    reading, backend = SqlModeReading(AUTOCOMMIT), Backend()
    ambiguity(reading, 'SELECT "x"', backend)
    reading.after_statement(sql, analyze(sql, "shop"))
    backend.sql_mode = "ANSI_QUOTES"
    assert ambiguity(reading, 'SELECT "x"', backend) == ANSI_QUOTES_REASON
    assert backend.asked == 2


def test_other_statements_keep_what_is_known():
    reading, backend = SqlModeReading(AUTOCOMMIT), Backend()
    ambiguity(reading, 'SELECT "x"', backend)
    for sql in ("SET autocommit = 0", "SELECT * FROM modes", "UPDATE t SET a = 1"):
        reading.after_statement(sql, analyze(sql, "shop"))
    assert ambiguity(reading, 'SELECT "x"', backend) is None
    assert backend.asked == 1
    reading.forget()  # COM_RESET_CONNECTION
    ambiguity(reading, 'SELECT "x"', backend)
    assert backend.asked == 2


def test_an_unreadable_sql_mode_refuses_and_is_asked_again():
    reading, backend = SqlModeReading(AUTOCOMMIT), Backend(None)
    assert ambiguity(reading, 'SELECT "x"', backend) == UNKNOWN_REASON
    backend.sql_mode = ""
    assert ambiguity(reading, 'SELECT "x"', backend) is None
    assert backend.asked == 2
