"""Authentication through myguard: every plugin path, TLS, RSA, throttling, users file."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import mysql.connector
import pymysql
import pytest

from myguard.audit import iter_records
from myguard.identity.users_file import read_users, write_user
from raw_client import RawClient


def query_user(conn) -> str:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        return cur.fetchone()[0]


def failed_login(proxy, reason: str) -> dict:
    """The audit record of a refused login with this reason (waiting for it a little)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for record in iter_records(proxy.audit_dir):
            if record.type == "login" and record.get("reason") == reason:
                assert record["success"] is False
                return record
        time.sleep(0.05)
    raise AssertionError(f"no audited login refused for {reason!r}")


def connect(port, user="alice", password="alice-pw-1", **kw):
    return pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, **kw)


def test_native_password_fast_auth(proxy):
    conn = connect(proxy.port)
    assert query_user(conn) == 1
    conn.close()
    assert "method=fast" in proxy.log()


def test_wrong_password_and_unknown_user_get_the_same_answer(proxy):
    with pytest.raises(pymysql.err.OperationalError) as wrong:
        connect(proxy.port, "bob", "nope")
    with pytest.raises(pymysql.err.OperationalError) as unknown:
        connect(proxy.port, "mallory", "nope")
    assert wrong.value.args[0] == unknown.value.args[0] == 1045
    assert wrong.value.args[1].replace("bob", "X") == unknown.value.args[1].replace("mallory", "X")
    assert 'reason="wrong password"' in proxy.log()
    assert "unknown or disabled user" in proxy.log()


def test_empty_password_is_refused(proxy):
    with pytest.raises(pymysql.err.OperationalError) as err:
        connect(proxy.port, "alice", "")
    assert err.value.args[0] == 1045


def test_tls_connection(proxy):
    conn = connect(proxy.port, ssl={"ca": str(proxy.cert)})
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
    assert "tls=True" in proxy.log()
    conn.close()


def test_mariadb_cli_with_ssl_reports_the_cipher(proxy):
    out = subprocess.run(
        [
            "mariadb",
            "-h127.0.0.1",
            f"-P{proxy.port}",
            "-ualice",
            "-palice-pw-1",
            f"--ssl-ca={proxy.cert}",
            "-e",
            "status",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Cipher in use" in out


def test_full_auth_over_rsa_without_tls(private_proxy):
    """A user without fast-auth verifiers must send the password: here through RSA (no TLS)."""
    p = private_proxy()
    write_user(p.users_file, "dora", "dora-pw-4", ["analysts"], fast_auth=False)
    assert read_users(p.users_file)["dora"].native_stage2 is None
    conn = connect(p.port, "dora", "dora-pw-4", ssl_disabled=True)
    assert query_user(conn) == 1
    conn.close()
    assert "user=dora groups=analysts" in p.log()
    assert "plugin=caching_sha2_password method=full tls=False" in p.log()
    with pytest.raises(pymysql.err.OperationalError) as err:
        connect(p.port, "dora", "wrong", ssl_disabled=True)
    assert err.value.args[0] == 1045


def test_full_auth_over_tls(private_proxy):
    p = private_proxy()
    write_user(p.users_file, "erin", "erin-pw-5", [], fast_auth=False)
    conn = connect(p.port, "erin", "erin-pw-5", ssl={"ca": str(p.cert)})
    assert query_user(conn) == 1
    assert "method=full tls=True" in p.log()


def test_caching_sha2_greeting_fast_auth(private_proxy):
    p = private_proxy(identity={"greeting_plugin": "caching_sha2_password"})
    conn = connect(p.port, ssl_disabled=True)
    assert query_user(conn) == 1
    assert "plugin=caching_sha2_password method=fast" in p.log()
    conn = mysql.connector.connect(
        host="127.0.0.1", port=p.port, user="bob", password="bob-pw-2", ssl_disabled=True
    )
    cur = conn.cursor()
    cur.execute("SELECT 2")
    assert cur.fetchone() == (2,)
    conn.close()


def test_clear_password_only_over_tls(proxy):
    base = [
        "mariadb",
        "-h127.0.0.1",
        f"-P{proxy.port}",
        "-ucarol",
        "-pcarol-pw-3",
        "--default-auth=mysql_clear_password",
    ]
    ok = subprocess.run(
        base + [f"--ssl-ca={proxy.cert}", "-N", "-e", "SELECT 7"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "7"
    assert "plugin=mysql_clear_password method=full tls=True" in proxy.log()
    # Without TLS a cleartext password is never taken: the client is switched to
    # caching_sha2_password, whose RSA exchange protects the password instead.
    plain = subprocess.run(
        base + ["--skip-ssl", "-N", "-e", "SELECT 8"], capture_output=True, text=True
    )
    assert "plugin=mysql_clear_password method=full tls=False" not in proxy.log()
    assert plain.returncode == 0 or "caching_sha2_password" in plain.stderr


def test_require_tls(private_proxy):
    p = private_proxy(require_tls=True)
    with pytest.raises(pymysql.err.OperationalError) as err:
        connect(p.port, ssl_disabled=True)
    assert err.value.args[0] == 3159
    assert failed_login(p, "TLS required")["user"] == "alice"
    conn = connect(p.port, ssl={"ca": str(p.cert)})
    assert query_user(conn) == 1


def test_a_changed_users_file_password_ends_the_old_one_at_once(private_proxy):
    """The users file keeps its own verifiers: a full authentication (the clear password
    over TLS) leaves nothing cached that would let the old password in after a change,
    and a scramble that does not match is refused at once (1045) without asking a client
    on plain TCP for an RSA exchange."""
    p = private_proxy()
    cli = ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{p.port}", "-ucarol", "-N"]
    clear = subprocess.run(
        [*cli, "-pcarol-pw-3", "--default-auth=mysql_clear_password", f"--ssl-ca={p.cert}",
         "-e", "SELECT 7"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert clear.returncode == 0 and clear.stdout.strip() == "7", clear.stderr
    write_user(p.users_file, "carol", "carol-pw-new", [])
    stat = p.users_file.stat()
    os.utime(p.users_file, (stat.st_atime, stat.st_mtime + 5))  # a visibly newer file
    time.sleep(3)  # the watcher reads the file again within a second or so
    with pytest.raises(pymysql.err.OperationalError) as err:
        connect(p.port, "carol", "carol-pw-3", ssl_disabled=True)
    assert err.value.args[0] == 1045
    assert failed_login(p, "wrong password")["user"] == "carol"
    connect(p.port, "carol", "carol-pw-new", ssl_disabled=True).close()


def test_throttling_after_repeated_failures(private_proxy):
    p = private_proxy(identity={"max_failures": 3, "lockout": 60})
    for _ in range(3):
        with pytest.raises(pymysql.err.OperationalError):
            connect(p.port, "bob", "bad")
    with pytest.raises(pymysql.err.OperationalError) as err:
        connect(p.port, "bob", "bob-pw-2")  # right password, but locked out
    assert err.value.args[0] == 1045
    assert 'reason="throttled:' in p.log()
    # Only bob at this address backs off: another user from it logs in at once.
    connect(p.port).close()


def test_raw_login_with_native_plugin(proxy):
    c = RawClient(proxy.port)
    ok = c.login("carol", "carol-pw-3", database="shop")
    assert ok[:1] == b"\x00"
    assert c.greeting.connection_id > 0
    c.close()


def test_users_add_cli(tmp_path):
    users = tmp_path / "users.toml"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "myguard",
            "users",
            "add",
            "zoe",
            "--file",
            str(users),
            "--groups",
            "dba,ops",
            "--password-stdin",
        ],
        input="zoe-secret\n",
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    text = users.read_text()
    assert "zoe-secret" not in text
    entry = read_users(users)["zoe"]
    assert entry.groups == ("dba", "ops")
    assert entry.password_hash.startswith("scrypt$")
    assert oct(users.stat().st_mode & 0o777) == "0o600"
