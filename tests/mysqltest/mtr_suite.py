"""MariaDB's own mysql-test suite (Debian package ``mariadb-test``): where it is, how to
reset the server between its tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from mariadb_server import ROOT_PASSWORD, MariaDBServer

SUITE = Path("/usr/share/mysql/mysql-test")
MODES = {
    "text": [],
    "ps": ["--ps-protocol"],
    "cursor": ["--cursor-protocol"],
    "compress": ["--compress"],  # the compressed protocol between client and myguard
}


def suite_available() -> str | None:
    """Why the suite cannot run here, or None."""
    if shutil.which("mariadb-test") is None:
        return "mariadb-test not installed (scripts/bootstrap.sh installs the mariadb-test package)"
    if not (SUITE / "main").is_dir():
        return f"{SUITE}/main missing (Debian package mariadb-test)"
    return None


def root_sql(mariadb: MariaDBServer, sql: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            "mariadb",
            "--no-defaults",
            f"--socket={mariadb.socket}",
            "-uroot",
            f"-p{ROOT_PASSWORD}",
            "--batch",
            "--skip-column-names",
            "-e",
            sql,
        ],
        capture_output=True,
        timeout=60,
    )


def databases(mariadb: MariaDBServer) -> set[str]:
    return set(mariadb.sql("SHOW DATABASES").split())


def empty_test_database(mariadb: MariaDBServer) -> None:
    """DROP and CREATE ``test``. A test that wrote a file into the database directory
    (SELECT ... INTO OUTFILE 'x') makes DROP DATABASE fail with 1010 after it dropped the
    tables: the stray files go, then the drop is repeated."""
    if root_sql(mariadb, "DROP DATABASE IF EXISTS test").returncode != 0:
        leftovers = mariadb.datadir / "test"
        for path in leftovers.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        mariadb.sql("DROP DATABASE IF EXISTS test")
    mariadb.sql("CREATE DATABASE test")
