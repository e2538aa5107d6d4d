"""Masking through real drivers: mysql-connector prepared cursors (binary protocol, pure
Python and C extension) with parameters, mysqlclient (buffered and streaming cursors),
and alice (dba), who sees everything exactly as the database sends it."""

from __future__ import annotations

import mysql.connector
import MySQLdb
import MySQLdb.cursors
import pytest
from masking_e2e_wire import WireClient

from mariadb_server import ROOT_PASSWORD

SHAPES = [
    "SELECT id, name, email, phone, ssn, card_number, birth_date, credit_limit FROM customers "
    "WHERE id > %s ORDER BY id",
    "SELECT c.id, c.email, o.item, o.total FROM customers c JOIN orders o ON o.customer_id = c.id "
    "WHERE o.total > %s ORDER BY o.id",
    "SELECT id, CONCAT(email, '') AS e, UPPER(email) AS u FROM customers WHERE id > %s ORDER BY id",
]


def _values(rows) -> bytes:
    return repr(rows).encode()


def _direct_rows(mariadb, sql: str, param: object) -> list[tuple]:
    conn = mysql.connector.connect(host="127.0.0.1", port=mariadb.port, user="root",
                                   password=ROOT_PASSWORD, database="shop")  # fmt: skip
    cur = conn.cursor(prepared=True)
    cur.execute(sql.replace("%s", "?"), (param,))
    rows = cur.fetchall()
    conn.close()
    return rows


@pytest.mark.parametrize("use_pure", [True, False], ids=["pure", "cext"])
@pytest.mark.parametrize("sql", SHAPES, ids=["customers", "join", "derived"])
def test_connector_prepared_binary(sql, use_pure, proxy, mariadb, leak_scanner):
    conn = mysql.connector.connect(host="127.0.0.1", port=proxy.port, user="bob",
                                   password="bob-pw-2", database="shop", use_pure=use_pure)  # fmt: skip
    cur = conn.cursor(prepared=True)
    cur.execute(sql.replace("%s", "?"), (0,))
    names = list(cur.column_names)
    rows = cur.fetchall()
    # a second execution of the same statement handle, another parameter
    cur.execute(sql.replace("%s", "?"), (100,))
    again = cur.fetchall()
    conn.close()
    direct = _direct_rows(mariadb, sql, 0)
    assert not leak_scanner.leaks(_values(rows) + _values(again))
    assert len(rows) == len(direct) and len(again) < len(rows)
    for i, name in enumerate(names):
        mine, theirs = [r[i] for r in rows], [r[i] for r in direct]
        if name in ("name", "phone", "e"):
            assert set(mine) == {"****"}
        elif name in ("email", "u"):
            assert all(m.startswith("****@") and m != t for m, t in zip(mine, theirs, strict=True))
        elif name == "ssn":
            assert [m[-4:] for m in mine] == [t[-4:] for t in theirs]
            assert all(m[:-4] == "*" * 7 for m in mine)
        elif name == "card_number":
            assert set(mine) == {None}
        else:
            assert mine == theirs, name  # ints, dates, decimals decoded from the binary rows


@pytest.mark.parametrize("cursorclass", [MySQLdb.cursors.Cursor, MySQLdb.cursors.SSCursor],
                         ids=["buffered", "streaming"])  # fmt: skip
def test_mysqlclient(cursorclass, proxy, mariadb, leak_scanner):
    through = MySQLdb.connect(host="127.0.0.1", port=proxy.port, user="bob", password="bob-pw-2",
                              database="shop", cursorclass=cursorclass)  # fmt: skip
    straight = MySQLdb.connect(host="127.0.0.1", port=mariadb.port, user="root",
                               password=ROOT_PASSWORD, database="shop")  # fmt: skip
    sql = "SELECT id, name, email, ssn, card_number, birth_date, credit_limit FROM customers ORDER BY id"
    cur = through.cursor()
    cur.execute(sql)
    rows = cur.fetchall()
    cur.close()
    other = straight.cursor()
    other.execute(sql)
    direct = other.fetchall()
    refused = through.cursor()
    with pytest.raises(MySQLdb.OperationalError) as info:
        refused.execute("SELECT id FROM customers WHERE ssn LIKE '123%'")
    assert info.value.args[0] == 4701
    through.close()
    straight.close()
    assert not leak_scanner.leaks(_values(rows))
    assert [(r[0], r[5], r[6]) for r in rows] == [(r[0], r[5], r[6]) for r in direct]
    assert {r[1] for r in rows} == {"****"} and {r[4] for r in rows} == {None}
    assert [r[2].split("@")[1] for r in rows] == [r[2].split("@")[1] for r in direct]


ALICE_SHAPES = [
    ("SELECT * FROM customers ORDER BY id", True),
    ("SELECT id, CONCAT(email, '') AS e, SSN AS r FROM customers ORDER BY id", True),
    ("SELECT GROUP_CONCAT(email ORDER BY id) FROM customers", True),
    ("SELECT id FROM customers WHERE ssn LIKE '123%'", False),
    (
        "SELECT o.item, c.name FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id",
        True,
    ),
]


@pytest.mark.parametrize(("sql", "shows_pii"), ALICE_SHAPES)
def test_alice_is_not_masked(sql, shows_pii, proxy, mariadb, leak_scanner):
    """The dba sees byte-identical responses (text and binary) to the database's own."""
    alice = WireClient(proxy.port)
    alice.login("alice", "alice-pw-1", "shop")
    root = WireClient(mariadb.port)
    root.login("root", ROOT_PASSWORD, "shop")
    try:
        mine, theirs = alice.query(sql), root.query(sql)
        assert [(r.columns, r.rows, r.error) for r in mine] == [
            (r.columns, r.rows, r.error) for r in theirs
        ]
        assert mine[0].rows
        binary = []
        for client in (alice, root):
            stmt_id, _, _ = client.prepare(sql)
            binary.append([(r.columns, r.rows, r.error) for r in client.execute(stmt_id)])
        assert binary[0] == binary[1]
        assert alice.query("SELECT 1")[0].rows == [[b"1"]]
    finally:
        alice.close()
        root.close()
    # the values are there for alice: the scanner finds them
    found = leak_scanner.leaks(b"".join(c or b"" for r in mine for row in r.rows for c in row))
    assert bool(found) == shows_pii
