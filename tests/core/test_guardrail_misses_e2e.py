"""The shipped pack in production against what used to slip through or crash the analysis:
SET PASSWORD, LOAD_FILE(), MariaDB's SET STATEMENT and LIMIT ROWS EXAMINED, an UPDATE
whose target the analysis cannot tell, and statement modifiers or multi-table DELETE
aliases that hid the table written."""

from __future__ import annotations

import pymysql
import pytest
from pymysql.constants import CLIENT

from mariadb_server import ROOT_PASSWORD, SERVICE_PASSWORD

BLOCKED = 4700
VICTIM, VICTIM_PASSWORD = "guardrail_victim", "victim-Secret-1"


@pytest.fixture(scope="module")
def prod(mariadb, tmp_path_factory):
    from proxy_process import ProxyProcess

    p = ProxyProcess(tmp_path_factory.mktemp("prod"), mariadb, environment="production")
    p.start()
    yield p
    p.stop()


@pytest.fixture(scope="module")
def victim(mariadb):
    """An account of this module's own, so that a regression changes no shared password."""
    conn = direct(mariadb)
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE OR REPLACE USER '{VICTIM}'@'127.0.0.1' IDENTIFIED BY '{VICTIM_PASSWORD}'"
        )
    conn.close()
    yield VICTIM
    conn = direct(mariadb)
    with conn.cursor() as cur:
        cur.execute(f"DROP USER '{VICTIM}'@'127.0.0.1'")
    conn.close()


@pytest.fixture(scope="module")
def first_email(mariadb):
    conn = direct(mariadb)
    with conn.cursor() as cur:
        cur.execute("SELECT email FROM customers ORDER BY id LIMIT 1")
        (email,) = cur.fetchone()
    conn.close()
    return email


def direct(mariadb, user="root", password=ROOT_PASSWORD, database="shop"):
    return pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user=user, password=password, database=database
    )


def connect(proxy, user="alice", password="alice-pw-1", **kw):
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=password, database="shop",
        autocommit=True, **kw,
    )  # fmt: skip


def refused_by(cur, sql):
    with pytest.raises(pymysql.err.MySQLError) as err:
        cur.execute(sql)
    code, message = err.value.args
    assert code == BLOCKED, message
    return message


@pytest.mark.parametrize(
    "sql",
    [
        f"SET PASSWORD FOR '{VICTIM}'@'127.0.0.1' = PASSWORD('owned')",
        f"set password for `{VICTIM}`@`127.0.0.1` = password('owned')",
        f"SET /* x */ PASSWORD FOR '{VICTIM}'@'127.0.0.1' = PASSWORD('owned')",
        f"SET @a = 1, PASSWORD FOR '{VICTIM}'@'127.0.0.1' = PASSWORD('owned')",
        "SET STATEMENT max_statement_time=5 FOR "
        f"SET PASSWORD FOR '{VICTIM}'@'127.0.0.1' = PASSWORD('owned')",
        # The service account every client shares (its own password again, should it run).
        f"SET PASSWORD = PASSWORD('{SERVICE_PASSWORD}')",
    ],
)
def test_set_password_is_blocked_as_a_privilege_change(prod, mariadb, victim, sql):
    conn = connect(prod)  # alice is a DBA: the rule holds for everyone
    with conn.cursor() as cur:
        assert "rule 'no-privilege-changes'" in refused_by(cur, sql)
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
    conn.close()
    direct(mariadb, victim, VICTIM_PASSWORD, database=None).close()  # its password did not change


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT LOAD_FILE('/etc/hostname')",
        "select load_file('/etc/hostname') AS f",
        "SELECT `load_file` ('/etc/hostname')",
        "SELECT id, (SELECT LOAD_FILE('/etc/hostname')) FROM orders",
        "SELECT HEX(LOAD_FILE('/etc/hostname'))",
        "SELECT id FROM orders UNION SELECT LOAD_FILE('/etc/hostname')",
        "INSERT INTO orders (id, item) SELECT 100, LOAD_FILE('/etc/hostname')",
        "SET STATEMENT max_statement_time=5 FOR SELECT LOAD_FILE('/etc/hostname')",
        "PREPARE s FROM 'SELECT LOAD_FILE(''/etc/hostname'')'",
    ],
)
def test_load_file_is_blocked_anywhere_in_a_statement(prod, sql):
    conn = connect(prod)
    with conn.cursor() as cur:
        assert "rule 'no-server-file-access'" in refused_by(cur, sql)
    conn.close()


def test_load_file_in_a_multi_statement_runs_nothing(prod, mariadb):
    conn = connect(prod, client_flag=CLIENT.MULTI_STATEMENTS)
    with conn.cursor() as cur:
        message = refused_by(
            cur, "UPDATE orders SET quantity = 77 WHERE id = 2; SELECT LOAD_FILE('/etc/hostname')"
        )
        assert "no-server-file-access" in message
    conn.close()
    assert mariadb.sql("SELECT quantity FROM shop.orders WHERE id = 2").strip() != "77"


def test_set_statement_runs_as_its_inner_statement(prod):
    conn = connect(prod)
    with conn.cursor() as cur:
        cur.execute("SET STATEMENT max_statement_time=10 FOR SELECT COUNT(*) FROM orders")
        assert cur.fetchone() == (9,)
        message = refused_by(cur, "SET STATEMENT sql_log_bin=0 FOR DROP TABLE orders")
        assert "no-drop-in-production" in message
        message = refused_by(cur, "SET STATEMENT sql_log_bin=0 FOR DELETE FROM orders")
        assert "no-unbounded-writes" in message
        cur.execute("SELECT COUNT(*) FROM orders")
        assert cur.fetchone() == (9,)
    conn.close()


def test_limit_rows_examined_runs(prod):
    conn = connect(prod)
    with conn.cursor() as cur:
        cur.execute("SELECT id FROM orders ORDER BY id LIMIT ROWS EXAMINED 1000")
        assert len(cur.fetchall()) == 9
        cur.execute("SELECT id FROM orders ORDER BY id LIMIT 2 ROWS EXAMINED 1000")
        assert cur.fetchall() == ((1,), (2,))
    conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SET STATEMENT max_statement_time=10 FOR SELECT email FROM customers ORDER BY id LIMIT 1",
        "SELECT email FROM customers ORDER BY id LIMIT 1 ROWS EXAMINED 1000",
    ],
)
def test_mariadb_syntax_is_masked_for_analysts(prod, first_email, sql):
    # Before: refused as unparsed (4701) by masking, which could not read the statement.
    conn = connect(prod, "bob", "bob-pw-2")
    with conn.cursor() as cur:
        cur.execute(sql)
        (email,) = cur.fetchone()
    conn.close()
    assert email != first_email and email.endswith("@" + first_email.split("@")[1])


def test_update_with_an_unresolvable_target_is_decided_not_an_internal_error(prod):
    conn = connect(prod)
    with conn.cursor() as cur:
        # No WHERE: the pack's decision, where this used to be 4692 (TypeError).
        message = refused_by(cur, "UPDATE orders LEFT JOIN customers USING(id) SET status = status")
        assert "no-unbounded-writes" in message
        cur.execute(
            "UPDATE orders LEFT JOIN customers USING(id) SET status = status WHERE orders.id = 1"
        )
    conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        f"UPDATE LOW_PRIORITY global_priv SET Priv = Priv WHERE User = '{VICTIM}'",
        f"update low_priority ignore global_priv set Priv = Priv where User = '{VICTIM}'",
        f"DELETE QUICK FROM global_priv WHERE User = '{VICTIM}' AND 1 = 0",
        f"DELETE g FROM global_priv g WHERE g.User = '{VICTIM}' AND 1 = 0",
        f"DELETE FROM g USING global_priv g WHERE g.User = '{VICTIM}' AND 1 = 0",
    ],
)
def test_modifiers_and_delete_aliases_do_not_hide_a_privilege_table(prod, victim, sql):
    # Before: read as writes to tables named LOW_PRIORITY, QUICK or g, and let through.
    conn = connect(prod)
    with conn.cursor() as cur:
        cur.execute("USE mysql")
        assert "rule 'no-privilege-changes'" in refused_by(cur, sql)
    conn.close()


def test_statements_with_modifiers_run(prod, mariadb):
    # Before: UPDATE IGNORE and INSERT DELAYED could not be analysed, so refused in production.
    conn = connect(prod)
    with conn.cursor() as cur:
        cur.execute("UPDATE IGNORE orders SET quantity = quantity WHERE id = 3")
        cur.execute("UPDATE LOW_PRIORITY orders SET status = status WHERE id = 3")
        cur.execute("DELETE LOW_PRIORITY QUICK IGNORE FROM orders WHERE id = 0")
        cur.execute("SELECT SQL_CACHE COUNT(*) FROM orders")
        assert cur.fetchone() == (9,)
        # DEFAULT(c), the column's default (mysql-test main.strict)
        cur.execute("UPDATE orders SET status = DEFAULT(status) WHERE id = 0")
        cur.execute("SELECT DEFAULT(status) FROM orders WHERE id = 3")
        assert cur.fetchone() == ("new",)
        # ODBC escapes, as BI tools send them through ODBC drivers
        cur.execute(
            "SELECT COUNT(*) FROM {oj orders o LEFT OUTER JOIN customers c ON c.id = o.customer_id}"
            " WHERE o.ordered_at > {ts '2000-01-01 00:00:00'} AND {d '2000-01-01'} < NOW()"
        )
        assert cur.fetchone() == (9,)
    conn.close()


def test_for_loops_and_blocks_outside_procedures_are_read_as_blocks(private_proxy, mariadb):
    # Before: END FOR ended the procedure's body early, a top-level FOR was an unknown
    # statement and a trigger's IF body ended at its first ';', so all were refused as
    # unparsed outside development.
    staging = private_proxy(environment="staging")
    conn = connect(staging, client_flag=CLIENT.MULTI_STATEMENTS)
    with conn.cursor() as cur:
        cur.execute(
            "CREATE OR REPLACE PROCEDURE shop.count_to(n INT) BEGIN "
            "FOR i IN 1..n DO SELECT i; END FOR; END"
        )
        cur.execute("CALL shop.count_to(2)")
        assert cur.fetchall() == ((1,),)
        cur.nextset()
        assert cur.fetchall() == ((2,),)
        while cur.nextset():
            pass
        cur.execute("FOR i IN 1..2 DO SELECT i * 10; END FOR")
        assert cur.fetchall() == ((10,),)
        while cur.nextset():
            pass
        # a trigger whose body is one IF block, not BEGIN ... END
        cur.execute("CREATE OR REPLACE TABLE shop.clamped (a INT)")
        cur.execute(
            "CREATE TRIGGER shop.clamp BEFORE INSERT ON shop.clamped FOR EACH ROW "
            "IF NEW.a < 0 THEN SET NEW.a = 0; END IF"
        )
        cur.execute("INSERT INTO shop.clamped VALUES (-5), (7)")
        cur.execute("SELECT a FROM shop.clamped ORDER BY a")
        assert cur.fetchall() == ((0,), (7,))
        cur.execute("DROP TABLE shop.clamped")
        cur.execute("DROP PROCEDURE shop.count_to")
    conn.close()
    # in production the block is opaque: the pack refuses it
    prod = private_proxy(environment="production")
    conn = connect(prod)
    with conn.cursor() as cur:
        assert "no-opaque-in-production" in refused_by(cur, "FOR i IN 1..2 DO SELECT i; END FOR")
    conn.close()


def test_sequences_are_read_not_refused(prod, mariadb):
    # Before: NEXT VALUE FOR could not be analysed, so refused as unparsed in production.
    mariadb.sql("CREATE OR REPLACE SEQUENCE shop.order_numbers START WITH 100")
    conn = connect(prod)
    with conn.cursor() as cur:
        cur.execute("SELECT NEXT VALUE FOR order_numbers, PREVIOUS VALUE FOR order_numbers")
        assert cur.fetchone() == (100, 100)
        cur.execute("SELECT NEXTVAL(order_numbers)")
        assert cur.fetchone() == (101,)
    conn.close()
    analyst = connect(prod, "bob", "bob-pw-2")  # results masked: a sequence's value is no PII
    with analyst.cursor() as cur:
        cur.execute("SELECT NEXT VALUE FOR order_numbers")
        assert cur.fetchone() == (102,)
    analyst.close()
    mariadb.sql("DROP SEQUENCE shop.order_numbers")
