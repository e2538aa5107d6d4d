"""TextReading: which statements myguard must not read the default way, and when it asks."""

from __future__ import annotations

import asyncio

import pytest

from myguard.analysis.analyzer import analyze
from myguard.protocol.constants import ServerStatus
from myguard.protocol.errors import MySQLError
from myguard.session.text_reading import (
    ANSI_QUOTES_REASON,
    BACKSLASH_REASON,
    UNKNOWN_REASON,
    TextReading,
    charset_reason,
    codec,
)

NBE = ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES
AUTOCOMMIT = ServerStatus.SERVER_STATUS_AUTOCOMMIT
GBK_HIDDEN = "SELECT '" + bytes((0xBF, 0x5C)).decode("utf-8", "replace") + "', email FROM t -- '"


class Backend:
    """Answers (sql_mode, character_set_client) and counts how often it was asked."""

    def __init__(self, sql_mode: str | None = "STRICT_TRANS_TABLES", charset: str = "utf8mb4"):
        self.sql_mode = sql_mode
        self.charset = charset
        self.asked = 0

    async def __call__(self) -> tuple[str, str]:
        self.asked += 1
        if self.sql_mode is None:
            raise MySQLError(1064, "42000", "no")
        return self.sql_mode, self.charset


def ambiguity(reading: TextReading, sql: str, backend: Backend) -> str | None:
    return asyncio.run(reading.ambiguity(sql, backend))


def test_default_settings_read_everything_and_ask_only_when_it_matters():
    reading, backend = TextReading(AUTOCOMMIT), Backend()
    assert ambiguity(reading, r"SELECT 'it\'s', `a` FROM t", backend) is None
    assert ambiguity(reading, "SELECT 'Zürich' FROM t", backend) is None
    assert backend.asked == 0
    assert ambiguity(reading, 'SELECT "x"', backend) is None
    assert ambiguity(reading, r"SELECT 'é\'s'", backend) is None
    assert backend.asked == 1  # known now, until something may change it


def test_no_backslash_escapes_from_the_status_refuses_only_backslashes():
    reading, backend = TextReading(AUTOCOMMIT | NBE), Backend()
    assert ambiguity(reading, r"SELECT 'a\', email FROM t -- '", backend) == BACKSLASH_REASON
    assert ambiguity(reading, "SELECT 'a', email FROM t", backend) is None


def test_the_backslash_flag_follows_responses_but_an_error_never_clears_it():
    reading = TextReading(AUTOCOMMIT)
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
    reading, backend = TextReading(AUTOCOMMIT), Backend(mode)
    assert ambiguity(reading, 'SELECT "email" FROM customers', backend) == ANSI_QUOTES_REASON
    assert ambiguity(reading, "SELECT `email` FROM customers", backend) is None


@pytest.mark.parametrize(
    "sql",
    [
        """SELECT 'say "hi"', `email` FROM customers""",
        r"""SELECT 'say \"hi\"', email FROM customers""",  # a driver's escape
        """INSERT INTO t (doc) VALUES ('{"email": 1}')""",
        """SELECT 'it''s "x"' FROM customers""",
        """SELECT `odd"name` FROM customers""",
        """SELECT email FROM customers -- "email\n""",
        """SELECT email /* "email" */ FROM customers""",
        """SELECT email FROM customers # "email\n""",
    ],
)
def test_double_quotes_in_strings_names_and_comments_read_alike_under_ansi_quotes(sql):
    reading, backend = TextReading(AUTOCOMMIT), Backend("ANSI_QUOTES")
    assert ambiguity(reading, sql, backend) is None
    assert backend.asked == 0  # the same in every mode: nothing to ask


@pytest.mark.parametrize(
    "sql",
    [
        """SELECT 'x' "email" FROM customers""",  # an alias under ANSI_QUOTES
        """SELECT 1 /*! , "email" */ FROM customers""",  # an executable comment is code
        """SELECT @"email" FROM customers""",
        """SELECT "a\" , email FROM customers -- " """,  # where it ends depends on the mode
        """SELECT 'a"' , "email""",
        """SELECT "unterminated""",
    ],
)
def test_double_quotes_in_code_are_refused_under_ansi_quotes(sql):
    reading, backend = TextReading(AUTOCOMMIT), Backend("ANSI_QUOTES")
    assert ambiguity(reading, sql, backend) == ANSI_QUOTES_REASON


def test_a_mode_that_only_looks_alike_is_not_ansi_quotes():
    reading, backend = TextReading(AUTOCOMMIT), Backend("NO_ANSI_QUOTES_HERE,ANSI_QUOTESX")
    assert ambiguity(reading, 'SELECT "x"', backend) is None


@pytest.mark.parametrize("charset", ["gbk", "SJIS", "cp932", "big5"])
def test_a_backslash_or_backtick_after_non_ascii_is_refused_in_two_byte_charsets(charset):
    reading, backend = TextReading(AUTOCOMMIT), Backend(charset=charset)
    assert ambiguity(reading, GBK_HIDDEN, backend) == charset_reason(charset.lower())
    assert ambiguity(reading, "SELECT 1 FROM t WHERE n = '中`", backend) is not None
    assert ambiguity(reading, "SELECT '中文' FROM t", backend) is None
    assert ambiguity(reading, r"SELECT 'a\'b' FROM `t`", backend) is None


@pytest.mark.parametrize("charset", ["utf8mb4", "utf8mb3", "latin1", "ascii"])
def test_other_charsets_read_the_same(charset):
    reading, backend = TextReading(AUTOCOMMIT), Backend(charset=charset)
    assert ambiguity(reading, GBK_HIDDEN, backend) is None


@pytest.mark.parametrize(
    "sql",
    [
        "SET SESSION sql_mode = 'ANSI_QUOTES'",
        "SET @@SQL_MODE := @m",
        "set `sql_mode`='ansi'",
        "SET STATEMENT sql_mode='' FOR SELECT 1",
        "SET NAMES gbk",
        "SET @@session.character_set_client = @cs, autocommit = 0",
        "EXECUTE s",
        "EXECUTE IMMEDIATE @q",
        "CALL shop.set_modes()",  # a procedure may SET sql_mode inside
        r"EXECUTE IMMEDIATE 'SET sq\l_mode = ''ANSI_QUOTES'''",  # the server reads sql_mode
    ],
)
def test_statements_that_may_change_the_settings_make_them_asked_again(sql):
    reading, backend = TextReading(AUTOCOMMIT), Backend()
    ambiguity(reading, 'SELECT "x"', backend)
    reading.after_statement(sql, analyze(sql, "shop"))
    backend.sql_mode = "ANSI_QUOTES"
    assert ambiguity(reading, 'SELECT "x"', backend) == ANSI_QUOTES_REASON
    assert backend.asked == 2


def test_other_statements_keep_what_is_known():
    reading, backend = TextReading(AUTOCOMMIT), Backend()
    ambiguity(reading, 'SELECT "x"', backend)
    for sql in (
        "SELECT * FROM modes",
        "UPDATE t SET a = 1",
        "CREATE TABLE s (sql_mod INT)",
        "SET autocommit = 0",  # what drivers send at every login: a SET names what it sets
        "SET @a = 1, SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
    ):
        reading.after_statement(sql, analyze(sql, "shop"))
    assert ambiguity(reading, 'SELECT "x"', backend) is None
    assert backend.asked == 1


def test_unreadable_settings_refuse_and_are_asked_again():
    reading, backend = TextReading(AUTOCOMMIT), Backend(None)
    assert ambiguity(reading, 'SELECT "x"', backend) == UNKNOWN_REASON
    backend.sql_mode = ""
    assert ambiguity(reading, 'SELECT "x"', backend) is None
    assert backend.asked == 2


def read_text(reading: TextReading, sql: bytes, backend: Backend) -> str:
    return asyncio.run(reading.read_text(sql, backend))


def test_ascii_and_utf8_are_read_without_asking():
    reading, backend = TextReading(AUTOCOMMIT), Backend(charset="latin1")
    assert reading.text(b"SELECT 1") == "SELECT 1"
    assert read_text(reading, "SELECT 'Zürich'".encode(), backend) == "SELECT 'Zürich'"
    assert backend.asked == 0
    assert reading.codec == "utf-8"


def test_bytes_that_are_not_utf8_are_read_in_the_asked_character_set():
    reading, backend = TextReading(AUTOCOMMIT), Backend(charset="latin1")
    sql = "SELECT 'Crème' FROM crème".encode("latin1")
    assert reading.text(sql) is None  # the set must be asked first
    assert read_text(reading, sql, backend) == "SELECT 'Crème' FROM crème"
    assert reading.text("SELECT 'Zürich', '€'".encode("cp1252")) == "SELECT 'Zürich', '€'"
    assert reading.codec == "cp1252" and backend.asked == 1
    for sql in ("SET autocommit = 0", "SET @x = 1", "SELECT CAST(1 AS CHAR), names FROM t"):
        reading.after_statement(sql, analyze(sql, "shop"))
    assert reading.text("SELECT 'é'".encode("cp1252")) == "SELECT 'é'"  # still known
    changed = "SET @@session.character_set_client = @cs"
    reading.after_statement(changed, analyze(changed, "shop"))
    assert reading.text("SELECT 'é'".encode("cp1252")) is None
    backend.charset = "koi8r"
    assert read_text(reading, "SELECT 'Привет'".encode("koi8_r"), backend) == "SELECT 'Привет'"
    assert backend.asked == 2


def test_two_byte_sets_with_ascii_trail_bytes_stay_read_as_utf8():
    """Their hazard (a backslash inside a character) must stay visible to ``ambiguity``."""
    reading, backend = TextReading(AUTOCOMMIT), Backend(charset="gbk")
    text = read_text(reading, GBK_HIDDEN.encode("utf-8").replace(b"\xef\xbf\xbd", b"\xbf"), backend)
    assert text == GBK_HIDDEN
    assert ambiguity(reading, text, backend) == charset_reason("gbk")


def test_a_character_set_that_cannot_be_asked_reads_as_utf8_and_is_asked_again():
    reading, backend = TextReading(AUTOCOMMIT), Backend(None)
    sql = "SELECT 'Crème'".encode("latin1")
    assert read_text(reading, sql, backend) == "SELECT 'Cr\ufffdme'"
    assert reading.text(sql) is None
    backend.sql_mode = ""
    backend.charset = "latin1"
    assert read_text(reading, sql, backend) == "SELECT 'Crème'"
    assert backend.asked == 2


@pytest.mark.parametrize(
    ("charset", "expected"),
    [
        ("utf8mb4", "utf-8"), ("utf8mb3", "utf-8"), ("latin1", "cp1252"), ("cp1251", "cp1251"),
        ("koi8r", "koi8-r"), ("latin2", "iso8859-2"), ("greek", "iso8859-7"),
        ("gbk", "utf-8"), ("sjis", "utf-8"), ("big5", "utf-8"), ("binary", "utf-8"),
        ("armscii8", "utf-8"),  # no Python codec
    ],
)  # fmt: skip
def test_codecs_of_client_character_sets(charset, expected):
    assert codec(charset) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "set @@session.Character_Set_Client = 'latin1'",
        "/*!40101 SET NAMES utf8 */",
        "EXECUTE s",
        "EXECUTE IMMEDIATE @q",
        "CALL shop.set_modes()",
        r"EXECUTE IMMEDIATE 'SET NAM\ES sjis'",  # the server reads SET NAMES sjis
    ],
)
def test_statements_that_may_change_the_character_set_make_it_asked_again(sql):
    reading, backend = TextReading(AUTOCOMMIT), Backend(charset="latin1")
    read_text(reading, "SELECT 'é'".encode("latin1"), backend)
    reading.after_statement(sql, analyze(sql, "shop"))
    assert reading.text("SELECT 'é'".encode("latin1")) is None


def test_the_login_s_character_set_reads_without_asking():
    reading, backend = TextReading(AUTOCOMMIT, "latin1"), Backend(charset="latin1")
    assert reading.text("SELECT 'Ã©tÃ©'".encode("cp1252")) == "SELECT 'Ã©tÃ©'"  # not "été"
    assert reading.codec == "cp1252"
    assert TextReading(AUTOCOMMIT, "utf8mb4").text(b"SELECT '\xe9'") == "SELECT '\ufffd'"
    assert backend.asked == 0


@pytest.mark.parametrize(
    ("sql", "error", "expected"),
    [
        ("SET NAMES koi8r", 0, "SELECT 'Привет'"),
        ("set names 'koi8r' collate koi8r_general_ci;", 0, "SELECT 'Привет'"),
        ("SET CHARACTER SET koi8r", 0, "SELECT 'Привет'"),
        ("SET CHARSET `koi8r`", 0, "SELECT 'Привет'"),
        ("SET NAMES koi8r", 1115, None),  # it failed: asked again
        ("SET NAMES DEFAULT", 0, None),
        ("SET NAMES koi8r, @x = 1", 0, None),
    ],
)
def test_a_plain_set_names_is_followed_without_asking(sql, error, expected):
    reading = TextReading(AUTOCOMMIT, "latin1")
    reading.after_statement(sql, analyze(sql, "shop"), error)
    assert reading.text("SELECT 'Привет'".encode("koi8_r")) == expected
