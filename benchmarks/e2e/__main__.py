"""python -m benchmarks.e2e [--quick] [--duration S] [--repeats N] [--threads 1,4,16] ..."""

from __future__ import annotations

import argparse
import datetime as dt
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from . import machine, measures, report, sysbench
from .profile import point_selects, profile
from .targets import ALICE, CAROL, HAPROXY_THREADS, RELAY_WORKERS, Stack, Target, parse_extra

MEASURES = (
    "sysbench", "audit", "bigselect", "masking", "connect", "ldap", "memory", "profile"
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.e2e", description=__doc__)
    p.add_argument("--quick", action="store_true", help="1 repeat, 5 s, fewer configurations")
    p.add_argument("--duration", type=int, help="seconds per sysbench run (default 10; quick 5)")
    p.add_argument("--repeats", type=int, help="interleaved repeats (default 3; quick 1)")
    p.add_argument("--threads", help="sysbench thread counts (default 1,4,16; quick 1,16)")
    p.add_argument(
        "--extra-target",
        action="append",
        default=[],
        metavar="HOST:PORT",
        help="another proxy in front of the private MariaDB (see --db-port)",
    )
    p.add_argument("--extra-user", default="root")
    p.add_argument("--extra-password", default=None, help="default: the fixture's root password")
    p.add_argument("--db-port", type=int, help="fixed port for the private MariaDB")
    p.add_argument(
        "--only", action="append", choices=MEASURES, help="run only these measures (repeatable)"
    )
    p.add_argument("--connectors", type=int, default=4, help="parallel connect loops")
    p.add_argument("--idle-connections", type=int, default=1000)
    p.add_argument("--profile-seconds", type=int, help="py-spy duration (default 20; quick 5)")
    p.add_argument("--render", type=Path, metavar="JSON", help="only rewrite JSON's Markdown")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "results")
    return p.parse_args(argv)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def workloads(threads: list[int], quick: bool) -> list[sysbench.Workload]:
    if quick:
        return [sysbench.Workload("oltp_point_select", t, "auto") for t in threads] + [
            sysbench.Workload("oltp_read_only", max(threads), "auto")
        ]
    return [
        sysbench.Workload(test, t, ps)
        for test in ("oltp_point_select", "oltp_read_only")
        for ps in ("auto", "disable")
        for t in threads
    ]


def run_sysbench(
    targets: list[Target], loads: list[sysbench.Workload], repeats: int, duration: int
) -> list[dict[str, object]]:
    runs = []
    for rep in range(repeats):
        for load in loads:
            # Rotate the order each repeat so no target always runs first (warm caches, turbo).
            order = targets[rep % len(targets) :] + targets[: rep % len(targets)]
            for target in order:
                run = sysbench.run(target, load, duration)
                run["repeat"] = rep
                runs.append(run)
                log(f"{load.key} {target.name}: {run.get('qps', run.get('error'))}")
    return runs


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        log(f"wrote {report.render(args.render)}")
        return 0
    quick = args.quick
    duration = args.duration or (5 if quick else 10)
    repeats = args.repeats or (1 if quick else 3)
    threads = [int(t) for t in (args.threads or ("1,16" if quick else "1,4,16")).split(",")]
    only = set(args.only or MEASURES)
    # 1,000 idle connections need 3,000+ descriptors in myguard and in MariaDB: raise the limit
    # here, before the servers start, so they inherit it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))

    started = dt.datetime.now()
    results: dict[str, object] = {
        "started": started.isoformat(timespec="seconds"),
        "settings": {"quick": quick, "duration_s": duration, "repeats": repeats,
                     "threads": threads, "haproxy_nbthread": HAPROXY_THREADS,
                     "relay_workers": RELAY_WORKERS,
                     "myguard": "workers=2, conf/rules.toml, environment=production, "
                                "audit fsync=batch", "measures": sorted(only)},
        "machine": machine.describe(),
    }  # fmt: skip
    stack = Stack(Path(tempfile.mkdtemp(prefix="myguard-bench-")), args.db_port)
    try:
        log(
            f"starting MariaDB, HAProxy (nbthread {HAPROXY_THREADS}), "
            f"relay ({RELAY_WORKERS} workers), myguard"
        )
        stack.start_db()
        direct = stack.direct()
        sysbench.prepare(direct)
        myguard = stack.proxy("default").target("myguard")
        extra_pw = args.extra_password or direct.password
        extras = [parse_extra(s, args.extra_user, extra_pw) for s in args.extra_target]
        targets = [direct, stack.haproxy.target(), myguard, *extras]
        # The bare uvloop relay (the floor of a Python proxy) in the throughput measures only.
        relay = stack.relay.target()
        with_relay = [direct, stack.haproxy.target(), relay, myguard, *extras]

        steps: dict[str, Callable[[], object]] = {
            "sysbench": lambda: run_sysbench(
                with_relay, workloads(threads, quick), repeats, duration
            ),
            "audit": lambda: audit(stack, repeats, duration),
            "bigselect": lambda: big_select(with_relay[:4], repeats, direct),
            "masking": lambda: masking(stack, direct, repeats),
            "connect": lambda: connect(targets, repeats, args.connectors, 3 if quick else 5),
            "ldap": lambda: ldap_measures(stack, direct, repeats, args.connectors, quick),
            "profile": lambda: run_profile(
                stack, args.profile_seconds or (5 if quick else 15), args.connectors
            ),
            "memory": lambda: idle_memory(stack, args.idle_connections),
        }
        for name, step in steps.items():
            if name not in only:
                continue
            try:
                results[name] = step()
            except Exception:  # one broken measure must not cost the others' numbers
                log(f"{name} failed:\n{traceback.format_exc()}")
                results.setdefault("failures", {})[name] = traceback.format_exc()  # type: ignore[index]
    finally:
        stack.stop()
    results["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    md_path = report.write(results, args.out, started, quick)
    print(md_path.read_text())
    log(f"wrote {md_path}")
    return 0


def audit(stack: Stack, repeats: int, duration: int) -> list[dict[str, object]]:
    """Point selects through myguard with the audit trail disabled, unsynced, batched, synced."""
    variants = [
        stack.proxy("audit-disabled", audit={"enabled": False}).target("audit disabled"),
        stack.proxy("audit-off", audit={"fsync": "off"}).target("audit fsync=off"),
        stack.proxy("default").target("audit fsync=batch"),
        stack.proxy("audit-always", audit={"fsync": "always"}).target("audit fsync=always"),
    ]
    load = sysbench.Workload("oltp_point_select", 16, "auto")
    try:
        return run_sysbench(variants, [load], repeats, duration)
    finally:
        for name in ("audit-disabled", "audit-off", "audit-always"):
            stack.stop_proxy(name)


def connect(
    targets: list[Target], repeats: int, connectors: int, seconds: float
) -> list[dict[str, object]]:
    runs = []
    for rep in range(repeats):
        for target in targets:
            run = measures.connect_rate(target, connectors, seconds)
            run["repeat"] = rep
            runs.append(run)
            log(f"connect {target.name}: {run['per_s']}/s")
    return runs


def ldap_measures(
    stack: Stack, direct: Target, repeats: int, connectors: int, quick: bool
) -> dict[str, object]:
    """LDAP identity: connections/s with a warm verifier cache (against direct, interleaved),
    then login storms (cold cache) against plain LDAP binds of the same slapd."""
    from . import ldap

    server = ldap.start(stack)
    try:
        target = ldap.proxy_target(stack, server)
        ldap.warm(target)
        seconds = 3 if quick else 5
        runs = connect([direct, target], repeats, connectors, seconds)
        log("LDAP login storms: 200 logins by 50 clients, myguard and plain binds")
        storms = ldap.run_storms(stack, server, target, repeats, 200, 50)
        for run in storms:
            log(f"storm {run['target']}: p99 {run.get('p99_ms')} ms, failed {run.get('failed')}")
        return {"connect": runs, "storm": storms}
    finally:
        stack.stop_proxy("ldap")
        server.cleanup()


def run_profile(stack: Stack, seconds: int, connectors: int) -> dict[str, object]:
    """Where one worker's time goes under point selects, and under a connection storm."""
    proxy = stack.proxies["default"]
    target = proxy.target("myguard")
    worker = [p for p in proxy.tree() if p != proxy.proc.pid][0]  # type: ignore[union-attr]
    log(f"py-spy on worker {worker}: point selects, then connects, {seconds} s each")
    return {
        "point_select": profile(worker, seconds, stack.base / "ps.raw", point_selects(target)),
        "connect": profile(
            worker,
            seconds,
            stack.base / "connect.raw",
            lambda s: measures.connect_rate(target, connectors, s),
        ),
    }


def idle_memory(stack: Stack, count: int) -> list[dict[str, object]]:
    """A fresh myguard: one that served earlier runs has freed memory its allocator reuses.
    It stops before HAProxy's turn: its pool keeps the backend connections the idle clients
    had, and both sets together would pass MariaDB's max_connections."""
    fresh = stack.proxy("memory").target("myguard")
    measures.connect_rate(fresh, 1, 0.5)  # warm up: imports and caches of the login path
    try:
        mine = measures.idle_memory(fresh, count)
    finally:
        stack.stop_proxy("memory")
    return [mine, measures.idle_memory(stack.haproxy.target(), count)]


def big_select(targets: list[Target], repeats: int, direct: Target) -> list[dict[str, object]]:
    (row,) = measures.query(
        direct, "SELECT SUM(LENGTH(id) + LENGTH(k) + LENGTH(c) + LENGTH(pad)) FROM sbtest1"
    )
    payload = int(row[0]) * 100  # type: ignore[call-overload]
    runs = []
    for rep in range(repeats):
        for client in ("cli", "pymysql"):
            for target in targets:
                run = measures.transfer(target, client, measures.BIG_SELECT, measures.BIG_ROWS,
                                        payload)  # fmt: skip
                run["repeat"] = rep
                runs.append(run)
                log(f"1M rows {client} {target.name}: {run.get('wall_s', run.get('error'))} s")
    return runs


def masking(stack: Stack, direct: Target, repeats: int) -> dict[str, object]:
    log("creating test.bench_mask (1M rows)")
    measures.create_mask_table(stack.db.sql, measures.BIG_ROWS)
    (row,) = measures.query(
        direct,
        "SELECT SUM(LENGTH(id) + LENGTH(name) + LENGTH(email) + LENGTH(phone) + LENGTH(city)"
        " + LENGTH(country) + LENGTH(amount) + LENGTH(created)) FROM bench_mask",
    )
    payload = int(row[0])  # type: ignore[call-overload]
    proxy = stack.proxy("mask", rules_file=measures.mask_rules(stack.base))
    masked, plain = proxy.target("masked (alice)", ALICE), proxy.target("unmasked (carol)", CAROL)
    sample = {
        t.name: [list(map(str, r)) for r in measures.query(t, measures.MASK_SELECT + " LIMIT 2")]
        for t in (masked, plain)
    }
    runs = []
    for rep in range(repeats):
        for target in (plain, masked):
            run = measures.transfer(target, "cli", measures.MASK_SELECT, measures.BIG_ROWS,
                                    payload)  # fmt: skip
            run["repeat"] = rep
            runs.append(run)
            log(f"mask {target.name}: {run.get('target_cpu_s', run.get('error'))} s CPU")
    stack.stop_proxy("mask")
    return {"sample_rows": sample, "runs": runs}


if __name__ == "__main__":
    sys.exit(main())
