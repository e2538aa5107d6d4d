"""Fixtures of the masking end-to-end corpus: the original PII values, views, clients."""

from __future__ import annotations

import pymysql
import pytest
from masking_e2e_wire import LeakScanner, WireClient

from mariadb_server import ROOT_PASSWORD

PII_COLUMNS = ("name", "email", "phone", "ssn", "card_number")
VIEWS = {
    "v_customers": "SELECT id, name, email, ssn, credit_limit FROM customers",
    "v_contact": "SELECT c.id, CONCAT(c.name, ' <', c.email, '>') AS contact FROM customers c",
    "v_customer_orders": (
        "SELECT o.id AS order_id, o.item, o.total, c.email, c.phone "
        "FROM orders o JOIN customers c ON c.id = o.customer_id"
    ),
    "v_rev": "SELECT id, REVERSE(email) AS email FROM customers",
}


def direct_connect(mariadb, **kw) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=mariadb.port, user="root", password=ROOT_PASSWORD,
        database="shop", **kw,
    )  # fmt: skip


@pytest.fixture(scope="session")
def pii_values(mariadb) -> list[str]:
    """Every original value of the masked columns, read straight from the database."""
    conn = direct_connect(mariadb)
    with conn.cursor() as cur:
        cur.execute(f"SELECT {', '.join(PII_COLUMNS)} FROM customers")
        values = [v for row in cur.fetchall() for v in row if v is not None]
    conn.close()
    assert len(values) == 40
    return values


@pytest.fixture(scope="session")
def leak_scanner(pii_values) -> LeakScanner:
    return LeakScanner(pii_values)


@pytest.fixture(scope="session")
def shop_views(mariadb):
    """The views of the corpus, created once as root straight on the database."""
    conn = direct_connect(mariadb, autocommit=True)
    with conn.cursor() as cur:
        for name, body in VIEWS.items():
            cur.execute(f"CREATE OR REPLACE VIEW shop.{name} AS {body}")
    yield sorted(VIEWS)
    with conn.cursor() as cur:
        for name in VIEWS:
            cur.execute(f"DROP VIEW IF EXISTS shop.{name}")
    conn.close()


@pytest.fixture()
def direct_wire(mariadb):
    client = WireClient(mariadb.port)
    client.login("root", ROOT_PASSWORD, "shop")
    yield client
    client.close()


@pytest.fixture()
def wire(proxy):
    """A factory of raw clients through the shared myguard, logged in as ``user``."""
    clients: list[WireClient] = []

    def make(user: str = "bob", password: str = "bob-pw-2", port: int | None = None) -> WireClient:
        client = WireClient(port or proxy.port)
        client.login(user, password, "shop")
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()
