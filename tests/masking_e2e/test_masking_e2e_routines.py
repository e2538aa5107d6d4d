"""Issue 16, stored code through the real proxy, as bob from LDAP (group analysts, masked,
``masking.unknown_lineage = "refuse"``): a write that fires a trigger copying masked data
into a readable table is refused with 4701 naming the trigger (also through a chain of
triggers, and as a prepared statement); a write whose triggers copy nothing masked runs
and fires them; creating a trigger, event or stored routine whose body reads a masked
column, or that myguard cannot analyse, is refused naming it; benign ones are created.
The triggers are made by MariaDB's root directly, outside myguard.
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from masking_e2e_proxy import BOB, ldap_masking_proxy
from masking_e2e_wire import REFUSED, Result, WireClient

from mariadb_server import ROOT_PASSWORD, MariaDBServer
from proxy_process import ProxyProcess

LEAK_BODY = (
    "INSERT INTO corpus_trig.leak (v) SELECT ssn FROM shop.customers WHERE id = NEW.customer_id"
)
SETUP = [
    "CREATE DATABASE IF NOT EXISTS corpus_trig",
    "CREATE OR REPLACE TABLE corpus_trig.leak (v VARCHAR(64))",
    "CREATE OR REPLACE TABLE corpus_trig.audit (order_id INT, status VARCHAR(16))",
    "CREATE OR REPLACE TABLE corpus_trig.relay (customer_id INT)",
    "CREATE OR REPLACE TABLE corpus_trig.plain (a INT)",
    # Copies the SSN of the ordering customer into a table bob reads in clear.
    f"CREATE TRIGGER shop.t_leak AFTER INSERT ON shop.orders FOR EACH ROW {LEAK_BODY}",
    # Copies nothing masked.
    "CREATE TRIGGER shop.t_audit AFTER UPDATE ON shop.orders FOR EACH ROW "
    "INSERT INTO corpus_trig.audit VALUES (NEW.id, NEW.status)",
    # Reads nothing masked itself, but its write fires t_leak.
    "CREATE TRIGGER corpus_trig.t_relay AFTER INSERT ON corpus_trig.relay FOR EACH ROW "
    "INSERT INTO shop.orders (customer_id, item, quantity, total, ordered_at) "
    "VALUES (NEW.customer_id, 'x', 1, 1, NOW())",
    # Control flow: myguard cannot tell what it reads.
    "CREATE TRIGGER corpus_trig.t_opaque BEFORE INSERT ON corpus_trig.plain FOR EACH ROW "
    "BEGIN IF NEW.a < 0 THEN SET NEW.a = 0; END IF; END",
]
TEARDOWN = [
    "DROP TRIGGER IF EXISTS shop.t_leak",
    "DROP TRIGGER IF EXISTS shop.t_audit",
    "DROP DATABASE IF EXISTS corpus_trig",
]
INSERT_ORDER = (
    "INSERT INTO shop.orders (customer_id, item, quantity, total, ordered_at) "
    "VALUES (2, 'pen', 1, 2.50, NOW())"
)


def root_connection(mariadb: MariaDBServer) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD, autocommit=True
    )


@pytest.fixture(scope="module")
def triggers(mariadb: MariaDBServer) -> Iterator[pymysql.Connection]:
    conn = root_connection(mariadb)
    with conn.cursor() as cur:
        for sql in TEARDOWN + SETUP:
            cur.execute(sql)
    yield conn
    with conn.cursor() as cur:
        for sql in TEARDOWN:
            cur.execute(sql)
    conn.close()


@pytest.fixture(scope="module")
def ldap_proxy(
    mariadb: MariaDBServer, triggers: pymysql.Connection, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ProxyProcess]:
    with ldap_masking_proxy(mariadb, tmp_path_factory.mktemp("routines-proxy")) as proxy:
        yield proxy


@pytest.fixture()
def bob(ldap_proxy: ProxyProcess) -> Iterator[WireClient]:
    client = WireClient(ldap_proxy.port)
    client.login(*BOB, "shop")
    yield client
    client.close()


def run(client: WireClient, sql: str, binary: bool) -> list[Result]:
    if not binary:
        return client.query(sql)
    prepared = client.prepare(sql)
    if not isinstance(prepared, tuple):
        return [Result(error=prepared)]
    results = client.execute(prepared[0])
    client.close_statement(prepared[0])
    return results


def assert_refused(results: list[Result], *fragments: str) -> None:
    err = results[0].error
    assert err is not None, "expected a refusal"
    assert (err.code, err.sqlstate) == (REFUSED, "42000"), err
    for fragment in fragments:
        assert fragment in err.message, err.message


def assert_ran(results: list[Result]) -> None:
    assert results[0].error is None, results[0].error


def leaked_rows(root: pymysql.Connection) -> int:
    with root.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM corpus_trig.leak")
        return cur.fetchone()[0]


def test_the_leaking_trigger_does_copy_ssns(triggers):
    """Without myguard, the trigger under test copies the SSN into a readable table."""
    with triggers.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(INSERT_ORDER)
        cur.execute("SELECT v FROM corpus_trig.leak")
        copied = cur.fetchall()
        cur.execute("SELECT ssn FROM shop.customers WHERE id = 2")
        ssn = cur.fetchone()[0]
        cur.execute("ROLLBACK")
    assert copied == ((ssn,),)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize(
    "sql",
    [
        INSERT_ORDER,
        # through t_relay, whose insert into shop.orders fires t_leak
        "INSERT INTO corpus_trig.relay VALUES (2)",
    ],
)
def test_write_firing_a_leaking_trigger_is_refused(sql, binary, bob, triggers):
    got = run(bob, sql, binary)
    assert_refused(got, "trigger (shop.t_leak on shop.orders)", "shop.customers.ssn")
    assert leaked_rows(triggers) == 0


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_trigger_that_cannot_be_analysed_refuses_the_write(binary, bob):
    got = run(bob, "INSERT INTO corpus_trig.plain VALUES (1)", binary)
    assert_refused(got, "corpus_trig.t_opaque", "whose body myguard cannot analyse")


def test_write_firing_only_a_benign_trigger_runs(bob):
    """t_audit fires on UPDATE and copies nothing masked: the update runs and fires it
    (rolled back, the shared sample data stays as it was)."""
    assert_ran(bob.query("BEGIN"))
    try:
        assert_ran(bob.query("UPDATE shop.orders SET status = 'paid' WHERE id = 1"))
        counted = bob.query("SELECT COUNT(*) FROM corpus_trig.audit")
        assert counted[0].error is None and counted[0].rows == [[b"1"]]
    finally:
        assert_ran(bob.query("ROLLBACK"))


CREATE_REFUSED = [
    (
        "CREATE TRIGGER corpus_trig.t_bob AFTER INSERT ON corpus_trig.plain FOR EACH ROW "
        "INSERT INTO corpus_trig.leak SELECT ssn FROM shop.customers",
        "stored code (trigger corpus_trig.t_bob) of masked column shop.customers.ssn",
    ),
    (
        "CREATE EVENT corpus_trig.e_bob ON SCHEDULE EVERY 1 MINUTE DO "
        "INSERT INTO corpus_trig.leak SELECT email FROM shop.customers",
        "stored code (event corpus_trig.e_bob) of masked column shop.customers.email",
    ),
    (
        "CREATE FUNCTION corpus_trig.f_bob(i INT) RETURNS VARCHAR(64) READS SQL DATA "
        "RETURN (SELECT ssn FROM shop.customers WHERE id = i)",
        "stored code (function corpus_trig.f_bob) of masked column shop.customers.ssn",
    ),
    (
        "CREATE PROCEDURE corpus_trig.p_bob() BEGIN "
        "DECLARE n INT; SELECT COUNT(*) INTO n FROM shop.customers; END",
        "stored code (procedure corpus_trig.p_bob, whose body myguard cannot analyse)",
    ),
]


@pytest.mark.parametrize("sql,fragment", CREATE_REFUSED, ids=[f for _, f in CREATE_REFUSED])
def test_creating_code_that_reads_masked_data_is_refused(sql, fragment, bob, triggers):
    assert_refused(bob.query(sql), fragment)
    with triggers.cursor() as cur:
        cur.execute(
            "SELECT (SELECT COUNT(*) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = "
            "'corpus_trig' AND TRIGGER_NAME LIKE '%bob'), (SELECT COUNT(*) FROM "
            "information_schema.EVENTS WHERE EVENT_SCHEMA = 'corpus_trig'), (SELECT COUNT(*) "
            "FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = 'corpus_trig')"
        )
        assert cur.fetchone() == (0, 0, 0)


def test_creating_code_that_reads_no_masked_column_runs(bob, triggers):
    created = [
        "CREATE FUNCTION corpus_trig.f_double(p INT) RETURNS INT DETERMINISTIC RETURN p * 2",
        "CREATE TRIGGER corpus_trig.t_bob_ok AFTER INSERT ON corpus_trig.leak FOR EACH ROW "
        "INSERT INTO corpus_trig.audit VALUES (0, NEW.v)",
    ]
    try:
        for sql in created:
            assert_ran(bob.query(sql))
        with triggers.cursor() as cur:
            cur.execute("SHOW TRIGGERS FROM corpus_trig LIKE 'leak'")
            assert [row[0] for row in cur.fetchall()] == ["t_bob_ok"]
    finally:
        with triggers.cursor() as cur:
            cur.execute("DROP FUNCTION IF EXISTS corpus_trig.f_double")
            cur.execute("DROP TRIGGER IF EXISTS corpus_trig.t_bob_ok")


def test_triggers_are_read_again_after_drop_trigger_through_myguard(bob, triggers):
    """The catalog caches triggers; DROP TRIGGER through myguard forgets them at once."""
    assert_refused(bob.query("INSERT INTO corpus_trig.plain VALUES (1)"), "t_opaque")
    try:
        assert_ran(bob.query("DROP TRIGGER corpus_trig.t_opaque"))
        assert_ran(bob.query("INSERT INTO corpus_trig.plain VALUES (1)"))
    finally:
        with triggers.cursor() as cur:
            cur.execute(SETUP[-1].replace("CREATE TRIGGER", "CREATE OR REPLACE TRIGGER"))
            cur.execute("DELETE FROM corpus_trig.plain")
