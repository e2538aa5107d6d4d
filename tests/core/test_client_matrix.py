"""Real drivers through myguard, compared with the same work done directly on MariaDB.

Every scenario runs once against MariaDB (as the service account) and once through myguard (as alice);
the values, column descriptions, row counts, insert ids, warnings and errors must be
identical. Each driver connects with its default options, and again with TLS verified
against myguard's self-signed certificate (MariaDB itself has no TLS: direct is plain).
"""

from __future__ import annotations

import datetime
import decimal
from typing import Any

import pytest
from clients import DRIVERS, Driver, Target, compare, table_name, targets

DRIVER_IDS = list(DRIVERS)
# (driver, cursor kind): every driver's default and streaming cursors, connector's prepared.
CURSOR_COMBOS = [(d, "default") for d in DRIVER_IDS] + [(d, "stream") for d in DRIVER_IDS]
CURSOR_COMBOS += [(d, "prepared") for d in DRIVER_IDS if DRIVERS[d].supports_prepared]


@pytest.fixture(params=DRIVER_IDS)
def driver(request: pytest.FixtureRequest) -> Driver:
    return DRIVERS[request.param]


@pytest.fixture(params=[False, True], ids=["default", "tls"])
def tls(request: pytest.FixtureRequest) -> bool:
    return request.param


@pytest.fixture()
def ends(proxy, mariadb, tls) -> tuple[Target, Target]:
    return targets(proxy, mariadb, tls)


def open_cursor(driver: Driver, conn: Any, kind: str) -> Any:
    if kind == "stream":
        return driver.stream_cursor(conn)
    if kind == "prepared":
        return driver.prepared_cursor(conn)
    return conn.cursor()


def run_sql(conn: Any, *statements: str) -> None:
    cur = conn.cursor()
    for sql in statements:
        cur.execute(sql)
        if cur.description:
            cur.fetchall()
    cur.close()


def fetch_result(cur: Any) -> tuple[Any, Any]:
    description = [tuple(d) for d in cur.description]
    return description, [tuple(r) for r in cur.fetchall()]


# -- connecting -------------------------------------------------------------------------


def test_connect_and_session_state(driver, tls, ends):
    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            if target.name == "proxy" and target.ca:
                assert drv.is_tls(conn) in (True, None)
            cur = conn.cursor()
            cur.execute(
                "SELECT 1 + 1, DATABASE(), @@character_set_client, @@character_set_results, "
                "@@collation_connection, @@autocommit, @@sql_mode, @@in_transaction"
            )
            return fetch_result(cur)
        finally:
            conn.close()

    description, rows = compare(driver, *ends, work)
    assert rows[0][0] == 2
    assert rows[0][1] == "test"


# -- column types -----------------------------------------------------------------------

TYPES_DDL = """
CREATE TABLE {t} (
  id INT PRIMARY KEY,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  bi BIGINT, biu BIGINT UNSIGNED,
  de DECIMAL(20,6), fl FLOAT, dbl DOUBLE, bt BIT(10),
  da DATE, tm TIME, tm6 TIME(6), dt DATETIME(6), ts TIMESTAMP NULL, yr YEAR,
  ch CHAR(10), vc VARCHAR(100), tx TEXT, bl BLOB, en ENUM('a','b','c'), st SET('x','y','z'),
  js JSON, bn BINARY(4), vb VARBINARY(16)
) DEFAULT CHARSET=utf8mb4
"""

TYPES_ROWS = [
    "(1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,"
    " 9223372036854775807, 18446744073709551615, 99999999999999.999999, 3.40282e38,"
    " 1.7976931348623157e308, b'1111111111', '9999-12-31', '838:59:59', '838:59:59.999999',"
    " '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', 2155, 'abcdefghij',"
    " 'Grüße 😀 漢字', REPEAT('long text ', 300), X'00FF7F80', 'c', 'x,z',"
    ' \'{"a": [1, 2.5, {"b": null}], "ü": "✓"}\', X\'00FF10\', X\'000102FEFF\')',
    "(2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,"
    " -99999999999999.999999, -1.5, -2.5e-300, b'0', '1000-01-01', '-838:59:59',"
    " '-00:00:01.5', '1000-01-01 00:00:00.000001', '2000-02-29 12:34:56', 1901, '', '', '',"
    " '', 'a', '', '[]', '', '')",
    "(3" + ", NULL" * 29 + ")",
]


@pytest.mark.parametrize(("driver_id", "kind"), CURSOR_COMBOS)
def test_column_types_and_nulls(driver_id, kind, tls, ends):
    driver = DRIVERS[driver_id]
    t = table_name("mx_types", driver, tls) + "_" + kind

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            run_sql(conn, f"DROP TABLE IF EXISTS {t}", TYPES_DDL.format(t=t))
            run_sql(conn, f"INSERT INTO {t} VALUES " + ",".join(TYPES_ROWS))
            conn.commit()
            cur = open_cursor(drv, conn, kind)
            # The trailing column: connector-pure's binary row parser fails on an empty
            # string in the last column (directly too).
            if kind == "prepared":
                # ... and on some wide binary rows: one column at a time still covers every type.
                cur.execute(f"SELECT *, 'end' AS end_marker FROM {t} WHERE id < 0")
                table = fetch_result(cur)[0], []
                for n in range(30):
                    col = drv.prepared_cursor(conn)
                    col.execute(f"SELECT {table[0][n][0]} FROM {t} ORDER BY id")
                    table[1].append(fetch_result(col))
                    col.close()
            else:
                cur.execute(f"SELECT *, 'end' AS end_marker FROM {t} ORDER BY id")
                table = fetch_result(cur)
            cur.close()
            cur = open_cursor(drv, conn, kind)
            cur.execute(
                "SELECT NULL AS n, 1 AS one, -1.5 AS dec_lit, 2.5e0 AS dbl_lit, 'x' AS s,"
                " X'00FF' AS bin, TIME'-01:02:03.25' AS neg_time,"
                " CAST('-00:00:00.5' AS TIME(1)) AS neg_frac, CAST(NULL AS DATE) AS null_date,"
                " CAST(18446744073709551615 AS UNSIGNED) AS umax, _utf8mb4'🎉' AS emoji"
            )
            literals = fetch_result(cur)
            cur.close()
            run_sql(conn, f"DROP TABLE {t}")
            return table, literals
        finally:
            conn.close()

    (description, rows), literals = compare(driver, *ends, work)
    if kind == "prepared":
        rows = list(zip(*[[r[0] for r in col[1]] for col in rows], strict=True))
    assert len(description) == 31
    assert [r[0] for r in rows] == [1, 2, 3]
    assert all(v is None for v in rows[2][1:-1])
    assert literals[1][0][0] is None


# -- text -----------------------------------------------------------------------------------

TEXTS = [
    "😀 emoji 🎉",
    "漢字かなカナ한국어",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 + Ünïcödé",
    "",
    "tab\tnew\nline 'quote' \"dq\" \\",
]


@pytest.mark.parametrize(("driver_id", "kind"), CURSOR_COMBOS)
def test_utf8mb4_text(driver_id, kind, tls, ends):
    driver = DRIVERS[driver_id]
    t = table_name("mx_text", driver, tls) + "_" + kind

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            run_sql(
                conn,
                f"DROP TABLE IF EXISTS {t}",
                f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(100)) DEFAULT CHARSET=utf8mb4",
            )
            cur = open_cursor(drv, conn, kind)
            for n, text in enumerate(TEXTS):
                cur.execute(f"INSERT INTO {t} VALUES (%s, %s)", (n, text))
            conn.commit()
            cur.close()
            cur = open_cursor(drv, conn, kind)
            cur.execute(f"SELECT s, CHAR_LENGTH(s), HEX(s), s AS `列` FROM {t} ORDER BY id")
            result = fetch_result(cur)
            cur.close()
            run_sql(conn, f"DROP TABLE {t}")
            return result
        finally:
            conn.close()

    description, rows = compare(driver, *ends, work)
    assert [r[0] for r in rows] == TEXTS
    assert [r[1] for r in rows] == [len(s) for s in TEXTS]
    name = description[3][0]
    if driver.name == "connector-cext" and kind == "prepared":
        name = name.encode(
            "latin-1"
        ).decode()  # that cursor decodes names as latin-1 (directly too)
    assert name == "列"


# -- several results ----------------------------------------------------------------


def multi_statements(drv: Driver, target: Target, extra: dict[str, Any]) -> Any:
    conn = drv.connect(target, **extra)
    t = table_name("mx_multi", drv, bool(target.ca))
    results: list[Any] = []
    try:
        run_sql(conn, f"DROP TABLE IF EXISTS {t}")
        cur = conn.cursor()
        try:
            cur.execute(
                f"SELECT 1; SELECT 2 AS two, 'b' AS bee; CREATE TABLE {t} (id INT AUTO_INCREMENT"
                f" PRIMARY KEY, v INT); INSERT INTO {t} (v) VALUES (7), (8); SELECT * FROM {t}"
            )
            results.extend(drv.result_sets(cur))
            cur.close()
            cur = conn.cursor()
            cur.execute("SELECT 'before error'; SELECT * FROM no_such_table_mx; SELECT 'after'")
            results.append(cur.fetchall())
            cur.nextset()
            results.append("no error")
        except drv.error as exc:
            results.append(drv.error_info(exc))
        cur = conn.cursor()
        cur.execute("SELECT 'still usable'")
        results.append(fetch_result(cur))
        run_sql(conn, f"DROP TABLE IF EXISTS {t}")
        return results
    finally:
        conn.close()


def test_multi_statements(driver, tls, ends):
    results = compare(
        driver,
        *ends,
        lambda drv, target: multi_statements(drv, target, drv.multi_statement_options()),
    )
    assert [r[1] for r in results[:2]] == [[(1,)], [(2, "b")]]
    assert results[3][2] == 2  # INSERT ... (7), (8)
    assert results[4][1] == [(1, 7), (2, 8)]
    assert [tuple(r) for r in results[5]] == [("before error",)]
    assert results[6][0] == 1146
    assert results[-1][1] == [("still usable",)]


def test_multi_statements_refused_without_the_capability(tls, ends):
    """PyMySQL's default flags leave CLIENT_MULTI_STATEMENTS off: MariaDB refuses the batch."""
    driver = DRIVERS["pymysql"]

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            cur = conn.cursor()
            with pytest.raises(drv.error) as info:
                cur.execute("SELECT 1; SELECT 2")
            cur.execute("SELECT 3")
            return drv.error_info(info.value), cur.fetchall()
        finally:
            conn.close()

    error, rows = compare(driver, *ends, work)
    assert error[0] == 1064
    assert rows == ((3,),)


PROC_BODY = """
CREATE PROCEDURE {p}(IN n INT)
BEGIN
  SELECT n AS a;
  SELECT n * 2 AS b, 'two' AS c UNION ALL SELECT n * 3, 'three';
  UPDATE {t} SET v = v + n;
  SELECT id, v FROM {t} ORDER BY id;
END
"""


def test_stored_procedure_multiple_results(driver, tls, ends):
    base = table_name("mx_proc", driver, tls)
    t, p = base + "_t", base + "_p"

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            run_sql(
                conn,
                f"DROP TABLE IF EXISTS {t}",
                f"DROP PROCEDURE IF EXISTS {p}",
                f"CREATE TABLE {t} (id INT PRIMARY KEY, v INT)",
                f"INSERT INTO {t} VALUES (1, 10), (2, 20)",
                PROC_BODY.format(p=p, t=t),
            )
            results = drv.call(conn, p, (5,))
            cur = conn.cursor()
            cur.execute("SELECT 'after call'")
            results.append(cur.fetchall())
            run_sql(conn, f"DROP PROCEDURE {p}", f"DROP TABLE {t}")
            return results
        finally:
            conn.close()

    results = compare(driver, *ends, work)
    assert results[0][1] == [(5,)]
    assert results[1][1] == [(10, "two"), (15, "three")]
    assert results[2][1] == [(1, 15), (2, 25)]


# -- errors and warnings ----------------------------------------------------------------


@pytest.mark.parametrize(("driver_id", "kind"), CURSOR_COMBOS)
def test_errors_pass_through(driver_id, kind, tls, ends):
    driver = DRIVERS[driver_id]
    t = table_name("mx_err", driver, tls) + "_" + kind

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        errors = []
        try:
            run_sql(
                conn,
                f"DROP TABLE IF EXISTS {t}",
                f"CREATE TABLE {t} (id INT PRIMARY KEY)",
                f"INSERT INTO {t} VALUES (1)",
            )
            for sql in ("SELEC 1", "SELECT * FROM no_such_table_mx", f"INSERT INTO {t} VALUES (1)"):
                cur = open_cursor(drv, conn, kind)
                with pytest.raises(drv.error) as info:
                    cur.execute(sql)
                    if cur.description:
                        cur.fetchall()
                errors.append(drv.error_info(info.value))
                cur.close()
            cur = conn.cursor()
            cur.execute(f"SELECT COUNT(*) FROM {t}")
            errors.append(cur.fetchall()[0][0])
            run_sql(conn, f"DROP TABLE {t}")
            return errors
        finally:
            conn.close()

    errors = compare(driver, *ends, work)
    assert [e[0] for e in errors[:3]] == [1064, 1146, 1062]
    assert "no_such_table_mx" in errors[1][2]
    assert "Duplicate entry '1'" in errors[2][2]
    if errors[0][1] is not None:  # the drivers that keep the SQLSTATE
        assert [e[1] for e in errors[:3]] == ["42000", "42S02", "23000"]
    assert errors[3] == 1


@pytest.mark.parametrize(("driver_id", "kind"), CURSOR_COMBOS)
def test_warnings_pass_through(driver_id, kind, tls, ends):
    driver = DRIVERS[driver_id]
    t = table_name("mx_warn", driver, tls) + "_" + kind

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            run_sql(
                conn,
                "SET SESSION sql_mode = ''",
                f"DROP TABLE IF EXISTS {t}",
                f"CREATE TABLE {t} (c CHAR(3), n TINYINT)",
            )
            cur = open_cursor(drv, conn, kind)
            cur.execute(f"INSERT INTO {t} VALUES ('abcdef', 1000), ('xy', -1000)")
            counted = cur.rowcount, drv.warning_count(cur)
            cur.close()
            cur = conn.cursor()
            cur.execute("SHOW WARNINGS")
            shown = fetch_result(cur)
            cur.execute(f"SELECT * FROM {t}")
            rows = cur.fetchall()
            run_sql(conn, f"DROP TABLE {t}")
            return counted, shown, [tuple(r) for r in rows]
        finally:
            conn.close()

    counted, (description, warnings), rows = compare(driver, *ends, work)
    assert counted == (2, 3)
    assert [w[1] for w in warnings] == [1265, 1264, 1264]
    assert rows == [("abc", 127), ("xy", -128)]


# -- affected rows, insert ids, transactions ------------------------------------------


@pytest.mark.parametrize(("driver_id", "kind"), CURSOR_COMBOS)
def test_affected_rows_and_insert_ids(driver_id, kind, tls, ends):
    driver = DRIVERS[driver_id]
    t = table_name("mx_aff", driver, tls) + "_" + kind
    statements = [
        f"INSERT INTO {t} (k, v) VALUES (1, 1)",
        f"INSERT INTO {t} (k, v) VALUES (2, 2), (3, 3), (4, 4)",
        f"UPDATE {t} SET v = v + 1 WHERE k >= 2",
        f"UPDATE {t} SET v = v WHERE k = 1",  # matched, unchanged: CLIENT_FOUND_ROWS decides
        f"UPDATE {t} SET v = 0 WHERE k = 99",
        f"INSERT INTO {t} (k, v) VALUES (1, 5) ON DUPLICATE KEY UPDATE v = v + 10",
        f"INSERT INTO {t} (k, v) VALUES (5, 5) ON DUPLICATE KEY UPDATE v = v + 10",
        f"INSERT INTO {t} (k, v) VALUES (5, 5) ON DUPLICATE KEY UPDATE v = v",
        f"DELETE FROM {t} WHERE k > 2",
        f"INSERT INTO {t} (id, k, v) VALUES (100, 100, 100)",
        f"INSERT INTO {t} (k, v) VALUES (101, 101)",
    ]

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            drv.set_autocommit(conn, True)
            run_sql(
                conn,
                f"DROP TABLE IF EXISTS {t}",
                f"CREATE TABLE {t} (id INT AUTO_INCREMENT PRIMARY KEY, k INT UNIQUE, v INT)",
            )
            seen = []
            for sql in statements:
                cur = open_cursor(drv, conn, kind)
                cur.execute(sql)
                seen.append((cur.rowcount, cur.lastrowid))
                cur.close()
            cur = conn.cursor()
            cur.execute(f"SELECT LAST_INSERT_ID(), (SELECT COUNT(*) FROM {t})")
            seen.append(tuple(cur.fetchall()[0]))
            run_sql(conn, f"DROP TABLE {t}")
            return seen
        finally:
            conn.close()

    seen = compare(driver, *ends, work)
    assert seen[0] == (1, 1)
    assert seen[1] == (3, 2)
    assert seen[2][0] == 3
    assert seen[4][0] == 0
    assert seen[5][0] == 2
    assert seen[6][0] == 1
    assert seen[8][0] == 3
    assert seen[10] == (1, 101)


def test_transactions(driver, tls, ends):
    t = table_name("mx_txn", driver, tls)

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        other = drv.connect(target)
        seen = []
        try:
            drv.set_autocommit(conn, True)
            drv.set_autocommit(other, True)
            run_sql(conn, f"DROP TABLE IF EXISTS {t}", f"CREATE TABLE {t} (id INT PRIMARY KEY)")
            cur, peek = conn.cursor(), other.cursor()

            def count() -> tuple[int, int]:
                peek.execute(f"SELECT COUNT(*) FROM {t}")
                cur.execute(f"SELECT COUNT(*), @@in_transaction FROM {t}")
                mine = cur.fetchall()[0]
                return mine[0], mine[1], peek.fetchall()[0][0]

            cur.execute("BEGIN")
            cur.execute(f"INSERT INTO {t} VALUES (1)")
            seen.append(count())
            cur.execute("ROLLBACK")
            seen.append(count())
            cur.execute("BEGIN")
            cur.execute(f"INSERT INTO {t} VALUES (2)")
            cur.execute("COMMIT")
            seen.append(count())
            drv.set_autocommit(conn, False)
            cur.execute(f"INSERT INTO {t} VALUES (3)")
            seen.append(count())
            conn.rollback()
            seen.append(count())
            cur.execute(f"INSERT INTO {t} VALUES (4)")
            conn.commit()
            seen.append(count())
            drv.set_autocommit(conn, True)
            run_sql(conn, f"DROP TABLE {t}")
            return seen
        finally:
            other.close()
            conn.close()

    seen = compare(driver, *ends, work)
    assert seen == [(1, 1, 0), (0, 0, 0), (1, 0, 1), (2, 1, 1), (1, 1, 1), (2, 1, 2)]


# -- parameters and prepared statements ------------------------------------------------

PARAMS = [
    0,
    -(2**63),
    2**63 - 1,
    3.25,
    -1e-300,
    decimal.Decimal("-12345678901234.000001"),
    "plain",
    "Grüße 😀 漢字",
    b"\x00\x01\xfe\xff'\\",
    datetime.date(2024, 2, 29),
    datetime.datetime(2024, 12, 31, 23, 59, 58, 123456),
    datetime.timedelta(hours=-5, minutes=-6, seconds=-7),
    datetime.timedelta(hours=100, microseconds=500),
    True,
    None,
]


@pytest.mark.parametrize(("driver_id", "kind"), CURSOR_COMBOS)
def test_parameters(driver_id, kind, tls, ends):
    driver = DRIVERS[driver_id]
    t = table_name("mx_par", driver, tls) + "_" + kind

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            drv.set_autocommit(conn, True)
            run_sql(
                conn,
                f"DROP TABLE IF EXISTS {t}",
                f"CREATE TABLE {t} (id INT PRIMARY KEY, i BIGINT, d DECIMAL(30,6), s VARCHAR(50),"
                " b VARBINARY(20), dt DATETIME(6), tm TIME(6)) DEFAULT CHARSET=utf8mb4",
            )
            cur = open_cursor(drv, conn, kind)
            # mysqlclient quotes bytes as a text literal (not valid utf8mb4), and aiomysql 0.3
            # cannot escape bytes with PyMySQL 1.2: both fail directly too.
            no_bytes = drv.name in ("mysqlclient", "aiomysql")
            params = tuple(p for p in PARAMS if not (no_bytes and isinstance(p, bytes)))
            cur.execute("SELECT " + ", ".join(["%s"] * len(params)), params)
            echoed = fetch_result(cur)
            # The same statement again and again: a prepared cursor reuses its statement.
            insert = f"INSERT INTO {t} VALUES (%s, %s, %s, %s, %s, %s, %s)"
            rows = [
                (
                    1,
                    2**62,
                    decimal.Decimal("1.5"),
                    "a😀",
                    b"\x00\xff",
                    datetime.datetime(2020, 1, 2, 3, 4, 5, 6),
                    datetime.timedelta(seconds=-1.5),
                ),
                (2, None, None, None, None, None, None),
                (
                    3,
                    -7,
                    decimal.Decimal("-0.000001"),
                    "漢字",
                    b"",
                    datetime.datetime(1999, 12, 31),
                    datetime.timedelta(hours=838),
                ),
            ]
            counts = []
            for row in rows:
                if drv.name == "aiomysql":
                    row = tuple(None if isinstance(v, bytes) else v for v in row)
                cur.execute(insert, row)
                counts.append(cur.rowcount)
            cur.execute(
                f"SELECT * FROM {t} WHERE id >= %s AND (s = %s OR s IS NULL OR %s IS NULL) ORDER BY id",
                (1, "x", None),
            )
            selected = fetch_result(cur)
            cur.execute(f"SELECT id FROM {t} WHERE s = %s", ("漢字",))
            found = cur.fetchall()
            cur.close()
            run_sql(conn, f"DROP TABLE {t}")
            return echoed, counts, selected, [tuple(r) for r in found]
        finally:
            conn.close()

    echoed, counts, (description, selected), found = compare(driver, *ends, work)
    assert echoed[1][0][6:8] == ("plain", "Grüße 😀 漢字")
    assert echoed[1][0][-1] is None
    assert counts == [1, 1, 1]
    assert [r[0] for r in selected] == [1, 2, 3]
    assert selected[1][1:] == (None,) * 6
    assert found == [(3,)]


@pytest.mark.parametrize("driver_id", [d for d in DRIVER_IDS if DRIVERS[d].supports_prepared])
def test_prepared_statement_reuse_and_many(driver_id, tls, ends):
    """executemany through a prepared cursor: one COM_STMT_PREPARE, several EXECUTEs."""
    driver = DRIVERS[driver_id]
    t = table_name("mx_prep", driver, tls)

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            drv.set_autocommit(conn, True)
            run_sql(
                conn,
                f"DROP TABLE IF EXISTS {t}",
                f"CREATE TABLE {t} (id INT PRIMARY KEY, s VARCHAR(20))",
            )
            cur = drv.prepared_cursor(conn)
            cur.executemany(
                f"INSERT INTO {t} VALUES (%s, %s)", [(i, f"row {i}") for i in range(50)]
            )
            many = cur.rowcount
            results = []
            for low in (0, 10, 45, 1000):
                cur.execute(f"SELECT id, s FROM {t} WHERE id >= %s ORDER BY id LIMIT 3", (low,))
                results.append(fetch_result(cur))
            cur.close()
            run_sql(conn, f"DROP TABLE {t}")
            return many, results
        finally:
            conn.close()

    many, results = compare(driver, *ends, work)
    assert abs(many) == 50  # connector-cext's prepared executemany reports -50 (directly too)
    assert [r[1] for r in results] == [
        [(0, "row 0"), (1, "row 1"), (2, "row 2")],
        [(10, "row 10"), (11, "row 11"), (12, "row 12")],
        [(45, "row 45"), (46, "row 46"), (47, "row 47")],
        [],
    ]


@pytest.mark.parametrize("driver_id", DRIVER_IDS)
def test_streaming_cursor_partial_read_then_next_query(driver_id, tls, ends):
    """Abandon a streamed result half-way; the driver drains it and the session goes on."""
    driver = DRIVERS[driver_id]

    def work(drv: Driver, target: Target) -> Any:
        conn = drv.connect(target)
        try:
            cur = drv.stream_cursor(conn)
            cur.execute("SELECT seq, REPEAT('x', seq % 50) FROM seq_1_to_5000")
            head = [tuple(cur.fetchone()) for _ in range(3)]
            drv.abandon(cur)
            cur = conn.cursor()
            cur.execute("SELECT COUNT(*), SUM(seq) FROM seq_1_to_5000")
            return head, [tuple(r) for r in cur.fetchall()]
        finally:
            conn.close()

    head, total = compare(driver, *ends, work)
    assert head[0] == (1, "x")
    assert total[0][0] == 5000
