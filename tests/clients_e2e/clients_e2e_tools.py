"""Non-Python clients for the end-to-end tests: Node's mysql2 and MariaDB Connector/J.

Each scenario is a small program run as a subprocess that prints one JSON document. The
tools come from ``scripts/bootstrap.sh``: the Debian packages nodejs, npm,
default-jdk-headless and libmariadb-java, and mysql2 (tests/clients_e2e/package-lock.json)
installed with npm into .cache/clients-e2e. A missing tool fails the tests with what to
install, never skips them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from mariadb_server import SERVICE_PASSWORD, SERVICE_USER

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
NODE_DIR = REPO / ".cache" / "clients-e2e"
MYSQL2_SCRIPT = HERE / "mysql2_scenarios.js"
JDBC_SOURCE = HERE / "JdbcScenarios.java"
# Debian's libmariadb-java (mariadb-java-client-<version>.jar links to it).
JDBC_JAR = Path("/usr/share/java/mariadb-java-client.jar")
TIMEOUT = 60

BOOTSTRAP = "scripts/bootstrap.sh installs it"


@dataclass(frozen=True)
class End:
    """Where a client connects: through myguard or straight to MariaDB (which has no TLS)."""

    name: str
    port: int
    user: str
    password: str
    ca: str | None = None  # myguard's self-signed certificate, when TLS is wanted
    verify: bool = True  # check the certificate against ``ca``, or trust any


TLS_MODES = ["plain", "tls-ca", "tls-trust"]
LONG_TEXT = "long text " * 300  # longer than a row of short columns


def ends(proxy: Any, mariadb: Any, tls: str = "plain") -> tuple[End, End]:
    """(through myguard as alice, direct as myguard's own service account).

    ``tls`` (one of TLS_MODES) applies to myguard's side only: MariaDB itself has no TLS.
    """
    ca = None if tls == "plain" else str(proxy.cert)
    return (
        End("proxy", proxy.port, "alice", "alice-pw-1", ca, tls != "tls-trust"),
        End("direct", mariadb.port, SERVICE_USER, SERVICE_PASSWORD),
    )


def as_user(end: End, user: str, password: str) -> End:
    return replace(end, user=user, password=password)


def _need(command: str, packages: str) -> str:
    path = shutil.which(command)
    if path is None:
        pytest.fail(f"{command} not installed (Debian {packages}; {BOOTSTRAP})", pytrace=False)
    return path


def _run(args: list[str], env: dict[str, str] | None = None, what: str = "") -> Any:
    r = subprocess.run(args, capture_output=True, timeout=TIMEOUT, env=env)
    if r.returncode != 0:
        raise AssertionError(
            f"{what or args[0]} exited with {r.returncode}:\n{r.stderr.decode(errors='replace')}"
        )
    try:
        return json.loads(r.stdout)
    except ValueError:
        raise AssertionError(
            f"{what or args[0]} printed no JSON: {r.stdout[-2000:]!r}\n"
            f"{r.stderr.decode(errors='replace')}"
        ) from None


class Mysql2:
    """Runs mysql2_scenarios.js with the pinned mysql2."""

    def __init__(self) -> None:
        self.node = _need("node", "package nodejs")
        wanted = json.loads((HERE / "package.json").read_text())["dependencies"]["mysql2"]
        installed = NODE_DIR / "node_modules" / "mysql2" / "package.json"
        version = json.loads(installed.read_text())["version"] if installed.exists() else None
        if version != wanted:
            pytest.fail(
                f"mysql2 {wanted} not installed in {NODE_DIR} (found {version or 'none'}); "
                "scripts/bootstrap.sh installs it with npm (Debian packages nodejs npm)",
                pytrace=False,
            )
        self.env = {**os.environ, "NODE_PATH": str(NODE_DIR / "node_modules"), "TZ": "UTC"}

    def run(self, scenario: str, end: End, **spec: Any) -> Any:
        spec = {
            "scenario": scenario,
            "host": "127.0.0.1",
            "port": end.port,
            "user": end.user,
            "password": end.password,
            "database": "test",
            "ssl": None if not end.ca else {"ca": end.ca} if end.verify else {"trust": True},
            **spec,
        }
        what = f"mysql2 {scenario} ({end.name})"
        return _run([self.node, str(MYSQL2_SCRIPT), json.dumps(spec)], self.env, what)


class Jdbc:
    """Runs JdbcScenarios (compiled once into ``build``) with Debian's Connector/J."""

    def __init__(self, build: Path) -> None:
        self.java = _need("java", "package default-jdk-headless")
        javac = _need("javac", "package default-jdk-headless")
        if not JDBC_JAR.exists():
            pytest.fail(
                f"{JDBC_JAR} missing (Debian package libmariadb-java; {BOOTSTRAP})", pytrace=False
            )
        self.jar = JDBC_JAR.resolve()
        r = subprocess.run(
            [javac, "-encoding", "UTF-8", "-cp", str(self.jar), "-d", str(build), str(JDBC_SOURCE)],
            capture_output=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        self.classpath = f"{build}{os.pathsep}{self.jar}"

    def url(self, end: End, database: str = "test", **options: object) -> str:
        params = dict(options)
        if end.ca and end.verify:
            # TLS is then required, verified against myguard's certificate (and its host name).
            params.update(useSsl="true", serverSslCert=end.ca)
        elif end.ca:
            params.update(useSsl="true", trustServerCertificate="true")
        query = "&".join(f"{k}={v}" for k, v in params.items())
        return f"jdbc:mariadb://127.0.0.1:{end.port}/{database}" + (f"?{query}" if query else "")

    def run(self, *runs: tuple[str, str, End]) -> list[Any]:
        """Run several (scenario, url, end) in one JVM; one result each.

        The procedure of the ``multi`` and ``metadata`` scenarios is PROCEDURE.
        """
        lines = "\n".join(
            "\t".join((scenario, url, end.user, end.password, PROCEDURE))
            for scenario, url, end in runs
        )
        args = [
            self.java,
            "-Duser.timezone=UTC",
            "-Dfile.encoding=UTF-8",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            "-cp",
            self.classpath,
            "JdbcScenarios",
            lines,
        ]
        results = _run(args, what=f"JdbcScenarios {[r[0] for r in runs]}")
        assert len(results) == len(runs)
        for (scenario, _, end), result in zip(runs, results, strict=True):
            if isinstance(result, dict) and "crash" in result:
                raise AssertionError(f"JDBC {scenario} ({end.name}) failed:\n{result['crash']}")
        return results

    def compare(self, scenario: str, proxy_end: End, direct_end: End, **options: object) -> Any:
        """The scenario directly, then through myguard, in one JVM; the results must match."""
        direct, through = self.run(
            (scenario, self.url(direct_end, **options), direct_end),
            (scenario, self.url(proxy_end, **options), proxy_end),
        )
        assert through == direct
        return direct


def compare(run: Any, proxy_end: End, direct_end: End, *args: Any, **kw: Any) -> Any:
    """``run(args, end, kw)`` directly, then through myguard; the results must be identical."""
    direct = run(*args, direct_end, **kw)
    through = run(*args, proxy_end, **kw)
    assert through == direct
    return direct


PROCEDURE = "test.clients_e2e_results"
PROCEDURE_SQL = f"""
DROP PROCEDURE IF EXISTS {PROCEDURE};
DELIMITER //
CREATE PROCEDURE {PROCEDURE}(IN n INT)
BEGIN
  SELECT n AS a;
  SELECT n * 2 AS b, 'two' AS c UNION ALL SELECT n * 3, 'three';
  SELECT seq, REPEAT('x', seq) AS xs FROM seq_1_to_3 WHERE seq <= n;
END//
DELIMITER ;
"""

# The shop's e-mail addresses, and as the analysts' mask (rule mask-pii-for-analysts) shows them.
EMAILS = [
    "ada@example.com",
    "alan@example.org",
    "grace@navy.example",
    "edsger@example.nl",
    "barbara@mit.example",
    "ken@bell.example",
    "margaret@nasa.example",
    "dmr@bell.example",
]
MASKED_EMAILS = ["****@" + e.split("@")[1] for e in EMAILS]
BLOCKED_MESSAGE = (
    "myguard: blocked by rule 'no-unbounded-writes': "
    "UPDATE/DELETE must have a WHERE clause that filters rows"
)
