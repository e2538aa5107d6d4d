"""Fixes found by the end-to-end corpus: shape-keeping strategies only on plain columns.
(A cursor opened under CLIENT_DEPRECATE_EOF: tests/fast/test_proxycore_props.py.)"""

from __future__ import annotations

import pytest

from myguard.masking.lineage import analyze
from myguard.masking.plan import MaskRules, plan_result
from myguard.policy.mask_spec import MaskSpec
from myguard.protocol import column_types as ct
from myguard.protocol.column_definition import ColumnDefinition

COLUMNS = {"customers": ["id", "email", "ssn"], "orders": ["id", "customer_id", "item"]}
VIEWS = {"v_rev": "SELECT id, REVERSE(email) AS email FROM customers"}
RULES = MaskRules(
    [("shop.customers.email", MaskSpec("email")), ("shop.customers.ssn", MaskSpec("partial", 4))],
    lambda db, table, column: set(),
)


def lineage(sql: str):
    return analyze(
        sql, db="shop", schema=lambda d, t: COLUMNS.get(t), views=lambda d, t: VIEWS.get(t)
    )


def col(name: str) -> ColumnDefinition:
    return ColumnDefinition(
        name=name.encode(), character_set=45, column_length=400, type=ct.MYSQL_TYPE_VAR_STRING
    )


@pytest.mark.parametrize(
    ("sql", "plain"),
    [
        ("SELECT email, ssn FROM customers", (True, True)),
        ("SELECT UPPER(email), CAST(ssn AS CHAR) AS s FROM customers", (True, True)),
        ("SELECT t.e FROM (SELECT email AS e FROM customers) t", (True,)),
        ("WITH x AS (SELECT email FROM customers) SELECT email FROM x", (True,)),
        ("SELECT item FROM orders UNION ALL SELECT email FROM customers", (True,)),
        ("SELECT REVERSE(email), LEFT(ssn, 5), CONCAT(email, '') FROM customers", (False,) * 3),
        ("SELECT GROUP_CONCAT(email) FROM customers", (False,)),
        ("SELECT item FROM orders UNION ALL SELECT REVERSE(email) FROM customers", (False,)),
        ("WITH x AS (SELECT REVERSE(email) AS e FROM customers) SELECT e FROM x", (False,)),
        ("SELECT email FROM v_rev", (False,)),
    ],
)
def test_plain_columns(sql, plain):
    assert lineage(sql).plain == plain


def test_shape_keeping_strategies_become_redact_on_expressions():
    sql = "SELECT email, REVERSE(email), ssn, LEFT(ssn, 5), CONCAT(email, '@', ssn) FROM customers"
    plan = plan_result(lineage(sql), [col(n) for n in "abcde"], RULES)
    assert [s for _, s in plan.masked()] == ["email", "redact", "partial(4)", "redact", "redact"]
