"""Shared fixtures: a private MariaDB and myguard in front of it, both real processes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mariadb_server import MariaDBServer  # noqa: E402
from proxy_process import ProxyProcess  # noqa: E402


@pytest.fixture(scope="session")
def mariadb(tmp_path_factory: pytest.TempPathFactory):
    server = MariaDBServer(tmp_path_factory.mktemp("mariadb"))
    server.start()
    try:
        server.seed()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def proxy(mariadb: MariaDBServer, tmp_path_factory: pytest.TempPathFactory):
    """The shared myguard in front of the shared MariaDB (users: alice, bob, carol)."""
    p = ProxyProcess(tmp_path_factory.mktemp("proxy"), mariadb)
    p.start()
    yield p
    p.stop()


@pytest.fixture()
def private_proxy(mariadb: MariaDBServer, tmp_path: Path):
    """A factory for a myguard with its own options, stopped after the test."""
    started: list[ProxyProcess] = []

    def make(**options: object) -> ProxyProcess:
        p = ProxyProcess(tmp_path / f"proxy{len(started)}", mariadb, **options)
        p.start()
        started.append(p)
        return p

    yield make
    for p in started:
        p.stop()


@pytest.fixture()
def local_infile_proxy(private_proxy, tmp_path: Path) -> ProxyProcess:
    """A myguard that allows LOAD DATA LOCAL and every statement (an allow-all rules file)."""
    rules = tmp_path / "allow-all.toml"
    rules.write_text('[defaults]\naction = "allow"\n')
    return private_proxy(local_infile=True, rules_file=rules)
