"""Safe defaults at start: one myguard per listen address (its own workers share it)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pymysql
import pytest

from proxy_process import ProxyProcess


def second_serve(p: ProxyProcess) -> subprocess.CompletedProcess[str]:
    """Another ``myguard serve`` of the same config, as a second real process."""
    return subprocess.run(
        [sys.executable, "-m", "myguard", "serve", "--config", str(p.config_file)],
        capture_output=True,
        text=True,
        timeout=60,
        env=p.db.env(),
    )


def login(p: ProxyProcess) -> None:
    pymysql.connect(host="127.0.0.1", port=p.port, user="alice", password="alice-pw-1").close()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_myguard_on_the_same_address_fails_at_start(private_proxy, workers):
    first = private_proxy(workers=workers)
    result = second_serve(first)
    assert result.returncode == 1, result.stderr
    assert result.stderr.splitlines() == [
        f"myguard: error: 127.0.0.1:{first.port}: address in use by another myguard "
        f"(pid {first.proc.pid})"
    ]
    assert "Traceback" not in result.stderr
    # The first one serves on, with all its workers.
    assert first.proc.poll() is None
    for _ in range(4):
        login(first)
    assert first.log().count("event=listening") == workers


def test_workers_of_a_killed_supervisor_keep_the_address(private_proxy):
    """The workers inherit the lock: while orphans still serve, nobody else may join them."""
    first = private_proxy(workers=2)
    workers = [
        int(pid) for pid in re.findall(r"event=worker_started worker=\d+ pid=(\d+)", first.log())
    ]
    assert len(workers) == 2
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    try:
        login(first)  # the orphaned workers serve on
        result = second_serve(first)
        assert result.returncode == 1, result.stderr
        assert f"address in use by another myguard (pid {first.proc.pid})" in result.stderr
    finally:
        for pid in workers:
            os.kill(pid, signal.SIGKILL)


def test_a_crashed_myguard_leaves_no_stale_lock(private_proxy):
    first = private_proxy(workers=1)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    first.proc = None
    first.start()  # the same address, at once
    login(first)
