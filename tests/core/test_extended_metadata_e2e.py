"""MariaDB extended column metadata (format=json) through myguard, with the real CLI."""

from __future__ import annotations

import re
import subprocess

import pytest

from mariadb_server import SERVICE_PASSWORD, SERVICE_USER


def mariadb_cli(port: int, user: str, password: str, sql: str) -> subprocess.CompletedProcess:
    cmd = [
        "mariadb",
        "--no-defaults",
        "--protocol=TCP",
        "--skip-ssl",
        "-h127.0.0.1",
        f"-P{port}",
        f"-u{user}",
        f"-p{password}",
        "--column-type-info",
        "--table",  # the types are printed with table output only
        "test",
        "-e",
        sql,
    ]
    return subprocess.run(cmd, capture_output=True, timeout=60)


def types(stdout: bytes) -> dict[bytes, bytes]:
    """Column name -> the Type line of ``--column-type-info``."""
    fields = re.findall(rb"^Field +\d+: +`([^`]*)`.*?^Type: +([^\n]*)$", stdout, re.M | re.S)
    return dict(fields)


@pytest.fixture(scope="module")
def json_tables(mariadb):
    mariadb.sql(
        "DROP TABLE IF EXISTS test.j, test.jm;"
        "CREATE TABLE test.j (doc JSON);"
        """INSERT INTO test.j VALUES ('{"a": 1}');"""
        "CREATE TABLE test.jm (id INT, ssn JSON, doc JSON);"
        """INSERT INTO test.jm VALUES (1, '"123-45-6789"', '{"b": 2}');"""
    )
    yield
    mariadb.sql("DROP TABLE test.j, test.jm")


def test_json_format_passes_through(json_tables, proxy, mariadb):
    sql = "SELECT doc FROM j"
    through = mariadb_cli(proxy.port, "alice", "alice-pw-1", sql)
    direct = mariadb_cli(mariadb.port, SERVICE_USER, SERVICE_PASSWORD, sql)
    assert direct.returncode == 0, direct.stderr
    assert types(direct.stdout) == {b"doc": b"BLOB (format=json)"}
    assert (through.returncode, through.stdout, through.stderr) == (0, direct.stdout, b"")


def test_masked_column_loses_its_format(json_tables, proxy, mariadb):
    """bob (analysts) has *.*.ssn masked: that column's format=json goes, doc's stays."""
    sql = "SELECT id, ssn, doc FROM jm"
    through = mariadb_cli(proxy.port, "bob", "bob-pw-2", sql)
    direct = mariadb_cli(mariadb.port, SERVICE_USER, SERVICE_PASSWORD, sql)
    assert direct.returncode == 0, direct.stderr
    assert through.returncode == 0, through.stderr
    assert types(direct.stdout)[b"ssn"] == b"BLOB (format=json)"
    assert types(through.stdout) == {b"id": b"LONG", b"ssn": b"BLOB", b"doc": b"BLOB (format=json)"}
    assert b'"123-45-6789"' in direct.stdout and b"123-45-6789" not in through.stdout
    assert b'{"b": 2}' in through.stdout


def test_myguard_own_result_sets_with_extended_metadata(json_tables, proxy):
    """Result sets myguard builds itself carry the (empty) extended metadata field."""
    result = mariadb_cli(
        proxy.port, "bob", "bob-pw-2", "MYGUARD APPROVALS; SHOW SESSION STATUS LIKE 'Ssl_cipher'"
    )
    assert result.returncode == 0, result.stderr
    assert types(result.stdout) == {
        **{name: b"VAR_STRING" for name in (b"id", b"status", b"requester", b"environment")},
        **{name: b"VAR_STRING" for name in (b"rule", b"statement", b"params", b"created")},
        b"approvals": b"VAR_STRING",
        b"Variable_name": b"VAR_STRING",
        b"Value": b"VAR_STRING",
    }
