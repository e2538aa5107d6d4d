"""``used_database``: the database a USE switches to, as the session must track it."""

import pytest

from myguard.analysis.analyzer import used_database


@pytest.mark.parametrize(
    ("sql", "database"),
    [
        ("USE shop", "shop"),
        ("use Shop", "Shop"),  # database names keep their case
        ("USE `my db`", "my db"),
        ("/* c */ USE shop;", "shop"),
        ("USE a; SELECT 1; USE b", "b"),
        ("SELECT 1", None),
        ("USE", None),
        ("SELECT 'unterminated", None),
    ],
)
def test_used_database(sql, database):
    assert used_database(sql) == database
