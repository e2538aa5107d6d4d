"""The verifier cache and the group cache, seen from real logins.

Documented behaviour (myguard.identity.verifier_cache, myguard.identity.ldap):

* after a full authentication, verifiers derived from the password are kept for
  ``identity.verifier_ttl``; later logins with that password are fast (no LDAP bind);
* so a password changed in LDAP keeps working in its old form until the entry expires,
  or until the new password is used once (that full authentication replaces the entry);
* groups are re-read with the service account at a fast login once ``group_ttl`` passed.
"""

from __future__ import annotations

import time

import pytest
from e2e_ldap import LoginError, events, login, wait_events

from ldap_server import PEOPLE, USERS


def methods(proxy, user: str, count: int) -> list[str]:
    return [e["method"] for e in wait_events(proxy, "login", user, count)]


def sleep_until(moment: float) -> None:
    time.sleep(max(0.0, moment - time.monotonic()))


def test_expired_verifiers_mean_a_full_authentication_again(slapd, ldap_proxy_factory, new_user):
    proxy = ldap_proxy_factory(slapd, verifier_ttl=1)
    user, password = new_user("ttl")
    login("pymysql", proxy.port, user, password)
    login("pymysql", proxy.port, user, password)
    time.sleep(2)
    login("pymysql", proxy.port, user, password)
    assert methods(proxy, user, 3) == ["full", "fast", "full"]


TTL = 4


def test_changed_password_old_one_works_until_ttl_then_only_new(
    slapd, ldap_proxy_factory, new_user
):
    proxy = ldap_proxy_factory(slapd, verifier_ttl=TTL)
    user, old = new_user("pwchange")
    new = old + "-changed"
    login("pymysql", proxy.port, user, old)
    cached_until = time.monotonic() + TTL  # the entry was made before login() returned
    slapd.set_password(user, new)

    # Within the TTL the old password still logs in, from the cache, without LDAP.
    assert login("pymysql", proxy.port, user, old) == "myguard_svc@127.0.0.1"
    assert methods(proxy, user, 2) == ["full", "fast"], "the second login must come from the cache"

    sleep_until(cached_until + 0.5)
    with pytest.raises(LoginError) as refused:
        login("pymysql", proxy.port, user, old)
    assert refused.value.code == 1045
    [failed] = events(proxy.log(), "login_failed", user)
    assert failed["reason"] == f"bind as uid={user},{PEOPLE} refused: invalidCredentials"

    login("pymysql", proxy.port, user, new)
    login("pymysql", proxy.port, user, new)
    assert methods(proxy, user, 4) == ["full", "fast", "full", "fast"]


def test_new_password_used_once_ends_the_old_one_before_ttl(slapd, ldap_proxy_factory, new_user):
    proxy = ldap_proxy_factory(slapd)  # verifier_ttl at its default (an hour)
    user, old = new_user("pwreplace")
    new = old + "-changed"
    login("pymysql", proxy.port, user, old)
    slapd.set_password(user, new)

    login("pymysql", proxy.port, user, new)  # scramble does not match the cache: full auth
    with pytest.raises(LoginError) as refused:
        login("pymysql", proxy.port, user, old)
    assert refused.value.code == 1045
    # A refused full authentication also drops the user's entry (forget on failure), so
    # the next good login asks LDAP again before the cache serves fast logins.
    login("pymysql", proxy.port, user, new)
    login("pymysql", proxy.port, user, new)
    assert methods(proxy, user, 4) == ["full", "full", "full", "fast"]


GROUP_TTL = 1


def test_group_change_shows_at_the_next_login_after_group_ttl(slapd, ldap_proxy_factory):
    proxy = ldap_proxy_factory(slapd, ldap={"group_ttl": GROUP_TTL})
    password = USERS["carol"][0]
    assert login("pymysql", proxy.port, "carol", password) == "myguard_svc@127.0.0.1"
    slapd.add_to_group("carol", "analysts")
    try:
        time.sleep(GROUP_TTL + 0.5)
        # A fast login (verifiers cached), but groups re-read: now an analyst, read-only.
        assert login("pymysql", proxy.port, "carol", password) == "myguard_ro@127.0.0.1"
    finally:
        slapd.remove_from_group("carol", "analysts")
    first, second = wait_events(proxy, "login", "carol", 2)
    assert (first["method"], first["groups"]) == ("full", "")
    assert (second["method"], second["groups"]) == ("fast", "analysts")
