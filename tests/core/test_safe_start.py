"""Safe defaults at start: one myguard per listen address (its own workers share it), and
a self-signed certificate for LDAP identity without a [tls] table."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pymysql
import pytest

from myguard.config import Config, TlsConfig, load_config
from myguard.tls import server_context, with_default_tls
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


def config_with(tmp_path: Path, identity: str) -> Config:
    (tmp_path / "pw").write_text("secret\n")
    file = tmp_path / "myguard.toml"
    file.write_text(
        'rules_file = "rules.toml"\n[audit]\nenabled = false\n'
        f"[identity]\n{identity}\n"
        '[[backends]]\nname = "b"\nenvironment = "dev"\nlisten = "127.0.0.1:3307"\n'
        'upstream = "127.0.0.1:3306"\nuser = "svc"\npassword_file = "pw"\n'
    )
    return load_config(file)


def test_only_ldap_without_a_tls_table_gets_a_self_signed_certificate(tmp_path):
    users = config_with(tmp_path, 'users_file = "users.toml"')
    assert with_default_tls(users, announce=False) is users
    ldap = with_default_tls(
        config_with(tmp_path, 'source = "ldap"\n[identity.ldap]\nurls = ["ldap://x"]'),
        announce=False,
    )
    assert ldap.tls == TlsConfig(
        tmp_path / "myguard-self-signed.crt", tmp_path / "myguard-self-signed.key"
    )
    server_context(ldap.tls)  # a usable pair


def test_a_config_directory_that_cannot_take_the_certificate_is_a_clear_error(tmp_path):
    config = config_with(tmp_path, 'source = "ldap"\n[identity.ldap]\nurls = ["ldap://x"]')
    unwritable = dataclasses.replace(config, file=Path("/proc/myguard/myguard.toml"))
    with pytest.raises(
        OSError, match=r"cannot write a self-signed certificate .*configure \[tls\]"
    ):
        with_default_tls(unwritable, announce=False)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_second_myguard_writing_the_same_audit_directory_fails_at_start(
    private_proxy, mariadb, tmp_path, workers
):
    """Given the same audit directory (another port), a second myguard would interleave
    its records with the first's in the same chains: it stops at start, saying why."""
    first = private_proxy(workers=workers)
    second = ProxyProcess(
        tmp_path / "second", mariadb, workers=workers, audit={"directory": str(first.audit_dir)}
    )
    result = second_serve(second)
    assert result.returncode == 1
    chain = first.audit_dir if workers == 1 else first.audit_dir / "supervisor"
    assert result.stderr.splitlines()[-1] == (
        f"myguard: error: cannot open audit directory {chain}: "
        "another process writes this audit directory (one writer each)"
    )
    assert "Traceback" not in result.stderr
    assert first.proc.poll() is None
    login(first)
