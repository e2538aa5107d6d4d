"""kill -9 of myguard's process group under load loses no statement a client saw succeed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pymysql
import pytest

from myguard.audit import iter_records, verify
from proxy_process import ProxyProcess

CLIENTS = 4


class GroupProxy(ProxyProcess):
    """A myguard whose processes (supervisor and workers) form their own process group."""

    def start(self) -> None:
        popen = subprocess.Popen

        def own_group(*args, **kwargs):
            return popen(*args, **kwargs, start_new_session=True)

        subprocess.Popen = own_group
        try:
            super().start()
        finally:
            subprocess.Popen = popen

    def kill_group(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        self.proc = None


def run_load(proxy: ProxyProcess, run: int, acknowledged: list[str], stop: threading.Event):
    def client(n: int) -> None:
        i = 0
        try:
            conn = pymysql.connect(
                host="127.0.0.1", port=proxy.port, user="alice", password="alice-pw-1"
            )
            with conn.cursor() as cur:
                while not stop.is_set():
                    marker = f"r{run}-c{n}-{i}"
                    cur.execute(f"SELECT '{marker}'")
                    cur.fetchall()
                    acknowledged.append(marker)  # the client has seen it succeed
                    i += 1
        except pymysql.err.MySQLError:
            pass  # the proxy died under it

    return [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]


@pytest.mark.parametrize("workers", [1, 2])
def test_kill_9_of_the_process_group_loses_no_acknowledged_statement(mariadb, tmp_path, workers):
    p = GroupProxy(tmp_path / "p", mariadb, workers=workers, audit={"fsync": "batch"})
    acknowledged: list[str] = []
    try:
        for run in range(3):
            p.start()
            stop = threading.Event()
            threads = run_load(p, run, acknowledged, stop)
            for t in threads:
                t.start()
            time.sleep(2)
            p.kill_group()
            stop.set()
            for t in threads:
                t.join()
        p.start()  # each writer repairs its chain's tail and records the restart
    finally:
        p.stop()
    report = verify(p.audit_dir)
    assert report.ok, report.problem
    recorded = {r["statement"] for r in iter_records(p.audit_dir) if r.type == "statement"}
    missing = [m for m in acknowledged if f"SELECT '{m}'" not in recorded]
    assert len(acknowledged) > 1000
    # Each client's last acknowledged statement before a kill is the one a crash can lose
    # when its record is queued only after its response went out: name them apart.
    last = {m.rsplit("-", 1)[0]: m for m in acknowledged}
    lasts = [m for m in missing if last[m.rsplit("-", 1)[0]] == m]
    assert not missing, (
        f"{len(missing)} of {len(acknowledged)} acknowledged statements not recorded: "
        f"{missing} ({len(lasts)} of them the client's last before the kill)"
    )
