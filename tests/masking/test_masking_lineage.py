"""Lineage corpus against the sample ``shop`` schema (conf/sample/shop.sql).

Each case: the SQL, what each result column derives from among the pii-tagged columns
("-": nothing tagged, so unmasked; "?": unknown lineage, so masked or refused; otherwise
the tagged columns joined by "+"), and the kinds of findings about tagged or unknown
columns expected.
"""

from __future__ import annotations

import pytest

from myguard.masking.lineage import analyze

SCHEMA = {
    ("shop", "customers"): [
        "id", "name", "email", "phone", "ssn", "card_number", "birth_date", "credit_limit",
        "created_at",
    ],
    ("shop", "orders"): ["id", "customer_id", "item", "quantity", "total", "status", "ordered_at"],
}  # fmt: skip
VIEWS = {
    ("shop", "v_contacts"): "SELECT id, CONCAT(name, ' <', email, '>') AS contact FROM customers",
    (
        "shop",
        "v_orders",
    ): "SELECT o.id, o.item, c.name FROM orders o JOIN customers c ON c.id = o.customer_id",
    ("shop", "v_nested"): "SELECT contact AS who FROM v_contacts",
    ("shop", "v_star"): "select `c`.`id` AS `id`, `c`.`ssn` AS `ssn` from `shop`.`customers` `c`",
}
PII = {"name", "email", "phone", "ssn", "card_number"}

CASES: list[tuple[str, list[str], set[str]]] = [
    # plain references, aliases, stars
    ("SELECT id, name FROM customers", ["-", "name"], set()),
    ("SELECT c.email AS e FROM customers c", ["email"], set()),
    ("SELECT * FROM customers", ["-", "name", "email", "phone", "ssn", "card_number", "-", "-", "-"], set()),
    ("SELECT c.*, o.item FROM customers c JOIN orders o ON o.customer_id = c.id",
     ["-", "name", "email", "phone", "ssn", "card_number", "-", "-", "-", "-"], set()),
    ("SELECT o.* FROM orders o", ["-"] * 7, set()),
    ("SELECT `email` FROM `shop`.`customers`", ["email"], set()),
    ("SELECT shop.customers.ssn FROM shop.customers", ["ssn"], set()),
    ("SELECT item, quantity * total FROM orders", ["-", "-"], set()),
    ("SELECT 1, 'x', NOW()", ["-", "-", "-"], set()),
    # string functions
    ("SELECT CONCAT(email, '') FROM customers", ["email"], set()),
    ("SELECT CONCAT_WS(',', id, phone) FROM customers", ["phone"], set()),
    ("SELECT LOWER(email), UPPER(name) FROM customers", ["email", "name"], set()),
    ("SELECT SUBSTRING(ssn, 1, 3) FROM customers", ["ssn"], set()),
    ("SELECT SUBSTR(card_number FROM 5) FROM customers", ["card_number"], set()),
    ("SELECT REPLACE(phone, ' ', '') FROM customers", ["phone"], set()),
    ("SELECT LEFT(name, 1), RIGHT(card_number, 4) FROM customers", ["name", "card_number"], set()),
    ("SELECT TRIM(email), REVERSE(ssn) FROM customers", ["email", "ssn"], set()),
    ("SELECT HEX(ssn), MD5(email), LENGTH(name) FROM customers", ["ssn", "email", "name"], set()),
    ("SELECT email LIKE 'a%' FROM customers", ["email"], set()),
    ("SELECT COALESCE(phone, email) FROM customers", ["phone+email"], set()),
    ("SELECT IFNULL(phone, 'n/a'), IF(ssn IS NULL, 0, 1) FROM customers", ["phone", "ssn"], set()),
    # casts
    ("SELECT CAST(ssn AS CHAR) FROM customers", ["ssn"], set()),
    ("SELECT CONVERT(email USING utf8mb4) FROM customers", ["email"], set()),
    ("SELECT CONVERT(card_number, UNSIGNED) FROM customers", ["card_number"], {"error echo"}),
    ("SELECT CAST(credit_limit AS SIGNED) FROM customers", ["-"], set()),
    ("SELECT BINARY name FROM customers", ["name"], set()),
    # CASE
    ("SELECT CASE WHEN ssn LIKE '1%' THEN 'a' ELSE 'b' END FROM customers", ["ssn"], set()),
    ("SELECT CASE id WHEN 1 THEN email ELSE name END FROM customers", ["email+name"], set()),
    ("SELECT CASE WHEN id > 1 THEN 'x' END FROM customers", ["-"], set()),
    # aggregates
    ("SELECT GROUP_CONCAT(email) FROM customers", ["email"], {"aggregate"}),
    ("SELECT GROUP_CONCAT(DISTINCT name ORDER BY name SEPARATOR ';') FROM customers", ["name"], {"aggregate"}),
    ("SELECT MIN(ssn), MAX(card_number) FROM customers", ["ssn", "card_number"], {"aggregate"}),
    ("SELECT COUNT(DISTINCT email), COUNT(*), COUNT(phone) FROM customers", ["-", "-", "-"], {"aggregate"}),
    ("SELECT COUNT(*), COUNT(1), COUNT(id) FROM customers", ["-", "-", "-"], set()),
    ("SELECT COUNT(IF(ssn LIKE '1%', 1, NULL)) FROM customers", ["ssn"], {"aggregate"}),
    ("SELECT SUM(LENGTH(email)) FROM customers", ["email"], {"aggregate"}),
    ("SELECT customer_id, SUM(total) FROM orders GROUP BY customer_id", ["-", "-"], set()),
    ("SELECT email, COUNT(*) FROM customers GROUP BY email", ["email", "-"], {"predicate"}),
    ("SELECT name FROM customers GROUP BY name HAVING COUNT(*) > 1", ["name"], {"predicate"}),
    # unions
    ("SELECT email FROM customers UNION SELECT item FROM orders", ["email"], {"distinct"}),
    ("SELECT item FROM orders UNION ALL SELECT name FROM customers", ["name"], set()),
    ("SELECT id, item FROM orders UNION SELECT id, ssn FROM customers UNION SELECT 1, 'x'",
     ["-", "ssn"], {"distinct"}),
    ("SELECT id, item FROM orders UNION ALL SELECT id, ssn FROM customers", ["-", "ssn"], set()),
    ("SELECT ssn FROM customers INTERSECT ALL SELECT item FROM orders", ["ssn"], {"distinct"}),
    ("SELECT x FROM (SELECT email AS x FROM customers UNION SELECT item FROM orders) u", ["email"], {"distinct"}),
    ("(SELECT name FROM customers) UNION (SELECT item FROM orders) ORDER BY 1", ["name"], {"predicate", "distinct"}),
    # subqueries
    ("SELECT (SELECT MAX(ssn) FROM customers) AS m", ["ssn"], {"aggregate"}),
    ("SELECT o.item, (SELECT c.name FROM customers c WHERE c.id = o.customer_id) FROM orders o",
     ["-", "name"], set()),
    ("SELECT o.item FROM orders o WHERE o.customer_id IN (SELECT id FROM customers WHERE ssn LIKE '1%')",
     ["-"], {"predicate", "error echo"}),
    ("SELECT id IN (SELECT id FROM customers WHERE email LIKE 'a%') FROM orders", ["email"],
     {"predicate", "error echo"}),
    ("SELECT EXISTS (SELECT 1 FROM customers c WHERE c.ssn = '123-45-6789')", ["ssn"],
     {"predicate", "error echo"}),
    ("SELECT (SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id) FROM customers c",
     ["-"], set()),
    # derived tables
    ("SELECT d.e FROM (SELECT email AS e FROM customers) d", ["email"], set()),
    ("SELECT * FROM (SELECT id, CONCAT(name, phone) AS np FROM customers) AS d", ["-", "name+phone"], set()),
    ("SELECT x FROM (SELECT y AS x FROM (SELECT ssn AS y FROM customers) a) b", ["ssn"], set()),
    ("SELECT t.n FROM (SELECT COUNT(*) AS n FROM customers) t", ["-"], set()),
    # CTEs
    ("WITH c AS (SELECT email AS e FROM customers) SELECT e FROM c", ["email"], set()),
    ("WITH a AS (SELECT ssn FROM customers), b AS (SELECT ssn AS s FROM a) SELECT s FROM b", ["ssn"], set()),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r",
     ["-"], set()),
    ("WITH RECURSIVE r(a, b, n) AS (SELECT email, '', 1 FROM customers "
     "UNION ALL SELECT b, a, n + 1 FROM r WHERE n < 2) SELECT b, n FROM r", ["email", "-"], set()),
    ("WITH c AS (SELECT * FROM customers) SELECT c.name, c.id FROM c", ["name", "-"], set()),
    # joins
    ("SELECT o.item, c.name FROM orders o JOIN customers c ON c.id = o.customer_id",
     ["-", "name"], set()),
    ("SELECT o.item FROM orders o JOIN customers c ON c.email = o.item", ["-"], {"predicate", "error echo"}),
    ("SELECT id FROM orders JOIN customers USING (id)", ["-"], set()),
    ("SELECT o.item, c.phone FROM orders o LEFT JOIN customers c ON c.id = o.customer_id",
     ["-", "phone"], set()),
    # views
    ("SELECT contact FROM v_contacts", ["name+email"], set()),
    ("SELECT * FROM v_orders", ["-", "-", "name"], set()),
    ("SELECT who FROM v_nested", ["name+email"], set()),
    ("SELECT v.ssn, v.id FROM shop.v_star v", ["ssn", "-"], set()),
    # JSON
    ("SELECT JSON_OBJECT('e', email) FROM customers", ["email"], set()),
    ("SELECT JSON_ARRAYAGG(ssn) FROM customers", ["ssn"], {"aggregate"}),
    ("SELECT JSON_EXTRACT(JSON_OBJECT('p', phone), '$.p') FROM customers", ["phone"], {"error echo"}),
    # window functions
    ("SELECT id, ROW_NUMBER() OVER (ORDER BY ssn) FROM customers", ["-", "ssn"], {"window"}),
    ("SELECT LAG(email) OVER (PARTITION BY id ORDER BY id) FROM customers", ["email"],
     {"aggregate", "window"}),
    ("SELECT id, RANK() OVER (PARTITION BY id ORDER BY created_at) FROM customers", ["-", "-"], set()),
    # prepared-statement shapes
    ("SELECT email FROM customers WHERE id = ?", ["email"], set()),
    ("SELECT CONCAT(?, name) FROM customers WHERE id IN (?, ?)", ["name"], set()),
    ("SELECT id FROM customers WHERE email = ?", ["-"], {"predicate", "error echo"}),
    ("PREPARE s FROM 'SELECT ssn FROM customers WHERE id = ?'", ["ssn"], set()),
    # MariaDB's modifiers (sqlglot reads SQL_CACHE as a column named by what follows)
    ("SELECT SQL_CACHE email FROM customers", ["email"], set()),
    ("SELECT SQL_CACHE id, ssn FROM customers", ["-", "ssn"], set()),
    ("UPDATE LOW_PRIORITY customers SET name = email WHERE ssn = '1'", [], {"predicate", "copy"}),
    # sequences: a value of one derives from no column, what SETVAL is given does
    ("SELECT NEXT VALUE FOR s, NEXTVAL(shop.s), LASTVAL(s)", ["-", "-", "-"], set()),
    ("SELECT SETVAL(s, (SELECT LENGTH(ssn) FROM customers LIMIT 1))", ["ssn"], set()),
    # ODBC escapes
    ("SELECT o.item, c.email FROM {oj orders o LEFT OUTER JOIN customers c ON c.id = o.customer_id}",
     ["-", "email"], set()),
    ("SELECT email, {d '2024-01-31'} FROM customers", ["email", "-"], set()),
    # probes and leaks
    ("SELECT id FROM customers WHERE ssn LIKE '123%'", ["-"], {"predicate"}),
    ("SELECT id FROM customers ORDER BY ssn", ["-"], {"predicate"}),
    ("SELECT email AS e FROM customers ORDER BY e", ["email"], {"predicate"}),
    ("SELECT id FROM customers WHERE id > 3 ORDER BY created_at", ["-"], set()),
    ("SELECT @x := email FROM customers", ["email"], {"variable"}),
    ("SELECT email INTO @v FROM customers LIMIT 1", ["email"], {"into"}),
    ("SELECT email FROM customers INTO OUTFILE '/tmp/x'", None, {"into"}),
    ("SHOW CREATE TABLE customers", None, {"metadata"}),
    ("SHOW PROCESSLIST", None, {"metadata"}),
    ("SELECT * FROM performance_schema.events_statements_history", None, {"metadata"}),
    ("SELECT * FROM information_schema.COLUMN_STATISTICS", None, {"metadata"}),
    ("INSERT INTO orders (item) SELECT email FROM customers", [], {"copy"}),
    ("CREATE TABLE leak AS SELECT ssn FROM customers", [], {"copy"}),
    ("UPDATE customers SET name = email WHERE ssn = '1'", [], {"predicate", "copy"}),
    ("DELETE FROM customers WHERE email LIKE 'a%'", [], {"predicate"}),
    ("UPDATE orders SET quantity = 2 WHERE id = 1", [], set()),
    ("SET @v = (SELECT email FROM customers LIMIT 1)", [], {"copy"}),
    # table value constructors (MariaDB 10.3+): literals, also where sqlglot wants a query
    ("VALUES (1, 'a'), (2, 'b')", ["-", "-"], set()),
    ("WITH c(x, y) AS (VALUES (1, 'a')) SELECT x, y FROM c", ["-", "-"], set()),
    ("WITH c(e) AS (VALUES ('x')) SELECT c.e, customers.email FROM c, customers", ["-", "email"], set()),
    # unknown lineage: never passed through
    ("SELECT a FROM no_such_table", ["?"], set()),
    ("SELECT * FROM no_such_table", None, set()),
    ("SELECT id, name FROM customers, orders", ["?", "name"], set()),
    ("CALL leak_everything()", None, {"routine"}),
    ("HANDLER customers READ FIRST", None, {"unparsed"}),
]  # fmt: skip


def describe(sources) -> str:
    if sources is None:
        return "?"
    tagged = sorted(s.column for s in sources if s.column in PII and s.table == "customers")
    return "+".join(tagged) or "-"


@pytest.mark.parametrize("sql,columns,kinds", CASES, ids=[c[0][:70] for c in CASES])
def test_lineage(sql, columns, kinds):
    lineage = analyze(
        sql,
        db="shop",
        schema=lambda db, table: SCHEMA.get((db, table)),
        views=lambda db, table: VIEWS.get((db, table)),
    )
    got = None if lineage.columns is None else [describe(c) for c in lineage.columns]
    if got is not None and columns is not None:
        got = ["+".join(sorted(g.split("+"))) for g in got]
        columns = ["+".join(sorted(c.split("+"))) for c in columns]
    assert got == columns
    # findings list every probed column; the ones that matter touch tagged (or unknown) ones
    assert {f.kind for f in lineage.findings if describe(f.sources) != "-"} == kinds


def test_corpus_is_large_enough():
    assert len(CASES) >= 60


def test_show_tables_is_data_free():
    lineage = analyze("SHOW FULL TABLES")
    assert lineage.data_free and not lineage.findings
