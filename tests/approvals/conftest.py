"""Fixtures for the approval tests: request contexts and a private MariaDB server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from myguard.approvals.model import ApprovalPolicy, RequestContext
from myguard.approvals.store_mysql import MysqlTarget


@pytest.fixture
def make_context():
    def make(
        requester: str = "bob",
        statement: str = "DELETE FROM orders WHERE created < '2020-01-01'",
        params: tuple[str, ...] = (),
        fingerprint: str = "delete from orders where created < ?",
        rule: str = "big-delete",
        **policy: object,
    ) -> RequestContext:
        policy.setdefault("approver_groups", frozenset({"dba"}))
        return RequestContext(
            requester=requester,
            requester_groups=frozenset({"dev"}),
            source_address="10.0.0.5:51234",
            client_program="mysql",
            environment="prod",
            backend="main",
            session_id=42,
            statement=statement,
            params=params,
            fingerprint=fingerprint,
            analysis={"kind": "delete", "tables": ["shop.orders"], "columns": {}},
            rule=rule,
            policy=ApprovalPolicy(**policy),
        )

    return make


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(port: int) -> bool:
    result = subprocess.run(
        ["mariadb-admin", "--no-defaults", "-uroot", "-h127.0.0.1", f"-P{port}", "ping"],
        capture_output=True,
    )
    return result.returncode == 0


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory: pytest.TempPathFactory):
    """A throwaway MariaDB on a free port with an empty ``approvals`` database."""
    if not (shutil.which("mariadbd") and shutil.which("mariadb-install-db")):
        pytest.skip("MariaDB server binaries not installed")
    datadir: Path = tmp_path_factory.mktemp("mariadb")
    subprocess.run(
        [
            "mariadb-install-db",
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            "--auth-root-authentication-method=normal",
        ],
        check=True,
        capture_output=True,
    )
    port = _free_port()
    server = subprocess.Popen(
        [
            "mariadbd",
            "--no-defaults",
            "--user=root",
            f"--datadir={datadir}",
            f"--port={port}",
            f"--socket={datadir}/s.sock",
            "--bind-address=127.0.0.1",
            f"--pid-file={datadir}/p.pid",
            f"--log-error={datadir}/err.log",
            "--skip-grant-tables=0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not _ping(port):
            if server.poll() is not None or time.monotonic() > deadline:
                log = (datadir / "err.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"private MariaDB did not start:\n{log}")
            time.sleep(0.2)
        subprocess.run(
            [
                "mariadb",
                "--no-defaults",
                "-uroot",
                "-h127.0.0.1",
                f"-P{port}",
                "-e",
                "CREATE DATABASE approvals",
            ],
            check=True,
        )
        yield MysqlTarget(host="127.0.0.1", port=port, user="root", database="approvals")
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
