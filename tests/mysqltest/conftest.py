"""Fixtures for MariaDB's own mysql-test files (Debian package ``mariadb-test``) replayed
through myguard.

The suite is read from /usr/share/mysql/mysql-test; the few ``main`` tests a module lists
in ``TESTS`` are copied into a private base directory (``mariadb-test`` writes
``.reject``/``.log`` files next to what it runs), with ``include`` and ``std_data`` linked
from the installed suite.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from mtr_suite import SUITE, databases, empty_test_database, suite_available

from mariadb_server import MariaDBServer


@pytest.fixture(scope="module")
def suite_dir(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Path:
    """A private mysql-test base directory holding the module's TESTS."""
    reason = suite_available()
    if reason:
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("mysql-test")
    (base / "main").mkdir()
    for name in ("include", "std_data"):
        (base / name).symlink_to(SUITE / name)
    for name in request.module.TESTS:
        for ext in (".test", ".result"):
            shutil.copy(SUITE / "main" / f"{name}{ext}", base / "main" / f"{name}{ext}")
    (base / "log").mkdir()
    (base / "tmp").mkdir()
    return base


@pytest.fixture()
def clean_server(mariadb: MariaDBServer):
    """An empty ``test`` database before the test; databases it created are dropped after."""
    before = databases(mariadb)
    empty_test_database(mariadb)
    yield mariadb
    for name in databases(mariadb) - before:
        mariadb.sql(f"DROP DATABASE IF EXISTS `{name}`")
    empty_test_database(mariadb)
