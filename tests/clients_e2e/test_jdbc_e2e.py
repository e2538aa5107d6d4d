"""JDBC (MariaDB Connector/J from Debian's libmariadb-java, as BI tools use it) through myguard.

Each test starts one JVM that runs a scenario of JdbcScenarios.java directly against
MariaDB as the service account, then through myguard as alice: values with the Java
classes the driver chose, ResultSetMetaData, DatabaseMetaData, update counts and
SQLExceptions must be identical. Masking (bob) and the guardrails are myguard's own and
checked against their concrete values.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import pytest
from clients_e2e_tools import (
    BLOCKED_MESSAGE,
    EMAILS,
    LONG_TEXT,
    MASKED_EMAILS,
    as_user,
    ends,
)


def rows_of(result: dict[str, Any]) -> list[list[Any]]:
    return result["rows"]


def labels(result: dict[str, Any]) -> list[str]:
    return [c["label"] for c in result["columns"]]


def sql_error(code: int, state: str, message: str, cls: str) -> dict[str, Any]:
    return {"error": {"code": code, "state": state, "message": message, "class": cls}}


# -- connecting -----------------------------------------------------------------------------


def test_connect_and_session_state(jdbc, proxy, mariadb, tls):
    proxy_end, direct_end = ends(proxy, mariadb, tls)
    runs = [("session", jdbc.url(direct_end), direct_end)]
    runs.append(("session", jdbc.url(proxy_end), proxy_end))
    if tls != "plain":
        # The same TLS options directly: MariaDB has no TLS, so they do demand it.
        direct_tls = replace(direct_end, ca=proxy_end.ca, verify=proxy_end.verify)
        runs.append(("login", jdbc.url(direct_tls), direct_tls))
    direct, through, *no_tls = jdbc.run(*runs)
    assert through == direct
    assert rows_of(direct["query"]) == [
        [
            *("Integer:2", "String:test", "String:utf8mb4", "String:utf8mb4"),
            *("String:utf8mb4_unicode_ci", "Long:1", "BigInteger:0"),
        ]
    ]
    assert (direct["catalog"], direct["autoCommit"], direct["isolation"]) == ("test", True, 4)
    assert re.fullmatch(r"MariaDB 1\d\.\d+\.\d+-MariaDB\S*", direct["product"])
    assert re.fullmatch(r"MariaDB Connector/J \d+\.\d+\.\d+", direct["driver"])
    if tls != "plain":
        assert no_tls == [
            sql_error(
                -1,
                "08000",
                "Trying to connect with ssl, but ssl not enabled in the server",
                "SQLNonTransientConnectionException",
            )
        ]


def access_denied(user: str) -> dict[str, Any]:
    return sql_error(
        1045,
        "28000",
        f"Access denied for user '{user}'@'127.0.0.1' (using password: YES)\n"
        "Current charset is UTF-8. If password has been set using other charset, consider "
        "using option 'passwordCharacterEncoding'",
        "SQLInvalidAuthorizationSpecException",
    )


def test_wrong_password_over_tls_is_access_denied(jdbc, proxy, mariadb):
    proxy_end, direct_end = ends(proxy, mariadb, "tls-ca")
    direct, through, again = jdbc.run(
        ("login", jdbc.url(direct_end), as_user(direct_end, direct_end.user, "wrong-pw")),
        ("login", jdbc.url(proxy_end), as_user(proxy_end, "alice", "wrong-pw")),
        ("login", jdbc.url(proxy_end), proxy_end),  # clears alice's failure count
    )
    assert direct == access_denied(direct_end.user)
    assert through == access_denied("alice")
    assert again == {"connected": True}


def test_wrong_password_without_tls_is_access_denied(jdbc, proxy, mariadb):
    proxy_end, direct_end = ends(proxy, mariadb)
    direct, through, again = jdbc.run(
        ("login", jdbc.url(direct_end), as_user(direct_end, direct_end.user, "wrong-pw")),
        ("login", jdbc.url(proxy_end), as_user(proxy_end, "alice", "wrong-pw")),
        ("login", jdbc.url(proxy_end), proxy_end),
    )
    assert direct == access_denied(direct_end.user)
    assert again == {"connected": True}
    assert through == access_denied("alice")


def test_ignore_space_on_every_connection(jdbc, proxy, mariadb):
    out = jdbc.compare("ignoreSpace", *ends(proxy, mariadb))
    # Each connection: IGNORE_SPACE in @@sql_mode, and COUNT (*) read as the function.
    assert out == [{"mode": [["1"]], "count": {"ok": [["9"]]}}] * 3


# -- column types, text and binary protocol -------------------------------------------------


@pytest.mark.parametrize("mode", ["plain", "tls-ca"])
def test_column_types_and_nulls(jdbc, proxy, mariadb, mode):
    out = jdbc.compare("types", *ends(proxy, mariadb, mode))
    text, binary = out["text"], out["binary"]
    assert labels(text) == [
        *("id", "ti", "iu", "bi", "biu", "de", "dbl", "da", "dt", "ts", "tm", "yr", "bo"),
        *("ch", "vc", "tx", "bl", "vb", "bt", "en", "js", "end_marker"),
    ]
    assert [(c["typeName"], c["className"]) for c in text["columns"]] == [
        ("INTEGER", "java.lang.Integer"),
        ("TINYINT", "java.lang.Integer"),
        ("INTEGER UNSIGNED", "java.lang.Long"),
        ("BIGINT", "java.lang.Long"),
        ("BIGINT UNSIGNED", "java.math.BigInteger"),
        ("DECIMAL", "java.math.BigDecimal"),
        ("DOUBLE", "java.lang.Double"),
        ("DATE", "java.sql.Date"),
        ("DATETIME", "java.sql.Timestamp"),
        ("TIMESTAMP", "java.sql.Timestamp"),
        ("TIME", "java.sql.Time"),
        ("YEAR", "java.sql.Date"),
        ("TINYINT", "java.lang.Boolean"),  # BOOLEAN is TINYINT(1)
        ("CHAR", "java.lang.String"),
        ("VARCHAR", "java.lang.String"),
        ("TEXT", "java.lang.String"),
        ("BLOB", "[B"),
        ("VARBINARY", "[B"),
        ("BIT", "[B"),
        ("CHAR", "java.lang.String"),  # ENUM
        ("LONGTEXT", "java.lang.String"),  # JSON
        ("VARCHAR", "java.lang.String"),
    ]
    assert [(c["precision"], c["scale"]) for c in text["columns"][5:10]] == [
        (20, 6),
        (22, 31),
        (10, 0),
        (26, 6),
        (23, 3),
    ]
    assert {c["table"] for c in text["columns"][:-1]} == {"jd_types"}
    assert binary["columns"] == text["columns"]
    assert out["preparedMetadata"] == text["columns"]  # from COM_STMT_PREPARE's own columns
    first = [
        *("Integer:1", "Integer:-128", "Long:4294967295", "Long:-9223372036854775808"),
        *("BigInteger:18446744073709551615", "BigDecimal:12345678901234.567891", "Double:2.5"),
        *("Date:2024-02-29", "Timestamp:2024-02-29 13:14:15.123456"),
        *("Timestamp:2001-09-09 01:46:40.999", "Time:23:59:58", "Date:2155-01-01"),
        *("Boolean:true", "String:abcd", "String:Grüße 😀 漢字", f"String:{LONG_TEXT}"),
        *("byte[]:00ff7f80", "byte[]:000102", "byte[]:a5", "String:b"),
        *('String:{"a": [1, null]}', "String:end"),
    ]
    assert rows_of(text)[0] == first
    assert rows_of(binary) == rows_of(text)
    second = rows_of(text)[1]
    assert second[3:9] == [
        *("Long:9223372036854775807", "BigInteger:0", "BigDecimal:-0.000001"),
        *("Double:-1.0E300", "Date:1000-01-01", "Timestamp:1000-01-01 00:00:00.000001"),
    ]
    assert second[12:18] == ["Boolean:false", "String:", "String:", "String:", "byte[]:", "byte[]:"]
    for result in (text, binary):
        assert rows_of(result)[2] == ["Integer:3", *[None] * 20, "String:end"]
        assert result["strings"][2] == ["3", *[None] * 20, "end"]
    assert text["strings"][0][:12] == [
        *("1", "-128", "4294967295", "-9223372036854775808", "18446744073709551615"),
        *("12345678901234.567891", "2.5", "2024-02-29", "2024-02-29 13:14:15.123456"),
        *("2001-09-09 01:46:40.999", "23:59:58", "2155-01-01"),
    ]
    literals = out["literals"]
    assert [c["typeName"] for c in literals["columns"]] == [
        *("NULL", "DECIMAL", "DOUBLE", "VARBINARY", "BIGINT UNSIGNED", "VARCHAR", "DATE"),
        "VARCHAR",
    ]
    assert rows_of(literals) == [
        [
            *(None, "BigDecimal:-1.5", "Double:2.5", "byte[]:00ff"),
            *("BigInteger:18446744073709551615", "String:🎉", None, "String:列"),
        ]
    ]
    assert labels(literals)[-1] == "列"


@pytest.mark.parametrize("scenario", ["types", "prepared"])
def test_compressed_protocol(jdbc, proxy, mariadb, scenario):
    """useCompression=true: the compressed protocol on the client's leg, text and binary
    rows and server-prepared statements exactly as MariaDB answers them compressed."""
    out = jdbc.compare(scenario, *ends(proxy, mariadb), useCompression="true")
    assert out.get("error") is None, out


# -- prepared statements -----------------------------------------------------------------


def test_server_prepared_statements_with_parameters_and_reuse(jdbc, proxy, mariadb):
    out = jdbc.compare("prepared", *ends(proxy, mariadb))
    assert out["inserts"] == [1] * 10
    assert out["batch"] == [1] * 10
    assert [rows_of(r) for r in out["selects"]] == [
        [
            [
                "Integer:0",
                None,
                "BigDecimal:0.00",
                "Timestamp:2024-03-01 10:00:00.0",
                "byte[]:00ff",
            ],
            [
                *("Integer:1", "String:row 1 ✓", "BigDecimal:1.25"),
                *("Timestamp:2024-03-02 10:00:00.0", "byte[]:01ff"),
            ],
            [
                *("Integer:2", "String:row 2 ✓", "BigDecimal:2.50"),
                *("Timestamp:2024-03-03 10:00:00.0", "byte[]:02ff"),
            ],
        ],
        [
            [
                *("Integer:4", "String:row 4 ✓", "BigDecimal:5.00"),
                *("Timestamp:2024-03-05 10:00:00.0", "byte[]:04ff"),
            ],
            [
                "Integer:5",
                None,
                "BigDecimal:6.25",
                "Timestamp:2024-03-06 10:00:00.0",
                "byte[]:05ff",
            ],
            [
                *("Integer:6", "String:row 6 ✓", "BigDecimal:7.50"),
                *("Timestamp:2024-03-07 10:00:00.0", "byte[]:06ff"),
            ],
        ],
        [
            [f"Integer:{i}", f"String:batch {i}", "BigDecimal:0.50", None, None]
            for i in (12, 13, 14)
        ],
        [],
    ]
    assert rows_of(out["total"]) == [["Long:20", "BigDecimal:61.25"]]
    # Two prepares (the INSERT's second handle comes from the driver's cache), every
    # execution on the server, the byte[] parameters sent as COM_STMT_SEND_LONG_DATA.
    assert out["counters"] == {
        "Com_stmt_close": 0,
        "Com_stmt_execute": 24,
        "Com_stmt_prepare": 2,
        "Com_stmt_reset": 0,
        "Com_stmt_send_long_data": 10,
    }


# -- several statements, stored procedures ------------------------------------------------


def test_multi_queries_and_procedure_results(jdbc, proxy, mariadb, procedure):
    out = jdbc.compare("multi", *ends(proxy, mariadb), allowMultiQueries="true")
    batch = out["batch"]
    assert [rows_of(r) if "rows" in r else r for r in batch] == [
        [["Integer:1"]],
        [["Integer:2", "String:b"]],
        {"updateCount": 0},
        {"updateCount": 2},
        [["Integer:1", "Integer:7"], ["Integer:2", "Integer:8"]],
    ]
    assert out["failing"] == sql_error(
        1146, "42S02", "Table 'test.no_such_table_jd' doesn't exist", "SQLSyntaxErrorException"
    )
    for key, n in (("call", 5), ("callAgain", 2), ("callText", 1)):
        results = out[key]
        assert [rows_of(r) for r in results[:3]] == [
            [[f"Integer:{n}"]],
            [[f"Long:{2 * n}", "String:two"], [f"Long:{3 * n}", "String:three"]],
            [[f"BigInteger:{i}", "String:" + "x" * i] for i in range(1, min(n, 3) + 1)],
        ], key
        assert results[3:] == [{"updateCount": 0}]  # the CALL's own OK
    assert rows_of(out["after"]) == [["String:still usable"]]


def test_multi_queries_refused_without_allow_multi_queries(jdbc, proxy, mariadb):
    out = jdbc.compare("noMulti", *ends(proxy, mariadb))
    error = out["batch"]["error"]
    assert (error["code"], error["state"], error["class"]) == (
        1064,
        "42000",
        "SQLSyntaxErrorException",
    )
    assert "near 'SELECT 2'" in error["message"]
    assert rows_of(out["after"]) == [["Integer:3"]]


# -- transactions, errors ------------------------------------------------------------------


def test_transactions_savepoints_commit_and_rollback(jdbc, proxy, mariadb):
    out = jdbc.compare("transactions", *ends(proxy, mariadb))
    # [rows the transaction's own connection sees, rows another connection sees]
    assert out["inside"] == [2, 0]
    assert rows_of(out["inTransaction"]) == [["BigInteger:1", "Long:0"]]
    assert out["rolledBack"] == [0, 0]
    assert out["toSavepoint"] == [1, 0]
    assert out["committed"] == [2, 2]
    assert rows_of(out["rows"]) == [["Integer:3"], ["Integer:5"]]


def test_errors_pass_through(jdbc, proxy, mariadb):
    out = jdbc.compare("errors", *ends(proxy, mariadb))
    duplicate = sql_error(
        1062,
        "23000",
        "Duplicate entry '1' for key 'PRIMARY'",
        "SQLIntegrityConstraintViolationException",
    )
    assert out["duplicateText"] == duplicate
    assert out["duplicateBinary"] == duplicate
    for key in ("syntax", "syntaxPrepare"):
        error = out[key]["error"]
        assert (error["code"], error["state"]) == (1064, "42000"), key
    assert out["noTable"] == sql_error(
        1146, "42S02", "Table 'test.no_such_table_jd' doesn't exist", "SQLSyntaxErrorException"
    )
    assert out["tooLong"]["error"]["code"] == 1406
    assert out["tooLong"]["error"]["state"] == "22001"
    assert rows_of(out["after"]) == [["Integer:1", "String:one"]]


# -- myguard's own: masking, guardrails ------------------------------------------------------


def test_masking_for_analysts_in_text_and_binary_rows(jdbc, proxy, mariadb):
    proxy_end, direct_end = ends(proxy, mariadb, "tls-ca")
    bob, alice, direct = jdbc.run(
        ("masking", jdbc.url(proxy_end), as_user(proxy_end, "bob", "bob-pw-2")),
        ("masking", jdbc.url(proxy_end), proxy_end),
        ("masking", jdbc.url(direct_end), direct_end),
    )
    assert alice == direct
    assert [r[2] for r in rows_of(direct["statement"])] == [f"String:{e}" for e in EMAILS]
    for key in ("statement", "clientPrepared", "serverPrepared"):
        rows = rows_of(bob[key])
        assert [r[2] for r in rows] == [f"String:{e}" for e in MASKED_EMAILS], key
        assert {r[1] for r in rows} == {"String:****"}  # pii: redact
        direct_rows = rows_of(direct[key])
        assert [(r[0], r[3], r[4]) for r in rows] == [(r[0], r[3], r[4]) for r in direct_rows]
        assert labels(bob[key]) == labels(direct[key])
    assert [r[2] for r in rows_of(bob["serverPreparedAgain"])] == [
        f"String:{e}" for e in MASKED_EMAILS[6:]
    ]


def test_guardrail_refuses_unbounded_delete(jdbc, proxy, mariadb):
    proxy_end, _ = ends(proxy, mariadb)
    [out] = jdbc.run(("guardrail", jdbc.url(proxy_end), proxy_end))
    refused = sql_error(4700, "42000", BLOCKED_MESSAGE, "SQLSyntaxErrorException")
    assert out["statement"] == refused
    assert out["serverPrepared"] == refused  # refused at COM_STMT_PREPARE
    assert out["after"] == [8, 8]
    assert mariadb.sql("SELECT COUNT(*) FROM shop.customers").strip() == "8"


# -- what BI tools ask ---------------------------------------------------------------------


def test_database_metadata(jdbc, proxy, mariadb, procedure):
    out = jdbc.compare("metadata", *ends(proxy, mariadb))
    assert out["quote"] == "`" and out["catalogTerm"] == "database"
    assert out["supports"] == [True] * 5
    assert {"information_schema", "shop", "test"} <= {r[0] for r in rows_of(out["catalogs"])}
    assert [r[2:4] for r in rows_of(out["tables"]) if r[2] in ("customers", "orders")] == [
        ["customers", "TABLE"],
        ["orders", "TABLE"],
    ]
    columns = rows_of(out["columns"])
    assert [(r[3], r[5], r[6], r[17]) for r in columns] == [
        ("id", "INT", "10", "NO"),
        ("name", "VARCHAR", "100", "NO"),
        ("email", "VARCHAR", "200", "NO"),
        ("phone", "VARCHAR", "30", "YES"),
        ("ssn", "CHAR", "11", "YES"),
        ("card_number", "VARCHAR", "19", "YES"),
        ("birth_date", "DATE", "10", "YES"),
        ("credit_limit", "DECIMAL", "10", "YES"),
        ("created_at", "DATETIME", "19", "NO"),
    ]
    assert rows_of(out["primaryKeys"]) == [["shop", None, "orders", "id", "1", "PRIMARY"]]
    [fk] = rows_of(out["importedKeys"])
    assert (fk[2], fk[3], fk[6], fk[7], fk[11]) == (
        "customers",
        "id",
        "orders",
        "customer_id",
        "orders_ibfk_1",
    )
    assert [r[5] for r in rows_of(out["indexInfo"])] == ["PRIMARY", "customer_id"]
    assert [r[2] for r in rows_of(out["procedures"])] == [procedure.split(".")[1]]
    assert [r[3] for r in rows_of(out["procedureColumns"])] == ["n"]
    assert len(rows_of(out["typeInfo"])) > 20
    assert labels(out["limit0"]) == [
        *("id", "customer_id", "item", "quantity", "total", "status", "ordered_at"),
    ]
    assert rows_of(out["limit0"]) == []
