"""The compressed protocol (CLIENT_COMPRESS) between clients and myguard: the mariadb CLI
and mysql-connector-python (pure and C) with compression on, over TLS too, for queries,
large results, prepared statements, masking and myguard's own answers. The backend leg
stays uncompressed."""

from __future__ import annotations

import subprocess

import mysql.connector
import pytest

KW = dict(host="127.0.0.1", user="alice", password="alice-pw-1", database="shop")


def cli(proxy, *args: str, user: str = "alice", password: str = "alice-pw-1") -> str:
    run = subprocess.run(
        ["mariadb", "--no-defaults", "--compress", "-h127.0.0.1", f"-P{proxy.port}",
         f"-u{user}", f"-p{password}", "-N", "-B", "shop", *args],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_the_cli_runs_compressed(proxy):
    out = cli(
        proxy, "--skip-ssl", "-e",
        "SELECT 2; SELECT LENGTH(REPEAT('ab', 500000)), REPEAT('z', 3);"
        " SELECT COUNT(*) FROM (SELECT seq FROM seq_1_to_20000) t;"
        " SELECT GROUP_CONCAT(seq) FROM seq_1_to_5; SHOW PROCESSLIST",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[:4] == ["2", "1000000\tzzz", "20000", "1,2,3,4,5"], out
    assert lines[4].split("\t")[1:2] == ["alice"], out  # myguard's own answer


def test_a_large_result_streams_compressed(proxy):
    out = cli(proxy, "--skip-ssl", "-e", "SELECT seq, REPEAT('x', 100) FROM seq_1_to_30000")
    rows = out.splitlines()
    assert len(rows) == 30000 and rows[-1] == "30000\t" + "x" * 100


def test_the_cli_runs_compressed_over_tls(proxy):
    out = cli(proxy, f"--ssl-ca={proxy.cert}", "-e", "SELECT 3; SHOW STATUS LIKE 'Ssl_version'")
    assert out.splitlines()[0] == "3" and "TLS" in out.splitlines()[1], out


def test_session_status_tells_the_client_s_leg(proxy):
    """SHOW STATUS answers Compression for the client's connection (the backend's own leg
    to myguard is never compressed)."""
    status = "SHOW SESSION STATUS LIKE 'Compression'"
    assert cli(proxy, "--skip-ssl", "-e", status).split() == ["Compression", "ON"]
    run = subprocess.run(
        ["mariadb", "--no-defaults", "-h127.0.0.1", f"-P{proxy.port}", "-ualice",
         "-palice-pw-1", "-N", "-B", "--skip-ssl", "-e", status],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.stdout.split() == ["Compression", "OFF"], run.stderr


def test_masking_applies_to_compressed_results(proxy):
    out = cli(
        proxy, "--skip-ssl", "-e", "SELECT email FROM customers ORDER BY id LIMIT 1",
        user="bob", password="bob-pw-2",
    )  # fmt: skip
    assert out.strip().startswith("****@"), out


@pytest.mark.parametrize("pure", [True, False], ids=["pure", "c-ext"])
def test_mysql_connector_compressed_text_and_prepared(proxy, pure):
    """The pure connector compresses on its own flag (it was refused at login while
    myguard offered no compression); both run text and prepared statements."""
    conn = mysql.connector.connect(port=proxy.port, use_pure=pure, compress=True, **KW)
    cur = conn.cursor()
    cur.execute("SELECT REPEAT('y', 70000), 5")
    assert cur.fetchall() == [("y" * 70000, 5)]
    cur.close()
    cur = conn.cursor(prepared=True)
    for n in (1, 2, 3):
        cur.execute("SELECT seq, REPEAT('q', ?) FROM seq_1_to_3 WHERE seq <= ?", (200, n))
        assert [r[0] for r in cur.fetchall()] == list(range(1, n + 1))
    cur.close()
    if not pure:  # the pure connector refuses COM_CHANGE_USER with compression
        conn.cmd_change_user(username="carol", password="carol-pw-3", database="shop")
        cur = conn.cursor()
        cur.execute("SELECT USER FROM information_schema.PROCESSLIST WHERE ID = CONNECTION_ID()")
        assert cur.fetchall() == [("carol",)]  # still compressed, as the new user
        cur.close()
    conn.close()


def test_load_data_local_runs_compressed(local_infile_proxy, tmp_path, mariadb):
    """The file's packets come compressed; a 2 MB file spans many compressed packets."""
    p = local_infile_proxy
    f = tmp_path / "rows.csv"
    f.write_text("".join(f"{i},row{i}-{'v' * 30}\n" for i in range(50000)))
    mariadb.sql("CREATE TABLE IF NOT EXISTS test.ldz (id INT, v VARCHAR(60))")
    try:
        out = subprocess.run(
            ["mariadb", "--no-defaults", "--compress", "--local-infile=1", "--skip-ssl",
             "-h127.0.0.1", f"-P{p.port}", "-ualice", "-palice-pw-1", "-N", "-B", "test",
             "-e", f"LOAD DATA LOCAL INFILE '{f}' INTO TABLE ldz FIELDS TERMINATED BY ',';"
             " SELECT COUNT(*), MAX(id) FROM ldz"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.split() == ["50000", "49999"]
    finally:
        mariadb.sql("DROP TABLE IF EXISTS test.ldz")
