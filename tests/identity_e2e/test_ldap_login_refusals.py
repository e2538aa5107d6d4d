"""Refused LDAP logins: one generic answer for the client, the real reason in the log.

Two transports: mysql-connector (pure) with its default TLS (password in clear inside
TLS) and the ``mariadb`` CLI with ``--skip-ssl`` (password through the RSA exchange);
both report the SQLSTATE.
"""

from __future__ import annotations

import pytest
from e2e_ldap import LoginError, events, login, wait_events

from ldap_server import GROUPS, PEOPLE, USERS

TRANSPORTS = {"tls": ("connector-pure", {}), "rsa": ("mariadb-cli", {"no_tls": True})}


def refused(proxy, transport: str, user: str, password: str) -> LoginError:
    client, options = TRANSPORTS[transport]
    with pytest.raises(LoginError) as caught:
        login(client, proxy.port, user, password, **options)
    return caught.value


def denied(user: str, using_password: str = "YES") -> tuple[int, str, str]:
    return (
        1045,
        "28000",
        f"Access denied for user '{user}'@'127.0.0.1' (using password: {using_password})",
    )


def reason(proxy, user: str) -> str:
    return events(proxy.log(), "login_failed", user)[-1]["reason"]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_wrong_password_unknown_and_disabled_users_get_the_same_answer(ldap_proxy, transport):
    wrong = refused(ldap_proxy, transport, "bob", "not-bobs-password")
    unknown = refused(ldap_proxy, transport, "nobody-e2e", USERS["bob"][0])
    disabled = refused(ldap_proxy, transport, "dave", USERS["dave"][0])  # dave's right password

    assert (wrong.code, wrong.sqlstate, wrong.message) == denied("bob")
    assert (unknown.code, unknown.sqlstate, unknown.message) == denied("nobody-e2e")
    assert (disabled.code, disabled.sqlstate, disabled.message) == denied("dave")
    # Nothing tells the three apart but the name the client typed.
    assert (
        wrong.message.replace("'bob'", "'X'")
        == unknown.message.replace("'nobody-e2e'", "'X'")
        == disabled.message.replace("'dave'", "'X'")
    )

    assert reason(ldap_proxy, "bob") == f"bind as uid=bob,{PEOPLE} refused: invalidCredentials"
    assert reason(ldap_proxy, "nobody-e2e") == (
        f"no entry matches (&(objectClass=inetOrgPerson)(uid=nobody-e2e)) under {PEOPLE}"
    )
    assert (
        reason(ldap_proxy, "dave")
        == f"uid=dave,{PEOPLE} matches disabled_filter (employeeType=disabled)"
    )
    assert GROUPS not in reason(ldap_proxy, "dave")  # refused before any group lookup


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_empty_password_is_refused_before_ldap(ldap_proxy, transport):
    """An empty LDAP bind password is an "unauthenticated bind" many servers accept."""
    error = refused(ldap_proxy, transport, "bob", "")
    assert (error.code, error.sqlstate, error.message) == denied("bob", "NO")
    assert reason(ldap_proxy, "bob") == "empty password"


def test_wrong_password_with_warm_cache_is_refused_and_forgets_the_cache(ldap_proxy, new_user):
    """A cached user typing a wrong password: the scramble does not match, myguard asks for
    the password, LDAP refuses it, and the cached verifiers are dropped, so the next good
    login is a full authentication again."""
    user, password = new_user("wrong")
    login("pymysql", ldap_proxy.port, user, password)
    login("pymysql", ldap_proxy.port, user, password)
    error = refused(ldap_proxy, "tls", user, password + "-typo")
    assert (error.code, error.sqlstate, error.message) == denied(user)
    login("pymysql", ldap_proxy.port, user, password)
    methods = [e["method"] for e in wait_events(ldap_proxy, "login", user, 3)]
    assert methods == ["full", "fast", "full"]
    assert reason(ldap_proxy, user) == f"bind as uid={user},{PEOPLE} refused: invalidCredentials"
