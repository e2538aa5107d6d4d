"""``process_list.with_rows``: where information_schema.PROCESSLIST is read, myguard's rows
take its place; where it is only named for a column or a type, the text stays valid."""

from __future__ import annotations

import pytest

from myguard.session.process_list import (
    refusal,
    state_query,
    unreachable,
    with_backend_states,
    with_rows,
)

ROWS = [
    {"Id": 7, "User": "carol", "Host": "h", "db": None, "Command": "Query", "Time": 0,
     "State": "", "Info": "SELECT 1"},
]  # fmt: skip


def derived() -> str:
    return with_rows("FROM information_schema.PROCESSLIST p", ROWS, None)[len("FROM ") : -2]


def test_a_read_is_replaced_by_the_derived_table():
    out = with_rows("SELECT ID FROM information_schema.PROCESSLIST WHERE ID = 7", ROWS, None)
    assert out == f"SELECT ID FROM {derived()} AS PROCESSLIST WHERE ID = 7"
    assert derived().startswith("(SELECT CAST(0 AS UNSIGNED) AS ID, ")
    assert b"carol".hex() in out  # the rows given, not the backend's


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "SELECT information_schema.PROCESSLIST.ID FROM information_schema.PROCESSLIST",
            "SELECT PROCESSLIST.ID FROM {t} AS PROCESSLIST",
        ),
        (
            "SELECT `information_schema`.`processlist`.`info` FROM INFORMATION_SCHEMA.processlist",
            "SELECT `processlist`.`info` FROM {t} AS PROCESSLIST",
        ),
    ],
)
def test_a_column_named_through_the_schema_names_the_derived_table(sql, expected):
    assert with_rows(sql, ROWS, None) == expected.format(t=derived())


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE PROCEDURE p1() BEGIN DECLARE v TYPE OF INFORMATION_SCHEMA.PROCESSLIST.INFO;"
        " SELECT v; END",
        "CREATE PROCEDURE p1() BEGIN DECLARE r ROW TYPE OF information_schema.processlist;"
        " SELECT 1; END",
    ],
)
def test_a_type_anchor_reads_no_rows_and_stays(sql):
    assert with_rows(sql, ROWS, None) == sql


@pytest.mark.parametrize(
    ("sql", "refused"),
    [
        ("SELECT * FROM information_schema.PROCESSLIST", False),
        ("PREPARE s FROM 'SHOW PROCESSLIST'", True),
        ("execute immediate 'select * from information_schema.processlist'", True),
        ("CREATE VIEW v AS SELECT * FROM information_schema.processlist", True),
        ("CREATE PROCEDURE p() BEGIN DECLARE v TYPE OF information_schema.PROCESSLIST.INFO;"
         " SELECT v; END", False),
    ],
)  # fmt: skip
def test_what_the_rewrite_cannot_reach_is_named(sql, refused):
    assert (unreachable(sql) is not None) == refused


@pytest.mark.parametrize(
    ("sql", "current_db", "refused"),
    [
        ("SELECT * FROM information_schema.PROCESSLIST", None, True),
        ("SELECT * FROM `information_schema` . /* c */ `processlist`", None, True),
        ("SELECT information_schema.processlist.info FROM t", None, True),
        ("SHOW FULL PROCESSLIST", None, True),
        ("SELECT * FROM processlist", "information_schema", True),
        ("SELECT * FROM processlist", "shop", False),  # a table of the client's own
        ("SELECT 'processlist' AS word", None, False),
        ("CREATE PROCEDURE p() BEGIN DECLARE v TYPE OF information_schema.PROCESSLIST.INFO;"
         " SELECT v; END", None, False),
    ],
)  # fmt: skip
def test_a_prepared_statement_is_refused_when_it_reads_the_list(sql, current_db, refused):
    error = refusal(sql, prepared=True, current_db=current_db)
    assert (error is not None) == refused
    assert error is None or "text queries only" in error.message


def listed(id_: int, state: str, backend: str | None, thread: int | None) -> dict:
    return {"Id": id_, "User": "u", "State": state, "Backend": backend, "Thread": thread}


SESSIONS = [
    listed(1, "executing", "main", 41),  # the asking session
    listed(2, "executing", "main", 42),
    listed(3, "", "main", 43),  # idle: myguard knows it waits for nothing
    listed(4, "waiting for approval 9", "main", 44),  # held by myguard, not on the backend
    listed(5, "executing", "other", 42),  # another server's thread 42
    listed(6, "executing", "main", None),  # between backend connections
    listed(7, "executing", "main", 47),
]


def test_backend_states_are_asked_for_busy_sessions_on_the_same_backend_by_thread():
    assert state_query(SESSIONS, "main", 1) == (
        "SELECT ID, STATE FROM information_schema.PROCESSLIST WHERE ID IN (42, 47)"
    )
    assert state_query(SESSIONS[:1], "main", 1) is None
    assert state_query(SESSIONS, "nowhere", 1) is None


def test_a_busy_session_takes_its_threads_state_unless_the_backend_reports_none():
    found = [["42", "User lock"], ["47", ""], ["43", "Sleep"], ["44", "x"]]
    states = [r["State"] for r in with_backend_states(SESSIONS, "main", found)]
    assert states == [
        "executing", "User lock", "", "waiting for approval 9", "executing", "executing",
        "executing",
    ]  # fmt: skip
    assert SESSIONS[1]["State"] == "executing"  # the rows given are left as they were
