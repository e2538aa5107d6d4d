"""LDAP identity measures (issue 18): connections/s with a warm verifier cache, and a login
storm (cold cache) against plain LDAP simple binds on the same slapd in the same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ldap_server import BIND_PASSWORD_ENV, SERVICE_PW, SlapdServer, search_table, ssha, user_dn

from .targets import Stack, Target

_STORM_CHILD = r"""
import json, sys, threading, time
mode, arg, clients, users = json.loads(sys.argv[1])
barrier = threading.Barrier(clients)
lock = threading.Lock()
queue = list(users)
seconds, errors = [], []

def login(user, password):
    if mode == "myguard":
        import pymysql
        pymysql.connect(host="127.0.0.1", port=arg, user=user, password=password,
                        connect_timeout=30, ssl_disabled=True).close()
    else:
        import ldap3
        conn = ldap3.Connection(ldap3.Server(arg, get_info=ldap3.NONE),
                                user=f"uid={user},ou=people,dc=example,dc=org",
                                password=password, raise_exceptions=True)
        conn.bind()
        conn.unbind()

def worker():
    barrier.wait()
    while True:
        with lock:
            if not queue:
                return
            user, password = queue.pop()
        started = time.perf_counter()
        try:
            login(user, password)
            seconds.append(time.perf_counter() - started)
        except Exception as exc:
            errors.append(repr(exc))

threads = [threading.Thread(target=worker) for _ in range(clients)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"seconds": seconds, "errors": errors[:5], "failed": len(errors)}))
"""


def start(stack: Stack) -> SlapdServer:
    (stack.base / "slapd").mkdir(exist_ok=True)
    server = SlapdServer(tls=False, directory=stack.base / "slapd")
    server.start()
    os.environ[BIND_PASSWORD_ENV] = SERVICE_PW  # inherited by the myguard processes
    return server


def proxy_target(stack: Stack, server: SlapdServer) -> Target:
    proxy = stack.proxy(
        "ldap",
        identity={"source": "ldap", "max_failures": 1_000_000, "ldap": search_table(server)},
    )
    return proxy.target("myguard ldap (warm cache)", ("alice", "alice-pw"))


def warm(target: Target) -> None:
    """Full authentications until every worker's verifier cache knows alice."""
    import pymysql

    for _ in range(20):  # SO_REUSEPORT spreads them over the workers
        pymysql.connect(host=target.host, port=target.port, user=target.user,
                        password=target.password, ssl_disabled=True).close()  # fmt: skip


def add_users(server: SlapdServer, prefix: str, count: int) -> list[tuple[str, str]]:
    conn = server.admin()
    users = []
    try:
        for i in range(count):
            uid, password = f"{prefix}-{i}", f"pw-{prefix}-{i}"
            conn.add(user_dn(uid), ["inetOrgPerson"],
                     {"uid": uid, "cn": uid, "sn": uid, "userPassword": ssha(password)})  # fmt: skip
            if conn.result["result"] != 0:
                raise RuntimeError(f"cannot add {uid}: {conn.result}")
            users.append((uid, password))
    finally:
        conn.unbind()
    return users


def _percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)


def storm(
    mode: str, arg: object, users: list[tuple[str, str]], clients: int, pids: list[int]
) -> dict[str, object]:
    """``len(users)`` logins (each user once: a cold cache) by ``clients`` threads of a
    child process released together; latency percentiles in ms."""
    from .procstat import cpu_seconds

    cpu0 = cpu_seconds(pids) if pids else 0.0
    out = subprocess.run(
        [sys.executable, "-c", _STORM_CHILD, json.dumps([mode, arg, clients, users])],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if out.returncode != 0:
        return {"target": mode, "error": out.stderr[-1500:]}
    got = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = got["seconds"]
    result: dict[str, object] = {
        "target": mode,
        "logins": len(seconds),
        "clients": clients,
        "failed": got["failed"],
        "p50_ms": _percentile(seconds, 0.5),
        "p99_ms": _percentile(seconds, 0.99),
        "max_ms": _percentile(seconds, 1.0),
    }
    if got["errors"]:
        result["errors"] = got["errors"]
    if pids:
        result["target_cpu_ms_per_login"] = round(
            (cpu_seconds(pids) - cpu0) / max(len(seconds), 1) * 1000, 2
        )
    return result


def run_storms(
    stack: Stack, server: SlapdServer, target: Target, repeats: int, logins: int, clients: int
) -> list[dict[str, object]]:
    runs = []
    for rep in range(repeats):
        plain = add_users(server, f"plain{rep}", logins)
        cold = add_users(server, f"storm{rep}", logins)
        for mode, arg, users, pids in (
            ("plain ldap binds", server.url, plain, []),
            ("myguard", target.port, cold, target.pids()),
        ):
            run = storm("plain" if mode != "myguard" else "myguard", arg, users, clients, pids)
            run["target"] = mode
            run["repeat"] = rep
            runs.append(run)
    return runs
