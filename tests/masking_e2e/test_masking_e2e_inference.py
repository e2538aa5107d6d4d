"""Issue 16 through the real proxy, as bob from LDAP (group analysts, so masked, with
``masking.unknown_lineage = "refuse"``): statements an analyst writes come back masked;
inference probes, error-echo functions and stored routines over masked columns are
refused with 4701 naming the column or routine, and nothing of the clear values reaches
the client, in the text protocol (COM_QUERY) and the binary one (COM_STMT_PREPARE /
COM_STMT_EXECUTE).
"""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest
from masking_e2e_proxy import BOB, ldap_masking_proxy
from masking_e2e_wire import REFUSED, Result, WireClient

from mariadb_server import ROOT_PASSWORD, MariaDBServer
from proxy_process import ProxyProcess

COM_INIT_DB = 0x02
SCRATCH = [
    "CREATE DATABASE IF NOT EXISTS corpus_scratch",
    "CREATE OR REPLACE FUNCTION corpus_scratch.f_ssn(i INT) RETURNS VARCHAR(64) READS SQL DATA "
    "RETURN (SELECT ssn FROM shop.customers WHERE id = i)",
    "CREATE OR REPLACE PROCEDURE corpus_scratch.p_ssn() READS SQL DATA "
    "SELECT id, ssn FROM shop.customers",
    "CREATE OR REPLACE SQL SECURITY DEFINER VIEW shop.v_definer AS "
    "SELECT id, ssn, card_number FROM shop.customers",
    "CREATE OR REPLACE SQL SECURITY DEFINER VIEW shop.v_definer_func AS "
    "SELECT id, corpus_scratch.f_ssn(id) AS s FROM shop.customers",
]


@pytest.fixture(scope="module")
def scratch(mariadb: MariaDBServer) -> Iterator[None]:
    """A stored function and procedure returning SSNs, and DEFINER views, made by root."""
    conn = pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD, autocommit=True
    )
    with conn.cursor() as cur:
        for sql in SCRATCH:
            cur.execute(sql)
    yield
    with conn.cursor() as cur:
        cur.execute("DROP VIEW IF EXISTS shop.v_definer, shop.v_definer_func")
        cur.execute("DROP DATABASE IF EXISTS corpus_scratch")
    conn.close()


@pytest.fixture(scope="module")
def ldap_proxy(mariadb: MariaDBServer, tmp_path_factory: pytest.TempPathFactory):
    with ldap_masking_proxy(mariadb, tmp_path_factory.mktemp("inference-proxy")) as proxy:
        yield proxy


@pytest.fixture()
def bob(ldap_proxy: ProxyProcess, scratch: None) -> Iterator[WireClient]:
    client = WireClient(ldap_proxy.port)
    client.login(*BOB, "shop")
    yield client
    client.close()


@pytest.fixture()
def bob_no_db(ldap_proxy: ProxyProcess, scratch: None) -> Iterator[WireClient]:
    client = WireClient(ldap_proxy.port)
    client.login(*BOB)
    yield client
    client.close()


@pytest.fixture(scope="module")
def direct(mariadb: MariaDBServer, scratch: None) -> Iterator[WireClient]:
    client = WireClient(mariadb.port)
    client.login("root", ROOT_PASSWORD, "shop")
    yield client
    client.close()


def run(client: WireClient, sql: str, binary: bool) -> tuple[list[Result], bytes]:
    """The results of ``sql`` in one protocol, and every byte the client received."""
    start = len(client.received)
    if not binary:
        return client.query(sql), bytes(client.received[start:])
    prepared = client.prepare(sql)
    if not isinstance(prepared, tuple):
        return [Result(error=prepared)], bytes(client.received[start:])
    results = client.execute(prepared[0])
    client.close_statement(prepared[0])
    return results, bytes(client.received[start:])


def assert_no_leak(scanner, data: bytes) -> None:
    leaks = scanner.leaks(data)
    assert not leaks, f"original PII values reached the client: {leaks}"


def expected(kind: str, original: bytes | None) -> bytes | None:
    """The text spelling of what the analysts' rule makes of a value (conf/rules.toml)."""
    if original is None or kind == "null":
        return None
    if kind == "email":
        return b"****" + original[original.rfind(b"@") :]
    assert kind == "partial4"
    return b"*" * (len(original) - 4) + original[-4:]


def assert_masked(got: list[Result], straight: list[Result], masked: dict[str, str]) -> None:
    """Masked columns (strings: the same bytes in text and binary rows) hold their
    strategy's value of the original; the others are the original."""
    assert len(got) == len(straight) == 1
    mine, theirs = got[0], straight[0]
    assert mine.error is None, mine.error
    assert mine.names == theirs.names
    assert len(mine.rows) == len(theirs.rows) > 0
    for i, name in enumerate(mine.names):
        ours, originals = [r[i] for r in mine.rows], [r[i] for r in theirs.rows]
        if name in masked:
            assert ours == [expected(masked[name], o) for o in originals], name
        else:
            assert ours == originals, name


def assert_refused(results: list[Result], *fragments: str) -> None:
    err = results[0].error
    assert err is not None, "expected a refusal"
    assert (err.code, err.sqlstate) == (REFUSED, "42000"), err
    for fragment in fragments:
        assert fragment in err.message, err.message


# --- what any analyst would write --------------------------------------------------------

ANALYST = [
    ("SeLeCt Id, EmAiL, sSn FrOm shop.customers ORDER BY id", {"EmAiL": "email", "sSn": "partial4"}),
    ("select `ID`, `Card_Number` from `shop`.customers ORDER BY `id`", {"Card_Number": "null"}),
    ("((SELECT id, ssn FROM shop.customers ORDER BY id))", {"ssn": "partial4"}),
    ("(SELECT id, email FROM shop.customers) ORDER BY id", {"email": "email"}),
    ("SELECT id, email, ssn FROM shop.customers ORDER BY id", {"email": "email", "ssn": "partial4"}),
    ("SELECT id, ssn, card_number FROM shop.v_definer ORDER BY id",
     {"ssn": "partial4", "card_number": "null"}),
]  # fmt: skip


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("sql,masked", ANALYST, ids=[s for s, _ in ANALYST])
def test_analyst_statements_come_back_masked(sql, masked, binary, bob, direct, leak_scanner):
    got, raw = run(bob, sql, binary)
    assert_no_leak(leak_scanner, raw)
    assert_masked(got, run(direct, sql, binary)[0], masked)


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize(
    "switch",
    [
        "use",
        "init-db",
    ],
)
def test_unqualified_names_follow_the_current_database(
    switch, binary, bob_no_db, direct, leak_scanner
):
    if switch == "use":
        assert bob_no_db.query("USE shop")[0].error is None
    else:
        assert bob_no_db.command(bytes((COM_INIT_DB,)) + b"shop")[:1] == b"\x00"
    sql = "SELECT id, card_number, ssn FROM customers ORDER BY id"
    got, raw = run(bob_no_db, sql, binary)
    assert_no_leak(leak_scanner, raw)
    assert_masked(got, run(direct, sql, binary)[0], {"card_number": "null", "ssn": "partial4"})


# --- inference probes --------------------------------------------------------------------

INFERENCE = [
    ("SELECT COUNT(DISTINCT ssn) FROM shop.customers", "aggregate (COUNT(DISTINCT))", "ssn"),
    ("SELECT COUNT(email) FROM shop.customers", "aggregate (COUNT())", "email"),
    ("SELECT SUM(ssn) FROM shop.customers", "aggregate (SUM())", "ssn"),
    ("SELECT AVG(LENGTH(email)) FROM shop.customers", "aggregate (AVG())", "email"),
    ("SELECT MIN(ssn), MAX(name) FROM shop.customers", "aggregate (MIN())", "ssn"),
    ("SELECT GROUP_CONCAT(email ORDER BY id) FROM shop.customers", "aggregate (GROUP_CONCAT())",
     "email"),
    ("SELECT JSON_ARRAYAGG(ssn) FROM shop.customers", "aggregate (JSON_ARRAYAGG())", "ssn"),
    ("SELECT JSON_OBJECTAGG(id, phone) FROM shop.customers", "aggregate (JSON_OBJECTAGG())",
     "phone"),
    ("SELECT STD(ssn), VARIANCE(ssn) FROM shop.customers", "aggregate (STDDEV_POP())", "ssn"),
    ("SELECT BIT_AND(card_number) FROM shop.customers", "aggregate (BIT_AND())", "card_number"),
    ("SELECT COUNT(DISTINCT ssn) FROM shop.v_definer", "aggregate (COUNT(DISTINCT))", "ssn"),
    ("SELECT id, ROW_NUMBER() OVER (ORDER BY ssn) FROM shop.customers", "window", "ssn"),
    ("SELECT id, COUNT(*) OVER (PARTITION BY email) FROM shop.customers", "window", "email"),
    ("SELECT DISTINCT ssn FROM shop.customers", "distinct (SELECT DISTINCT)", "ssn"),
    ("SELECT ssn FROM shop.customers WHERE id = 1 UNION SELECT ssn FROM shop.customers "
     "WHERE id = 2", "distinct (UNION)", "ssn"),
]  # fmt: skip


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("sql,what,column", INFERENCE, ids=[s for s, _, _ in INFERENCE])
def test_inference_probes_are_refused(sql, what, column, binary, bob, leak_scanner):
    got, raw = run(bob, sql, binary)
    assert_no_leak(leak_scanner, raw)
    assert_refused(got, what, f"masked column shop.customers.{column}")
    assert bob.query("SELECT 41 + 1")[0].rows == [[b"42"]]  # the connection is still in step


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_counting_rows_is_allowed(binary, bob):
    got, _ = run(bob, "SELECT COUNT(*), COUNT(id) FROM shop.customers", binary)
    assert got[0].error is None, got[0].error
    assert len(got[0].rows) == 1


# --- error echo --------------------------------------------------------------------------

ECHO = [
    ("SELECT UPDATEXML(1, CONCAT('~', (SELECT card_number FROM shop.customers WHERE id = 2)), 1)",
     "UPDATEXML()", "card_number"),
    ("SELECT EXTRACTVALUE(1, CONCAT('~', (SELECT ssn FROM shop.customers WHERE id = 2)))",
     "EXTRACTVALUE()", "ssn"),
    ("SELECT GTID_SUBSET(email, '') FROM shop.customers", "GTID_SUBSET()", "email"),
    ("SELECT JSON_EXTRACT(email, '$.a') FROM shop.customers", "JSON_EXTRACT()", "email"),
    ("SELECT JSON_EXTRACT('{}', ssn) FROM shop.customers", "JSON_EXTRACT()", "ssn"),
    ("SELECT JSON_VALUE(name, '$') FROM shop.customers", "JSON_VALUE()", "name"),
    ("SELECT JSON_QUERY(phone, '$') FROM shop.customers", "JSON_QUERY()", "phone"),
    ("SELECT id, CAST(email AS DECIMAL(10,2)) FROM shop.customers WHERE id <= 20",
     "CAST AS DECIMAL(10, 2)", "email"),
    ("SELECT CONVERT(ssn, DATE) FROM shop.customers", "CAST AS DATE", "ssn"),
    ("SELECT id, ssn + 0 FROM shop.customers", "operator ADD", "ssn"),
    ("SELECT id, email * 1 FROM shop.customers", "operator MUL", "email"),
]  # fmt: skip


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("sql,function,column", ECHO, ids=[s for s, _, _ in ECHO])
def test_error_echo_is_refused(sql, function, column, binary, bob, leak_scanner):
    start = len(bob.received)
    got, _ = run(bob, sql, binary)
    assert_refused(got, f"error echo ({function})", f"masked column shop.customers.{column}")
    # the statement never ran: no warning or error of it quotes a value either
    for follow_up in ("SHOW WARNINGS", "SHOW ERRORS"):
        assert bob.query(follow_up)[0].error is None
    assert_no_leak(leak_scanner, bytes(bob.received[start:]))


# --- stored routines and views -----------------------------------------------------------

ROUTINES = [
    ("SELECT id, corpus_scratch.f_ssn(id) FROM shop.customers", "function corpus_scratch.f_ssn"),
    ("SELECT corpus_scratch.f_ssn(2)", "function corpus_scratch.f_ssn"),
    ("SELECT id FROM shop.customers WHERE id = corpus_scratch.f_ssn(1)",
     "function corpus_scratch.f_ssn"),
    ("SELECT id, s FROM shop.v_definer_func", "function `corpus_scratch`.`f_ssn`"),
    ("CALL corpus_scratch.p_ssn()", "procedure corpus_scratch.p_ssn"),
]  # fmt: skip


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
@pytest.mark.parametrize("sql,routine", ROUTINES, ids=[s for s, _ in ROUTINES])
def test_stored_routines_are_unknown_lineage(sql, routine, binary, bob, leak_scanner):
    got, raw = run(bob, sql, binary)
    assert_no_leak(leak_scanner, raw)
    assert_refused(got, f"routine (stored {routine}, whose body myguard has not read)")


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_unqualified_stored_function_in_its_database(binary, bob, leak_scanner):
    assert bob.query("USE corpus_scratch")[0].error is None
    got, raw = run(bob, "SELECT f_ssn(2)", binary)
    assert_no_leak(leak_scanner, raw)
    assert_refused(got, "routine (stored function f_ssn,")
