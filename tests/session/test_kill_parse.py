"""Which KILL statements myguard takes, and the id each names."""

import pytest

from myguard.protocol.errors import MySQLError
from myguard.session.kill import KillRequest, parse_kill


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (b"KILL 12", KillRequest(12, False)),
        (b"kill query 12;", KillRequest(12, True)),
        (b"KILL HARD CONNECTION 7", KillRequest(7, False)),
        (b"KILL 1+1", KillRequest(2, False)),
        (b"KILL QUERY (3 * 4) - 2", KillRequest(10, True)),
        (b"KILL CONNECTION_ID()", KillRequest(77, False)),
        (b"KILL QUERY connection_id ( ) + 1", KillRequest(78, True)),
        (b"KILL -1", KillRequest((1 << 64) - 1, False)),  # as the server reads it
    ],
)
def test_the_id_is_worked_out(sql, expected):
    assert parse_kill(sql, 77) == expected


@pytest.mark.parametrize(
    "sql",
    [
        b"KILL USER alice",  # other users' sessions share the service account
        b"KILL QUERY ID 5",
        b"KILL (SELECT secret FROM t)",  # would run SQL outside the rules
        b"KILL @x",
        b"KILL 'abc'",
        b"KILL 2**64",
        b"KILL 1 / 0",
        b"KILL " + b"(" * 300 + b"1" + b")" * 300,
        b"KILL " + b"1*" * 99 + b"1",
        b"KILL ",
    ],
)
def test_other_forms_are_refused(sql):
    with pytest.raises(MySQLError) as exc:
        parse_kill(sql, 77)
    assert exc.value.code == 1095


def test_not_a_kill():
    assert parse_kill(b"SELECT 1", 77) is None
    assert parse_kill(b"KILLER", 77) is None
