"""The Debian ``mariadb`` command-line client through myguard, byte for byte against direct."""

from __future__ import annotations

import re
import subprocess

import pytest

from mariadb_server import SERVICE_PASSWORD, SERVICE_USER

# "ERROR 1146 (42S02) at line 2: Table 'test.x' doesn't exist"
ERROR_LINE = re.compile(rb"^ERROR (\d+) \((\w{5})\)(?: at line (\d+))?: (.*)$", re.M)

SCRIPT = """
SELECT 1 AS one, 'tab\\there' AS t, NULL AS n, _utf8mb4'😀 漢字' AS u;
DROP TABLE IF EXISTS cli_t;
CREATE TABLE cli_t (id INT PRIMARY KEY, v VARCHAR(20), d DECIMAL(8,2), ts DATETIME(6));
INSERT INTO cli_t VALUES (1, 'a', 1.50, '2024-02-29 01:02:03.000004'), (2, NULL, -2, NULL);
SELEC oops;
INSERT INTO cli_t VALUES (1, 'dup', 0, NULL);
SELECT * FROM cli_t ORDER BY id;
SELECT * FROM cli_no_such_table;
UPDATE cli_t SET v = 'b' WHERE id = 2;
SELECT ROW_COUNT(), COUNT(*) FROM cli_t;
SELECT seq, REPEAT('x', seq) FROM seq_1_to_20;
DROP TABLE cli_t;
"""


def mariadb_cli(port: int, user: str, password: str, *args: str, stdin: str | None = None):
    cmd = [
        "mariadb",
        "--no-defaults",
        "--protocol=TCP",
        "-h127.0.0.1",
        f"-P{port}",
        f"-u{user}",
        f"-p{password}",
        *args,
    ]
    return subprocess.run(
        cmd, input=stdin.encode() if stdin else None, capture_output=True, timeout=60
    )


@pytest.fixture(params=["plain", "ssl-noverify", "ssl-ca"])
def proxy_cli(request, proxy):
    tls = {
        "plain": ["--skip-ssl"],
        "ssl-noverify": ["--ssl", "--ssl-verify-server-cert=0"],
        "ssl-ca": ["--ssl", f"--ssl-ca={proxy.cert}", "--ssl-verify-server-cert"],
    }[request.param]

    def run(*args: str, stdin: str | None = None):
        return mariadb_cli(proxy.port, "alice", "alice-pw-1", *tls, *args, stdin=stdin)

    run.tls = request.param != "plain"
    return run


@pytest.fixture()
def direct_cli(mariadb):
    def run(*args: str, stdin: str | None = None):
        return mariadb_cli(
            mariadb.port, SERVICE_USER, SERVICE_PASSWORD, "--skip-ssl", *args, stdin=stdin
        )

    return run


def errors(stderr: bytes) -> list[tuple[bytes, ...]]:
    return [m.groups() for m in ERROR_LINE.finditer(stderr)]


def test_batch_execute_output_identical(proxy_cli, direct_cli):
    query = (
        "SELECT id, name, email FROM customers ORDER BY id; "
        "SELECT NULL, 1.5, -0.0, X'00FF' , TIME'-01:02:03.5', 18446744073709551615"
    )
    through = proxy_cli("-N", "-B", "shop", "-e", query)
    direct = direct_cli("-N", "-B", "shop", "-e", query)
    assert direct.returncode == 0, direct.stderr
    assert (through.returncode, through.stdout, through.stderr) == (0, direct.stdout, b"")
    assert b"Ada Lovelace" in direct.stdout


def test_batch_with_column_names_and_status(proxy_cli, direct_cli):
    query = "SELECT 'x' AS `col one`, 2 AS two; SHOW WARNINGS"
    through = proxy_cli("-B", "test", "-e", query)
    direct = direct_cli("-B", "test", "-e", query)
    assert through.stdout == direct.stdout == b"col one\ttwo\nx\t2\n"


def test_tls_is_really_used(proxy_cli):
    """--ssl must end in an encrypted session; status shows the cipher."""
    result = proxy_cli("-e", "status")
    assert result.returncode == 0, result.stderr
    cipher = re.search(rb"SSL:\s+(.*)", result.stdout).group(1)
    if proxy_cli.tls:
        assert cipher.startswith(b"Cipher in use is"), cipher
    else:
        assert cipher == b"Not in use"


def test_script_on_stdin_with_force(proxy_cli, direct_cli):
    through = proxy_cli("-N", "-B", "--force", "test", stdin=SCRIPT)
    direct = direct_cli("-N", "-B", "--force", "test", stdin=SCRIPT)
    assert through.returncode == direct.returncode  # 0: --force carries on past errors
    assert through.stdout == direct.stdout
    assert errors(through.stderr) == errors(direct.stderr)
    codes = [e[:3] for e in errors(direct.stderr)]
    assert codes == [
        (b"1064", b"42000", b"6"),
        (b"1062", b"23000", b"7"),
        (b"1146", b"42S02", b"9"),
    ]
    assert b"1\tb\n" not in direct.stdout and b"1\t2\n" in direct.stdout  # ROW_COUNT(), COUNT(*)


def test_script_stops_at_first_error_without_force(proxy_cli, direct_cli):
    through = proxy_cli("-N", "-B", "test", stdin=SCRIPT)
    direct = direct_cli("-N", "-B", "test", stdin=SCRIPT)
    assert through.returncode == direct.returncode == 1
    assert through.stdout == direct.stdout
    assert (
        errors(through.stderr)
        == errors(direct.stderr)
        == [(b"1064", b"42000", b"6", errors(direct.stderr)[0][3])]
    )


@pytest.mark.parametrize(
    ("statement", "code", "sqlstate"),
    [
        ("SELEC 1", b"1064", b"42000"),
        ("SELECT * FROM cli_missing_table", b"1146", b"42S02"),
        ("SELECT 1 FROM DUAL WHERE no_such_column = 1", b"1054", b"42S22"),
        (
            "SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'custom 😀 message', MYSQL_ERRNO = 1644",
            b"1644",
            b"45000",
        ),
    ],
)
def test_error_exit_code_and_message(proxy_cli, direct_cli, statement, code, sqlstate):
    through = proxy_cli("test", "-e", statement)
    direct = direct_cli("test", "-e", statement)
    assert through.returncode == direct.returncode == 1
    assert through.stdout == direct.stdout == b""
    assert errors(through.stderr) == errors(direct.stderr)
    assert [e[:2] for e in errors(direct.stderr)] == [(code, sqlstate)]
