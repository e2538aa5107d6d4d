"""The systems under test: a private MariaDB, HAProxy in TCP mode, the bare uvloop relay and
myguard, each a Target."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The test fixtures are plain modules in tests/, imported by path as scripts/demo.py does.
sys.path.insert(0, str(ROOT / "tests"))

from mariadb_server import ROOT_PASSWORD, MariaDBServer, free_port  # noqa: E402
from proxy_process import USERS, ProxyProcess  # noqa: E402

from .procstat import descendants  # noqa: E402

ALICE = ("alice", USERS["alice"][0])  # group dba: the default rules allow her workload
CAROL = ("carol", USERS["carol"][0])  # no group: used as the unmasked reader
HAPROXY_THREADS = 2  # matches myguard's workers=2: both proxies may use both cores
RELAY_WORKERS = 2  # the same for the bare relay (relay.py)


@dataclass
class Target:
    """Where a client connects, as whom, and which processes do the target's work."""

    name: str
    port: int
    user: str
    password: str
    host: str = "127.0.0.1"
    pids: Callable[[], list[int]] = field(default=lambda: [])

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "host": self.host, "port": self.port, "user": self.user}


class BenchProxy(ProxyProcess):
    """ProxyProcess at log level INFO: the tests' DEBUG level is not what production runs."""

    source: Path | None = None  # another checkout's src to run (benchmarks.e2e.ab)

    def start(self) -> None:
        before = self.log().count("event=listening") if self.log_file.exists() else 0
        env = self.db.env()
        paths = [str(self.source)] if self.source else []
        env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in sys.path if p])
        with open(self.log_file, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "myguard", "serve", "--config", str(self.config_file),
                 "--log-level", "INFO"],
                stdout=log, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip
        workers = int(self.options.get("workers", 1))  # type: ignore[call-overload]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"myguard exited: {self.log()[-3000:]}")
            if self.log().count("event=listening") >= before + workers:
                return
            time.sleep(0.05)
        raise RuntimeError("myguard did not start listening within 30 s")

    def target(self, name: str, user: tuple[str, str] = ALICE) -> Target:
        return Target(name, self.port, user[0], user[1], pids=self.tree)

    def tree(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc else []


class HAProxy:
    """``haproxy -db`` (foreground, one process) forwarding TCP to MariaDB."""

    def __init__(self, base: Path, upstream: int, threads: int = HAPROXY_THREADS) -> None:
        self.base = base
        self.port = free_port()
        self.upstream = upstream
        self.threads = threads
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        cfg = self.base / "haproxy.cfg"
        cfg.write_text(
            "global\n"
            "  maxconn 8000\n"
            f"  nbthread {self.threads}\n"
            "defaults\n"
            "  mode tcp\n"
            "  timeout connect 5s\n"
            "  timeout client 1h\n"
            "  timeout server 1h\n"
            "listen mysql\n"
            f"  bind 127.0.0.1:{self.port}\n"
            "  maxconn 8000\n"
            f"  server db 127.0.0.1:{self.upstream} maxconn 8000\n"
        )
        subprocess.run(["haproxy", "-c", "-q", "-f", str(cfg)], check=True)
        self.proc = subprocess.Popen(
            ["haproxy", "-f", str(cfg), "-db"],
            stdout=open(self.base / "haproxy.log", "wb"),
            stderr=subprocess.STDOUT,
        )
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def target(self) -> Target:
        return Target("haproxy", self.port, "root", ROOT_PASSWORD, pids=self.tree)

    def tree(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc else []


class Relay:
    """``python -m benchmarks.e2e.relay``: the bare uvloop byte relay, a supervisor + workers."""

    def __init__(self, base: Path, upstream: int, workers: int = RELAY_WORKERS) -> None:
        self.base = base
        self.port = free_port()
        self.upstream = upstream
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.e2e.relay", str(self.port), str(self.upstream),
             str(self.workers)],
            stdout=open(self.base / "relay.log", "wb"), stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()  # the supervisor stops its workers
            self.proc.wait(10)

    def target(self) -> Target:
        return Target("relay", self.port, "root", ROOT_PASSWORD, pids=self.tree)

    def tree(self) -> list[int]:
        return descendants(self.proc.pid) if self.proc else []


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout} s")


def parse_extra(spec: str, user: str, password: str) -> Target:
    """``host:port`` of another proxy in front of the private MariaDB; loopback only."""
    host, _, port = spec.rpartition(":")
    if host not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"--extra-target {spec}: only 127.0.0.1 may be a benchmark target")
    return Target(f"extra:{port}", int(port), user, password)


class Stack:
    """MariaDB + HAProxy + the relay + the myguard instances, started once, stopped together."""

    def __init__(self, base: Path, db_port: int | None = None) -> None:
        self.base = base
        self.db = MariaDBServer(base / "mariadb", port=db_port)
        self.haproxy = HAProxy(base, 0)
        self.relay = Relay(base, 0)
        self.proxies: dict[str, BenchProxy] = {}

    def start_db(self) -> None:
        self.db.start()
        self.db.seed()
        self.haproxy.upstream = self.db.port
        self.haproxy.start()
        self.relay.upstream = self.db.port
        self.relay.start()

    def direct(self) -> Target:
        return Target("direct", self.db.port, "root", ROOT_PASSWORD, pids=self.db_tree)

    def db_tree(self) -> list[int]:
        return descendants(self.db.proc.pid) if self.db.proc else []

    def proxy(self, name: str, source: Path | None = None, **options: object) -> BenchProxy:
        """Start (once) a myguard named ``name``, from ``source`` (another checkout's
        ``src``) if given; defaults are the shipped ones."""
        if name not in self.proxies:
            settings: dict[str, object] = {"workers": 2, "environment": "production"}
            settings.update(options)
            proxy = BenchProxy(self.base / f"myguard-{name}", self.db, **settings)
            proxy.source = source
            proxy.start()
            self.proxies[name] = proxy
        return self.proxies[name]

    def stop_proxy(self, name: str) -> None:
        proxy = self.proxies.pop(name, None)
        if proxy:
            proxy.stop()

    def stop(self) -> None:
        for name in list(self.proxies):
            self.stop_proxy(name)
        self.haproxy.stop()
        self.relay.stop()
        self.db.stop()
        shutil.rmtree(self.base, ignore_errors=True)
