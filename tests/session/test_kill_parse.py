"""Which KILL and SHOW EXPLAIN FOR statements myguard takes, and the id each names."""

import pytest

from myguard.analysis import analyze
from myguard.protocol.errors import (
    ER_KILL_DENIED_ERROR,
    ER_NOT_ALLOWED_COMMAND,
    ER_SET_CONSTANTS_ONLY,
    MySQLError,
)
from myguard.session.kill import ExplainFor, KillRequest, explain_for, on_backend, parse_kill


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


@pytest.mark.parametrize("sql", [b"KILL 5; SELECT SLEEP(0.05)", b"kill query 5 ; DO 1"])
def test_a_kill_with_statements_after_it_says_it_must_stand_alone(sql):
    with pytest.raises(MySQLError) as exc:
        parse_kill(sql, 77)
    assert exc.value.code == 1095 and "statement of its own" in exc.value.message


def test_not_a_kill():
    assert parse_kill(b"SELECT 1", 77) is None
    assert parse_kill(b"KILLER", 77) is None


KILLS = [
    "SELECT 1; KILL 304",
    "DO 1; KILL QUERY CONNECTION_ID()",
    "/*!KILL 304*/",
    "KILL 304",  # as a COM_STMT_PREPARE: the backend would run it
    "EXECUTE IMMEDIATE 'KILL 304'",
    "PREPARE s FROM 'KILL 304'",
    "EXECUTE IMMEDIATE CONCAT('KILL ', 304)",
    "BEGIN NOT ATOMIC KILL 304; END",
    "CREATE PROCEDURE p() KILL 304",
    "CREATE DEFINER = CURRENT_USER FUNCTION f() RETURNS INT BEGIN KILL 3; RETURN 1; END",
    "CREATE TRIGGER t BEFORE INSERT ON t1 FOR EACH ROW KILL 3",
    "CREATE EVENT e ON SCHEDULE EVERY 1 HOUR DO KILL 3",
    "ALTER EVENT e DO kill 3",
]
EXPLAINS_FOR = [
    "SHOW EXPLAIN FOR 10",
    "show explain format=json for 10",
    "SHOW ANALYZE FOR 10",
    "EXPLAIN FOR CONNECTION 10",
    "EXPLAIN FORMAT=JSON FOR CONNECTION 10",
    "ANALYZE FORMAT=JSON FOR CONNECTION 10",
    "DESCRIBE FOR CONNECTION 10",
]
EMBEDDED_EXPLAINS_FOR = [
    "SELECT 1; SHOW EXPLAIN FOR 10",
    "EXECUTE IMMEDIATE 'SHOW EXPLAIN FOR 10'",
    "PREPARE s FROM 'EXPLAIN FOR CONNECTION 10'",
    "BEGIN NOT ATOMIC SHOW EXPLAIN FOR 10; END",
]


@pytest.mark.parametrize(
    ("sql", "code", "says"),
    [(sql, ER_KILL_DENIED_ERROR, "statement of its own") for sql in KILLS]
    + [
        (sql, ER_NOT_ALLOWED_COMMAND, "other users' statements")
        for sql in EXPLAINS_FOR + EMBEDDED_EXPLAINS_FOR
    ],
)
def test_what_would_name_a_backend_thread_is_refused(sql, code, says):
    refused = on_backend(analyze(sql, "test"), sql)
    assert refused is not None and refused.code == code and says in refused.message


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'kill' AS word",
        "SELECT kill_count FROM t WHERE note = 'kill'",
        "CREATE PROCEDURE p() SELECT skill FROM t",
        "CALL p()",
        "EXECUTE IMMEDIATE CONCAT('SELECT ', 1)",
        "EXPLAIN SELECT * FROM t FOR UPDATE",
        "EXPLAIN SELECT 1",
        "SELECT 'show explain for 1'",
    ],
)
def test_the_words_elsewhere_name_no_thread(sql):
    assert on_backend(analyze(sql, "test"), sql) is None


@pytest.mark.parametrize(
    ("sql", "head", "session"),
    [
        ("SHOW EXPLAIN FOR 10", "SHOW EXPLAIN FOR ", 10),
        ("show explain format=json for ( 10 ) ;", "show explain format=json for ", 10),
        (
            "SHOW /* c */ ANALYZE FOR /* d */ 16777217",
            "SHOW /* c */ ANALYZE FOR /* d */ ",
            16777217,
        ),
        ("EXPLAIN FOR CONNECTION 10", "EXPLAIN FOR CONNECTION ", 10),
        ("EXPLAIN FORMAT=JSON FOR CONNECTION 10", "EXPLAIN FORMAT=JSON FOR CONNECTION ", 10),
        ("DESC FOR CONNECTION 10", "DESC FOR CONNECTION ", 10),
    ],
)
def test_a_lone_show_explain_for_is_mapped_not_refused(sql, head, session):
    """Sent as a statement of its own, SHOW EXPLAIN FOR names a session of this proxy: the
    slow path sends it with that session's backend thread instead."""
    statements = analyze(sql, "test")
    found = explain_for(statements, sql)
    assert found is not None and found.head == head and found.session_id() == session
    assert found.on_thread(42) == head + "42"
    assert on_backend(statements, sql, maps_explain=True) is None
    refused = on_backend(statements, sql)  # a COM_STMT_PREPARE of it, say
    assert refused is not None and refused.code == ER_NOT_ALLOWED_COMMAND


@pytest.mark.parametrize("sql", EMBEDDED_EXPLAINS_FOR)
def test_show_explain_for_among_other_text_is_refused_even_where_mapped(sql):
    statements = analyze(sql, "test")
    assert explain_for(statements, sql) is None
    refused = on_backend(statements, sql, maps_explain=True)
    assert refused is not None and refused.code == ER_NOT_ALLOWED_COMMAND


@pytest.mark.parametrize("target", ["1+1", "CONNECTION_ID()", "@id", "(SELECT 1)", "-1", "x"])
def test_show_explain_for_takes_a_number_as_the_server_does(target):
    with pytest.raises(MySQLError) as exc:
        ExplainFor("SHOW EXPLAIN FOR ", target).session_id()
    assert exc.value.code == ER_SET_CONSTANTS_ONLY and "constant expressions" in exc.value.message


def test_the_id_is_read_from_the_text_not_from_an_analysis_of_its_shape():
    """The analysis of a statement is cached by its shape, literals and all: the id of
    another SHOW EXPLAIN FOR of the same shape is not the one in the analysis."""
    found = explain_for(analyze("SHOW EXPLAIN FOR 10", "test"), "SHOW EXPLAIN FOR 11")
    assert found is not None and found.session_id() == 11


@pytest.mark.parametrize(
    ("shape", "sql"),
    [
        ("EXECUTE IMMEDIATE CONCAT('SELECT ', 1)", "EXECUTE IMMEDIATE CONCAT('KILL ', 5)"),
        (
            "BEGIN NOT ATOMIC EXECUTE IMMEDIATE 'SELECT 1'; END",
            "BEGIN NOT ATOMIC EXECUTE IMMEDIATE 'KILL 5'; END",
        ),
        (
            "EXECUTE IMMEDIATE CONCAT('SELECT ', 1)",
            "EXECUTE IMMEDIATE CONCAT('SHOW EXPLAIN FOR ', 5)",
        ),
    ],
)
def test_hidden_words_are_read_in_the_text_not_in_an_analysis_of_its_shape(shape, sql):
    """The analysis cached for a harmless text of the same shape stands for ``sql``."""
    assert on_backend(analyze(shape, "test"), shape) is None
    refused = on_backend(analyze(shape, "test"), sql)
    assert refused is not None and refused.code in (ER_KILL_DENIED_ERROR, ER_NOT_ALLOWED_COMMAND)


def test_a_kill_in_a_comment_of_hidden_text_is_no_kill():
    sql = "BEGIN NOT ATOMIC /* kill it */ SELECT 1; END"
    assert on_backend(analyze(sql, "test"), sql) is None
