"""MariaDB's own ``main`` mysql-test files through myguard, in text, --ps-protocol,
--cursor-protocol and --compress mode, each compared by ``mariadb-test`` with its
``.result`` file.

Every (test, mode) here passes straight against the private MariaDB (as myguard's service
account, which has the privileges myguard's backend sessions have). Through myguard the
test logs in as alice (group dba, environment development) under the shipped rules, which
let all of these statements through. A proxy bug that loses part of a response shows up as
a client waiting forever, so every run has a deadline and a hang is a failure.

Chosen for the response grammar: stored-procedure cursors (sp-expr, sp-cursor, sp-big,
sp-fib, func_analyse), SIGNAL/RESIGNAL and condition handlers (signal, signal_demo1,
signal_demo3, statement-expr, sp-condition-handler), several result sets per CALL
(sp-dynamic, signal_demo1, keywords) and keywords as identifiers everywhere (keywords).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from mtr_suite import MODES, empty_test_database

from mariadb_server import SERVICE_PASSWORD, SERVICE_USER

TESTS = [
    "sp-expr",
    "signal",
    "keywords",
    "func_analyse",
    "sp-cursor",
    "sp-big",
    "sp-fib",
    "sp-dynamic",
    "sp-condition-handler",
    "signal_demo1",
    "signal_demo3",
    "statement-expr",
]

# A run takes under 3 s through myguard on a 2-core machine (under 1 s directly); a run
# past this deadline is a hang.
DEADLINE = 10.0


def cases() -> list:
    params = []
    for name in TESTS:
        for mode in MODES:
            params.append(pytest.param(name, mode, id=f"{name}-{mode}"))
    return params


def mariadb_test(
    suite_dir: Path, port: int, user: str, password: str, name: str, mode: str
) -> tuple[str | None, str]:
    """Run main/NAME.test with mariadb-test; (None, output) when it passed, else (why, output)."""
    cmd = [
        "mariadb-test",
        "--no-defaults",
        "--host=127.0.0.1",
        f"--port={port}",
        f"--user={user}",
        f"--password={password}",
        "--database=test",
        "--skip-ssl",
        f"--basedir={suite_dir}/",
        f"--logdir={suite_dir / 'log'}",
        f"--tmpdir={suite_dir / 'tmp'}",
        f"--test-file=main/{name}.test",
        f"--result-file=main/{name}.result",
        *MODES[mode],
    ]
    started = time.monotonic()
    try:
        run = subprocess.run(cmd, cwd=suite_dir, capture_output=True, timeout=DEADLINE)
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"") + (exc.stderr or b"")
        return f"hang: no end after {DEADLINE:.0f} s", output.decode(errors="replace")
    output = (run.stdout + run.stderr).decode(errors="replace")
    if run.returncode != 0:
        return f"exit code {run.returncode} after {time.monotonic() - started:.1f} s", output
    return None, output


@pytest.mark.parametrize(("name", "mode"), cases())
def test_mysqltest_through_myguard(proxy, clean_server, suite_dir: Path, name: str, mode: str):
    failure, output = mariadb_test(suite_dir, proxy.port, "alice", "alice-pw-1", name, mode)
    if failure is None:
        return
    # Tell a proxy failure from a suite that no longer fits the server: run it directly.
    empty_test_database(clean_server)
    direct, direct_output = mariadb_test(
        suite_dir, clean_server.port, SERVICE_USER, SERVICE_PASSWORD, name, mode
    )
    if direct is not None:
        pytest.fail(
            f"main.{name} --{mode} fails directly too ({direct}): not myguard's doing\n"
            f"{direct_output[-3000:]}"
        )
    pytest.fail(f"main.{name} --{mode} through myguard: {failure}\n{output[-3000:]}")
