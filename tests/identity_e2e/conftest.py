"""End-to-end LDAP logins: a private slapd, and myguard processes with ``identity.source = "ldap"``.

``ldap_proxy`` is shared by the whole directory (search-then-bind against ``slapd``,
``verifier_ttl`` at its default, analysts mapped to the read-only backend account).
Tests that need a cold verifier cache use a fresh LDAP user from ``new_user`` rather
than a fresh proxy; tests that need other options start one with ``ldap_proxy_factory``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

import pytest
from e2e_ldap import add_user

from ldap_server import (
    BIND_PASSWORD_ENV,
    SERVICE_PW,
    SlapdServer,
    search_table,
)
from mariadb_server import MariaDBServer
from proxy_process import ProxyProcess

RO_USER = "myguard_ro"
RO_PASSWORD = "ro-Secret-42"
RO_PASSWORD_ENV = "MYGUARD_TEST_RO_PASSWORD"

# Analysts reach MariaDB as the SELECT-only account; everyone else as the service account.
GROUP_ACCOUNTS = {
    "group_accounts": {"analysts": {"user": RO_USER, "password_env": RO_PASSWORD_ENV}}
}


def ldap_identity(server: SlapdServer, ldap: dict | None = None, **identity: object) -> dict:
    """``[identity]`` options for an LDAP-backed myguard in front of ``server``.

    ``max_failures`` is raised because every client comes from 127.0.0.1: the default
    (5 failures lock the *address*) would let the refusal tests lock out the others.
    """
    return {
        "source": "ldap",
        "max_failures": 10_000,
        **identity,
        "ldap": search_table(server, **(ldap or {})),
    }


@pytest.fixture(scope="session")
def ldap_env() -> Iterator[None]:
    """The secrets the [identity.ldap] table and the group account name, for child processes."""
    wanted = {BIND_PASSWORD_ENV: SERVICE_PW, RO_PASSWORD_ENV: RO_PASSWORD}
    saved = {name: os.environ.get(name) for name in wanted}
    os.environ.update(wanted)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdServer]:
    """The slapd shared by these tests; a test that stops LDAP uses its own SlapdServer."""
    server = SlapdServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def own_slapd() -> Iterator[SlapdServer]:
    """A slapd for one test, which may stop and restart it."""
    server = SlapdServer(tls=False)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture(scope="session")
def ldap_proxy(
    mariadb: MariaDBServer,
    slapd: SlapdServer,
    ldap_env: None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyProcess]:
    proxy = ProxyProcess(
        tmp_path_factory.mktemp("ldap-proxy"),
        mariadb,
        identity=ldap_identity(slapd),
        backend=GROUP_ACCOUNTS,
    )
    proxy.start()
    yield proxy
    proxy.stop()


@pytest.fixture
def ldap_proxy_factory(
    private_proxy: Callable[..., ProxyProcess], ldap_env: None
) -> Callable[..., ProxyProcess]:
    """``make(server, ldap={...}, **identity)``: a private LDAP-backed myguard, stopped after the test."""

    def make(server: SlapdServer, ldap: dict | None = None, **identity: object) -> ProxyProcess:
        return private_proxy(
            identity=ldap_identity(server, ldap, **identity), backend=GROUP_ACCOUNTS
        )

    return make


@pytest.fixture
def new_user(slapd: SlapdServer) -> Callable[..., tuple[str, str]]:
    """``new_user(prefix, groups=())``: a user no myguard has seen yet, so its first login is a full auth."""

    def make(prefix: str, groups: tuple[str, ...] = ()) -> tuple[str, str]:
        return add_user(slapd, prefix, groups)

    return make
