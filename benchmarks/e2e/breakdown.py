"""Where a point select's CPU goes, per part of the proxy: ``perf`` on every myguard process
(and on HAProxy and the bare relay, for the floor) while sysbench runs point selects; then,
in a second window of the same run, ``perf stat``'s count of system calls and context
switches per statement (on a VM a switch costs more than a system call: the two are how
the kernel's share differs between targets that make the same calls), and page faults.
Each target's user-space and kernel time per statement come from ``/proc`` over the perf
window (not from samples): the split that showed where myguard's extra over the relay is.

    .venv/bin/python -m benchmarks.e2e.breakdown [--seconds 10] [--threads 16] [--ps auto] \\
        [--workload oltp_read_only] [--also OTHER_CHECKOUT]

``--also`` measures a second myguard, run from another checkout's ``src`` (built in
place), after this one: two builds in one run.

Needs Linux ``perf`` (Debian: linux-perf) allowed to record (root, or
kernel.perf_event_paranoid <= 1). Samples are grouped by the binary they ran in, and each
group's share of the target's CPU is turned into µs per statement.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

from . import sysbench
from .procstat import cpu_split
from .targets import Stack, Target

# Which part of the proxy a binary (perf's "dso") belongs to.
_PARTS = [
    (re.compile(r"^\[kernel|^\[vdso"), "kernel: syscalls, loopback TCP"),
    (re.compile(r"^loop\.cpython|^libuv"), "event loop (uvloop, libuv)"),
    (re.compile(r"^(proxycore|resultscan|framing)\."), "proxy core (compiled)"),
    (re.compile(r"^(recordpack|auditchain)\.|^libcrypto|^libz"), "audit (compiled, OpenSSL)"),
    (re.compile(r"^(fingerprint|rowmask)\."), "fingerprint, row masking (compiled)"),
    (re.compile(r"^python3|^libpython"), "Python: handler, audit trail, metrics, log"),
    (re.compile(r"^libc\.|^libc-|^ld-linux|^libm\."), "libc (memcpy, malloc)"),
]


def part(dso: str) -> str:
    for pattern, name in _PARTS:
        if pattern.search(dso):
            return name
    return "other"


def record(pids: list[int], seconds: int, out: Path) -> dict[str, float]:
    """Share of samples per part, recorded on ``pids`` for ``seconds``."""
    perf = shutil.which("perf")
    if perf is None:
        raise SystemExit("perf is not installed (Debian: apt-get install linux-perf)")
    subprocess.run(
        [perf, "record", "-q", "-F", "499", "-o", str(out), "-p", ",".join(map(str, pids)),
         "--", "sleep", str(seconds)],
        check=True, capture_output=True,
    )  # fmt: skip
    report = subprocess.run(
        [perf, "report", "-q", "-i", str(out), "--no-children", "--sort", "dso",
         "--percent-limit", "0", "--stdio"],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    shares: Counter[str] = Counter()
    for line in report.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].endswith("%"):
            shares[part(fields[1])] += float(fields[0][:-1])
    return dict(shares)


_COUNTED = ("raw_syscalls:sys_enter", "context-switches", "page-faults")


def count(pids: list[int], seconds: int) -> dict[str, float]:
    """System calls, context switches and page faults of ``pids`` over ``seconds``
    (``perf stat``)."""
    run = subprocess.run(
        ["perf", "stat", "-x,", "-e", ",".join(_COUNTED), "-p", ",".join(map(str, pids)),
         "--", "sleep", str(seconds)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    counts = {}
    for line in run.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2] in _COUNTED and fields[0].replace(".", "").isdigit():
            counts[fields[2]] = float(fields[0])
    return counts


def measure(target: Target, pids: list[int], args: argparse.Namespace, out: Path) -> dict:
    workload = sysbench.Workload(args.workload, args.threads, args.ps)
    result: dict[str, object] = {}
    seconds = 2 + args.seconds + args.stat_seconds + 2
    runner = threading.Thread(target=lambda: result.update(sysbench.run(target, workload, seconds)))
    runner.start()
    threading.Event().wait(2)  # let the load settle before sampling
    before = cpu_split(pids)
    shares = record(pids, args.seconds, out)
    user, system = (b - a for a, b in zip(before, cpu_split(pids), strict=True))
    counts = count(pids, args.stat_seconds)
    runner.join()
    qps = float(result.get("qps", 0) or 0)
    statements = qps * args.seconds
    per_statement = 1e6 / statements if statements else 0.0
    per = {k: v / (qps * args.stat_seconds) for k, v in counts.items()} if qps else {}
    return {
        "qps": qps,
        "cpu_us_per_statement": (user + system) * per_statement,
        "user_us_per_statement": user * per_statement,
        "system_us_per_statement": system * per_statement,
        "shares": shares,
        "syscalls_per_statement": per.get("raw_syscalls:sys_enter", 0.0),
        "switches_per_statement": per.get("context-switches", 0.0),
        "faults_per_statement": per.get("page-faults", 0.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.e2e.breakdown")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--stat-seconds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--ps", choices=("auto", "disable"), default="disable")
    parser.add_argument("--workload", default="oltp_point_select", help="a sysbench test")
    parser.add_argument("--also", type=Path, help="another checkout to measure as well")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="myguard-breakdown-") as tmp:
        stack = Stack(Path(tmp) / "stack")
        try:
            stack.start_db()
            sysbench.prepare(stack.direct())
            myguard = stack.proxy("shipped")
            targets = [
                ("haproxy", stack.haproxy.target(), stack.haproxy.tree()),
                ("relay", stack.relay.target(), stack.relay.tree()),
                ("myguard", myguard.target("myguard"), myguard.tree()),
            ]
            if args.also is not None:
                other = stack.proxy("also", source=args.also.resolve() / "src")
                targets.append((f"myguard ({args.also})", other.target("also"), other.tree()))
            for i, (name, target, pids) in enumerate(targets):
                got = measure(target, pids, args, Path(tmp) / f"{i}.data")
                print(f"\n## {name}: {got['qps']:,.0f} QPS, "
                      f"{got['cpu_us_per_statement']:.1f} µs CPU per statement")  # fmt: skip
                print("\n| part | share | µs per statement |\n|---|---|---|")
                for key, share in sorted(got["shares"].items(), key=lambda kv: -kv[1]):
                    us = got["cpu_us_per_statement"] * share / 100
                    print(f"| {key} | {share:.1f} % | {us:.1f} |")
                print(f"\nPer statement (from /proc, the same window): "
                      f"{got['user_us_per_statement']:.1f} µs in user space, "
                      f"{got['system_us_per_statement']:.1f} µs in the kernel")  # fmt: skip
                print(f"\nPer statement: {got['syscalls_per_statement']:.2f} system calls, "
                      f"{got['switches_per_statement']:.3f} context switches, "
                      f"{got['faults_per_statement']:.4f} page faults")  # fmt: skip
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
