"""``replace_calls``: CONNECTION_ID() becomes myguard's session id in statements, and a
select-list item holding it keeps the column name the server gives it (its text)."""

import pytest

from myguard.analysis.lexer import leading_words, replace_calls


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT CONNECTION_ID()", "SELECT 77 AS `CONNECTION_ID()`"),
        (
            "select connection_id ( /* x */ ) + 1",
            "select 77 + 1 AS `connection_id ( /* x */ ) + 1`",
        ),
        (
            "SELECT CONNECTION_ID(), Connection_Id()",
            "SELECT 77 AS `CONNECTION_ID()`, 77 AS `Connection_Id()`",
        ),
        ("SELECT * FROM t WHERE id = CONNECTION_ID()", "SELECT * FROM t WHERE id = 77"),
        # executable comments are code
        ("SELECT /*!CONNECTION_ID()*/", "SELECT /*!77 AS `CONNECTION_ID()`*/"),
        ("SELECT \"CONNECTION_ID()\", 'connection_id()'", None),  # strings
        ("/* CONNECTION_ID() */ SELECT 1 -- CONNECTION_ID()", None),  # comments
        ("SELECT `CONNECTION_ID`()", None),  # a quoted name is a stored function
        ("SELECT db.CONNECTION_ID()", None),  # so is a qualified one
        ("SELECT CONNECTION_ID(1)", None),  # not the built-in's shape
        ("SELECT CONNECTION_ID", None),
        ("KILL CONNECTION_ID()", "KILL 77"),
        # aliased items keep their alias
        (
            "SELECT CONNECTION_ID() AS a, CONNECTION_ID() b, CONNECTION_ID() 'c'",
            "SELECT 77 AS a, 77 b, 77 'c'",
        ),
        # the item is the whole expression, up to its own depth's comma or clause
        (
            "SELECT DISTINCT CONCAT('a', CONNECTION_ID()) , x = 1 FROM t",
            "SELECT DISTINCT CONCAT('a', 77) AS `CONCAT('a', CONNECTION_ID())` , x = 1 FROM t",
        ),
        (
            "SELECT CONNECTION_ID() = t.id INTO @x FROM t",
            "SELECT 77 = t.id AS `CONNECTION_ID() = t.id` INTO @x FROM t",
        ),
        (
            "SELECT (SELECT CONNECTION_ID()) UNION SELECT 1",
            "SELECT (SELECT 77 AS `CONNECTION_ID()`) AS `(SELECT CONNECTION_ID())` UNION SELECT 1",
        ),
        (
            "SELECT a FROM t WHERE b IN (SELECT CONNECTION_ID() FROM u); SELECT CONNECTION_ID();",
            "SELECT a FROM t WHERE b IN (SELECT 77 AS `CONNECTION_ID()` FROM u);"
            " SELECT 77 AS `CONNECTION_ID()`;",
        ),
        # unsure whether the last word is an alias: left unnamed rather than broken
        ("SELECT CONNECTION_ID() IS NULL", "SELECT 77 IS NULL"),
        (
            "SELECT `x``y` + CONNECTION_ID()",
            "SELECT `x``y` + 77 AS ```x````y`` + CONNECTION_ID()`",
        ),
    ],
)
def test_replace_calls(sql, expected):
    assert replace_calls(sql, "CONNECTION_ID", "77") == (sql if expected is None else expected)


@pytest.mark.parametrize(
    ("sql", "count", "words"),
    [
        ("SHOW WARNINGS", 2, ["SHOW", "WARNINGS"]),
        ("/* c */ show /* d */ warnings limit 1", 2, ["SHOW", "WARNINGS"]),
        ("/*!SHOW ERRORS*/", 2, ["SHOW", "ERRORS"]),
        ("-- c\nSHOW\tFULL PROCESSLIST;", -1, ["SHOW", "FULL", "PROCESSLIST", ";"]),
        ("SELECT 'show warnings'", 2, ["SELECT", "'SHOW WARNINGS'"]),
        ("", 2, []),
    ],
)
def test_leading_words_read_code_as_the_server_does(sql, count, words):
    assert leading_words(sql, count) == words
