"""The ``audit`` command group: tail, verify, export, stats."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
import time

import pytest

from myguard.audit import login_record, statement_record
from myguard.audit.cli import add_commands, main, parse_since
from myguard.audit.segment import list_segments


def run_cli(capsys, *argv):
    parser = argparse.ArgumentParser(prog="myguard")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["audit", *argv])
    code = args.func(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def trail(tmp_path, write_records):
    old = time.time() - 7200
    records = [
        login_record(success=True, user="alice", groups=["dba"], source_address="10.0.0.1", at=old),
        statement_record(
            user="alice", groups=["dba"], statement="SELECT * FROM shop.orders", decision="allow",
            backend="primary", tables_read=["shop.orders"], rows_returned=3, at=old,
        ),
        statement_record(
            user="bob", groups=["analysts"], statement="DELETE FROM shop.users\nWHERE id = 1",
            decision="deny", rule="no-deletes", backend="replica", tables_written=["shop.users"],
        ),
        statement_record(
            user="bob", groups=["analysts"], statement="SELECT 1", decision="allow",
            backend="replica", masked_columns={"email": "hash"},
        ),
        login_record(success=False, user="mallory", reason="bad password"),
    ]  # fmt: skip
    write_records(tmp_path, records, rotate_bytes=300)
    return tmp_path


def test_tail_human_columns(capsys, trail):
    code, out, _ = run_cli(capsys, "tail", str(trail))
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 5
    assert "\033[" not in out  # not a terminal: no colour
    assert lines[2].split()[2:6] == ["statement", "bob", "deny", "replica"]
    assert "DELETE FROM shop.users WHERE id = 1" in lines[2]
    assert "FAILED: bad password" in lines[4]
    assert len({line.index("statement") for line in lines[1:4]}) == 1  # aligned


def test_tail_json_and_filters(capsys, trail):
    _, out, _ = run_cli(capsys, "tail", str(trail), "--json", "--user", "bob")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [row["decision"] for row in rows] == ["deny", "allow"]
    assert rows[1]["masked_columns"] == {"email": "hash"}
    assert rows[0]["time"].endswith("+00:00")

    def users(*flags):
        _, out, _ = run_cli(capsys, "tail", str(trail), "--json", *flags)
        return [json.loads(line).get("user") for line in out.splitlines()]

    assert users("--table", "users") == ["bob"]
    assert users("--table", "shop.orders") == ["alice"]
    assert users("--group", "dba") == ["alice", "alice"]
    assert users("--decision", "allow") == ["alice", "bob"]
    assert users("--backend", "primary") == ["alice"]
    assert users("--since", "1h") == ["bob", "bob", "mallory"]
    assert users("-n", "2") == ["bob", "mallory"]
    assert users("--type", "login") == ["alice", "mallory"]


def test_verify_exit_codes(capsys, trail):
    code, out, _ = run_cli(capsys, "verify", str(trail))
    assert code == 0 and "OK" in out
    second = list_segments(trail)[1][1]
    data = bytearray(second.read_bytes())
    data[-5] ^= 1
    second.write_bytes(bytes(data))
    code, out, _ = run_cli(capsys, "verify", str(trail))
    assert code == 1
    assert f"FAILED: {second.name} at offset" in out


def test_verify_with_hmac_key_file(capsys, tmp_path, write_records, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_bytes(b"0123456789abcdef0123\n")
    audit = tmp_path / "audit"
    write_records(audit, [login_record(success=True, user="a")], hmac_key=b"0123456789abcdef0123")
    assert run_cli(capsys, "verify", str(audit))[0] == 1
    assert run_cli(capsys, "verify", str(audit), "--hmac-key-file", str(key_file))[0] == 0
    monkeypatch.setenv("MYGUARD_AUDIT_HMAC_KEY_FILE", str(key_file))
    assert run_cli(capsys, "verify", str(audit))[0] == 0


def test_missing_directory_is_a_one_line_error(capsys, tmp_path):
    code, _, err = run_cli(capsys, "tail", str(tmp_path / "nope"))
    assert code == 2 and err.startswith("myguard audit: ")
    assert run_cli(capsys, "verify", str(tmp_path))[0] == 1


def test_export_csv_and_jsonl(capsys, trail):
    code, out, _ = run_cli(capsys, "export", str(trail), "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [row["type"] for row in rows] == [
        "login",
        "statement",
        "statement",
        "statement",
        "login",
    ]
    assert rows[2]["statement"] == "DELETE FROM shop.users\nWHERE id = 1"
    assert rows[2]["tables_written"] == "shop.users"
    assert rows[3]["masked_columns"] == "email:hash"
    assert rows[0]["groups"] == "dba" and rows[4]["success"] == "False"

    _, out, _ = run_cli(capsys, "export", str(trail), "--format", "jsonl", "--since", "1h")
    assert [json.loads(line)["seq"] for line in out.splitlines()] == [3, 4, 5]


def test_stats(capsys, trail):
    code, out, _ = run_cli(capsys, "stats", str(trail), "--json")
    assert code == 0
    assert json.loads(out) == {
        "user": {"bob": 2, "alice": 1},
        "decision": {"allow": 2, "deny": 1},
        "table": {"shop.orders": 1, "shop.users": 1},
    }
    _, out, _ = run_cli(capsys, "stats", str(trail))
    assert "statements: 3" in out and "by table:" in out


def test_since_parsing():
    assert parse_since("10m", now=1000.0) == 400.0
    assert parse_since("2h", now=10000.0) == 2800.0
    assert parse_since("2024-01-01T00:00:00+00:00") == 1704067200.0
    with pytest.raises(argparse.ArgumentTypeError):
        parse_since("yesterday")


def test_main_runs_the_group(capsys, trail):
    assert main(["audit", "verify", str(trail)]) == 0


def test_tail_follow_as_a_process(tmp_path, write_records):
    """``python -m myguard.audit.cli audit tail -f`` prints records written after it started,
    across rotation."""
    write_records(tmp_path, [login_record(success=True, user="first")])
    child = subprocess.Popen(
        [sys.executable, "-m", "myguard.audit.cli", "audit", "tail", str(tmp_path), "-f", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert json.loads(child.stdout.readline())["user"] == "first"
        records = [login_record(success=True, user=f"u{i}") for i in range(8)]
        write_records(tmp_path, records, rotate_bytes=250)
        seen = [json.loads(child.stdout.readline()) for _ in range(9)]
    finally:
        child.kill()
        child.wait()
    assert [row["type"] for row in seen][0] == "restart"
    assert [row["user"] for row in seen[1:]] == [f"u{i}" for i in range(8)]
    assert len(list_segments(tmp_path)) > 2


def test_colour_marks_denials_red():
    from myguard.audit.cli import human_line

    denied = statement_record(user="u", statement="x", decision="deny")
    assert human_line(denied, colour=True).startswith("\033[31m")
    assert "\033[" not in human_line(denied, colour=False)
