"""Large values and large results through myguard: packets split at 0xFFFFFF, flat memory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from clients import DRIVERS, Driver, compare, table_name, targets

BIG = 20 << 20  # 20 MiB: two full 16 MiB fragments' worth of payload split and joined


def vm_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.parametrize("driver_id", ["pymysql", "connector-pure", "mysqlclient"])
def test_blob_over_16_mib_round_trip(driver_id, proxy, mariadb):
    driver = DRIVERS[driver_id]
    t = table_name("big_blob", driver)
    blob = os.urandom(BIG)
    digest = hashlib.sha256(blob).hexdigest()

    def work(drv: Driver, target) -> object:
        conn = drv.connect(target)
        try:
            drv.set_autocommit(conn, True)
            cur = conn.cursor()
            cur.execute(f"DROP TABLE IF EXISTS {t}")
            cur.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, b LONGBLOB)")
            cur.execute(f"INSERT INTO {t} VALUES (%s, %s)", (1, blob))
            inserted = cur.rowcount
            cur.execute(f"SELECT id, b, LENGTH(b), SHA2(b, 256) FROM {t}")
            (row,) = cur.fetchall()
            # The exact 0xFFFFFF boundary: a row whose packet is one full fragment plus an empty one.
            cur.execute("SELECT REPEAT('z', 16777215 - 4)")
            (edge,) = cur.fetchall()
            cur.execute(f"DROP TABLE {t}")
            return (
                inserted,
                row[0],
                hashlib.sha256(bytes(row[1])).hexdigest(),
                row[2],
                row[3],
                len(edge[0]),
            )
        finally:
            conn.close()

    result = compare(driver, *targets(proxy, mariadb), work)
    assert result == (1, 1, digest, BIG, digest, 16777215 - 4)


STREAM_SQL = "SELECT seq, MD5(seq), REPEAT('r', 40 + seq % 17) FROM seq_1_to_{n}"


def stream_checksum(drv: Driver, target, n: int, on_batch=None) -> tuple[int, str]:
    conn = drv.connect(target)
    try:
        cur = drv.stream_cursor(conn)
        cur.execute(STREAM_SQL.format(n=n))
        h = hashlib.sha256()
        count = 0
        while True:
            rows = cur.fetchmany(5000)
            if not rows:
                break
            for row in rows:
                h.update(repr(tuple(row)).encode())
            count += len(rows)
            if on_batch is not None:
                on_batch()
        cur.close()
        return count, h.hexdigest()
    finally:
        conn.close()


@pytest.mark.parametrize("driver_id", ["pymysql", "connector-pure"])
def test_large_result_streamed_identically(driver_id, proxy, mariadb):
    driver = DRIVERS[driver_id]
    count, _ = compare(
        driver, *targets(proxy, mariadb), lambda drv, target: stream_checksum(drv, target, 200_000)
    )
    assert count == 200_000


def test_streaming_a_million_rows_keeps_proxy_memory_flat(proxy, mariadb):
    driver = DRIVERS["pymysql"]
    through, _ = targets(proxy, mariadb)
    pid = proxy.proc.pid
    before = vm_rss_kib(pid)
    peak = [before]

    def sample() -> None:
        peak[0] = max(peak[0], vm_rss_kib(pid))

    count, _ = stream_checksum(driver, through, 1_000_000, sample)
    after = vm_rss_kib(pid)
    print(
        f"myguard VmRSS before {before} KiB, peak {peak[0]} KiB, after {after} KiB while streaming {count} rows"
    )
    assert count == 1_000_000
    assert peak[0] - before < 100 * 1024
