"""Every real client logs in as an LDAP user through myguard: a full auth, then a fast one.

Each case uses a user no myguard has seen, so the first login must hand the password to
LDAP (myguard switches the client to caching_sha2_password full auth: cleartext inside
TLS, or the RSA public-key exchange without TLS) and the second one is checked against
the verifiers cached by the first (mysql_native_password scramble, no LDAP bind).

Modes: ``default`` gives the client nothing but host, port, user and password (most of
these clients now use TLS on their own when the server offers it, unverified);
``tls`` adds the client's options to verify myguard's certificate and host name;
``plain`` turns TLS off on clients that would use it by default.
"""

from __future__ import annotations

import subprocess

import pytest
from e2e_ldap import CLIENTS, LoginError, events, login, wait_events

# Without TLS and without RSA support these send the password in clear or refuse to:
# see test_connector_without_tls_* below.
_NO_PLAIN_FIRST_LOGIN = {"connector-pure", "connector-cext", "sqlalchemy+mysqlconnector"}

CASES = [
    *((name, "default") for name in CLIENTS),
    *((name, "tls") for name in CLIENTS),
    *(
        (name, "plain")
        for name, c in CLIENTS.items()
        if c.tls_by_default and name not in _NO_PLAIN_FIRST_LOGIN
    ),
]


def _expect_tls(client: str, mode: str) -> bool:
    return mode == "tls" or (mode == "default" and CLIENTS[client].tls_by_default)


@pytest.mark.parametrize(("client", "mode"), CASES, ids=[f"{c}-{m}" for c, m in CASES])
def test_first_login_is_full_then_fast(ldap_proxy, new_user, client, mode):
    user, password = new_user("client")
    options = (
        {"tls_ca": str(ldap_proxy.cert)}
        if mode == "tls"
        else {"no_tls": True}
        if mode == "plain"
        else {}
    )

    for _ in range(2):
        assert login(client, ldap_proxy.port, user, password, **options) == "myguard_svc@127.0.0.1"

    first, second = wait_events(ldap_proxy, "login", user, 2)
    tls = str(_expect_tls(client, mode))
    assert (first["plugin"], first["method"], first["tls"]) == (
        "caching_sha2_password",
        "full",
        tls,
    )
    assert (second["plugin"], second["method"], second["tls"]) == (
        "mysql_native_password",
        "fast",
        tls,
    )
    assert events(ldap_proxy.log(), "login_failed", user) == []


@pytest.mark.parametrize("client", ["connector-pure", "sqlalchemy+mysqlconnector"])
def test_connector_without_tls_sends_cleartext_and_is_refused(ldap_proxy, new_user, client):
    """mysql-connector (pure Python) answers "perform full authentication" on a plain
    connection with the password in clear (it has no RSA exchange for caching_sha2);
    myguard refuses a cleartext password without TLS, so the first login fails with the
    generic 1045 and the real reason in the log. Once a TLS login has cached verifiers,
    the same client logs in without TLS through the scramble (fast auth)."""
    user, password = new_user("connector-plain")
    with pytest.raises(LoginError) as refused:
        login(client, ldap_proxy.port, user, password, no_tls=True)
    assert (refused.value.code, refused.value.sqlstate) == (1045, "28000")
    [failed] = events(ldap_proxy.log(), "login_failed", user)
    assert failed["reason"] == "full authentication without TLS or RSA"

    login(client, ldap_proxy.port, user, password)  # default: TLS, full auth
    login(client, ldap_proxy.port, user, password, no_tls=True)
    full, fast = wait_events(ldap_proxy, "login", user, 2)
    assert (full["method"], full["tls"]) == ("full", "True")
    assert (fast["plugin"], fast["method"], fast["tls"]) == (
        "mysql_native_password",
        "fast",
        "False",
    )


def test_connector_cext_without_tls_refuses_full_auth_itself(ldap_proxy, new_user):
    """libmysqlclient (the C extension) will not send the password on a plain connection and
    does not fetch the server's RSA key unless told to: it fails with its own 2061 before
    myguard sees a password. With TLS (its default) the first login works, after which the
    cached verifiers let it log in without TLS."""
    user, password = new_user("cext-plain")
    with pytest.raises(LoginError) as refused:
        login("connector-cext", ldap_proxy.port, user, password, no_tls=True)
    assert refused.value.code == 2061
    assert "Authentication requires secure connection" in refused.value.message
    wait_events(ldap_proxy, "session_end", user, 1)
    assert events(ldap_proxy.log(), "login_failed", user) == []
    assert events(ldap_proxy.log(), "login", user) == []

    login("connector-cext", ldap_proxy.port, user, password)
    login("connector-cext", ldap_proxy.port, user, password, no_tls=True)
    full, fast = wait_events(ldap_proxy, "login", user, 2)
    assert (full["method"], full["tls"]) == ("full", "True")
    assert (fast["plugin"], fast["method"], fast["tls"]) == (
        "mysql_native_password",
        "fast",
        "False",
    )


def cli_cleartext_login(proxy, user: str, password: str, *tls: str) -> str:
    args = ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{proxy.port}", f"-u{user}"]
    args += [f"--password={password}", "--default-auth=mysql_clear_password", *tls]
    done = subprocess.run(
        [*args, "-N", "-B", "-e", "SELECT CURRENT_USER()"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_mariadb_cli_cleartext_plugin_is_accepted_over_tls_only(ldap_proxy, new_user):
    """``--default-auth=mysql_clear_password`` puts the password in the first response.
    Over TLS myguard takes it (a full authentication every time: the password is there,
    LDAP judges it). Without TLS the client has already sent it in clear (its choice), but
    myguard does not use it: it switches the client to caching_sha2_password (RSA)."""
    user, password = new_user("clear-tls")
    verified = [f"--ssl-ca={ldap_proxy.cert}", "--ssl-verify-server-cert"]
    for _ in range(2):
        assert cli_cleartext_login(ldap_proxy, user, password, *verified) == "myguard_svc@127.0.0.1"
    logins = [
        (e["plugin"], e["method"], e["tls"]) for e in wait_events(ldap_proxy, "login", user, 2)
    ]
    assert logins == [("mysql_clear_password", "full", "True")] * 2

    user, password = new_user("clear-plain")
    for _ in range(2):
        assert (
            cli_cleartext_login(ldap_proxy, user, password, "--skip-ssl") == "myguard_svc@127.0.0.1"
        )
    logins = [
        (e["plugin"], e["method"], e["tls"]) for e in wait_events(ldap_proxy, "login", user, 2)
    ]
    assert logins == [
        ("caching_sha2_password", "full", "False"),
        ("caching_sha2_password", "fast", "False"),
    ]
