import pytest

from myguard.config_error import ConfigError
from myguard.policy.context import RequestContext
from myguard.policy.engine import Policy

RULES = """
[defaults]
action = "allow"

[[rules]]
name = "big-deletes-need-approval"
action = "approve"
[rules.when]
environments = ["production"]
kinds = ["delete", "update"]
rows_over = 1000
[rules.approval]
approver_groups = ["dba"]
"""


def ctx(env="production"):
    return RequestContext("bob", frozenset(), env, "main", "127.0.0.1", "", {}, "shop")


def test_without_an_estimate_the_rule_asks_for_one():
    policy = Policy.from_text(RULES, "rules.toml")
    decision = policy.decide(ctx(), "DELETE FROM orders WHERE id < 10")
    assert decision.action == "allow" and decision.wants_estimate


def test_the_estimate_decides():
    policy = Policy.from_text(RULES, "rules.toml")
    sql = "DELETE FROM orders WHERE status = 'cancelled'"
    assert policy.decide(ctx(), sql, [1000]).action == "allow"
    held = policy.decide(ctx(), sql, [1001])
    assert held.action == "approve" and held.rule == "big-deletes-need-approval"
    assert not held.wants_estimate


def test_no_estimate_wanted_where_the_rule_cannot_apply():
    policy = Policy.from_text(RULES, "rules.toml")
    assert not policy.decide(ctx("staging"), "DELETE FROM orders WHERE id = 1").wants_estimate
    assert not policy.decide(ctx(), "SELECT * FROM orders").wants_estimate


def test_multi_statement_estimates_are_per_statement():
    policy = Policy.from_text(RULES, "rules.toml")
    sql = "DELETE FROM orders WHERE id = 1; UPDATE orders SET total = 0 WHERE id > 0"
    assert policy.decide(ctx(), sql, [1, 5000]).action == "approve"
    assert policy.decide(ctx(), sql, [1, 5]).action == "allow"


@pytest.mark.parametrize("value", ["many", -1, 1.5, True])
def test_rows_over_must_be_a_row_count(value):
    text = RULES.replace(
        "rows_over = 1000", f"rows_over = {value!r}".replace("'", '"').replace("True", "true")
    )
    with pytest.raises(ConfigError) as err:
        Policy.from_text(text, "rules.toml")
    assert "rules.toml" in str(err.value) and "rows_over" in str(err.value)
