"""Run myguard as a real process for tests: write its config, start it, stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from mariadb_server import SERVICE_USER, MariaDBServer, free_port
from myguard.audit import AuditRecord, iter_records
from myguard.audit.ring import ring_path
from myguard.config import DEFAULT_RING_DIRECTORY
from myguard.identity.users_file import read_users, write_user
from myguard.tls import write_self_signed

RULES = Path(__file__).resolve().parent.parent / "conf" / "rules.toml"
USERS = {
    "alice": ("alice-pw-1", ["dba"]),
    "bob": ("bob-pw-2", ["analysts"]),
    "carol": ("carol-pw-3", []),
    "bot": ("bot-pw-9", ["analysts", "ai-agents"]),
}


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_table(name: str, table: dict) -> list[str]:
    """``[name]`` with its plain keys, then its sub-tables as ``[name.sub]``."""
    lines = ["", f"[{name}]"]
    subs = []
    for k, v in table.items():
        if isinstance(v, dict):
            subs.append((f"{name}.{k}", v))
        else:
            lines.append(f"{k} = {toml_value(v)}")
    for sub_name, sub in subs:
        lines += toml_table(sub_name, sub)
    return lines


def settled_records(
    directory: Path, quiet: float = 0.05, timeout: float = 10.0
) -> list[AuditRecord]:
    """The audit records in ``directory`` once no new one has come for ``quiet`` seconds.
    A statement's record is in the kernel (the ring) before its client sees the result, but
    the writer thread moves it into the segment up to its linger (5 ms) later."""
    deadline = time.monotonic() + timeout
    records = list(iter_records(directory))
    while time.monotonic() < deadline:
        time.sleep(quiet)
        again = list(iter_records(directory))
        if len(again) == len(records):
            return again
        records = again
    return records


class ProxyProcess:
    """One ``myguard serve`` process in front of ``db``, configured for the tests."""

    def __init__(
        self,
        base: Path,
        db: MariaDBServer,
        *,
        upstream_port: int | None = None,
        port: int | None = None,
        admin_port: int | None = None,
        **options: object,
    ) -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.db = db
        self.port = port or free_port()
        self.admin_port = admin_port or free_port()
        self.upstream_port = upstream_port or db.port
        self.options = options
        self.cert = base / "server.crt"
        self.key = base / "server.key"
        self.users_file = base / "users.toml"
        self.config_file = base / "myguard.toml"
        self.log_file = base / "myguard.log"
        self.audit_dir = base / "audit"
        self.proc: subprocess.Popen[bytes] | None = None
        if not self.cert.exists():
            write_self_signed(self.cert, self.key)
        known = read_users(self.users_file)
        for name, (password, groups) in USERS.items():
            if name not in known:
                write_user(self.users_file, name, password, groups)
        self.write_config()

    def write_config(self) -> None:
        opts = dict(self.options)
        backend = {
            "name": "main",
            "environment": opts.pop("environment", "development"),
            "listen": f"127.0.0.1:{self.port}",
            "upstream": f"127.0.0.1:{self.upstream_port}",
            "user": SERVICE_USER,
            "password_env": "MYGUARD_SVC_PASSWORD",
            "local_infile": opts.pop("local_infile", False),
            **opts.pop("backend", {}),
        }
        top = {
            "admin_listen": f"127.0.0.1:{self.admin_port}",
            "workers": opts.pop("workers", 1),
            "process_list_groups": opts.pop("process_list_groups", ["dba"]),
            "require_tls": opts.pop("require_tls", False),
            "handshake_timeout": opts.pop("handshake_timeout", 30),
            "idle_timeout": opts.pop("idle_timeout", 3600),
            "shutdown_timeout": opts.pop("shutdown_timeout", 10),
            "max_allowed_packet": opts.pop("max_allowed_packet", 64 << 20),
            "rules_file": str(opts.pop("rules_file", RULES)),
        }
        identity = {
            "source": "users-file",
            "users_file": str(self.users_file),
            **opts.pop("identity", {}),
        }
        audit = {"directory": str(self.audit_dir), "fsync": "batch", **opts.pop("audit", {})}
        tables = {
            "tls": {"cert_file": str(self.cert), "key_file": str(self.key)},
            "identity": identity,
            "audit": audit,
        }
        tables.update(opts.pop("tables", {}))
        if opts:
            raise TypeError(f"unknown proxy options {sorted(opts)}")
        lines = [f"{k} = {toml_value(v)}" for k, v in top.items()]
        for name, table in tables.items():
            lines += toml_table(name, table)
        lines += ["", "[[backends]]"]
        lines += [f"{k} = {toml_value(v)}" for k, v in backend.items() if not isinstance(v, dict)]
        for k, v in backend.items():
            if isinstance(v, dict):
                lines += toml_table(f"backends.{k}", v)
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        self._listening_before = (
            self.log().count("event=listening") if self.log_file.exists() else 0
        )
        env = self.db.env()
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        log = open(self.log_file, "ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "myguard",
                "serve",
                "--config",
                str(self.config_file),
                "--log-level",
                "DEBUG",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"myguard exited: {self.log_file.read_text()[-3000:]}")
            try:
                # The admin listener (/metrics, console) may open after the SQL port.
                for port in (self.port, self.admin_port):
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
            except OSError:
                time.sleep(0.05)
                continue
            # Every worker listens before the proxy counts as started.
            if self.log().count("event=listening") >= self.listeners_expected():
                return
            time.sleep(0.05)
        raise RuntimeError("myguard did not start listening within 30 s")

    def listeners_expected(self) -> int:
        started_before = getattr(self, "_listening_before", 0)
        return started_before + self.options.get("workers", 1)

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None:
            self._remove_rings()
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        code = self.proc.returncode
        self.proc = None
        self._remove_rings()
        return code

    def _remove_rings(self) -> None:
        """The audit rings a killed myguard left in /dev/shm (each holds 4 MiB of memory
        until the next start of its chain replays it, which a test's chain never gets)."""
        audit = self.options.get("audit", {})
        ring_directory = audit.get("ring_directory", DEFAULT_RING_DIRECTORY)
        directory = Path(audit.get("directory", self.audit_dir))
        if not ring_directory or not Path(ring_directory).is_dir() or not directory.is_dir():
            return
        for chain in [directory, *(d for d in directory.iterdir() if d.is_dir())]:
            ring_path(Path(ring_directory), chain).unlink(missing_ok=True)

    def audit_records(self) -> list[AuditRecord]:
        """Every record this proxy's workers have written, once the trail is settled."""
        return settled_records(self.audit_dir)

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")
