"""Statement analysis details: kinds, tables read/written, columns, WHERE facts."""

from __future__ import annotations

import pytest

from myguard.analysis import ColumnName, TableName, analyze
from myguard.analysis.lexer import LexError, render, split, tokenize


def one(sql: str, db: str | None = "shop"):
    statements = analyze(sql, db)
    assert len(statements) == 1, statements
    return statements[0]


def names(tables) -> set[str]:
    return {str(t) for t in tables}


@pytest.mark.parametrize(
    ("sql", "kind", "obj"),
    [
        ("SELECT 1", "select", None),
        ("(SELECT 1)", "select", None),
        ("SELECT :a, :b", "select", None),  # sql_mode=ORACLE placeholders, not a label
        ("l: BEGIN NOT ATOMIC SELECT 1; END l", "compound", None),
        ("DROP TABLE t", "drop", "table"),
        ("DROP SCHEMA s", "drop", "database"),
        ("CREATE UNIQUE INDEX i ON t (a)", "create", "index"),
        (
            "CREATE ALGORITHM=MERGE DEFINER=`a`@`b` SQL SECURITY INVOKER VIEW v AS SELECT 1",
            "create",
            "view",
        ),
        ("CREATE TEMPORARY TABLE IF NOT EXISTS t (a INT)", "create", "table"),
        ("DROP EVENT e", "drop", "event"),
        ("CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = 1", "create", "trigger"),
        ("ALTER DATABASE d CHARACTER SET utf8mb4", "alter", "database"),
        ("GRANT SELECT ON *.* TO bob", "grant", None),
        ("SET PASSWORD FOR bob = 'x'", "set", None),
        ("CALL p(1)", "call", "procedure"),
        ("LOAD DATA INFILE 'f' INTO TABLE t", "load_data", None),
        ("LOCK TABLES t READ", "lock", "table"),
        ("UNLOCK TABLES", "unlock", None),
        ("KILL QUERY 5", "kill", None),
        ("SHOW GRANTS", "show", "grants"),
        ("SHOW FULL PROCESSLIST", "show", "processlist"),
        ("SHOW GLOBAL VARIABLES", "show", "variables"),
        ("SHOW ENGINE INNODB STATUS", "show", "engine"),
        ("USE shop", "use", None),
        ("BEGIN WORK", "begin", None),
        ("XA START 'x'", "xa", None),
        ("DEALLOCATE PREPARE s", "deallocate", None),
        ("HANDLER t READ FIRST", "handler", None),
        ("DO 1", "do", None),
        ("FLUSH TABLES", "flush", None),
        ("ANALYZE TABLE t", "analyze", "table"),
        ("ANALYZE SELECT * FROM t", "select", None),
        ("CHECKSUM TABLE t", "checksum", "table"),
        ("EXPLAIN FORMAT=JSON SELECT 1", "explain", None),
        ("EXPLAIN FOR CONNECTION 4", "explain", None),
        ("DESC t", "describe", None),
        ("REPLACE INTO t SET a = 1", "replace", None),
        ("INSTALL PLUGIN p SONAME 'x.so'", "install", None),
        ("SHUTDOWN", "shutdown", None),
        ("START REPLICA", "start", None),
        (
            "WITH d AS (SELECT id FROM t) DELETE FROM t WHERE id IN (SELECT id FROM d)",
            "delete",
            None,
        ),
        ("garbage", "unparsed", None),
        ("BEGIN TRANSACTION NOW", "unparsed", None),
        ("USE a b", "unparsed", None),
    ],
)
def test_kinds(sql, kind, obj):
    statement = one(sql)
    assert (statement.kind, statement.object_type) == (kind, obj)


@pytest.mark.parametrize(
    ("sql", "db", "reads", "writes"),
    [
        ("SELECT * FROM t JOIN other.u ON t.a = u.a", "shop", {"shop.t", "other.u"}, set()),
        ("SELECT * FROM `Shop`.`T`", None, {"Shop.T"}, set()),
        ("SELECT 1 FROM t", None, {"t"}, set()),
        ("WITH c AS (SELECT * FROM x) SELECT * FROM c JOIN y", "s", {"s.x", "s.y"}, set()),
        ("WITH RECURSIVE c AS (SELECT 1 UNION SELECT n FROM c) SELECT * FROM c", "s", set(), set()),
        (
            "SELECT * FROM customers WHERE id IN (WITH customers AS (SELECT 1) SELECT * FROM customers)",
            "s",
            {"s.customers"},
            set(),
        ),
        (
            "SELECT * FROM c.x WHERE 1 IN (WITH x AS (SELECT 1) SELECT * FROM x)",
            "s",
            {"c.x"},
            set(),
        ),
        ("SELECT * FROM (SELECT a FROM t) d", "s", {"s.t"}, set()),
        ("SELECT a FROM t UNION SELECT b FROM u", "s", {"s.t", "s.u"}, set()),
        ("SELECT (SELECT max(x) FROM m) FROM t", "s", {"s.m", "s.t"}, set()),
        ("INSERT INTO t SELECT * FROM u", "s", {"s.u"}, {"s.t"}),
        ("INSERT INTO t (a) VALUES (1)", "s", set(), {"s.t"}),
        ("REPLACE INTO o.t SELECT * FROM u", "s", {"s.u"}, {"o.t"}),
        ("UPDATE t1 JOIN t2 ON t1.a = t2.a SET t1.b = t2.b", "s", {"s.t1", "s.t2"}, {"s.t1"}),
        ("UPDATE t SET a = (SELECT max(b) FROM u) WHERE id = 1", "s", {"s.t", "s.u"}, {"s.t"}),
        ("DELETE t1 FROM t1 JOIN t2 ON t1.a = t2.a", "s", {"s.t1", "s.t2"}, {"s.t1"}),
        # multi-table DELETE names aliases of its FROM/USING tables
        ("DELETE a FROM t1 a JOIN t2 b ON a.x = b.x", "s", {"s.t1", "s.t2"}, {"s.t1"}),
        ("DELETE a, b FROM t1 a JOIN x.t2 b ON a.x = b.x", "s", {"s.t1", "x.t2"}, {"s.t1", "x.t2"}),
        ("DELETE FROM a USING t1 a JOIN t2 b ON a.x = b.x", "s", {"s.t1", "s.t2"}, {"s.t1"}),
        (
            "DELETE FROM a, b USING t1 a, t2 b WHERE a.x = b.x",
            "s",
            {"s.t1", "s.t2"},
            {"s.t1", "s.t2"},
        ),
        ("DELETE t1 FROM t1, t2 WHERE t1.a = t2.a", "s", {"s.t1", "s.t2"}, {"s.t1"}),
        ("DELETE nope FROM t1 a", "s", {"s.t1"}, {"s.nope"}),  # the server refuses it
        # modifiers sqlglot would read as table names (or not parse)
        ("UPDATE LOW_PRIORITY t SET a = 1 WHERE b = 2", "s", {"s.t"}, {"s.t"}),
        ("update low_priority ignore t set a = 1", "s", {"s.t"}, {"s.t"}),
        ("UPDATE IGNORE t1 a, t2 b SET a.x = b.x", "s", {"s.t1", "s.t2"}, {"s.t1"}),
        ("DELETE LOW_PRIORITY QUICK IGNORE FROM t WHERE a = 1", "s", set(), {"s.t"}),
        ("DELETE QUICK a FROM t1 a JOIN t2 b ON a.x = b.x", "s", {"s.t1", "s.t2"}, {"s.t1"}),
        ("INSERT DELAYED IGNORE t (a) VALUES (1)", "s", set(), {"s.t"}),
        ("INSERT HIGH_PRIORITY INTO t SELECT SQL_CACHE * FROM u", "s", {"s.u"}, {"s.t"}),
        ("REPLACE LOW_PRIORITY INTO t (a) VALUES (1)", "s", set(), {"s.t"}),
        ("EXPLAIN UPDATE LOW_PRIORITY t SET a = 1 WHERE b = 2", "s", {"s.t"}, set()),
        # sequences: NEXTVAL/SETVAL move one, LASTVAL reads it
        (
            "SELECT NEXT VALUE FOR q, PREVIOUS VALUE FOR x.r, LASTVAL(`u`)",
            "s",
            {"x.r", "s.u"},
            {"s.q"},
        ),
        ("INSERT INTO t (a) VALUES (NEXT VALUE FOR q)", "s", set(), {"s.t", "s.q"}),
        ("SELECT SETVAL(q, 10)", "s", set(), {"s.q"}),
        # ODBC escapes (BI tools through ODBC drivers)
        (
            "SELECT a FROM t WHERE d > {d '2024-01-31'} AND ts < {ts '2024-02-01 00:00:00'}",
            "s",
            {"s.t"},
            set(),
        ),
        ("SELECT t.a FROM {oj t LEFT OUTER JOIN x.u ON u.id = t.id}", "s", {"s.t", "x.u"}, set()),
        ("DELETE FROM t WHERE d < {d '2020-01-01'}", "s", set(), {"s.t"}),
        ("DELETE FROM t WHERE a IN (SELECT a FROM u)", "s", {"s.u"}, {"s.t"}),
        ("CREATE TABLE t2 AS SELECT * FROM t", "s", {"s.t"}, {"s.t2"}),
        ("CREATE VIEW v AS SELECT * FROM x.t", "s", {"x.t"}, {"s.v"}),
        ("ALTER TABLE db2.t ADD c INT", "s", set(), {"db2.t"}),
        ("DROP TABLE IF EXISTS a, db2.b", "s", set(), {"s.a", "db2.b"}),
        ("DROP TABLES a, db2.b", "s", set(), {"s.a", "db2.b"}),
        ("DROP DATABASE IF EXISTS old", "s", set(), {"old.*"}),
        ("DROP INDEX i ON t", "s", set(), {"s.t"}),
        ("TRUNCATE TABLE x.t", "s", set(), {"x.t"}),
        ("RENAME TABLE a TO b, x.c TO y.d", "s", set(), {"s.a", "s.b", "x.c", "y.d"}),
        ("LOCK TABLES a READ, b AS bb LOW_PRIORITY WRITE", "s", {"s.a"}, {"s.b"}),
        ("LOAD DATA LOCAL INFILE 'f' INTO TABLE x.t", "s", set(), {"x.t"}),
        ("OPTIMIZE NO_WRITE_TO_BINLOG TABLE a, b", "s", set(), {"s.a", "s.b"}),
        ("EXPLAIN UPDATE t SET a = 1 WHERE b = 2", "s", {"s.t"}, set()),
        ("SET @x = (SELECT ssn FROM customers LIMIT 1)", "s", {"s.customers"}, set()),
        ("DO (SELECT 1 FROM t)", "s", {"s.t"}, set()),
    ],
)
def test_tables(sql, db, reads, writes):
    statement = one(sql, db)
    assert (names(statement.reads), names(statement.writes)) == (reads, writes)


@pytest.mark.parametrize(
    ("sql", "columns"),
    [
        ("SELECT SQL_CACHE email FROM customers", {"shop.customers.email"}),
        ("SELECT DISTINCT SQL_CACHE a.email FROM customers a", {"shop.customers.email"}),
        ("SELECT id FROM t WHERE x IN (SELECT SQL_CACHE y FROM u)", {"shop.t.id", "shop.t.x", "shop.u.y"}),
        ("UPDATE LOW_PRIORITY customers SET email = 'x' WHERE id = 1", {"shop.customers.email", "shop.customers.id"}),
        # quoted, it is a column
        ("SELECT `SQL_CACHE` FROM customers", {"shop.customers.SQL_CACHE"}),
        # a sequence is no column, and the insert's columns still belong to its table
        ("INSERT INTO customers (id, email) VALUES (NEXTVAL(q), 'x')",
         {"shop.customers.id", "shop.customers.email"}),
        ("SELECT SQL_CALC_FOUND_ROWS DISTINCT email FROM customers", {"shop.customers.email"}),
        (
            "SELECT STRAIGHT_JOIN c.email FROM customers c STRAIGHT_JOIN orders o ON o.id = c.id",
            {"shop.customers.email", "shop.customers.id", "shop.orders.id"},
        ),
    ],
)  # fmt: skip
def test_modifiers_are_not_columns(sql, columns):
    assert {str(c) for c in one(sql).columns} == columns


def test_columns_are_qualified_where_resolvable():
    statement = one(
        "SELECT c.email, o.total, note FROM customers c JOIN orders o ON o.cid = c.id "
        "WHERE o.id IN (SELECT oid FROM items)"
    )
    assert {str(c) for c in statement.columns} == {
        "shop.customers.email",
        "shop.customers.id",
        "shop.orders.total",
        "shop.orders.cid",
        "shop.orders.id",
        "shop.items.oid",
        "note",
    }


def test_correlated_subquery_resolves_outer_alias():
    statement = one("SELECT id FROM a x WHERE EXISTS (SELECT 1 FROM b WHERE b.k = x.ssn)")
    assert ColumnName(TableName("shop", "a"), "ssn") in statement.columns


def test_insert_columns_and_on_duplicate_key_belong_to_target():
    statement = one("INSERT INTO customers (ssn) VALUES ('1') ON DUPLICATE KEY UPDATE email = 'x'")
    assert {str(c) for c in statement.columns} == {"shop.customers.ssn", "shop.customers.email"}


@pytest.mark.parametrize(
    ("sql", "kind", "writes", "columns"),
    [
        # SQLAlchemy's on_duplicate_key_update() qualifies the column in VALUES()
        (
            "INSERT INTO customers (id, email) VALUES (1, 'x') ON DUPLICATE KEY UPDATE "
            "email = IF(customers.id = 0, VALUES(customers.email), customers.email)",
            "insert",
            {"shop.customers"},
            {"shop.customers.id", "shop.customers.email"},
        ),
        ("INSERT INTO x.t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = VALUES(x.t.a)", "insert",
         {"x.t"}, {"x.t.a"}),
        # table value constructors: a statement, a CTE body (SQLAlchemy's values() in a CTE)
        ("VALUES (1, 'a'), (2, 'b') ORDER BY 1", "select", set(), set()),
        ("WITH c (x) AS (VALUES (1), (2)) SELECT c.x, customers.email FROM c, customers",
         "select", set(), {"x", "shop.customers.email"}),
        ("SELECT * FROM (VALUES (1, 'a')) AS v WHERE 1 IN (VALUES (1), (2))", "select", set(),
         set()),
    ],
)  # fmt: skip
def test_values_where_sqlglot_wants_a_name_or_a_query(sql, kind, writes, columns):
    statement = one(sql)
    assert (statement.kind, names(statement.writes)) == (kind, writes)
    assert {str(c) for c in statement.columns} == columns


def test_star_tables():
    statement = one("SELECT c.*, o.id FROM customers c JOIN orders o ON o.cid = c.id")
    assert names(statement.star_tables) == {"shop.customers"}
    assert names(one("SELECT * FROM a, b").star_tables) == {"shop.a", "shop.b"}
    assert one("SELECT COUNT(*) FROM a").star_tables == frozenset()


@pytest.mark.parametrize(
    ("where", "tautology"),
    [
        ("1=1", True),
        ("1", True),
        ("TRUE", True),
        ("'a'='a'", True),
        ("x=x", True),
        ("t.x <=> t.x", True),
        ("1 OR a = 2", True),
        ("a = 2 OR 1", True),
        ("NOT 0", True),
        ("(((1=1)))", True),
        ("1=2", True),  # constant: same fingerprint as 1=1
        ("a IS NULL OR a IS NOT NULL", True),
        ("1=1 AND 2=2", True),
        ("a = 1", False),
        ("a = 1 AND 1=1", False),
        ("a = b", False),
        ("a = 1 OR b = 2", False),
        ("a IN (SELECT 1)", False),
        ("NOT a", False),
        ("a IS NULL OR b IS NOT NULL", False),
    ],
)
def test_where_tautology(where, tautology):
    statement = one(f"DELETE FROM t WHERE {where}")
    assert statement.has_where
    assert statement.where_tautology is tautology
    assert statement.no_where is tautology


def test_no_where_and_limit():
    statement = one("UPDATE t SET a = 1 LIMIT 5")
    assert (statement.has_where, statement.has_limit, statement.no_where) == (False, True, True)
    assert one("SELECT * FROM t").no_where is False


def test_into_and_local_flags():
    assert one("SELECT * FROM t INTO OUTFILE '/x' FIELDS TERMINATED BY ','").into == "outfile"
    assert one("SELECT a INTO DUMPFILE '/x' FROM t").into == "dumpfile"
    assert one("SELECT a, b INTO @x, @y FROM t").into == "variable"
    assert "export" in one("SELECT 1 INTO OUTFILE 'x'").names
    assert one("LOAD DATA LOCAL INFILE 'x' INTO TABLE t").local is True
    assert one("LOAD DATA INFILE 'x' INTO TABLE t").local is False


def test_prepared_and_opaque():
    inner = one("PREPARE s FROM 'DELETE FROM t'")
    assert (inner.kind, inner.prepared, inner.opaque, inner.cacheable) == (
        "delete",
        True,
        False,
        False,
    )
    assert inner.no_where
    assert one("EXECUTE IMMEDIATE 'TRUNCATE t' USING @a").kind == "truncate"
    for sql in (
        "PREPARE s FROM @v",
        "EXECUTE IMMEDIATE CONCAT('a')",
        "CALL p()",
        "BEGIN NOT ATOMIC SELECT 1; END",
        "l: BEGIN NOT ATOMIC SELECT 1; END l",
        "FOR i IN 1..2 DO SELECT i; END FOR",
        "IF @a THEN SELECT 1; END IF",
    ):
        assert one(sql).opaque, sql
    assert one("EXECUTE s").opaque is False


@pytest.mark.parametrize("sql", ["EXECUTE IMMEDIATE 'USE hr'", "PREPARE s FROM 'use `hr`'"])
def test_use_inside_dynamic_sql_is_not_analysed(sql):
    """The server switches databases there (MariaDB prepares USE), but myguard would go on
    resolving names in the old one: refused as unparsed, never read as a plain USE."""
    statement = one(sql)
    assert statement.kind == "unparsed" and "USE inside PREPARE" in statement.error


def test_multi_statement_and_use_tracking():
    statements = analyze("SELECT 1; USE other; DROP TABLE t;;", "shop")
    assert [s.kind for s in statements] == ["select", "use", "drop"]
    assert names(statements[2].writes) == {"other.t"}


def test_executable_comments_are_code():
    assert [s.kind for s in analyze("SELECT 1 /*! ; DROP TABLE t */", None)] == ["select", "drop"]
    assert [s.kind for s in analyze("/*M!100101 TRUNCATE t */", None)] == ["truncate"]
    assert [s.kind for s in analyze("SELECT 1 /*+ hint ; DROP TABLE t */", None)] == ["select"]


@pytest.mark.parametrize(
    ("sql", "statements"),
    [
        ("SELECT 1; SELECT 2", ["SELECT 1", "SELECT 2"]),
        ("SELECT ';' ; SELECT `;`", ["SELECT ';'", "SELECT `;`"]),
        ("SELECT 'a\\';b'", ["SELECT 'a\\';b'"]),
        ("SELECT 1 -- ;x\n; SELECT 2", ["SELECT 1", "SELECT 2"]),
        ("SELECT 1 #;\n", ["SELECT 1"]),
        ("SELECT 1--1", ["SELECT 1--1"]),
        (
            "/*!50001 CREATE */ /*!50013 DEFINER=x */ VIEW v AS SELECT 1",
            ["CREATE DEFINER=x VIEW v AS SELECT 1"],
        ),
        (
            "CREATE FUNCTION f() RETURNS INT BEGIN DECLARE x INT; "
            "CASE WHEN 1 THEN SET x = 1; END CASE; RETURN x; END; SELECT 2",
            [
                "CREATE FUNCTION f() RETURNS INT BEGIN DECLARE x INT; "
                "CASE WHEN 1 THEN SET x = 1; END CASE; RETURN x; END",
                "SELECT 2",
            ],
        ),
        ("CREATE TABLE event (a INT); SELECT 1", ["CREATE TABLE event (a INT)", "SELECT 1"]),
        # FOR loops in bodies; END FOR UPDATE after a CASE expression is a locking read
        (
            "CREATE PROCEDURE p() BEGIN FOR r IN (SELECT a FROM t) DO SELECT r.a; END FOR; "
            "END; SELECT 2",
            [
                "CREATE PROCEDURE p() BEGIN FOR r IN (SELECT a FROM t) DO SELECT r.a; END FOR; END",
                "SELECT 2",
            ],
        ),
        (
            "CREATE PROCEDURE p() BEGIN SELECT CASE 1 WHEN 1 THEN 1 END FOR UPDATE; END; DROP TABLE t",
            [
                "CREATE PROCEDURE p() BEGIN SELECT CASE 1 WHEN 1 THEN 1 END FOR UPDATE; END",
                "DROP TABLE t",
            ],
        ),
        # MariaDB's blocks outside stored programs, labelled or not, nested
        (
            "FOR i IN 1..2 DO FOR j IN 1..2 DO SELECT j; END FOR; END FOR; DROP TABLE t",
            ["FOR i IN 1..2 DO FOR j IN 1..2 DO SELECT j; END FOR; END FOR", "DROP TABLE t"],
        ),
        (
            "l: LOOP SELECT 1; LEAVE l; END LOOP l; DROP TABLE t",
            ["l: LOOP SELECT 1; LEAVE l; END LOOP l", "DROP TABLE t"],
        ),
        (
            "l: BEGIN NOT ATOMIC SELECT 1; END l; DROP TABLE t",
            ["l: BEGIN NOT ATOMIC SELECT 1; END l", "DROP TABLE t"],
        ),
        (
            "WHILE 0 DO WHILE 0 DO SELECT 1; END WHILE; END WHILE; DROP TABLE t",
            ["WHILE 0 DO WHILE 0 DO SELECT 1; END WHILE; END WHILE", "DROP TABLE t"],
        ),
        (
            "CASE 1 WHEN 1 THEN SELECT CASE 2 WHEN 2 THEN 3 END; END CASE; DROP TABLE t",
            ["CASE 1 WHEN 1 THEN SELECT CASE 2 WHEN 2 THEN 3 END; END CASE", "DROP TABLE t"],
        ),
        (
            "REPEAT SELECT 1; UNTIL 1 END REPEAT; IF 1 THEN SELECT 1; ELSE SELECT 2; END IF; DO 1",
            [
                "REPEAT SELECT 1; UNTIL 1 END REPEAT",
                "IF 1 THEN SELECT 1; ELSE SELECT 2; END IF",
                "DO 1",
            ],
        ),
        # a trigger's or event's body that is one block
        (
            "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW IF NEW.a < 0 THEN "
            "SET NEW.a = 0; END IF; DROP TABLE t",
            [
                "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW IF NEW.a < 0 THEN "
                "SET NEW.a = 0; END IF",
                "DROP TABLE t",
            ],
        ),
        (
            "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW PRECEDES t0 FOR x IN (SELECT 1) "
            "DO SET @a = 1; END FOR; SELECT 1",
            [
                "CREATE TRIGGER tr AFTER INSERT ON t FOR EACH ROW PRECEDES t0 FOR x IN "
                "(SELECT 1) DO SET @a = 1; END FOR",
                "SELECT 1",
            ],
        ),
        (
            "CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO WHILE 0 DO SELECT 1; END WHILE; DO 1",
            ["CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO WHILE 0 DO SELECT 1; END WHILE", "DO 1"],
        ),
        # an expression IF in a one-statement body is no block
        (
            "CREATE FUNCTION f() RETURNS INT RETURN IF(1, 2, 3); DROP TABLE t",
            ["CREATE FUNCTION f() RETURNS INT RETURN IF(1, 2, 3)", "DROP TABLE t"],
        ),
        (
            "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = IF(NEW.a, 1, 0); DO 1",
            [
                "CREATE TRIGGER tr BEFORE INSERT ON t FOR EACH ROW SET NEW.a = IF(NEW.a, 1, 0)",
                "DO 1",
            ],
        ),
        # an IF nested in a top-level IF ends it early: the rest is unparsed, never swallowed
        (
            "IF 1 THEN IF 2 THEN SELECT 1; END IF; END IF; DROP TABLE t",
            ["IF 1 THEN IF 2 THEN SELECT 1; END IF", "END IF", "DROP TABLE t"],
        ),
    ],
)
def test_lexer_split(sql, statements):
    assert [render(s) for s in split(tokenize(sql))] == statements


@pytest.mark.parametrize(
    "sql", ["SELECT 'x", "SELECT `x", "SELECT 1 /* x", "/*! SELECT 1", "SELECT 1 */"]
)
def test_lexer_refuses_what_mysql_refuses(sql):
    with pytest.raises(LexError):
        tokenize(sql)
    assert analyze(sql, None)[0].kind == "unparsed"


def test_analyze_never_raises_on_odd_input():
    for sql in ["\x00", ";;;", "SELECT \u00e9 FROM \u00fc", "((((", "DROP", "EXPLAIN", "LOAD DATA"]:
        for statement in analyze(sql, None):
            assert statement.kind


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = IF(t.a, VALUES(x.t.a), 0)",
        "WITH c (x, y) AS (VALUES (1, 'a'), (2, (SELECT 1))) SELECT x FROM c",
        "SELECT 1 UNION ALL VALUES (2), (3) ORDER BY 1",
        "SHOW GLOBAL VARIABLES LIKE 'x'",
        "DELETE VALUE",  # sqlglot leaves False where the table would be
    ],
)
def test_every_prefix_of_a_rewritten_statement_is_analysed_without_error(sql):
    """A client may send any text: cut short, the rewrites for sqlglot must not fail (an
    unclosed VALUES(t.c) once raised IndexError, DELETE VALUE an AttributeError)."""
    for end in range(1, len(sql) + 1):
        assert analyze(sql[:end], "shop")
