"""Each strategy observed on the wire, text and binary protocols, with a private rules file;
the audit record of a masked statement."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import hmac
import struct
import time

import mysql.connector
import pytest
from masking_e2e_wire import WireClient

from mariadb_server import ROOT_PASSWORD
from myguard.audit import iter_records

KEY_ENV = "MYGUARD_E2E_MASK_KEY"
KEY = "e2e-hash-key-0123456789"
RULES = """
[defaults]
action = "allow"
message = "statement not allowed by policy"

[tags]
pii = ["shop.customers.name", "shop.customers.email", "shop.customers.phone",
       "shop.customers.ssn", "shop.customers.birth_date"]
secret = ["shop.customers.card_number", "shop.orders.quantity", "shop.customers.credit_limit"]

[[rules]]
name = "mask-analysts"
action = "mask"
[rules.when]
groups = ["analysts"]
tags = ["pii", "secret"]
[rules.mask]
"shop.customers.name" = "partial(3)"
"shop.customers.email" = "email"
"shop.customers.phone" = "hash"
"shop.customers.ssn" = "value(XXX-XX-XXXX)"
"shop.customers.birth_date" = "redact"
"shop.orders.quantity" = "hash"
"shop.customers.card_number" = "null"
pii = "redact"
secret = "redact"
"""
SQL = (
    "SELECT c.id, c.name, c.email, c.phone, c.ssn, c.card_number, c.birth_date, c.credit_limit, "
    "o.quantity FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY o.id"
)


def digest(value: bytes) -> bytes:
    return hmac.new(KEY.encode(), value, hashlib.sha256).hexdigest()[:16].encode()


@pytest.fixture()
def strategy_proxy(private_proxy, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, KEY)
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES)
    return private_proxy(rules_file=rules, tables={"masking": {"hash_key_env": KEY_ENV}})


def _text(port: int, user: str, password: str):
    client = WireClient(port)
    client.login(user, password, "shop")
    result = client.query(SQL)[0]
    client.close()
    return result


def _binary(port: int, user: str, password: str):
    client = WireClient(port)
    client.login(user, password, "shop")
    stmt_id, _, _ = client.prepare(SQL)
    first = client.execute(stmt_id)[0]
    second = client.execute(stmt_id)[0]
    client.close()
    assert first.rows == second.rows
    return first


def test_strategies_on_the_wire(strategy_proxy, mariadb, leak_scanner):
    clear = _text(mariadb.port, "root", ROOT_PASSWORD)
    text = _text(strategy_proxy.port, "bob", "bob-pw-2")
    binary = _binary(strategy_proxy.port, "bob", "bob-pw-2")
    clear_binary = _binary(mariadb.port, "root", ROOT_PASSWORD)
    again = _text(strategy_proxy.port, "bot", "bot-pw-9")  # another session, another user
    for result in (text, binary):
        assert not leak_scanner.leaks(repr(result.rows).encode())
        assert result.column("id") == (clear if result is text else clear_binary).column("id")
        assert result.column("card_number") == [None] * 9
        assert result.column("ssn") == [b"XXX-XX-XXXX"] * 9
        # credit_limit carries the secret tag (redact): a DECIMAL(10,2) zero
        assert result.column("credit_limit") == [b"0.00"] * 9
    for got, name in zip(text.column("name"), clear.column("name"), strict=True):
        assert got == b"*" * (len(name) - 3) + name[-3:]
    for got, email in zip(text.column("email"), clear.column("email"), strict=True):
        assert got == b"****" + email[email.rfind(b"@") :]
    assert text.column("name") == binary.column("name")
    assert text.column("email") == binary.column("email")
    # hash: keyed HMAC, the same in both protocols, both statements and both sessions
    phones = text.column("phone")
    assert phones == [digest(p) for p in clear.column("phone")]
    assert phones == binary.column("phone") == again.column("phone")
    assert len(set(phones)) == 8  # customer 1 has two orders: equal hashes join
    assert phones[0] == phones[1]
    # DATE redacted stays a date: text 1970-01-01, binary a 4-byte date body
    assert text.column("birth_date") == [b"1970-01-01"] * 9
    assert binary.column("birth_date") == [struct.pack("<HBB", 1970, 1, 1)] * 9
    # INT hashed stays an int: the same number in text and binary, not the original
    numbers = [int(v) for v in text.column("quantity")]
    assert [struct.unpack("<i", v)[0] for v in binary.column("quantity")] == numbers
    assert all(0 <= n <= 2**31 - 1 for n in numbers)
    assert numbers != [int(v) for v in clear.column("quantity")]
    assert numbers == [int(v) for v in again.column("quantity")]


def test_driver_types_of_masked_values(strategy_proxy):
    conn = mysql.connector.connect(host="127.0.0.1", port=strategy_proxy.port, user="bob",
                                   password="bob-pw-2", database="shop")  # fmt: skip
    rows = {}
    for prepared in (False, True):
        cur = conn.cursor(prepared=prepared)
        cur.execute(SQL)
        rows[prepared] = cur.fetchall()
        cur.close()
    conn.close()
    assert rows[False] == rows[True]
    for row in rows[True]:
        _, name, email, phone, ssn, card, birth, limit, quantity = row
        assert isinstance(name, str) and isinstance(email, str) and isinstance(phone, str)
        assert ssn == "XXX-XX-XXXX" and card is None
        assert birth == datetime.date(1970, 1, 1)
        assert isinstance(limit, decimal.Decimal) and isinstance(quantity, int)


def _statement_record(audit_dir, sql: str):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for record in iter_records(audit_dir):
            if record.type == "statement" and record.get("statement") == sql:
                return record
        time.sleep(0.1)
    raise AssertionError(f"no audit record for {sql!r}")


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_audit_lists_masked_columns(binary, proxy, shop_views):
    sql = (
        f"SELECT id, email AS audit_{int(binary)}, ssn, card_number, name, credit_limit "
        "FROM customers WHERE id = 2"
    )
    client = WireClient(proxy.port)
    client.login("bob", "bob-pw-2", "shop")
    if binary:
        stmt_id, _, _ = client.prepare(sql)
        assert client.execute(stmt_id)[0].rows
    else:
        assert client.query(sql)[0].rows
    client.close()
    record = _statement_record(proxy.audit_dir, sql)
    assert record.get("decision") == "mask"
    assert record.get("masked_columns") == {
        f"audit_{int(binary)}": "email",
        "ssn": "partial(4)",
        "card_number": "null",
        "name": "redact",
    }
