"""A private MariaDB for tests and the demo: mariadb-install-db + mariadbd in a folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

SERVICE_USER = "myguard_svc"
SERVICE_PASSWORD = "svc-Secret-42"
ROOT_PASSWORD = "root-Secret-42"
SAMPLE_SQL = Path(__file__).resolve().parent.parent / "conf" / "sample" / "shop.sql"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MariaDBServer:
    """Starts, stops and restarts one private mariadbd listening on 127.0.0.1."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.base = base
        self.datadir = base / "data"
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.socket = base / "mariadb.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        if (self.datadir / "mysql").exists():
            return
        self.datadir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        self.install()
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.proc = subprocess.Popen(
            [
                mariadbd,
                "--no-defaults",
                "--user=root",
                f"--datadir={self.datadir}",
                f"--port={self.port}",
                f"--socket={self.socket}",
                "--bind-address=127.0.0.1",
                f"--pid-file={self.base / 'mariadb.pid'}",
                f"--log-error={self.base / 'error.log'}",
                "--innodb-buffer-pool-size=128M",
                "--innodb-log-file-size=48M",
                "--innodb-flush-log-at-trx-commit=2",
                "--max-allowed-packet=256M",
                "--max-connections=2000",
                "--skip-name-resolve",
                "--local-infile=1",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mariadbd exited: {(self.base / 'error.log').read_text()[-2000:]}"
                )
            if self._ping():
                return
            time.sleep(0.1)
        raise RuntimeError("mariadbd did not start within 60 s")

    def _ping(self) -> bool:
        r = subprocess.run(
            [
                "mariadb-admin",
                "--no-defaults",
                f"--socket={self.socket}",
                "-uroot",
                f"-p{ROOT_PASSWORD}",
                "ping",
            ],
            capture_output=True,
        )
        if r.returncode == 0:
            return True
        # Right after install root has no password yet.
        r = subprocess.run(
            ["mariadb-admin", "--no-defaults", f"--socket={self.socket}", "-uroot", "ping"],
            capture_output=True,
        )
        return r.returncode == 0

    def sql(self, statements: str, database: str | None = None) -> str:
        """Run SQL as root over the socket; returns the batch output."""
        args = [
            "mariadb",
            "--no-defaults",
            f"--socket={self.socket}",
            "-uroot",
            "--batch",
            "--skip-column-names",
        ]
        if self._root_has_password():
            args.append(f"-p{ROOT_PASSWORD}")
        if database:
            args.append(database)
        r = subprocess.run(args, input=statements.encode(), capture_output=True)
        if r.returncode != 0:
            raise RuntimeError(f"mariadb failed: {r.stderr.decode()}")
        return r.stdout.decode()

    def _root_has_password(self) -> bool:
        return (self.base / ".root-password-set").exists()

    def seed(self) -> None:
        """Root password, the service account, and the sample shop database."""
        if not self._root_has_password():
            self.sql(
                f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{ROOT_PASSWORD}';"
                f"CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '{ROOT_PASSWORD}';"
                f"ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY '{ROOT_PASSWORD}';"
                "GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
            )
            (self.base / ".root-password-set").touch()
        self.sql(
            f"CREATE USER IF NOT EXISTS '{SERVICE_USER}'@'127.0.0.1' IDENTIFIED BY '{SERVICE_PASSWORD}';"
            f"GRANT ALL ON *.* TO '{SERVICE_USER}'@'127.0.0.1';"
            "CREATE USER IF NOT EXISTS 'myguard_ro'@'127.0.0.1' IDENTIFIED BY 'ro-Secret-42';"
            "GRANT SELECT ON *.* TO 'myguard_ro'@'127.0.0.1';"
            "CREATE DATABASE IF NOT EXISTS test;"
        )
        self.sql(SAMPLE_SQL.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9, as a crashed database would die."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "MYGUARD_SVC_PASSWORD": SERVICE_PASSWORD}
