"""``replace_calls``: CONNECTION_ID() becomes myguard's session id in statements."""

import pytest

from myguard.analysis.lexer import replace_calls


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT CONNECTION_ID()", "SELECT 77"),
        ("select connection_id ( /* x */ ) + 1", "select 77 + 1"),
        ("SELECT CONNECTION_ID(), Connection_Id()", "SELECT 77, 77"),
        ("SELECT * FROM t WHERE id = CONNECTION_ID()", "SELECT * FROM t WHERE id = 77"),
        ("SELECT /*!CONNECTION_ID()*/", "SELECT /*!77*/"),  # executable comments are code
        ("SELECT \"CONNECTION_ID()\", 'connection_id()'", None),  # strings
        ("/* CONNECTION_ID() */ SELECT 1 -- CONNECTION_ID()", None),  # comments
        ("SELECT `CONNECTION_ID`()", None),  # a quoted name is a stored function
        ("SELECT db.CONNECTION_ID()", None),  # so is a qualified one
        ("SELECT CONNECTION_ID(1)", None),  # not the built-in's shape
        ("SELECT CONNECTION_ID", None),
    ],
)
def test_replace_calls(sql, expected):
    assert replace_calls(sql, "CONNECTION_ID", "77") == (sql if expected is None else expected)
