"""Fixtures of the Node mysql2 and JDBC end-to-end tests: the clients and a procedure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# Its compare() asserts: show the difference as in a test module.
pytest.register_assert_rewrite("clients_e2e_tools")

from clients_e2e_tools import PROCEDURE, PROCEDURE_SQL, TLS_MODES, Jdbc, Mysql2  # noqa: E402

from mariadb_server import MariaDBServer  # noqa: E402


@pytest.fixture(params=TLS_MODES)
def tls(request: pytest.FixtureRequest) -> str:
    """How a test's client reaches myguard: plain, TLS checking its certificate, TLS
    trusting any."""
    return request.param


@pytest.fixture(scope="session")
def mysql2() -> Mysql2:
    return Mysql2()


@pytest.fixture(scope="session")
def jdbc(tmp_path_factory: pytest.TempPathFactory) -> Jdbc:
    """JdbcScenarios.java compiled once per session, against Debian's Connector/J."""
    return Jdbc(tmp_path_factory.mktemp("jdbc-classes"))


@pytest.fixture(scope="module")
def procedure(mariadb: MariaDBServer) -> Iterator[str]:
    """A stored procedure returning three result sets, created as root straight on MariaDB
    (per module: tests/mysqltest drops and creates the database ``test``)."""
    mariadb.sql(PROCEDURE_SQL)
    yield PROCEDURE
    mariadb.sql(f"DROP PROCEDURE IF EXISTS {PROCEDURE}")
