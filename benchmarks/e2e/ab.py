"""Same-run A/B of myguard configurations, with HAProxy in every round as the yardstick.

    .venv/bin/python -m benchmarks.e2e.ab --variant ring \\
        --variant 'no-ring:audit.ring_directory=""' [--rounds 4] [--duration 8] \\
        [--threads 16] [--ps disable,auto] [--measure sysbench,connect,request]

A variant is ``NAME[@TREE][:[TABLE.]KEY=VALUE,...]`` with TOML values, applied to the
config the suite writes for myguard (``--variant fast:audit.fsync="off"``, ``--variant
one:workers=1``); a variant without settings is myguard as shipped. ``@TREE`` runs that
variant from another checkout (its ``src``, built in place), so two builds meet in one run:
``--variant new --variant old@/work/wt-old``. Every round runs each workload on every target back to
back, the order rotated per round; the report gives per target the median QPS, CPU µs per
statement and QPS / HAProxy (median of the per-round ratios). ``connect`` measures the
connection rate (connect, authenticate, quit from 4 processes for 5 s) of MariaDB and
each variant, interleaved the same way; ``request`` the same with one point select per
connection (a connection opened per request). ``--client mysqlclient`` makes those loops
use mysqlclient (libmariadb, a client that tracks session state) instead of PyMySQL.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import tomllib
from pathlib import Path

from . import sysbench
from .measures import connect_rate
from .targets import Stack, Target


def parse_variant(text: str) -> tuple[str, Path | None, dict[str, object]]:
    """``NAME[@TREE][:SETTINGS]``: the variant's name, the checkout it runs from (its
    ``src`` first on the path; None: this one) and its settings."""
    head, _, settings = text.partition(":")
    name, _, tree = head.partition("@")
    source = Path(tree).resolve() / "src" if tree else None
    if source is not None and not (source / "myguard").is_dir():
        raise SystemExit(f"--variant {text!r}: {source} holds no myguard package")
    tables: dict[str, object] = {}
    for item in filter(None, settings.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--variant {text!r}: expected [TABLE.]KEY=VALUE, got {item!r}")
        table, _, field = key.strip().partition(".")
        parsed = tomllib.loads(f"v = {value}")["v"]
        if field:
            tables.setdefault(table, {})[field] = parsed  # type: ignore[index]
        else:  # a top-level setting (workers)
            tables[table] = parsed
    return name, source, tables


def run(args: argparse.Namespace) -> None:
    stack = Stack(Path(tempfile.mkdtemp(prefix="myguard-ab-")))
    try:
        stack.start_db()
        sysbench.prepare(stack.direct())
        targets: list[Target] = [stack.haproxy.target()]
        for name, source, tables in map(parse_variant, args.variant):
            targets.append(stack.proxy(name, source=source, **tables).target(name))
        measures = args.measure.split(",")
        if "sysbench" in measures:
            _sysbench(args, targets)
        for measure in ("connect", "request"):
            if measure in measures:
                _connect(
                    args.rounds, [stack.direct(), *targets[1:]], measure == "request", args.client
                )
    finally:
        stack.stop()


def _rotated(targets: list[Target], r: int) -> list[Target]:
    return targets[r % len(targets) :] + targets[: r % len(targets)]


def _sysbench(args: argparse.Namespace, targets: list[Target]) -> None:
    loads = [
        sysbench.Workload("oltp_point_select", threads, ps)
        for threads in map(int, args.threads.split(","))
        for ps in args.ps.split(",")
    ]
    runs: dict[tuple[str, str], list[dict[str, object]]] = {}
    for r in range(args.rounds):
        for load in loads:
            done = {t.name: sysbench.run(t, load, args.duration) for t in _rotated(targets, r)}
            base = done["haproxy"].get("qps") or 0
            for name, result in done.items():
                result["vs_haproxy"] = (result.get("qps") or 0) / base if base else 0
                runs.setdefault((load.key, name), []).append(result)
                print(f"round {r} {load.key} {name}: {result.get('qps')} QPS, "
                      f"{result.get('cpu_us_per_query')} µs", flush=True)  # fmt: skip
    print("\n| workload | target | QPS | CPU µs per statement | QPS / HAProxy |")
    print("|---|---|---|---|---|")
    for (key, name), results in runs.items():
        median = {
            field: statistics.median(float(r.get(field) or 0) for r in results)
            for field in ("qps", "cpu_us_per_query", "vs_haproxy")
        }
        print(f"| {key} | {name} | {median['qps']:,.0f} | "
              f"{median['cpu_us_per_query']:.1f} | {median['vs_haproxy']:.3f} |")  # fmt: skip


def _connect(rounds: int, targets: list[Target], request: bool, client: str) -> None:
    results: dict[str, list[dict[str, object]]] = {}
    what = f"{'request' if request else 'connect'} ({client})"
    for r in range(rounds):
        for target in _rotated(targets, r):
            result = connect_rate(target, 4, 5, request, client)
            results.setdefault(target.name, []).append(result)
            print(f"round {r} {what} {target.name}: {result['per_s']}/s, "
                  f"{result.get('target_cpu_us_per_conn')} µs", flush=True)  # fmt: skip
    print(f"\n{what}\n\n| target | connections/s | CPU µs per connection |\n|---|---|---|")
    for name, runs in results.items():
        rate = statistics.median(float(r["per_s"]) for r in runs)
        cpu = statistics.median(float(r.get("target_cpu_us_per_conn") or 0) for r in runs)
        print(f"| {name} | {rate:,.0f} | {cpu:.0f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variant", action="append", required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--threads", default="16")
    parser.add_argument("--ps", default="disable,auto")
    parser.add_argument("--measure", default="sysbench", help="any of sysbench, connect, request")
    parser.add_argument("--client", default="pymysql", choices=("pymysql", "mysqlclient"))
    run(parser.parse_args())


if __name__ == "__main__":
    main()
