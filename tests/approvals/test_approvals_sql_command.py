import pytest
from hypothesis import given
from hypothesis import strategies as st

from myguard.approvals.errors import ER_MYGUARD_COMMAND_SYNTAX, MyguardCommandSyntax
from myguard.approvals.sql_command import MyguardCommand, parse_myguard_command


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("MYGUARD APPROVE 17", MyguardCommand("approve", 17)),
        ("myguard approve 17;", MyguardCommand("approve", 17)),
        ("  MyGuard\n\tApprove   17  ;; ", MyguardCommand("approve", 17)),
        ("MYGUARD APPROVE 17 REASON 'ticket OPS-1'", MyguardCommand("approve", 17, "ticket OPS-1")),
        ("MYGUARD APPROVE 3 reason 'it''s fine'", MyguardCommand("approve", 3, "it's fine")),
        ('MYGUARD APPROVE 3 REASON "say \\"hi\\""', MyguardCommand("approve", 3, 'say "hi"')),
        ("MYGUARD DENY 8 REASON 'use\\nbatches'", MyguardCommand("deny", 8, "use\nbatches")),
        ("MYGUARD DENY 8 REASON 'x; DROP TABLE t'", MyguardCommand("deny", 8, "x; DROP TABLE t")),
        ("myguard approvals", MyguardCommand("list")),
        ("MYGUARD APPROVALS;", MyguardCommand("list")),
        ("MYGUARD SHOW APPROVAL 9", MyguardCommand("show", 9)),
        ("/* from the ui */ MYGUARD SHOW APPROVAL 9", MyguardCommand("show", 9)),
        ("-- note\nMYGUARD APPROVALS", MyguardCommand("list")),
        ("SELECT 1", None),
        ("SELECT 'MYGUARD APPROVE 1'", None),
        ("UPDATE myguard SET x = 1", None),
        ("INSERT INTO t VALUES ('MYGUARD APPROVE 1')", None),
        ("myguard_approvals", None),
        ("MYGUARDS APPROVE 1", None),
        ("", None),
    ],
)
def test_parse(sql, expected):
    assert parse_myguard_command(sql) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "MYGUARD",
        "MYGUARD APPROVE",
        "MYGUARD APPROVE x",
        "MYGUARD APPROVE 1 2",
        "MYGUARD DENY 4",
        "MYGUARD DENY 4 REASON unquoted",
        "MYGUARD APPROVE 4 REASON 'unterminated",
        "MYGUARD SHOW APPROVALS",
        "MYGUARD APPROVE 1; SELECT 1",
    ],
)
def test_malformed_myguard_commands_raise_usage(sql):
    with pytest.raises(MyguardCommandSyntax) as raised:
        parse_myguard_command(sql)
    assert raised.value.code == ER_MYGUARD_COMMAND_SYNTAX
    assert raised.value.message.startswith("MYGUARD_COMMAND_SYNTAX usage:")


@given(st.text())
def test_ordinary_sql_is_never_taken_for_a_command(text):
    for sql in (
        f"SELECT {text}",
        f"INSERT INTO t VALUES ({text!r})",
        f"/* {text.replace('*/', '')} */ SELECT 1",
    ):
        assert parse_myguard_command(sql) is None
