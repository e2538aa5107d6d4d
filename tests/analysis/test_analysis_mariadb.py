"""File access, account management by SET, MariaDB-only syntax, and statements that used to
crash the analysis or take it minutes."""

from __future__ import annotations

import logging
import time

import pytest

from myguard.analysis import analyze
from myguard.analysis.mariadb_syntax import text_for_sqlglot
from myguard.analysis.sqlglot_path import MAX_OPEN_JOINS


def one(sql: str, db: str | None = "shop"):
    statements = analyze(sql, db)
    assert len(statements) == 1, statements
    return statements[0]


def names(tables) -> set[str]:
    return {str(t) for t in tables}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT LOAD_FILE('/etc/passwd')",
        "select load_file('/etc/passwd')",
        "SELECT `LOAD_FILE`('/etc/passwd')",
        "SELECT LOAD_FILE ('/etc/passwd')",
        "SELECT LOAD_FILE/**/('/etc/passwd')",
        "SELECT /*!LOAD_FILE('/etc/passwd')*/",
        "SELECT id, (SELECT LOAD_FILE('/x')) FROM t",
        "SELECT * FROM t WHERE a IN (SELECT LOAD_FILE('/x'))",
        "SELECT CONCAT('a', UPPER(LOAD_FILE('/x')))",
        "SELECT a FROM t UNION ALL SELECT LOAD_FILE('/x')",
        "WITH c AS (SELECT LOAD_FILE('/x') AS f) SELECT f FROM c",
        "INSERT INTO t (a) SELECT LOAD_FILE('/x')",
        "INSERT INTO t (a) VALUES (LOAD_FILE('/x'))",
        "UPDATE t SET a = LOAD_FILE('/x') WHERE id = 1",
        "SET @x = LOAD_FILE('/x')",
        "DO LOAD_FILE('/x')",
        "EXPLAIN SELECT LOAD_FILE('/x')",
        "PREPARE s FROM 'SELECT LOAD_FILE(''/x'')'",
        "CREATE TABLE t2 AS SELECT LOAD_FILE('/x') AS f",
        "SELECT 1 INTO OUTFILE '/tmp/x'",
        "SELECT 1 INTO DUMPFILE '/tmp/x'",
        "LOAD DATA INFILE '/x' INTO TABLE t",
        "LOAD DATA LOCAL INFILE '/x' INTO TABLE t",
        "LOAD XML INFILE '/x' INTO TABLE t",
        "CREATE TABLE t (a INT) ENGINE=CONNECT TABLE_TYPE=CSV FILE_NAME='/etc/passwd'",
        "CREATE TABLE t (a INT) engine=connect table_type=DOS file_name '/etc/passwd'",
        "ALTER TABLE t FILE_NAME = '/etc/shadow'",
        "CREATE TABLE t (a INT) DATA DIRECTORY = '/var/www'",
        "CREATE TABLE t (a INT) ENGINE=MyISAM INDEX DIRECTORY '/tmp'",
        "SELECT TRIM(LEADING 'a' FROM LOAD_FILE('/x'))",  # FROM, ON, LIKE take calls
        "SELECT 1 FROM t JOIN u ON LOAD_FILE('/x') IS NULL",
        "SELECT a FROM t WHERE a LIKE LOAD_FILE('/x')",
    ],
)
def test_file_access(sql):
    assert "file_access" in one(sql).names


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 'LOAD_FILE(/x)'",
        "SELECT load_file FROM t",
        "SELECT `load_file` FROM t",
        "SELECT 1 -- LOAD_FILE('/x')",
        "SELECT 1 INTO @v",
        "SELECT * FROM t",
        "SELECT * FROM t WHERE file_name = 'x'",
        "CREATE TABLE t (file_name VARCHAR(9), data INT, `index` INT)",
        "CREATE TABLE t2 AS SELECT data, directory FROM t",
        "ALTER DATABASE d UPGRADE DATA DIRECTORY NAME",  # names no path (mysql-test renamedb)
        # A table named load_file, its column list after it (mysql-test parser_bug21114)
        "CREATE TABLE load_file (a INT)",
        "CREATE TABLE IF NOT EXISTS `load_file`(a INT)",
        "INSERT INTO load_file(a) VALUES (1)",
        "CREATE TABLE c (id INT, FOREIGN KEY (id) REFERENCES load_file(a))",
        "SELECT db.load_file(1)",  # a stored function of that name, not the built-in
    ],
)
def test_no_file_access(sql):
    assert "file_access" not in one(sql).names


def test_load_file_keeps_the_query_analysis():
    statement = one("SELECT id, LOAD_FILE('/x') FROM orders WHERE id = 1")
    assert (statement.kind, names(statement.reads)) == ("select", {"shop.orders"})


@pytest.mark.parametrize(
    "sql",
    [
        "SET PASSWORD FOR 'other'@'localhost' = PASSWORD('x')",
        "set password for other@localhost = 'x'",
        "SET PASSWORD FOR `other`@`%` = PASSWORD('x')",
        "SET PASSWORD = PASSWORD('x')",
        "SET PASSWORD := 'x'",
        "SET @a = 1, PASSWORD = PASSWORD('x')",
        "SET DEFAULT ROLE admin FOR other",
        "SET STATEMENT max_statement_time = 1 FOR SET PASSWORD FOR other = ''",
    ],
)
def test_account_management_by_set_is_dcl(sql):
    statement = one(sql)
    assert statement.kind == "set"
    assert {"dcl", "write"} <= statement.names


@pytest.mark.parametrize(
    ("sql", "db"),
    [
        ("UPDATE mysql.user SET authentication_string = '' WHERE user = 'bob'", None),
        ("UPDATE user SET Password = '' WHERE User = 'bob'", "mysql"),
        ("INSERT INTO `MySQL`.`global_priv` VALUES ('%', 'eve', '{}')", "shop"),
        ("REPLACE INTO mysql.db SELECT * FROM shop.t", "shop"),
        ("DELETE FROM mysql.roles_mapping WHERE User = 'bob'", "shop"),
        ("LOAD DATA INFILE '/x' INTO TABLE mysql.tables_priv", "shop"),
    ],
)
def test_writes_to_grant_tables_are_dcl(sql, db):
    assert {"dcl", "write"} <= one(sql, db).names


def test_reads_of_grant_tables_and_writes_elsewhere_are_not_dcl():
    assert "dcl" not in one("SELECT user, host FROM mysql.user", None).names
    assert "dcl" not in one("UPDATE shop.user SET name = 'x' WHERE id = 1", "mysql").names


@pytest.mark.parametrize(
    "sql", ["SET @h = PASSWORD('x')", "SET ROLE admin", "SET old_passwords = 0", "SET NAMES utf8"]
)
def test_other_sets_are_not_dcl(sql):
    assert "dcl" not in one(sql).names


@pytest.mark.parametrize(
    ("sql", "analysed"),
    [
        ("SELECT ssn FROM customers LIMIT ROWS EXAMINED 100", ""),
        ("select ssn from customers limit rows examined 100", ""),
        ("SELECT ssn FROM customers LIMIT 10 ROWS EXAMINED 100", " LIMIT 10"),
        ("SELECT ssn FROM customers LIMIT 5, 10 ROWS EXAMINED 100", " LIMIT 5, 10"),
        ("SELECT ssn FROM customers LIMIT 10 OFFSET 5 ROWS EXAMINED 100", " LIMIT 10 OFFSET 5"),
        ("SELECT ssn FROM customers LIMIT ? ROWS EXAMINED ?", " LIMIT ?"),
        ("SELECT ssn FROM customers /* c */ LIMIT /* d */ ROWS EXAMINED 100", ""),
    ],
)
def test_limit_rows_examined(sql, analysed):
    statement = one(sql)
    assert statement.kind == "select"
    assert names(statement.reads) == {"shop.customers"}
    assert {str(c) for c in statement.columns} == {"shop.customers.ssn"}
    assert statement.has_limit is bool(analysed)
    # The text masking's lineage reads (sqlglot's reading) is without it.
    assert statement.sql.upper() == ("SELECT ssn FROM customers" + analysed).upper()


def test_limit_rows_examined_in_a_subquery_and_union():
    statement = one(
        "SELECT x.e FROM (SELECT email AS e FROM customers LIMIT ROWS EXAMINED 5) x "
        "UNION SELECT ssn FROM hr.staff LIMIT 3 ROWS EXAMINED 9"
    )
    assert names(statement.reads) == {"shop.customers", "hr.staff"}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t rows examined 5",
        "SELECT a FROM t LIMIT 1 ROWS EXAMINED",
        "SELECT a FROM t LIMIT 1 ROWS EXAMINED UNION SELECT ssn FROM customers",
        "SELECT a FROM t LIMIT x ROWS EXAMINED 5",
    ],
)
def test_rows_examined_outside_a_limit_is_not_stripped(sql):
    assert one(sql).unparsed


@pytest.mark.parametrize(
    ("sql", "kind", "reads"),
    [
        (
            "SET STATEMENT max_statement_time=1 FOR SELECT ssn FROM customers",
            "select",
            {"shop.customers"},
        ),
        (
            "set statement max_statement_time = 1 for select ssn from customers",
            "select",
            {"shop.customers"},
        ),
        ("SET STATEMENT a=1, b='x,y' FOR DELETE FROM t WHERE id = 1", "delete", set()),
        ("SET STATEMENT a=(1) FOR INSERT INTO t SELECT * FROM u", "insert", {"shop.u"}),
        ("SET STATEMENT sql_log_bin=0 FOR DROP TABLE t", "drop", set()),
        ("SET STATEMENT a=1 FOR SET STATEMENT b=2 FOR SELECT * FROM u", "select", {"shop.u"}),
        (
            "SET STATEMENT a=1 FOR SELECT ssn FROM customers LIMIT ROWS EXAMINED 3",
            "select",
            {"shop.customers"},
        ),
        (
            "SET STATEMENT a = (SELECT ssn FROM customers) FOR SELECT 1",
            "select",
            {"shop.customers"},
        ),
    ],
)
def test_set_statement_is_its_inner_statement(sql, kind, reads):
    statement = one(sql)
    assert (statement.kind, names(statement.reads)) == (kind, reads)
    # ... and answers to the SET's names as well.
    assert {"set", "session"} <= statement.names
    assert statement.sql.upper().startswith(kind.upper())


def test_only_a_plain_use_changes_the_database_of_what_follows():
    statements = analyze(
        "SET STATEMENT a=1 FOR USE x; SELECT * FROM t; USE y; SELECT * FROM u", "s"
    )
    assert [names(s.reads) for s in statements] == [set(), {"s.t"}, set(), {"y.u"}]


@pytest.mark.parametrize(
    ("sql", "kind", "obj"),
    [
        (
            "SET STATEMENT sql_mode='' FOR CREATE PROCEDURE p() BEGIN SELECT 1; SELECT 2; END",
            "create",
            "procedure",
        ),
        ("SET STATEMENT a=(1) FOR BEGIN NOT ATOMIC SELECT 1; DELETE FROM t; END", "compound", None),
    ],
)
def test_set_statement_for_a_stored_program_is_one_statement(sql, kind, obj):
    statement = one(sql)
    assert (statement.kind, statement.object_type) == (kind, obj)


def test_set_statement_before_an_ordinary_statement_still_splits():
    statements = analyze("SET STATEMENT a=1 FOR SELECT 1; DROP TABLE t", "s")
    assert [s.kind for s in statements] == ["select", "drop"]


def test_set_statement_keeps_the_inner_flags():
    statement = one("SET STATEMENT sql_log_bin=0 FOR DELETE FROM t")
    assert statement.no_where
    assert {"delete", "dml", "write", "set"} <= statement.names


@pytest.mark.parametrize(
    "sql",
    [
        "SET STATEMENT a=1 FOR",
        "SET STATEMENT FOR SELECT 1",
        "SET STATEMENT a=1 SELECT 1",
        "SET STATEMENT a=1 FOR garbage",
        "SET STATEMENT a=(SELECT FROM) FOR SELECT 1",
    ],
)
def test_broken_set_statement_is_unparsed(sql):
    assert one(sql).unparsed


@pytest.mark.parametrize(
    ("sql", "reads", "writes"),
    [
        ("UPDATE t1 LEFT JOIN t2 USING(ID) SET s1 = 'changed'", {"s.t1", "s.t2"}, {"s.t1", "s.t2"}),
        ("update (select * from t1) as t1 set a = 5", {"s.t1"}, set()),
        ("UPDATE t1, t2 SET b = 4 WHERE a IN (6,2)", {"s.t1", "s.t2"}, {"s.t1", "s.t2"}),
    ],
)
def test_update_with_an_unknown_target_writes_every_joined_table(sql, reads, writes):
    statement = one(sql, "s")
    assert statement.kind == "update"
    assert (names(statement.reads), names(statement.writes)) == (reads, writes)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + "(" * 400 + "1" + ")" * 400,
        "SELECT " + "hex(" * 300 + "1" + ")" * 300,
        "SELECT " + "(SELECT " * 200 + "1" + ")" * 200,
        "PREPARE s FROM 'SELECT " + "(" * 400 + "1" + ")" * 400 + "'",
    ],
)
def test_deep_nesting_is_unparsed(sql):
    statement = one(sql)
    assert statement.unparsed
    assert "nested too deeply" in (statement.error or "")


def test_many_joins_without_on_are_refused_quickly():
    sql = "SELECT * FROM t0" + "".join(f" JOIN t{i}" for i in range(1, 40))
    started = time.perf_counter()
    statement = one(sql)
    assert time.perf_counter() - started < 1
    assert statement.unparsed
    assert "JOIN" in (statement.error or "")


def test_open_joins_count_across_parentheses():
    # An outer JOIN's retry parses the derived table after it again, with its own retries.
    inner = " JOIN (SELECT * FROM a" + " JOIN a" * 7 + ") x"
    assert one("SELECT * FROM b" + " JOIN b" * 6 + inner).unparsed
    # Closed parentheses no longer count.
    assert one("SELECT * FROM " + inner[6:] + " JOIN b" * 6).kind == "select"


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM t0" + " JOIN t" * MAX_OPEN_JOINS,
        "SELECT * FROM t0" + " JOIN t ON 1" * 40,
        "SELECT * FROM t0" + " NATURAL JOIN t" * 40,
        "SELECT * FROM t0" + " CROSS JOIN t" * 40,
        "SELECT * FROM t0" + " LEFT JOIN t USING (a)" * 40,
        "SELECT * FROM t0" + ", t" * 40,
    ],
)
def test_joins_sqlglot_parses_in_linear_time_are_analysed(sql):
    started = time.perf_counter()
    assert one(sql).kind == "select"
    assert time.perf_counter() - started < 1


def test_sqlglot_warnings_are_one_debug_line_per_fingerprint(caplog):
    caplog.set_level(logging.DEBUG)
    for value in range(5):
        analyze(f"CREATE TABLE t (a INT) ENGINE=InnoDB DATA DIRECTORY '/d{value}'", "s")
        analyze(f"SELECT JSON_EXTRACT(a, '$.my-key{value}') FROM t", "s")
    sqlglot = [r for r in caplog.records if r.name == "sqlglot"]
    ours = [r for r in caplog.records if r.name == "myguard.analysis"]
    assert sqlglot == []
    assert len(ours) == 2, [r.getMessage() for r in ours]
    assert all(r.levelno == logging.DEBUG for r in ours)
    # The statement is logged as its fingerprint: no literal reaches the log.
    assert not any("/d" in r.getMessage() or "my-key" in r.getMessage() for r in ours)


@pytest.mark.parametrize(
    ("sql", "kind", "reads", "writes"),
    [
        ("SELECT a, COUNT(*) FROM t GROUP BY a DESC", "select", {"shop.t"}, set()),
        (
            "SELECT a FROM t GROUP BY a ASC, b DESC WITH ROLLUP HAVING a > 1 ORDER BY a DESC",
            "select", {"shop.t"}, set(),
        ),
        (
            "SELECT GROUP_CONCAT(b ORDER BY b DESC) FROM t GROUP BY a DESC",
            "select", {"shop.t"}, set(),
        ),
        (
            "SELECT a FROM (SELECT a FROM customers GROUP BY a DESC) d ORDER BY a DESC",
            "select", {"shop.customers"}, set(),
        ),
        (
            "DELETE t1.* FROM t1 JOIN t2 ON t1.a = t2.a WHERE t2.b = 1",
            "delete", {"shop.t1", "shop.t2"}, {"shop.t1"},
        ),
        (
            "DELETE t1.*, t2.* FROM t1 JOIN t2 ON t1.a = t2.a",
            "delete", {"shop.t1", "shop.t2"}, {"shop.t1", "shop.t2"},
        ),
        (
            "DELETE QUICK FROM t1.* USING t1 JOIN t2 ON t1.a = t2.a",
            "delete", {"shop.t1", "shop.t2"}, {"shop.t1"},
        ),
        (
            "UPDATE (t1 JOIN t2 ON t1.a = t2.a) SET t1.b = t2.b",
            "update", {"shop.t1", "shop.t2"}, {"shop.t1"},
        ),
        (
            "UPDATE LOW_PRIORITY (t1 JOIN customers c ON t1.a = c.id) SET t1.b = c.email",
            "update", {"shop.t1", "shop.customers"}, {"shop.t1"},
        ),
    ],
)  # fmt: skip
def test_older_mariadb_forms_are_read_as_the_server_reads_them(sql, kind, reads, writes):
    statement = one(sql)
    assert statement.kind == kind
    assert names(statement.reads) >= reads - writes
    assert names(statement.writes) == writes


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT a FROM t ORDER BY a DESC",  # only GROUP BY loses its order words
        "SELECT ROW_NUMBER() OVER (PARTITION BY a ORDER BY b DESC) FROM t GROUP BY a, b",
        "UPDATE t SET a = (SELECT 1) WHERE b = 2",
    ],
)
def test_forms_that_are_not_older_are_left_as_they_are(sql):
    assert text_for_sqlglot(sql) == sql


@pytest.mark.parametrize(
    ("sql", "kind", "columns"),
    [
        ("INSERT INTO t VALUES (DEFAULT(a), DEFAULT(b))", "insert", {"a", "b"}),
        ("UPDATE t SET a = DEFAULT(a) WHERE b = 1", "update", {"a", "b"}),
        ("SELECT DEFAULT(email) FROM customers", "select", {"email"}),  # not a column DEFAULT
        ("SELECT default(`email`) AS d FROM customers WHERE id = 1", "select", {"email", "id"}),
    ],
)
def test_the_default_function_is_a_call_on_its_column(sql, kind, columns):
    statement = one(sql)
    assert statement.kind == kind
    assert {c.name for c in statement.columns} == columns


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t (a INT DEFAULT (1 + 2))",  # a clause in a table definition
        "ALTER TABLE t ALTER COLUMN a SET DEFAULT (1)",
        "INSERT INTO t VALUES (DEFAULT, 1)",  # the keyword
        "SELECT 'DEFAULT(a)' FROM t",
    ],
)
def test_default_that_is_no_call_is_left_as_it_is(sql):
    assert text_for_sqlglot(sql) == sql
