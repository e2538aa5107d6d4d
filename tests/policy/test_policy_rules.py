"""Small inline rules files: precedence, observe mode, identity matching, tags, globs."""

from __future__ import annotations

import pytest

from myguard.analysis import analyze
from myguard.policy.context import RequestContext
from myguard.policy.decision import ER_MYGUARD_BLOCKED
from myguard.policy.engine import Policy
from myguard.policy.mask_spec import MaskSpec


def ctx(
    user="alice",
    groups=(),
    env="production",
    backend="main",
    ip="10.0.0.5",
    program="mysql",
    attributes=None,
    db="shop",
):
    return RequestContext(user, frozenset(groups), env, backend, ip, program, attributes or {}, db)


def policy(text: str, **kwargs) -> Policy:
    return Policy.from_text(text, "inline.toml", **kwargs)


PRECEDENCE = """
[defaults]
action = "allow"
[[rules]]
name = "allow-all-for-dba"
action = "allow"
when = { groups = ["dba"] }
[[rules]]
name = "mask-email"
action = "mask"
when = { columns = ["shop.customers.email"] }
mask = { "shop.customers.email" = "email" }
[[rules]]
name = "approve-ddl"
action = "approve"
when = { kinds = ["ddl"] }
approval = { approver_groups = ["dba"] }
[[rules]]
name = "block-drop-1"
action = "block"
message = "first"
when = { kinds = ["drop"] }
[[rules]]
name = "block-drop-2"
action = "block"
message = "second"
when = { kinds = ["drop:table"] }
"""


@pytest.mark.parametrize(
    ("sql", "groups", "action", "rule"),
    [
        ("DROP TABLE t", ["dba"], "block", "block-drop-1"),
        ("ALTER TABLE t ADD c INT", ["dba"], "approve", "approve-ddl"),
        ("SELECT email FROM customers", ["dba"], "mask", "mask-email"),
        ("SELECT id FROM customers", ["dba"], "allow", "allow-all-for-dba"),
        ("SELECT id FROM customers", [], "allow", "default"),
        ("SELECT email FROM customers; ALTER TABLE t ADD c INT", [], "approve", "approve-ddl"),
        ("ALTER TABLE t ADD c INT; DROP TABLE t", [], "block", "block-drop-1"),
    ],
)
def test_most_restrictive_wins_first_in_file_names_it(sql, groups, action, rule):
    decision = policy(PRECEDENCE).decide(ctx(groups=groups), sql)
    assert (decision.action, decision.rule) == (action, rule)


def test_block_decision_renders_client_message_and_code():
    decision = policy(PRECEDENCE).decide(ctx(), "DROP TABLE t")
    assert decision.client_message() == "myguard: blocked by rule 'block-drop-1': first"
    assert decision.error_code == ER_MYGUARD_BLOCKED
    assert decision.blocked


def test_approve_carries_approval_policy_and_mask_carries_specs():
    p = policy(PRECEDENCE)
    approve = p.decide(ctx(), "CREATE TABLE t (a INT)")
    assert approve.approval is not None and approve.approval.approver_groups == {"dba"}
    assert approve.error_code is None
    mask = p.decide(ctx(), "SELECT email FROM customers")
    assert mask.masks == (("shop.customers.email", MaskSpec("email")),)


def test_default_block_names_default():
    p = policy('[defaults]\naction = "block"\nmessage = "no"\n')
    decision = p.decide(ctx(), "SELECT 1")
    assert (decision.action, decision.rule, decision.message) == ("block", "default", "no")


def test_default_action_is_block_when_unset():
    assert policy("").decide(ctx(), "SELECT 1").action == "block"


def test_empty_request_takes_the_default():
    assert policy('[defaults]\naction = "allow"').decide(ctx(), "  ").action == "allow"


OBSERVE = """
[defaults]
action = "allow"
[[rules]]
name = "would-block-deletes"
mode = "observe"
action = "block"
message = "x"
when = { kinds = ["delete"] }
[[rules]]
name = "block-truncate"
action = "block"
message = "no"
when = { kinds = ["truncate"] }
"""


def test_observe_mode_records_without_enforcing():
    decision = policy(OBSERVE).decide(ctx(), "SELECT 1; DELETE FROM t WHERE id = 1")
    assert decision.action == "allow"
    assert [(h.rule, h.action, h.statement) for h in decision.observed] == [
        ("would-block-deletes", "block", 1)
    ]


def test_observe_hits_are_reported_alongside_a_real_block():
    decision = policy(OBSERVE).decide(ctx(), "DELETE FROM t WHERE id = 1; TRUNCATE t")
    assert decision.rule == "block-truncate"
    assert [h.rule for h in decision.observed] == ["would-block-deletes"]


IDENTITY = """
[defaults]
action = "allow"
[[rules]]
name = "office-only"
action = "block"
message = "m"
when = { kinds = ["write"], sources = ["10.0.0.0/8", "::1"], programs = ["metabase*"] }
[[rules]]
name = "by-attribute"
action = "block"
message = "m"
when = { kinds = ["select"], attributes = { "_client_name" = "libmysql", app = "etl-*" } }
[[rules]]
name = "by-user-backend"
action = "block"
message = "m"
when = { users = ["bob"], backends = ["replica"], environments = ["staging"] }
[[rules]]
name = "not-dba"
action = "block"
message = "m"
when = { not_groups = ["dba"], kinds = ["kill"] }
"""


@pytest.mark.parametrize(
    ("kwargs", "sql", "rule"),
    [
        ({"ip": "10.9.9.9", "program": "metabase-1.2"}, "DELETE FROM t WHERE a=1", "office-only"),
        (
            {"ip": "::ffff:10.9.9.9", "program": "metabase"},
            "DELETE FROM t WHERE a=1",
            "office-only",
        ),
        ({"ip": "::1", "program": "metabase"}, "INSERT INTO t VALUES (1)", "office-only"),
        ({"ip": "192.168.1.1", "program": "metabase"}, "DELETE FROM t WHERE a=1", "default"),
        ({"ip": "10.9.9.9", "program": "mysql"}, "DELETE FROM t WHERE a=1", "default"),
        ({"ip": "not-an-ip", "program": "metabase"}, "DELETE FROM t WHERE a=1", "default"),
        ({"attributes": {"_client_name": "libmysql", "app": "etl-7"}}, "SELECT 1", "by-attribute"),
        ({"attributes": {"_client_name": "libmysql", "app": "web"}}, "SELECT 1", "default"),
        ({"attributes": {"app": "etl-7"}}, "SELECT 1", "default"),
        ({"user": "bob", "backend": "replica", "env": "staging"}, "SHOW TABLES", "by-user-backend"),
        ({"user": "bob", "backend": "main", "env": "staging"}, "SHOW TABLES", "default"),
        ({"user": "eve", "backend": "replica", "env": "staging"}, "SHOW TABLES", "default"),
        ({"groups": ["ops"]}, "KILL 3", "not-dba"),
        ({"groups": ["ops", "dba"]}, "KILL 3", "default"),
    ],
)
def test_identity_matching(kwargs, sql, rule):
    assert policy(IDENTITY).decide(ctx(**kwargs), sql).rule == rule


GLOBS = """
[defaults]
action = "allow"
[tags]
pii = ["shop.customers.ssn", "hr.*.salary"]
[[rules]]
name = "shop-writes"
action = "block"
message = "m"
when = { tables = ["shop.*"], kinds = ["dml"] }
[[rules]]
name = "any-audit"
action = "block"
message = "m"
when = { tables = ["*.audit*"] }
[[rules]]
name = "pii"
action = "block"
message = "m"
when = { tags = ["pii"] }
[[rules]]
name = "phone"
action = "block"
message = "m"
when = { columns = ["*.*.phone"] }
"""


@pytest.mark.parametrize(
    ("sql", "db", "rule"),
    [
        ("INSERT INTO orders VALUES (1)", "shop", "shop-writes"),
        ("INSERT INTO SHOP.Orders VALUES (1)", None, "shop-writes"),
        ("INSERT INTO orders VALUES (1)", "crm", "default"),
        ("SELECT * FROM crm.audit_log", "shop", "any-audit"),
        ("SELECT 1 FROM `Audit`", "crm", "any-audit"),
        ("SELECT ssn FROM customers", "shop", "pii"),
        ("SELECT ssn FROM customers", "crm", "default"),
        ("SELECT c.ssn FROM customers AS c", "shop", "pii"),
        ("SELECT salary FROM hr.staff", None, "pii"),
        ("SELECT name FROM hr.staff", None, "default"),
        ("SELECT * FROM hr.staff", None, "pii"),
        # Without a schema hook * may include a phone column.
        ("SELECT * FROM shop.orders", None, "phone"),
        ("SELECT id FROM shop.orders", None, "default"),
        # A whole database contains every table name: *.audit* matches before pii.
        ("DROP DATABASE hr", None, "any-audit"),
        ("SELECT phone FROM x.y", None, "phone"),
        ("SELECT ssn FROM customers c JOIN orders o ON o.c = c.id", "shop", "pii"),
    ],
)
def test_table_column_and_tag_globs(sql, db, rule):
    assert policy(GLOBS).decide(ctx(db=db), sql).rule == rule


def test_schema_hook_expands_select_star():
    columns = {("hr", "staff"): ["id", "name"], ("hr", "pay"): ["id", "salary"]}
    p = policy(GLOBS, schema=lambda db, table: columns.get((db, table)))
    assert p.decide(ctx(db=None), "SELECT * FROM hr.staff").rule == "default"
    assert p.decide(ctx(db=None), "SELECT * FROM hr.pay").rule == "pii"
    # Unknown to the schema: fall back to matching the table.
    assert p.decide(ctx(db=None), "SELECT * FROM hr.other").rule == "pii"


UNPARSED = """
[defaults]
action = "allow"
[[rules]]
name = "dba-may-run-anything"
action = "allow"
when = { groups = ["dba"], unparsed = true }
[[rules]]
name = "allow-everyone"
action = "allow"
when = { users = ["alice", "bob"] }
[[rules]]
name = "contractors-blocked"
action = "block"
message = "contractors are read-only"
when = { groups = ["contractors"] }
"""


@pytest.mark.parametrize(
    ("groups", "action", "rule"),
    [
        (["dba"], "allow", "dba-may-run-anything"),
        ([], "block", "unparsed"),
        (["contractors"], "block", "contractors-blocked"),
        (["dba", "contractors"], "block", "contractors-blocked"),
    ],
)
def test_unparsed_fails_closed_unless_a_rule_asks_for_it(groups, action, rule):
    decision = policy(UNPARSED).decide(ctx(groups=groups), "FROBNICATE THE DATABASE")
    assert (decision.action, decision.rule) == (action, rule)


def test_opaque_and_no_where_flags():
    p = policy(
        """
[defaults]
action = "allow"
[[rules]]
name = "opaque"
action = "block"
message = "m"
when = { opaque = true }
[[rules]]
name = "nowhere"
action = "block"
message = "m"
when = { no_where = true, tables = ["*.big"] }
"""
    )
    assert p.decide(ctx(), "CALL p()").rule == "opaque"
    assert p.decide(ctx(), "PREPARE s FROM 'CALL p()'").rule == "opaque"
    assert p.decide(ctx(), "DELETE FROM big").rule == "nowhere"
    assert p.decide(ctx(), "DELETE FROM small").rule == "default"
    assert p.decide(ctx(), "DELETE FROM big WHERE id = 1").rule == "default"


def test_decide_statements_uses_the_given_analysis():
    p = policy(PRECEDENCE)
    decision = p.decide_statements(ctx(), analyze("DROP TABLE t", "shop"))
    assert decision.rule == "block-drop-1"
    assert decision.statements[0].kind == "drop"


def test_cache_counts_hits_and_skips_literal_dependent_statements():
    p = policy(PRECEDENCE)
    p.decide(ctx(), "SELECT * FROM t WHERE id = 1")
    p.decide(ctx(), "SELECT * FROM t WHERE id = 2")
    assert (p.cache_hits, p.cache_misses) == (1, 1)
    # Same fingerprint, different inner SQL: PREPARE analyses are never cached.
    assert p.decide(ctx(), "PREPARE s FROM 'SELECT 1'").action == "allow"
    assert p.decide(ctx(), "PREPARE s FROM 'DROP TABLE t'").rule == "block-drop-1"
    assert len(p.cache) == 1


def test_an_unparsed_analysis_is_not_cached_for_its_shape():
    """The fingerprint erases a literal's form: a hex literal sqlglot cannot read in one
    place must not make the shape's readable statements unparsed, in any order."""
    p = policy(PRECEDENCE)
    hex_form = "SELECT id FROM t WHERE MATCH (b) AGAINST (0x78 IN BOOLEAN MODE)"
    string_form = "SELECT id FROM t WHERE MATCH (b) AGAINST ('x' IN BOOLEAN MODE)"
    assert p.decide(ctx(), hex_form).statements[0].unparsed
    assert p.decide(ctx(), string_form).statements[0].kind == "select"
    assert len(p.cache) == 1  # the readable one


def test_cache_is_keyed_by_current_database():
    p = policy(GLOBS)
    assert p.decide(ctx(db="shop"), "INSERT INTO orders VALUES (1)").rule == "shop-writes"
    assert p.decide(ctx(db="crm"), "INSERT INTO orders VALUES (1)").rule == "default"


def test_cache_is_bounded():
    p = policy(PRECEDENCE, cache_size=2)
    for table in ("a", "b", "c", "d"):
        p.decide(ctx(), f"SELECT * FROM {table}")
    assert len(p.cache) == 2
