"""LDAP goes away mid-run and comes back.

Open sessions do not depend on LDAP. A login that needs LDAP fails with myguard's own
error 4691 "identity provider is unavailable" (never "Access denied": the password was
not judged). Which logins need LDAP:

* a full authentication (no cached verifiers, or a password that does not match them);
* a fast login whose groups are older than ``group_ttl`` (``refresh`` re-reads them).

So with ``allow_cached_during_outage`` off (the default) a cached user keeps logging in
during an outage only while its groups are younger than ``group_ttl`` — LDAP is not asked,
so its absence is not noticed — and gets 4691 after that. With the option on, a cached
user logs in with the cached identity for as long as the outage lasts, even with expired
verifiers (``method=cached-during-outage``); a password that does not match the cache
still gets 4691.
"""

from __future__ import annotations

import time

import pymysql
import pytest
from e2e_ldap import LoginError, login, wait_events

from ldap_server import USERS

UNAVAILABLE = "myguard: the identity provider is unavailable, try again later (ldap: "


def connect(proxy, user: str) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=proxy.port, user=user, password=USERS[user][0])


def scalar(conn: pymysql.Connection, sql: str) -> object:
    with conn.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


def unavailable(proxy, user: str, password: str | None = None) -> LoginError:
    # mysql-connector reports the SQLSTATE too.
    with pytest.raises(LoginError) as caught:
        login("connector-pure", proxy.port, user, USERS[user][0] if password is None else password)
    return caught.value


def assert_unavailable(error: LoginError) -> None:
    assert (error.code, error.sqlstate) == (4691, "08004")
    assert error.message.startswith(UNAVAILABLE), error.message


GROUP_TTL = 3


def test_outage_open_sessions_live_new_logins_get_4691_until_ldap_returns(
    own_slapd, ldap_proxy_factory
):
    proxy = ldap_proxy_factory(own_slapd, ldap={"group_ttl": GROUP_TTL})
    session = connect(proxy, "alice")
    assert login("pymysql", proxy.port, "bob", USERS["bob"][0]) == "myguard_ro@127.0.0.1"
    groups_fresh_until = time.monotonic() + GROUP_TTL  # read during bob's login

    own_slapd.stop()
    for _ in range(3):
        assert scalar(session, "SELECT 1") == 1
    assert scalar(session, "SELECT COUNT(*) > 0 FROM shop.orders") == 1

    # Never seen: needs LDAP.
    assert_unavailable(unavailable(proxy, "carol"))
    # Cached, groups still fresh: LDAP is not asked, so the outage goes unnoticed.
    assert login("pymysql", proxy.port, "bob", USERS["bob"][0]) == "myguard_ro@127.0.0.1"
    # Groups too old: refresh needs LDAP, and cached logins during outages are off.
    time.sleep(max(0.0, groups_fresh_until + 0.5 - time.monotonic()))
    assert_unavailable(unavailable(proxy, "bob"))
    assert scalar(session, "SELECT 2") == 2

    own_slapd.start()
    assert login("pymysql", proxy.port, "carol", USERS["carol"][0]) == "myguard_svc@127.0.0.1"
    assert login("pymysql", proxy.port, "bob", USERS["bob"][0]) == "myguard_ro@127.0.0.1"
    assert scalar(session, "SELECT 3") == 3
    session.close()

    bob = [(e["method"], e["groups"]) for e in wait_events(proxy, "login", "bob", 3)]
    assert bob == [
        ("full", "analysts,auditors"),
        ("fast", "analysts,auditors"),
        ("fast", "analysts,auditors"),
    ]
    assert [e["method"] for e in wait_events(proxy, "login", "carol", 1)] == ["full"]


VERIFIER_TTL = 2


def test_outage_with_cached_logins_allowed(own_slapd, ldap_proxy_factory):
    # group_ttl = 0: every fast login asks LDAP for groups, so the outage is always noticed.
    proxy = ldap_proxy_factory(
        own_slapd, ldap={"group_ttl": 0}, verifier_ttl=VERIFIER_TTL, allow_cached_during_outage=True
    )
    bob_pw = USERS["bob"][0]
    login("pymysql", proxy.port, "bob", bob_pw)
    verifiers_fresh_until = time.monotonic() + VERIFIER_TTL

    own_slapd.stop()
    # Fresh verifiers: the scramble matches, refresh fails, the cached identity is used.
    assert login("pymysql", proxy.port, "bob", bob_pw) == "myguard_ro@127.0.0.1"
    # A password that does not match the cache cannot be judged without LDAP.
    assert_unavailable(unavailable(proxy, "bob", "not-bobs-password"))
    assert_unavailable(unavailable(proxy, "carol"))
    # Expired verifiers still count during the outage (through a full authentication).
    time.sleep(max(0.0, verifiers_fresh_until + 0.5 - time.monotonic()))
    assert login("pymysql", proxy.port, "bob", bob_pw) == "myguard_ro@127.0.0.1"

    own_slapd.start()
    assert login("pymysql", proxy.port, "carol", USERS["carol"][0]) == "myguard_svc@127.0.0.1"
    assert login("pymysql", proxy.port, "bob", bob_pw) == "myguard_ro@127.0.0.1"

    bob = [(e["plugin"], e["method"], e["groups"]) for e in wait_events(proxy, "login", "bob", 4)]
    assert bob == [
        ("caching_sha2_password", "full", "analysts,auditors"),
        ("mysql_native_password", "cached-during-outage", "analysts,auditors"),
        ("caching_sha2_password", "cached-during-outage", "analysts,auditors"),
        ("caching_sha2_password", "full", "analysts,auditors"),
    ]
