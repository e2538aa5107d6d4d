"""Node's mysql2 (pinned in package.json) through myguard, compared with MariaDB directly.

Each scenario of mysql2_scenarios.js runs once against MariaDB as the service account and
once through myguard as alice: values, column descriptions (FieldPacket), OK counts and
errors must be identical. Masking (bob) and the guardrails are myguard's own and checked
against their concrete values.
"""

from __future__ import annotations

from typing import Any

import pytest
from clients_e2e_tools import (
    BLOCKED_MESSAGE,
    EMAILS,
    LONG_TEXT,
    MASKED_EMAILS,
    as_user,
    compare,
    ends,
)


def rows_of(result: dict[str, Any]) -> list[dict[str, Any]]:
    return result["rows"]


def names(result: dict[str, Any]) -> list[str]:
    return [f["name"] for f in result["fields"]]


# -- connecting -----------------------------------------------------------------------------


def test_connect_and_session_state(mysql2, proxy, mariadb, tls):
    proxy_end, direct_end = ends(proxy, mariadb, tls)
    direct = mysql2.run("session", direct_end)
    through = mysql2.run("session", proxy_end)
    assert (through["tls"], through["authorized"]) == {
        "plain": (False, None),
        "tls-ca": (True, True),  # verified against myguard's certificate and 127.0.0.1
        "tls-trust": (True, False),
    }[tls]
    assert direct["tls"] is False
    assert through["query"] == direct["query"]
    assert rows_of(direct["query"]) == [
        {
            "two": 2,
            "db": "test",
            "cs_client": "utf8mb4",
            "cs_results": "utf8mb4",
            "coll": "utf8mb4_unicode_ci",
            "ac": 1,
            "tx": 0,
        }
    ]


def access_denied(user: str) -> dict[str, Any]:
    return {
        "errno": 1045,
        "sqlState": "28000",
        "code": "ER_ACCESS_DENIED_ERROR",
        "message": f"Access denied for user '{user}'@'127.0.0.1' (using password: YES)",
    }


def test_wrong_password_over_tls_is_access_denied(mysql2, proxy, mariadb):
    proxy_end, direct_end = ends(proxy, mariadb, "tls-ca")
    direct = mysql2.run("login", as_user(direct_end, direct_end.user, "wrong-pw"))
    through = mysql2.run("login", as_user(proxy_end, "alice", "wrong-pw"))
    assert direct == {"error": access_denied(direct_end.user)}
    assert through == {"error": access_denied("alice")}
    assert mysql2.run("login", proxy_end) == {"connected": True}  # clears the failure count


def test_wrong_password_without_tls_is_access_denied(mysql2, proxy, mariadb):
    proxy_end, direct_end = ends(proxy, mariadb)
    direct = mysql2.run("login", as_user(direct_end, direct_end.user, "wrong-pw"))
    assert direct == {"error": access_denied(direct_end.user)}
    try:
        through = mysql2.run("login", as_user(proxy_end, "alice", "wrong-pw"))
    finally:
        assert mysql2.run("login", proxy_end) == {"connected": True}
    assert through == {"error": access_denied("alice")}


@pytest.mark.parametrize(("scenario", "table"), [("types", "n2_ctypes"), ("prepared", "n2_cprep")])
def test_compressed_protocol(mysql2, proxy, mariadb, scenario, table):
    """compress: true, text rows and prepared statements exactly as MariaDB answers them
    compressed."""
    out = compare(mysql2.run, *ends(proxy, mariadb), scenario, table=table, compress=True)
    assert out


def test_ignore_space_on_every_connection(mysql2, proxy, mariadb):
    out = compare(mysql2.run, *ends(proxy, mariadb), "ignoreSpace")
    # Each connection: IGNORE_SPACE in @@sql_mode, and COUNT (*) read as the function.
    assert [(o["ignoreSpace"], rows_of(o["count"]["ok"])) for o in out] == [(1, [{"n": 9}])] * 3


def test_a_koi8r_client_is_read_in_its_character_set(mysql2, proxy, mariadb):
    """A KOI8-R client's statement was read as UTF-8: the audit trail recorded replacement
    characters for its Cyrillic literal and names. Now they are read in KOI8-R, for an
    identity with masking (bob) too, and the result is the direct one."""
    proxy_end, direct_end = ends(proxy, mariadb)
    out = compare(mysql2.run, proxy_end, direct_end, "koi8r")
    assert rows_of(out) == [{"greeting": "Привет, мир", "len": 6, "число": 7}]
    assert mysql2.run("koi8r", as_user(proxy_end, "bob", "bob-pw-2")) == out
    texts = [r["statement"] for r in proxy.audit_records() if r.type == "statement"]
    assert any("'Привет, мир'" in t and "число" in t for t in texts)


# -- column types, text and binary protocol -------------------------------------------------


def test_column_types_and_nulls(mysql2, proxy, mariadb, tls):
    table = f"n2_types_{tls.replace('-', '_')}"
    out = compare(mysql2.run, *ends(proxy, mariadb, tls), "types", table=table)
    text, binary = out["text"], out["binary"]
    assert (
        names(text)
        == names(binary)
        == [
            *("id", "ti", "iu", "bi", "biu", "de", "dbl", "fl", "da", "dt", "ts", "tm", "yr"),
            *("ch", "vc", "tx", "bl", "vb", "bt", "en", "st", "js", "end_marker"),
        ]
    )
    assert [f["table"] for f in text["fields"][:-1]] == [table] * 22
    types = [f["type"] for f in text["fields"]]
    # LONG, TINY, LONG, LONGLONG x2, NEWDECIMAL, DOUBLE, FLOAT, DATE, DATETIME, TIMESTAMP,
    # TIME, YEAR, STRING, VAR_STRING, BLOB x2, VAR_STRING, BIT, STRING x2, BLOB (json),
    # VAR_STRING
    assert types[:19] == [3, 1, 3, 8, 8, 246, 5, 4, 10, 12, 7, 11, 13, 254, 253, 252, 252, 253, 16]
    assert types[19:] == [254, 254, 252, 253]
    first = {
        "id": 1,
        "ti": -128,
        "iu": 4294967295,
        "bi": "-9223372036854775808",
        "biu": "18446744073709551615",
        "de": "12345678901234.567891",
        "dbl": 2.5,
        "fl": -1.25,
        "da": {"date": "2024-02-29T00:00:00.000Z"},
        "dt": {"date": "2024-02-29T13:14:15.123Z"},
        "ts": {"date": "2001-09-09T01:46:40.999Z"},
        "tm": "-838:59:59.99",
        "yr": 2155,
        "ch": "abcd",
        "vc": "Grüße 😀 漢字",
        "tx": LONG_TEXT,
        "bl": {"hex": "00ff7f80"},
        "vb": {"hex": "000102"},
        "bt": {"hex": "a5"},
        "en": "b",
        "st": "x,y",
        "js": {"a": [1, None], "ü": "✓"},
        "end_marker": "end",
    }
    assert rows_of(text)[0] == first
    assert rows_of(binary)[0] == first
    second = rows_of(text)[1]
    assert (second["bi"], second["biu"], second["de"], second["dbl"]) == (
        "9223372036854775807",
        0,
        "-0.000001",
        -1e300,
    )
    assert (second["tm"], second["vc"], second["bl"], second["js"]) == (
        "00:00:00.00",
        "",
        {"hex": ""},
        [],
    )
    for result in (text, binary):
        third = rows_of(result)[2]
        assert third["id"] == 3 and third["end_marker"] == "end"
        assert all(third[n] is None for n in names(result)[1:-1])
    literals = rows_of(out["literals"])
    assert literals == [
        {
            "n": None,
            "dec_lit": "-1.5",
            "dbl_lit": 2.5,
            "bin": {"hex": "00ff"},
            "umax": "18446744073709551615",
            "emoji": "🎉",
            "neg_time": "-01:02:03.25",
            "null_date": None,
            "列": "列",
        }
    ]


# -- prepared statements -----------------------------------------------------------------


def test_prepared_statements_with_parameters_and_reuse(mysql2, proxy, mariadb):
    out = compare(mysql2.run, *ends(proxy, mariadb), "prepared", table="n2_prep")
    assert (
        out["inserts"]
        == [{"affectedRows": 1, "insertId": 0, "warningStatus": 0, "changedRows": 0}] * 20
    )
    assert [rows_of(r) for r in out["selects"]] == [
        [{"id": 0, "s": None, "d": "0.00"}, {"id": 1, "s": "row 1 ✓", "d": "1.25"},
         {"id": 2, "s": "row 2 ✓", "d": "2.50"}],
        [{"id": 7, "s": "row 7 ✓", "d": "8.75"}, {"id": 8, "s": "row 8 ✓", "d": "10.00"},
         {"id": 9, "s": "row 9 ✓", "d": "11.25"}],
        [{"id": 18, "s": "row 18 ✓", "d": "22.50"}, {"id": 19, "s": "row 19 ✓", "d": "23.75"}],
        [],
    ]  # fmt: skip
    assert [rows_of(r) for r in out["handle"]] == [
        [{"n": 9, "total": "151.25"}],  # 'row 1%': 1, 11..19 without 15
        [{"n": 16, "total": "200.00"}],
        [{"n": 0, "total": None}],
    ]
    # One prepare per statement text: the INSERT, the SELECT, the explicit handle.
    assert out["counters"] == {"Com_stmt_prepare": 3, "Com_stmt_execute": 27, "Com_stmt_close": 1}
    assert out["open"] == 2  # mysql2 keeps its cached statements open


# -- several statements, stored procedures ------------------------------------------------


def test_multi_statements_and_procedure_results(mysql2, proxy, mariadb, procedure):
    out = compare(mysql2.run, *ends(proxy, mariadb), "multi", table="n2_multi", procedure=procedure)
    batch = out["batch"]
    assert [rows_of(r) for r in (batch[0], batch[1], batch[4])] == [
        [{"one": 1}],
        [{"two": 2, "bee": "b"}],
        [{"id": 1, "v": 7}, {"id": 2, "v": 8}],
    ]
    assert batch[3] == {"affectedRows": 2, "insertId": 1, "warningStatus": 0, "changedRows": 0}
    assert out["failing"] == {
        "errno": 1146,
        "sqlState": "42S02",
        "code": "ER_NO_SUCH_TABLE",
        "message": "Table 'test.no_such_table_n2' doesn't exist",
    }
    for results, n in ((out["procedure"], 5), (out["procedureAgain"], 6)):
        assert len(results) == 4  # three result sets and the CALL's own OK
        assert [rows_of(r) for r in results[:3]] == [
            [{"a": n}],
            [{"b": 2 * n, "c": "two"}, {"b": 3 * n, "c": "three"}],
            [{"seq": 1, "xs": "x"}, {"seq": 2, "xs": "xx"}, {"seq": 3, "xs": "xxx"}],
        ]
        assert "rows" not in results[3]
    assert rows_of(out["after"]) == [{"s": "still usable"}]


def test_multi_statements_refused_without_the_option(mysql2, proxy, mariadb):
    out = compare(mysql2.run, *ends(proxy, mariadb), "noMulti")
    assert out["batch"]["error"]["errno"] == 1064
    assert out["batch"]["error"]["sqlState"] == "42000"
    assert "near 'SELECT 2'" in out["batch"]["error"]["message"]
    assert rows_of(out["after"]) == [{"three": 3}]


# -- transactions, errors ------------------------------------------------------------------


def test_transactions_commit_and_rollback(mysql2, proxy, mariadb):
    out = compare(mysql2.run, *ends(proxy, mariadb), "transactions", table="n2_tx")
    # [rows the transaction's own connection sees, rows another connection sees]
    assert out["inside"] == [2, 0]
    assert rows_of(out["inTransaction"]) == [{"tx": 1}]
    assert out["rolledBack"] == [0, 0]
    assert out["uncommitted"] == [3, 0]
    assert out["committed"] == [3, 3]
    assert rows_of(out["rows"]) == [{"id": 3}, {"id": 4}, {"id": 5}]


def test_errors_pass_through(mysql2, proxy, mariadb):
    out = compare(mysql2.run, *ends(proxy, mariadb), "errors", table="n2_err")
    duplicate = {
        "errno": 1062,
        "sqlState": "23000",
        "code": "ER_DUP_ENTRY",
        "message": "Duplicate entry '1' for key 'PRIMARY'",
    }
    assert out["duplicateText"] == {"error": duplicate}
    assert out["duplicateBinary"] == {"error": duplicate}
    for key in ("syntax", "syntaxPrepare"):
        assert (out[key]["error"]["errno"], out[key]["error"]["sqlState"]) == (1064, "42000")
    assert out["noTable"]["error"]["errno"] == 1146
    assert out["noTable"]["error"]["sqlState"] == "42S02"
    assert out["tooLong"]["error"]["errno"] == 1406  # strict mode: data too long
    assert out["tooLong"]["error"]["sqlState"] == "22001"
    assert rows_of(out["after"]) == [{"id": 1, "v": "one"}]


# -- myguard's own: masking, guardrails ------------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "tls-ca"])
def test_masking_for_analysts_in_text_and_binary_rows(mysql2, proxy, mariadb, mode):
    proxy_end, direct_end = ends(proxy, mariadb, mode)
    bob = mysql2.run("masking", as_user(proxy_end, "bob", "bob-pw-2"))
    alice = mysql2.run("masking", proxy_end)
    direct = mysql2.run("masking", direct_end)
    assert alice == direct
    assert [r["email"] for r in rows_of(direct["text"])] == EMAILS
    for key in ("text", "binary"):
        rows = rows_of(bob[key])
        assert [r["email"] for r in rows] == MASKED_EMAILS
        assert {r["name"] for r in rows} == {"****"}  # pii: redact
        unmasked = [(r["id"], r["birth_date"], r["credit_limit"]) for r in rows]
        direct_rows = rows_of(direct[key])
        assert unmasked == [(r["id"], r["birth_date"], r["credit_limit"]) for r in direct_rows]
        assert names(bob[key]) == names(direct[key])
    assert [r["email"] for r in rows_of(bob["binaryAgain"])] == MASKED_EMAILS[6:]


def test_guardrail_refuses_unbounded_delete(mysql2, proxy, mariadb):
    proxy_end, _ = ends(proxy, mariadb)
    out = mysql2.run("guardrail", proxy_end)
    refused = {"errno": 4700, "sqlState": "42000", "message": BLOCKED_MESSAGE}
    assert out["text"] == {"error": refused}  # mysql2 knows no name ("code") for 4700
    assert out["binary"] == {"error": refused}  # refused at COM_STMT_PREPARE
    assert rows_of(out["after"]) == [{"n": 8}]
    assert mariadb.sql("SELECT COUNT(*) FROM shop.customers").strip() == "8"


# -- a pool ------------------------------------------------------------------------------------


def test_pool_runs_queries_concurrently(mysql2, proxy, mariadb):
    out = compare(mysql2.run, *ends(proxy, mariadb), "pool")
    # Each pooled session read back its own @mine while others ran theirs.
    assert out["answers"][:30] == [[i, 2 * i] for i in range(30)]
    assert out["answers"][30:] == [[i, 9] for i in range(20)]
    assert out["connections"] == 6
