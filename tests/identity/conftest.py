"""Fixtures for the identity tests: a private slapd (never the system LDAP)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS = str(Path(__file__).resolve().parent.parent)
if _TESTS not in sys.path:
    sys.path.insert(0, _TESTS)

from ldap_server import SERVICE_PW, SlapdServer  # noqa: E402
from ldap_server import direct_table as _direct_table  # noqa: E402
from ldap_server import search_table as _search_table  # noqa: E402
from myguard.identity.ldap import LdapIdentitySource  # noqa: E402
from myguard.identity.ldap_config import LdapConfig  # noqa: E402


@pytest.fixture(scope="session")
def slapd() -> Iterator[SlapdServer]:
    """The shared slapd. Tests that change its data must put it back; tests that stop it
    use ``private_slapd``. No skip: a missing slapd is a broken test environment."""
    server = SlapdServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def private_slapd() -> Iterator[SlapdServer]:
    server = SlapdServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def search_table():
    """Factory: a search-then-bind [identity.ldap] table for a server (password from env)."""
    return _search_table


@pytest.fixture
def direct_table():
    """Factory: a direct-bind [identity.ldap] table for a server (no service account)."""
    return _direct_table


@pytest.fixture
def make_source(monkeypatch: pytest.MonkeyPatch) -> Iterator:
    """Build an LdapIdentitySource from a table; closed after the test."""
    monkeypatch.setenv("MYGUARD_TEST_LDAP_BIND_PW", SERVICE_PW)
    made: list[LdapIdentitySource] = []

    def make(table: dict, **kwargs: object) -> LdapIdentitySource:
        source = LdapIdentitySource(LdapConfig.from_table(table, "test.toml"), **kwargs)
        made.append(source)
        return source

    yield make
    for source in made:
        source._pool.shutdown(wait=True, cancel_futures=True)
