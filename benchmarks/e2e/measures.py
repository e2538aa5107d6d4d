"""Measures other than sysbench: bulk transfers, connection rate, idle memory, masking CPU."""

from __future__ import annotations

import itertools
import multiprocessing
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pymysql
import pymysql.cursors

from .procstat import cpu_seconds, rss_bytes
from .targets import Target

# 10,000 sysbench rows x 100 = 1,000,000 rows of ~190 B; the SEQUENCE engine makes the copies.
BIG_SELECT = "SELECT s.id, s.k, s.c, s.pad FROM sbtest1 s JOIN seq_1_to_100 q"
BIG_ROWS = 1_000_000
MASK_SELECT = "SELECT * FROM bench_mask"


def _cli(target: Target, sql: str, database: str = "test") -> list[str]:
    return [
        "mariadb", "--no-defaults", "--skip-ssl", "-h", target.host, "-P", str(target.port),
        "-u", target.user, f"-p{target.password}", "--batch", "--quick", "--skip-column-names",
        database, "-e", sql,
    ]  # fmt: skip


def query(target: Target, sql: str) -> list[tuple[object, ...]]:
    conn = pymysql.connect(host=target.host, port=target.port, user=target.user,
                           password=target.password, database="test", ssl_disabled=True)  # fmt: skip
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()


def transfer(
    target: Target, client: str, sql: str, rows: int, payload_bytes: int
) -> dict[str, object]:
    """Stream ``sql``'s result with the mariadb CLI (to /dev/null) or PyMySQL's SSCursor."""
    pids = target.pids()
    cpu0, t0 = cpu_seconds(pids), time.perf_counter()
    if client == "cli":
        proc = subprocess.run(_cli(target, sql), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)  # fmt: skip
        if proc.returncode != 0:
            return {"target": target.name, "client": client, "error": proc.stderr.decode()}
        seen = rows
    else:
        conn = pymysql.connect(host=target.host, port=target.port, user=target.user,
                               password=target.password, database="test",
                               cursorclass=pymysql.cursors.SSCursor, ssl_disabled=True)  # fmt: skip
        seen = 0
        with conn.cursor() as cur:
            cur.execute(sql)
            for _ in cur.fetchall_unbuffered():
                seen += 1
        conn.close()
    wall = time.perf_counter() - t0
    result: dict[str, object] = {
        "target": target.name,
        "client": client,
        "rows": seen,
        "wall_s": round(wall, 3),
        "rows_per_s": round(seen / wall),
        "mb_per_s": round(payload_bytes / wall / 1e6, 1),
    }
    if pids:
        result["target_cpu_s"] = round(cpu_seconds(pids) - cpu0, 3)
    return result


def _connector(
    target: Target, until: float, out: multiprocessing.Queue, request: bool, client: str
) -> None:
    count = errors = 0
    ids = itertools.cycle(range(1, 10001))
    database = "test" if request else None
    if client == "mysqlclient":  # libmariadb: tracks session state, sends the same SETs
        import MySQLdb

        def connect():
            options = {"database": database} if database else {}
            return MySQLdb.connect(
                host=target.host, port=target.port, user=target.user,
                password=target.password, connect_timeout=5, charset="utf8mb4", **options,
            )  # fmt: skip

        failed: tuple[type[Exception], ...] = (MySQLdb.MySQLError,)
    else:

        def connect():
            return pymysql.connect(
                host=target.host, port=target.port, user=target.user,
                password=target.password, connect_timeout=5, ssl_disabled=True,
                database=database,
            )  # fmt: skip

        failed = (pymysql.MySQLError,)
    while time.monotonic() < until:
        try:
            conn = connect()
            if request:
                cur = conn.cursor()
                cur.execute(f"SELECT c FROM sbtest1 WHERE id={next(ids)}")
                cur.fetchall()
                cur.close()
            conn.close()
            count += 1
        except failed:
            errors += 1
    out.put((count, errors))


def connect_rate(
    target: Target,
    connectors: int,
    duration: float,
    request: bool = False,
    client: str = "pymysql",
) -> dict[str, object]:
    """Connect, authenticate, COM_QUIT in a loop from ``connectors`` processes (GIL-free);
    with ``request``, one point select on sysbench's table in between (a connection opened
    per request, as PHP, serverless functions and agents open them). ``client``: PyMySQL,
    or mysqlclient (libmariadb, which asks for session-state tracking)."""
    ctx = multiprocessing.get_context("fork")
    out: multiprocessing.Queue = ctx.Queue()
    pids = target.pids()
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    procs = [ctx.Process(target=_connector, args=(target, t0 + duration, out, request, client))
             for _ in range(connectors)]  # fmt: skip
    for p in procs:
        p.start()
    counts = [out.get() for _ in procs]
    for p in procs:
        p.join()
    wall = time.monotonic() - t0
    done = sum(c for c, _ in counts)
    result: dict[str, object] = {
        "target": target.name,
        "client": client,
        "connectors": connectors,
        "connections": done,
        "errors": sum(e for _, e in counts),
        "per_s": round(done / wall, 1),
    }
    if pids:
        result["target_cpu_us_per_conn"] = round((cpu_seconds(pids) - cpu0) / max(done, 1) * 1e6)
    return result


def idle_memory(target: Target, count: int) -> dict[str, object]:
    """RSS growth of the target's processes with ``count`` logged-in, idle connections."""
    from raw_client import (  # tests/ is on sys.path (targets.py); needs myguard._fast
        GreetingRefused,
        RawClient,
    )

    pids = target.pids()
    before = rss_bytes(pids)
    clients = []
    try:
        for n in range(count):
            client = RawClient(target.port)
            try:
                reply = client.login(target.user, target.password)
            except GreetingRefused as exc:
                raise RuntimeError(f"{target.name}: connection {n + 1} of {count}: {exc}") from None
            if reply[:1] != b"\x00":
                raise RuntimeError(
                    f"{target.name}: login {n + 1} of {count} refused: {reply[:80]!r}"
                )
            clients.append(client)
        time.sleep(1.0)  # let the event loops finish the handshakes' bookkeeping
        after = rss_bytes(target.pids())
    finally:
        for client in clients:
            client.close()
    return {
        "target": target.name,
        "connections": count,
        "rss_before_mib": round(before / 2**20, 1),
        "rss_after_mib": round(after / 2**20, 1),
        "bytes_per_conn": round((after - before) / count),
    }


def create_mask_table(db_sql: Callable[[str], str], rows: int) -> None:
    """test.bench_mask: 8 columns, ``rows`` rows from the SEQUENCE engine."""
    db_sql(
        "DROP TABLE IF EXISTS test.bench_mask;"
        "CREATE TABLE test.bench_mask (id INT PRIMARY KEY, name VARCHAR(40), email VARCHAR(60),"
        " phone VARCHAR(20), city VARCHAR(30), country CHAR(2), amount DECIMAL(10,2),"
        " created DATETIME) ENGINE=InnoDB;"
        "INSERT INTO test.bench_mask SELECT seq, CONCAT('Customer ', seq),"
        " CONCAT('user', seq, '@example.com'), CONCAT('+41 79 ', LPAD(seq, 7, '0')),"
        " ELT(1 + seq % 4, 'Zurich', 'Geneva', 'Basel', 'Bern'), 'CH', seq / 100,"
        f" '2024-01-01' + INTERVAL seq SECOND FROM test.seq_1_to_{rows};"
    )


def mask_rules(base: Path) -> Path:
    """conf/rules.toml plus three tagged columns of test.bench_mask masked for group dba."""
    shipped = (Path(__file__).resolve().parents[2] / "conf" / "rules.toml").read_text()
    tags = (
        '[tags]\nbench = ["test.bench_mask.name", "test.bench_mask.email", '
        '"test.bench_mask.phone"]\n'
    )
    rules = shipped.replace("[tags]\n", tags, 1) + (
        "\n[[rules]]\n"
        'name = "bench-mask-for-dba"\n'
        'action = "mask"\n'
        "[rules.when]\n"
        'groups = ["dba"]\n'
        'tags = ["bench"]\n'
        "[rules.mask]\n"
        '"test.bench_mask.email" = "email"\n'
        '"test.bench_mask.phone" = "partial(4)"\n'
        'bench = "redact"\n'
    )
    path = base / "mask-rules.toml"
    path.write_text(rules)
    return path
