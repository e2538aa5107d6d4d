"""Any text a client sends is analysed without an exception: a statement the analysis
cannot read is ``unparsed`` (refused, fail closed), never an internal error."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from myguard.analysis import analyze
from myguard.analysis.mariadb_syntax import text_for_sqlglot

# Pieces of MySQL/MariaDB text, rewrites' trigger words among them, joined at random.
_PIECES = [
    "SELECT", "INSERT", "INTO", "VALUES", "VALUE", "UPDATE", "DELETE", "FROM", "WHERE", "WITH",
    "AS", "ON", "DUPLICATE", "KEY", "UNION", "ALL", "DISTINCT", "SHOW", "FULL", "ENGINE",
    "EXPLAIN", "FOR", "CONNECTION", "KILL", "NEXT", "PREVIOUS", "LOW_PRIORITY", "SQL_CACHE",
    "BEGIN", "NOT", "ATOMIC", "END", "IF", "LOOP", "t", "x.t", "c", "`q`", "@v", "1", "'s'",
    '"d"', "(", ")", ",", ".", ";", "=", "*", "{", "}", "{d '2020-01-01'}", "/*!", "*/",
    "-- c\n", "#", "\\",
]  # fmt: skip
_TEXTS = st.lists(st.sampled_from(_PIECES), max_size=24).map(" ".join)


@settings(max_examples=1500, deadline=None)
@given(_TEXTS)
def test_any_text_is_analysed_without_an_exception(sql):
    statements = analyze(sql, "shop")
    assert all(s.kind for s in statements)
    assert isinstance(text_for_sqlglot(sql), str)
