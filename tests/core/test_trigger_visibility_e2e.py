"""Triggers myguard cannot see are a refusal, not a pass (issue 16): without the TRIGGER
privilege the service account's information_schema.TRIGGERS hides them, so a write by an
identity with masking, which could fire one copying masked data, is refused."""

from __future__ import annotations

import pymysql
import pytest

from mariadb_server import SERVICE_PASSWORD


@pytest.fixture(scope="module")
def blind_account(mariadb):
    mariadb.sql(
        f"CREATE USER IF NOT EXISTS 'myguard_notrig'@'127.0.0.1' IDENTIFIED BY '{SERVICE_PASSWORD}';"
        "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, PROCESS ON *.* "
        "TO 'myguard_notrig'@'127.0.0.1';"
    )
    return "myguard_notrig"


def insert_as_bob(proxy):
    conn = pymysql.connect(
        host="127.0.0.1", port=proxy.port, user="bob", password="bob-pw-2", database="shop"
    )
    try:
        with conn.cursor() as cur:
            conn.begin()
            cur.execute(
                "INSERT INTO orders (customer_id, item, quantity, total, ordered_at) "
                "VALUES (1, 'x', 1, 1, NOW())"
            )
            conn.rollback()
    finally:
        conn.close()


def test_a_write_is_refused_when_the_tables_triggers_cannot_be_seen(private_proxy, blind_account):
    p = private_proxy(backend={"user": blind_account})
    with pytest.raises(pymysql.err.MySQLError) as err:
        insert_as_bob(p)
    code, message = err.value.args
    assert code == 4701 and "shop.orders, which the service account cannot see" in message


def test_the_same_write_runs_when_they_can(private_proxy):
    insert_as_bob(private_proxy())
