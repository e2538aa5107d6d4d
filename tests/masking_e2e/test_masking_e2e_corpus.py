"""The masking corpus: query shapes run through myguard as bob (analysts, masked).

Every case is checked on the raw bytes the client receives (no original value of name,
email, phone, ssn or card_number in any spelling), then column by column against the
same statement run straight on MariaDB: masked columns hold what their strategy makes
of the original, every other column (definition and cells) is byte-identical. Each case
runs in the text protocol, in the binary protocol (COM_STMT_PREPARE/EXECUTE) and through
a read-only server-side cursor (COM_STMT_FETCH). Refused cases get error 4701 before any
value is sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pymysql
import pytest
from masking_e2e_wire import LAST_ROW, REFUSED, Result, WireClient

from mariadb_server import ROOT_PASSWORD
from myguard.protocol import column_types as ct


@dataclass(frozen=True)
class Case:
    id: str
    sql: str
    masked: dict[str, str] = field(default_factory=dict)  # result column -> expectation
    refuse: bool = False
    binary: bool = True  # can be prepared (one statement)


PLAIN = {
    "name": "redact", "email": "email", "phone": "redact", "ssn": "partial4", "card_number": "null",
}  # fmt: skip
ALL = "id, name, email, phone, ssn, card_number, birth_date, credit_limit, created_at"

CASES = [
    # --- plain columns, stars, aliases, qualified names
    Case("all-columns", f"SELECT {ALL} FROM customers ORDER BY id", PLAIN),
    Case("star", "SELECT * FROM customers ORDER BY id", PLAIN),
    Case("table-star", "SELECT c.* FROM customers c ORDER BY c.id", PLAIN),
    Case(
        "star-join",
        "SELECT c.*, o.item, o.total FROM customers c "
        "JOIN orders o ON o.customer_id = c.id ORDER BY o.id",
        PLAIN,
    ),
    Case(
        "aliases",
        "SELECT name AS n, email AS contact, ssn s FROM customers ORDER BY id",
        {"n": "redact", "contact": "email", "s": "partial4"},
    ),
    Case(
        "qualified",
        "SELECT shop.customers.email, customers.ssn FROM shop.customers ORDER BY id",
        {"email": "email", "ssn": "partial4"},
    ),
    Case(
        "backticks",
        "SELECT `email`, `card_number` FROM `shop`.`customers` ORDER BY `id`",
        {"email": "email", "card_number": "null"},
    ),
    Case(
        "where-id",
        "SELECT id, name, email FROM customers WHERE id IN (1, 3) ORDER BY id",
        {"name": "redact", "email": "email"},
    ),
    # DISTINCT compares masked values: the row count tells which are equal (refused)
    Case("distinct", "SELECT DISTINCT email FROM customers", refuse=True),
    Case(
        "limit-zero",
        "SELECT name, ssn FROM customers LIMIT 0",
        {"name": "redact", "ssn": "partial4"},
    ),
    Case(
        "cast-char",
        "SELECT CAST(ssn AS CHAR) AS s, UPPER(email) AS e, LOWER(email) AS l "
        "FROM customers ORDER BY id",
        {"s": "partial4", "e": "email", "l": "email"},
    ),
    # --- derived values: anything but the plain column (or a case/cast of it) is redacted
    Case(
        "concat-empty",
        "SELECT id, CONCAT(email, '') AS e FROM customers ORDER BY id",
        {"e": "redact"},
    ),
    Case(
        "substring",
        "SELECT SUBSTRING(email, 1, 5) AS e FROM customers ORDER BY id",
        {"e": "redact"},
    ),
    Case(
        "local-part",
        "SELECT SUBSTRING_INDEX(email, '@', 1) AS e FROM customers ORDER BY id",
        {"e": "redact"},
    ),
    Case(
        "replace",
        "SELECT REPLACE(email, '@', ' at ') AS e FROM customers ORDER BY id",
        {"e": "redact"},
    ),
    Case("reverse-email", "SELECT REVERSE(email) AS e FROM customers ORDER BY id", {"e": "redact"}),
    Case(
        "swap-email",
        "SELECT CONCAT(SUBSTRING_INDEX(email, '@', -1), '@', "
        "SUBSTRING_INDEX(email, '@', 1)) AS e FROM customers ORDER BY id",
        {"e": "redact"},
    ),
    Case(
        "email-then-ssn",
        "SELECT CONCAT(email, '@', ssn) AS e FROM customers ORDER BY id",
        {"e": "redact"},
    ),
    Case("left-ssn", "SELECT LEFT(ssn, 5) AS s FROM customers ORDER BY id", {"s": "redact"}),
    Case("right-email", "SELECT RIGHT(email, 10) AS e FROM customers ORDER BY id", {"e": "redact"}),
    Case("reverse-ssn", "SELECT REVERSE(ssn) AS s FROM customers ORDER BY id", {"s": "redact"}),
    Case(
        "convert",
        "SELECT CONVERT(email USING latin1) AS e, CONVERT(phone, CHAR) AS p "
        "FROM customers ORDER BY id",
        {"e": "masked", "p": "redact"},
    ),
    Case(
        "case",
        "SELECT id, CASE WHEN id = 1 THEN email ELSE ssn END AS x FROM customers ORDER BY id",
        {"x": "redact"},
    ),
    Case(
        "if-null",
        "SELECT IF(ssn IS NULL, 'none', 'some') AS x, card_number IS NULL AS nc "
        "FROM customers ORDER BY id",
        {"x": "redact", "nc": "null"},
    ),
    Case(
        "concat-ws",
        "SELECT CONCAT_WS(',', name, email) AS x FROM customers ORDER BY id",
        {"x": "redact"},
    ),
    Case("length", "SELECT id, LENGTH(email) AS n FROM customers ORDER BY id", {"n": "zero"}),
    Case("hex-ssn", "SELECT HEX(ssn) AS h FROM customers ORDER BY id", {"h": "redact"}),
    Case(
        "base64-email", "SELECT TO_BASE64(email) AS b FROM customers ORDER BY id", {"b": "redact"}
    ),
    Case("sha2-ssn", "SELECT SHA2(ssn, 256) AS h FROM customers ORDER BY id", {"h": "redact"}),
    Case(
        "json-object",
        "SELECT JSON_OBJECT('e', email) AS j FROM customers ORDER BY id",
        {"j": "redact"},
    ),
    # JSON functions that parse a document quote it in their errors (refused)
    Case(
        "json-extract",
        "SELECT JSON_UNQUOTE(JSON_EXTRACT(JSON_OBJECT('e', email), '$.e')) AS j "
        "FROM customers ORDER BY id",
        refuse=True,
    ),
    # --- windows and aggregates over masked columns are inference probes: refused
    Case(
        "window",
        "SELECT id, ROW_NUMBER() OVER (ORDER BY email) AS rn FROM customers ORDER BY id",
        refuse=True,
    ),
    Case("group-concat", "SELECT GROUP_CONCAT(email ORDER BY id) AS g FROM customers", refuse=True),
    Case("json-arrayagg", "SELECT JSON_ARRAYAGG(email) AS j FROM customers", refuse=True),
    Case("min-max", "SELECT MIN(ssn) AS lo, MAX(name) AS hi FROM customers", refuse=True),
    Case(
        "counts",
        "SELECT COUNT(email) AS n, COUNT(DISTINCT ssn) AS d FROM customers",
        refuse=True,
    ),
    Case("count-star", "SELECT COUNT(*) AS n, COUNT(id) AS i FROM customers", {}),
    Case(
        "group-by-id",
        "SELECT c.id, MAX(c.email) AS m, SUM(o.total) AS t FROM customers c "
        "JOIN orders o ON o.customer_id = c.id GROUP BY c.id ORDER BY c.id",
        refuse=True,
    ),
    Case(
        "group-by-id-unmasked",
        "SELECT c.id, SUM(o.total) AS t FROM customers c "
        "JOIN orders o ON o.customer_id = c.id GROUP BY c.id ORDER BY c.id",
        {},
    ),
    # --- set operations
    Case(
        "union-second",
        "SELECT item FROM orders UNION ALL SELECT email FROM customers",
        {"item": "email"},
    ),
    Case(
        "union-reverse",
        "SELECT item FROM orders UNION ALL SELECT REVERSE(email) FROM customers",
        {"item": "redact"},
    ),
    # UNION without ALL compares the masked values of its branches (refused)
    Case(
        "union-name",
        "SELECT email FROM customers WHERE id = 1 UNION SELECT name FROM customers WHERE id = 2",
        refuse=True,
    ),
    Case(
        "union-all-name",
        "SELECT email FROM customers WHERE id = 1 UNION ALL SELECT name FROM customers "
        "WHERE id = 2",
        {"email": "redact"},
    ),
    # --- subqueries, CTEs, derived tables
    Case(
        "scalar-subquery",
        "SELECT o.id, (SELECT c.email FROM customers c WHERE c.id = o.customer_id) "
        "AS e FROM orders o ORDER BY o.id",
        {"e": "redact"},
    ),
    Case(
        "in-subquery",
        "SELECT name FROM customers WHERE id IN "
        "(SELECT customer_id FROM orders WHERE total > 100) ORDER BY id",
        {"name": "redact"},
    ),
    Case(
        "exists",
        "SELECT c.email FROM customers c WHERE EXISTS "
        "(SELECT 1 FROM orders o WHERE o.customer_id = c.id AND o.status = 'paid') ORDER BY c.id",
        {"email": "email"},
    ),
    Case(
        "cte",
        "WITH x AS (SELECT id, email FROM customers) SELECT email FROM x ORDER BY id",
        {"email": "email"},
    ),
    Case(
        "cte-expression",
        "WITH x AS (SELECT id, REVERSE(email) AS e FROM customers) SELECT e FROM x ORDER BY id",
        {"e": "redact"},
    ),
    Case(
        "derived",
        "SELECT t.e, t.s FROM (SELECT id, email AS e, ssn AS s FROM customers) t ORDER BY t.id",
        {"e": "email", "s": "partial4"},
    ),
    # --- views
    Case(
        "view-star",
        "SELECT * FROM v_customers ORDER BY id",
        {"name": "redact", "email": "email", "ssn": "partial4"},
    ),
    Case(
        "view-expression",
        "SELECT contact FROM v_contact ORDER BY id",
        {"contact": "redact"},
    ),
    Case(
        "view-join",
        "SELECT order_id, item, email, phone FROM v_customer_orders ORDER BY order_id",
        {"email": "email", "phone": "redact"},
    ),
    Case("view-reversed", "SELECT email FROM v_rev ORDER BY id", {"email": "redact"}),
    # --- joins, untouched data
    Case(
        "join",
        "SELECT o.item, c.name, c.email FROM orders o JOIN customers c ON c.id = o.customer_id "
        "ORDER BY o.id",
        {"name": "redact", "email": "email"},
    ),
    Case(
        "no-pii",
        "SELECT id, customer_id, item, quantity, total, status, ordered_at FROM orders",
        {},
    ),
    Case(
        "no-pii-customers",
        "SELECT id, birth_date, credit_limit * 2 AS c2, created_at FROM customers",
        {},
    ),
    Case(
        "multi-statement",
        "SELECT email FROM customers WHERE id = 1; SELECT ssn FROM customers",
        {"email": "email", "ssn": "partial4"},
        binary=False,
    ),
    # --- refused: masked data would leak around the result
    Case("where-like", "SELECT id FROM customers WHERE ssn LIKE '123%'", refuse=True),
    Case("where-eq", "SELECT id FROM customers WHERE email = 'ada@example.com'", refuse=True),
    Case("order-by", "SELECT id, name FROM customers ORDER BY ssn", refuse=True),
    Case("order-by-alias", "SELECT id, email AS e FROM customers ORDER BY e", refuse=True),
    Case("group-by", "SELECT email, COUNT(*) FROM customers GROUP BY email", refuse=True),
    Case("having", "SELECT id FROM customers GROUP BY id HAVING MAX(phone) > '+2'", refuse=True),
    Case(
        "join-on", "SELECT a.id FROM customers a JOIN customers b ON a.email = b.email", refuse=True
    ),
    Case(
        "exists-probe",
        "SELECT id FROM orders WHERE EXISTS (SELECT 1 FROM customers c "
        "WHERE c.ssn LIKE '1%' AND c.id = orders.customer_id)",
        refuse=True,
    ),
    Case(
        "in-probe",
        "SELECT id, id IN (SELECT id FROM customers WHERE email LIKE 'a%') FROM customers",
        refuse=True,
    ),
    Case("variable", "SELECT @x := email FROM customers", refuse=True),
    Case("into-variable", "SELECT email INTO @v FROM customers LIMIT 1", refuse=True),
    Case("set-variable", "SET @v = (SELECT email FROM customers LIMIT 1)", refuse=True),
    Case("show-create", "SHOW CREATE TABLE customers", refuse=True),
    Case(
        "create-as-select",
        "CREATE TEMPORARY TABLE t_copy AS SELECT email FROM customers",
        refuse=True,
    ),
]


def params(cases: list[Case]) -> list:
    return [pytest.param(c, id=c.id) for c in cases]


def test_corpus_is_large_enough():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


# --- expectations ------------------------------------------------------------------------


def _stars(n: int) -> bytes:
    return b"*" * n


def expected_text(kind: str, original: bytes | None) -> bytes | None:
    """What a string strategy makes of the original value (text spelling)."""
    if kind == "null" or original is None:
        return None
    if kind == "redact":
        return b"****"
    if kind == "email":
        at = original.rfind(b"@")
        return b"****" + original[at:] if at >= 0 else b"****"
    if kind == "partial4":
        chars = original.decode()
        shown = chars[-4:] if len(chars) > 4 else ""
        return (_stars(len(chars) - len(shown)).decode() + shown).encode()
    raise AssertionError(kind)


def check_masked(kind: str, got: bytes | None, original: bytes | None, col, binary: bool) -> None:
    if kind == "masked":
        assert got != original or original is None
        return
    if kind == "zero":
        assert got is not None
        if binary and col.type in ct.BINARY_FIXED_WIDTH:
            assert set(got) <= {0}, got
        else:
            assert got.strip(b"0.") == b"", got
        return
    assert got == expected_text(kind, original), (kind, original)


def compare(got: list[Result], direct: list[Result], masked: dict[str, str], binary: bool) -> None:
    assert len(got) == len(direct)
    unknown = set(masked) - {n for r in got for n in r.names}
    assert not unknown, f"no such result columns: {unknown}"
    for mine, theirs in zip(got, direct, strict=True):
        assert mine.error is None and theirs.error is None, (mine.error, theirs.error)
        assert mine.names == theirs.names
        assert len(mine.rows) == len(theirs.rows)
        for i, name in enumerate(mine.names):
            kind = masked.get(name)
            if kind is None:
                assert mine.columns[i] == theirs.columns[i], name
                assert [r[i] for r in mine.rows] == [r[i] for r in theirs.rows], name
                continue
            for row, orig in zip(mine.rows, theirs.rows, strict=True):
                check_masked(kind, row[i], orig[i], mine.columns[i], binary)


def assert_refused(results: list[Result]) -> None:
    err = results[0].error
    assert err is not None, "expected a refusal"
    assert (err.code, err.sqlstate) == (REFUSED, "42000")
    assert err.message.startswith("myguard: "), err.message


def assert_no_leak(scanner, data: bytes) -> None:
    leaks = scanner.leaks(data)
    assert not leaks, f"original PII values reached the client: {leaks}"


# --- the three protocols -----------------------------------------------------------------


@pytest.fixture(scope="module")
def bob(proxy, shop_views):
    client = WireClient(proxy.port)
    client.login("bob", "bob-pw-2", "shop")
    yield client
    client.close()


@pytest.fixture(scope="module")
def direct(mariadb, shop_views):
    client = WireClient(mariadb.port)
    client.login("root", ROOT_PASSWORD, "shop")
    yield client
    client.close()


def _run_text(client: WireClient, sql: str) -> tuple[list[Result], bytes]:
    start = len(client.received)
    results = client.query(sql)
    return results, bytes(client.received[start:])


def _run_binary(client: WireClient, sql: str, cursor: bool) -> tuple[list[Result], bytes]:
    start = len(client.received)
    prepared = client.prepare(sql)
    if not isinstance(prepared, tuple):
        return [Result(error=prepared)], bytes(client.received[start:])
    stmt_id, _, _ = prepared
    results = client.execute(stmt_id, cursor=cursor)
    if cursor and results[0].error is None and results[0].columns and not results[0].rows:
        first = results[0]
        while True:
            batch = client.fetch(stmt_id, 3, first.columns)
            assert batch.error is None, batch.error
            first.rows += batch.rows
            if batch.status & LAST_ROW or not batch.rows:
                break
    client.close_statement(stmt_id)
    return results, bytes(client.received[start:])


@pytest.mark.parametrize("case", params(CASES))
def test_text_protocol(case: Case, bob, direct, leak_scanner):
    results, raw = _run_text(bob, case.sql)
    assert_no_leak(leak_scanner, raw)
    if case.refuse:
        assert_refused(results)
        return
    compare(results, _run_text(direct, case.sql)[0], case.masked, binary=False)


BINARY_CASES = [c for c in CASES if c.binary]


@pytest.mark.parametrize("cursor", [False, True], ids=["execute", "cursor"])
@pytest.mark.parametrize("case", params(BINARY_CASES))
def test_binary_protocol(case: Case, cursor: bool, bob, direct, leak_scanner):
    results, raw = _run_binary(bob, case.sql, cursor)
    assert_no_leak(leak_scanner, raw)
    if case.refuse:
        assert_refused(results)
        return
    compare(results, _run_binary(direct, case.sql, cursor)[0], case.masked, binary=True)


def test_bob_session_survives_the_corpus(bob):
    """After every refusal and cursor, the same connection still answers in step."""
    assert bob.query("SELECT 41 + 1")[0].rows == [[b"42"]]


# --- PyMySQL: decoded values of the columns that are not masked match a direct query ------


@pytest.mark.parametrize("case", params([c for c in CASES if not c.refuse and c.binary]))
def test_pymysql_unmasked_columns_match(case: Case, proxy, mariadb, shop_views, leak_scanner):
    through = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="bob", password="bob-pw-2", database="shop"
    )
    straight = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD, database="shop"
    )
    try:
        with through.cursor() as a, straight.cursor() as b:
            a.execute(case.sql)
            b.execute(case.sql)
            names = [d[0] for d in a.description]
            assert names == [d[0] for d in b.description]
            mine, theirs = a.fetchall(), b.fetchall()
    finally:
        through.close()
        straight.close()
    assert len(mine) == len(theirs)
    assert_no_leak(leak_scanner, repr(mine).encode())
    for i, name in enumerate(names):
        if name not in case.masked:
            assert [r[i] for r in mine] == [r[i] for r in theirs], name
