"""A login storm: 50 concurrent first logins (each a full LDAP authentication) through
myguard while an open session keeps running ``SELECT 1``.

The storm runs in a child process (50 PyMySQL threads released together), so the
measuring session in this process does not compete with it for the GIL. Two transports:
TLS (one verifying SSLContext shared by the 50 clients: PyMySQL's default builds a new
context per connection, ~30 ms of client CPU each, which would mostly measure the client)
and no TLS (the password through the RSA exchange: one RSA decryption per login in myguard).

The figures are printed (``-s``) and appended to /tmp/myguard-ldap-login-storm.txt; only
correctness is asserted: every login succeeds as a full authentication, the running
session never errors.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pymysql
import pytest
from e2e_ldap import add_user, wait_events

from ldap_server import USERS

STORM = 50
REPORT = Path("/tmp/myguard-ldap-login-storm.txt")

_STORM_CHILD = r"""
import json, sys, threading, time
import pymysql

port, cafile, users = json.loads(sys.argv[1])
if cafile:
    import ssl
    tls = {"ssl": ssl.create_default_context(cafile=cafile)}
else:
    tls = {"ssl_disabled": True}
barrier = threading.Barrier(len(users), action=lambda: print("GO", flush=True))
results = [None] * len(users)

def one(i, user, password):
    barrier.wait()
    started = time.perf_counter()
    try:
        conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, connect_timeout=30, **tls)
        with conn.cursor() as cur:
            cur.execute("SELECT CURRENT_USER()")
            results[i] = {"user": cur.fetchone()[0], "seconds": time.perf_counter() - started}
        conn.close()
    except Exception as exc:
        results[i] = {"error": repr(exc), "seconds": time.perf_counter() - started}

threads = [threading.Thread(target=one, args=(i, u, p)) for i, (u, p) in enumerate(users)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results), flush=True)
"""


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"n={len(ordered)} p50={at(0.5):.2f} ms p99={at(0.99):.2f} ms max={ordered[-1] * 1000:.2f} ms "
        f"mean={statistics.fmean(ordered) * 1000:.2f} ms"
    )


@pytest.mark.parametrize("transport", ["tls", "rsa"])
def test_login_storm_while_a_session_runs(ldap_proxy, slapd, transport):
    users = [add_user(slapd, "storm") for _ in range(STORM)]
    session = pymysql.connect(
        host="127.0.0.1", port=ldap_proxy.port, user="alice", password=USERS["alice"][0]
    )
    cur = session.cursor()

    def select_1() -> float:
        started = time.perf_counter()
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
        return time.perf_counter() - started

    for _ in range(50):  # warm up
        select_1()
    before = [select_1() for _ in range(500)]

    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _STORM_CHILD,
            json.dumps(
                [ldap_proxy.port, str(ldap_proxy.cert) if transport == "tls" else None, users]
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    marks: dict[str, float] = {}
    output: list[str] = []

    def read() -> None:
        for line in child.stdout:
            marks.setdefault("go" if line.strip() == "GO" else "done", time.perf_counter())
            output.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    timed: list[tuple[float, float]] = []
    try:
        while child.poll() is None or reader.is_alive():
            started = time.perf_counter()
            timed.append((started, select_1()))
    finally:
        child.wait(60)
        reader.join(10)
    storm_seconds = marks["done"] - marks["go"]
    during = [latency for started, latency in timed if marks["go"] <= started < marks["done"]]
    results = json.loads(output[-1])
    select_1()  # still fine after the storm
    session.close()

    logins = [r["seconds"] for r in results if "seconds" in r]
    report = "\n".join(
        [
            f"myguard LDAP login storm, {transport}: {STORM} concurrent first logins (full auth), PyMySQL",
            f"storm wall time: {storm_seconds * 1000:.0f} ms; per login: {percentiles(logins)}",
            f"open session SELECT 1 before the storm: {percentiles(before)}",
            f"open session SELECT 1 during the storm: {percentiles(during)}",
        ]
    )
    print("\n" + report)
    with REPORT.open("a") as out:
        out.write(report + "\n\n")

    assert [r.get("user", r) for r in results] == ["myguard_svc@127.0.0.1"] * STORM
    for user, _ in users:
        [event] = wait_events(ldap_proxy, "login", user, 1)
        assert event["method"] == "full"
    assert during, "the session ran no statement while the storm was on"
