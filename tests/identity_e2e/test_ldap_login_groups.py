"""LDAP groups reach the session: in the login line, and in the backend account chosen.

``backend.group_accounts`` maps analysts to ``myguard_ro`` (SELECT only in MariaDB);
everyone else reaches MariaDB as the service account.
"""

from __future__ import annotations

import pymysql
import pytest
from e2e_ldap import events, wait_events

from ldap_server import USERS


def connect(proxy, user: str, **options) -> pymysql.Connection:
    return pymysql.connect(
        host="127.0.0.1", port=proxy.port, user=user, password=USERS[user][0], **options
    )


def query(conn: pymysql.Connection, sql: str) -> tuple:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


@pytest.mark.parametrize(
    ("user", "groups"),
    [
        ("alice", "dba,developers"),  # groupOfNames + posixGroup (memberUid)
        ("bob", "analysts,auditors"),  # groupOfNames + groupOfUniqueNames
        ("bot-reporter", "ai-agents,analysts"),
        ("carol", ""),
    ],
)
def test_login_line_shows_the_ldap_groups(ldap_proxy, user, groups):
    before = len(events(ldap_proxy.log(), "login", user))
    connect(ldap_proxy, user).close()
    logins = wait_events(ldap_proxy, "login", user, before + 1)
    assert logins[-1]["groups"] == groups


@pytest.mark.parametrize("user", ["bob", "bot-reporter"])
def test_analysts_reach_mariadb_as_the_read_only_account(ldap_proxy, user):
    conn = connect(ldap_proxy, user)
    try:
        assert query(conn, "SELECT CURRENT_USER()") == (("myguard_ro@127.0.0.1",),)
        assert query(conn, "SELECT COUNT(*) > 0 FROM shop.orders") == ((1,),)
    finally:
        conn.close()


def test_analyst_write_is_refused_by_mariadb_itself(ldap_proxy):
    """No rule stops bob's INSERT into shop.orders (no tagged column, bob is no AI agent):
    it reaches MariaDB as myguard_ro, and MariaDB's own refusal comes back unchanged."""
    conn = connect(ldap_proxy, "bob")
    try:
        with pytest.raises(pymysql.err.OperationalError) as refused:
            query(
                conn,
                "INSERT INTO shop.orders (customer_id, item, quantity, total, ordered_at) "
                "VALUES (1, 'e2e-ldap-never', 1, 1.00, NOW())",
            )
        assert refused.value.args == (
            1142,
            "INSERT command denied to user 'myguard_ro'@'127.0.0.1' for table `shop`.`orders`",
        )
        assert query(conn, "SELECT 1") == ((1,),)  # the session survives the refusal
    finally:
        conn.close()


def test_dba_reaches_mariadb_as_the_service_account(ldap_proxy):
    conn = connect(ldap_proxy, "alice")
    try:
        assert query(conn, "SELECT CURRENT_USER()") == (("myguard_svc@127.0.0.1",),)
        query(conn, "CREATE TEMPORARY TABLE test.e2e_ldap_dba (n INT)")
        query(conn, "INSERT INTO test.e2e_ldap_dba VALUES (1)")
        assert query(conn, "SELECT n FROM test.e2e_ldap_dba") == ((1,),)
    finally:
        conn.close()
