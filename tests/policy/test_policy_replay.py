"""``myguard rules replay``: recorded statements decided again by a proposed rules file."""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from myguard.audit import (
    AuditWriter,
    iter_records,
    login_record,
    statement_intent_record,
    statement_record,
)
from myguard.policy.cli import add_commands
from myguard.policy.engine import Policy
from myguard.policy.replay import (
    ESTIMATE,
    NOT_DECIDED,
    TRUNCATED,
    recorded_context,
    replay,
)

NEW_RULES = """
[defaults]
action = "allow"

[[rules]]
name = "no-orders"
action = "block"
message = "orders are for the sales team"
[rules.when]
groups = ["analysts"]
tables = ["shop.orders"]

[[rules]]
name = "no-bi-tools-in-production"
action = "block"
message = "use the replica"
[rules.when]
environments = ["production"]
programs = ["tableau*"]

[[rules]]
name = "office-network-only"
action = "block"
message = "connect from the office"
[rules.when]
sources = ["192.168.0.0/16"]

[[rules]]
name = "no-revoked-tickets"
action = "block"
message = "the ticket was revoked"
[rules.when]
backends = ["sandbox"]
attributes = { ticket = "BAD-*" }
"""

NOW = time.time()
LAST_WEEK = NOW - 8 * 86400


def statement(user, sql, *, decision="allow", rule="default", at=None, **context):
    fields = {
        "groups": ["analysts"],
        "environment": "production",
        "backend": "primary",
        "source_address": "10.1.2.3",
        "client_program": "mysql",
        "database": "shop",
        **context,
    }
    if "client_attributes" not in fields:
        fields["client_attributes"] = {"program_name": fields["client_program"]}
    return statement_record(
        user=user, statement=sql, decision=decision, rule=rule, at=at or time.time(), **fields
    )


def write(directory: Path, records) -> None:
    async def run() -> None:
        writer = await AuditWriter.open(directory, fsync="off")
        for record in records:
            await writer.write(record)
        await writer.close()

    asyncio.run(run())


@pytest.fixture
def trail(tmp_path):
    """Two worker chains, 11 statements. 8 change: bob's 4 on orders are blocked (one
    names the table only through the recorded database, one is 8 days old), dave's BI
    tool, eve's network and frank's connection attribute are blocked, carol's old block
    is lifted. bob on customers, alice (dba) and dave on staging stay allowed."""
    root = tmp_path / "audit"
    write(
        root / "worker-0",
        [
            statement("bob", "SELECT * FROM shop.orders", at=LAST_WEEK),
            login_record(success=True, user="bob"),
            statement("bob", "SELECT * FROM orders"),  # unqualified: resolved with database
            statement("bob", "SELECT id FROM shop.orders WHERE id = 1"),
            statement("bob", "SELECT * FROM customers"),
            statement_intent_record(user="bob", statement="SELECT * FROM orders", decision="allow"),
            statement("alice", "SELECT * FROM orders", groups=["dba"]),
        ],
    )
    write(
        root / "worker-1",
        [
            statement("bob", "UPDATE orders SET paid = 1 WHERE id = 2"),
            statement(
                "carol",
                "DELETE FROM shop.customers WHERE id = 1",
                decision="block",
                rule="no-deletes",
                groups=["dba"],
            ),
            statement("dave", "SELECT 1", groups=[], client_program="tableau-desktop"),
            statement(
                "dave", "SELECT 1", groups=[], client_program="tableau", environment="staging"
            ),
            statement("eve", "SELECT 1", groups=[], source_address="192.168.1.5"),
            statement(
                "frank",
                "SELECT 1",
                groups=[],
                backend="sandbox",
                client_attributes={"ticket": "BAD-7"},
            ),
        ],
    )
    return root


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "new-rules.toml"
    path.write_text(NEW_RULES)
    return path


def test_recorded_context_carries_every_field(trail):
    record = next(r for r in iter_records(trail) if r.type == "statement")
    ctx = recorded_context(record)
    assert (ctx.user, ctx.groups, ctx.environment, ctx.backend) == (
        "bob",
        frozenset({"analysts"}),
        "production",
        "primary",
    )
    assert (ctx.source_ip, ctx.program, ctx.current_db) == ("10.1.2.3", "mysql", "shop")
    assert ctx.attributes == {"program_name": "mysql"}


def test_replay_counts_by_rule_and_transition(trail, rules_file):
    report = replay(iter_records(trail), Policy.load(rules_file))
    assert report.statements == 11
    assert dict(report.by_rule) == {
        ("no-orders", "block", "bob"): 4,
        ("no-bi-tools-in-production", "block", "dave"): 1,
        ("office-network-only", "block", "eve"): 1,
        ("no-revoked-tickets", "block", "frank"): 1,
        ("default", "allow", "carol"): 1,
    }
    assert dict(report.transitions) == {
        ("allow", "allow"): 3,
        ("allow", "block"): 7,
        ("block", "allow"): 1,
    }
    carol = next(d for d in report.differences if d.record.get("user") == "carol")
    assert (carol.old_action, carol.old_rule, carol.new_action, carol.new_rule) == (
        "block",
        "no-deletes",
        "allow",
        "default",
    )

    since = replay(iter_records(trail, NOW - 7 * 86400), Policy.load(rules_file), user="bob")
    assert since.statements == 4
    assert dict(since.by_rule) == {("no-orders", "block", "bob"): 3}


def run(*argv: str) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="myguard")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    out = io.StringIO()
    return args.func(args, out), out.getvalue()


def test_replay_summary(trail, rules_file):
    code, out = run(
        "rules", "replay", "--audit", str(trail), "--rules", str(rules_file), "--since", "7d"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        f"10 statement(s) in the last 7 days replayed against {rules_file}: "
        "7 would be decided differently"
    )
    assert (
        lines[1] == "rule 'no-orders' would have blocked 3 statements of bob's in the last 7 days"
    )
    assert "rule 'default' would have allowed 1 statement of carol's in the last 7 days" in lines
    assert "recorded -> replayed decision:" in lines
    assert [line.split() for line in lines[-3:]] == [
        ["allow", "->", "allow", "3"],
        ["allow", "->", "block", "6"],
        ["block", "->", "allow", "1"],
    ]


def test_replay_json(trail, rules_file):
    code, out = run(
        "rules", "replay", "--audit", str(trail), "--rules", str(rules_file), "--user", "bob",
        "--json",
    )  # fmt: skip
    assert code == 0
    data = json.loads(out)
    assert (data["statements"], data["differing"], data["period"]) == (5, 4, "in the audit trail")
    assert data["by_rule"] == [
        {"rule": "no-orders", "decision": "block", "user": "bob", "count": 4}
    ]
    assert data["transitions"] == [
        {"recorded": "allow", "replayed": "allow", "count": 1},
        {"recorded": "allow", "replayed": "block", "count": 4},
    ]
    first = data["differences"][0]
    assert first["statement"] == "SELECT * FROM shop.orders"  # the oldest first
    assert first["recorded"] == {"decision": "allow", "rule": "default"}
    assert first["replayed"] == {"decision": "block", "rule": "no-orders"}
    assert (first["chain"], first["database"], first["groups"]) == (
        "worker-0",
        "shop",
        ["analysts"],
    )
    assert {d["chain"] for d in data["differences"]} == {"worker-0", "worker-1"}


def test_bad_input_exits_2_or_1(trail, rules_file, tmp_path, capsys):
    bad_rules = tmp_path / "bad.toml"
    bad_rules.write_text('[[rules]]\nname = "x"\naction = "explode"\n')
    cases = [
        (2, ["--audit", str(trail), "--rules", str(bad_rules)]),
        (1, ["--audit", str(tmp_path / "missing"), "--rules", str(rules_file)]),
        (2, ["--audit", str(trail), "--rules", str(rules_file), "--since", "last tuesday"]),
        (1, ["--rules", str(rules_file)]),
    ]
    for expected, argv in cases:
        code, out = run("rules", "replay", *argv)
        assert (code, out) == (expected, ""), argv
        assert capsys.readouterr().err.startswith("myguard: error: ")


def test_replay_through_the_real_cli(trail, rules_file, tmp_path):
    config = tmp_path / "myguard.toml"
    config.write_text(
        'rules_file = "rules.toml"\n\n[audit]\ndirectory = "audit"\n'
        '\n[[backends]]\nname = "p"\nenvironment = "production"\nlisten = "127.0.0.1:3307"\n'
        'upstream = "127.0.0.1:3306"\nuser = "proxy"\npassword_env = "MYGUARD_UNSET_PASSWORD"\n'
    )
    base = [sys.executable, "-m", "myguard", "rules", "replay", "--rules", str(rules_file)]
    result = subprocess.run(
        [*base, "--audit", str(trail), "--since", "7d"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "rule 'no-orders' would have blocked 3 statements of bob's in the last 7 days" in (
        result.stdout
    )
    result = subprocess.run(
        [*base, "--config", str(config), "--json", "--user", "eve"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (difference,) = json.loads(result.stdout)["differences"]
    assert difference["user"] == "eve" and difference["replayed"]["rule"] == "office-network-only"
    result = subprocess.run([*base, "--audit", str(tmp_path / "nope")], capture_output=True)
    assert result.returncode == 1


# -- deciding as the session did ---------------------------------------------------------

SESSION_RULES = """
[defaults]
action = "allow"

[tags]
pii = ["shop.customers.email"]

[[rules]]
name = "unparsed-in-development"
action = "allow"
[rules.when]
environments = ["development"]
unparsed = true

[[rules]]
name = "mask-pii-for-analysts"
action = "mask"
[rules.when]
groups = ["analysts"]
tags = ["pii"]
[rules.mask]
pii = "redact"

[[rules]]
name = "no-orders-for-carol"
action = "block"
message = "not for carol"
[rules.when]
users = ["carol"]
tables = ["shop.orders"]

[[rules]]
name = "big-deletes"
action = "approve"
[rules.when]
kinds = ["delete"]
rows_over = 100
[rules.approval]
approver_groups = ["dba"]
"""


def decided(user, sql, decision, rule, **context):
    """A record as the session writes it: with the decision's kind."""
    return statement(user, sql, decision=decision, rule=rule, **context)


def test_an_identity_with_masking_has_every_allowed_statement_masked():
    policy = Policy.from_text(SESSION_RULES)
    records = [
        decided("bob", "SELECT id FROM orders", "mask", "mask-pii-for-analysts", kind="select"),
        decided("bob", "SET NAMES utf8mb4", "mask", "mask-pii-for-analysts", kind="set"),
        decided("carol", "SELECT email FROM customers", "allow", "default", groups=[]),
    ]
    report = replay(records, policy)
    assert (report.statements, report.differences) == (3, [])
    # Without the mask rule, bob's statements are allowed: real differences.
    unmasked = Policy.from_text(SESSION_RULES.replace('groups = ["analysts"]', 'groups = ["x"]'))
    assert dict(replay(records, unmasked).transitions) == {
        ("mask", "allow"): 2,
        ("allow", "allow"): 1,
    }


def test_text_the_session_read_as_unparsed_is_decided_as_unparsed():
    """``SELECT "email" ...`` under ANSI_QUOTES: parsable by myguard, refused by the session."""
    policy = Policy.from_text(SESSION_RULES)
    records = [
        # An identity with masking: refused outright.
        decided("bob", 'SELECT "email" FROM customers', "block", "unparsed", kind="unparsed"),
        # Allowed as unparsed in development, not masked: carol has no mask rule.
        decided(
            "carol", 'SELECT "x"', "allow", "unparsed-in-development", kind="unparsed",
            groups=[], environment="development",
        ),
        # myguard cannot parse it either: decided the ordinary way.
        decided("carol", "SELEC 1", "block", "unparsed", kind="unparsed", groups=[]),
    ]  # fmt: skip
    report = replay(records, policy)
    assert (report.statements, report.differences) == (3, [])
    assert dict(report.transitions) == {("block", "block"): 2, ("allow", "allow"): 1}


def test_records_that_cannot_be_decided_again_are_counted_apart():
    policy = Policy.from_text(SESSION_RULES)
    records = [
        # An EXECUTE of an unknown statement id: no decision was made.
        statement("carol", "", decision="allow", rule=None, groups=[]),
        decided("carol", "SELECT 1, '" + "x" * 70_000 + "'", "allow", "default", groups=[]),
        # Held because EXPLAIN estimated more than 100 rows: the estimate is not recorded.
        decided("alice", "DELETE FROM shop.t WHERE id > 1", "approve", "big-deletes"),
    ]
    records[1].data["q"] = records[1].data["q"][:65536] + "... [3505 more characters]"
    report = replay(records, policy)
    assert report.statements == 0 and not report.differences
    assert [(u.record.get("user"), u.reason) for u in report.unreplayable] == [
        ("carol", NOT_DECIDED),
        ("carol", TRUNCATED),
        ("alice", ESTIMATE),
    ]
    # A rule that holds the DELETE whatever the estimate: decided again after all.
    certain = Policy.from_text(SESSION_RULES.replace("rows_over = 100", 'tables = ["shop.t"]'))
    assert replay(records[2:], certain).transitions == {("approve", "approve"): 1}


def test_a_use_among_other_statements_is_decided_in_the_database_it_arrived_in():
    """The record's database is the one the statement arrived in, before its USE."""
    policy = Policy.from_text(SESSION_RULES)
    context = {"groups": [], "session_id": "7"}
    both = decided(
        "carol", "SELECT * FROM orders; USE test", "block", "no-orders-for-carol",
        database="shop", kind="select,use", **context,
    )  # fmt: skip
    use = decided("carol", "USE test", "allow", "default", database="test", kind="use", **context)
    report = replay([both, use], policy)
    assert (report.statements, report.differences, report.unreplayable) == (2, [], [])


def test_the_summary_names_what_was_not_decided_again(tmp_path):
    write(
        tmp_path / "audit",
        [
            statement("carol", "", decision="allow", rule=None),
            statement("carol", "SELECT 1"),
        ],
    )
    rules = tmp_path / "rules.toml"
    rules.write_text(SESSION_RULES)
    code, out = run("rules", "replay", "--audit", str(tmp_path / "audit"), "--rules", str(rules))
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("1 statement(s) in the audit trail replayed against ")
    assert lines[1:3] == [
        "1 statement(s) could not be decided again:",
        f"         1  {NOT_DECIDED}",
    ]
    code, out = run(
        "rules", "replay", "--audit", str(tmp_path / "audit"), "--rules", str(rules), "--json"
    )
    data = json.loads(out)
    assert data["not_replayed"] == 1
    assert data["not_replayed_by_reason"] == [{"reason": NOT_DECIDED, "count": 1}]
    assert data["not_replayed_statements"][0]["recorded"] == {"decision": "allow", "rule": None}
