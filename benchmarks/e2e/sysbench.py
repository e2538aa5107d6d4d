"""sysbench 1.0.20 runs: prepare the table, run a workload, parse QPS and p95 latency."""

from __future__ import annotations

import re
import subprocess
import time
from dataclasses import dataclass

from .procstat import cpu_seconds, foreign_cpu
from .targets import Target

TABLE_SIZE = 10_000


@dataclass(frozen=True)
class Workload:
    test: str  # oltp_point_select | oltp_read_only
    threads: int
    ps_mode: str  # auto: server-side prepared statements; disable: text protocol

    @property
    def key(self) -> str:
        return f"{self.test}/t{self.threads}/ps-{self.ps_mode}"


def _args(target: Target, test: str) -> list[str]:
    return [
        "sysbench",
        test,
        "--db-driver=mysql",
        f"--mysql-host={target.host}",
        f"--mysql-port={target.port}",
        f"--mysql-user={target.user}",
        f"--mysql-password={target.password}",
        "--mysql-db=test",
        "--mysql-ssl=off",
        "--tables=1",
        f"--table-size={TABLE_SIZE}",
    ]


def prepare(target: Target) -> None:
    subprocess.run(_args(target, "oltp_point_select") + ["prepare"], check=True,
                   capture_output=True)  # fmt: skip


_QUERIES = re.compile(r"queries:\s+(\d+)\s+\(([\d.]+) per sec")
_ERRORS = re.compile(r"ignored errors:\s+(\d+)")
_P95 = re.compile(r"95th percentile:\s+([\d.]+)")


def parse(output: str) -> dict[str, float]:
    queries = _QUERIES.search(output)
    p95 = _P95.search(output)
    errors = _ERRORS.search(output)
    if not queries or not p95:
        raise ValueError(f"unexpected sysbench output:\n{output[-2000:]}")
    return {
        "queries": int(queries.group(1)),
        "qps": float(queries.group(2)),
        "p95_ms": float(p95.group(1)),
        "errors": int(errors.group(1)) if errors else 0,
    }


def run(target: Target, workload: Workload, duration: int) -> dict[str, object]:
    """One sysbench run; also the CPU the target's processes spent during it."""
    args = _args(target, workload.test) + [
        f"--threads={workload.threads}",
        f"--time={duration}",
        f"--db-ps-mode={workload.ps_mode}",
        "--report-interval=0",
        "run",
    ]
    pids = target.pids()
    foreign = foreign_cpu()
    cpu0, t0 = cpu_seconds(pids), time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True)
    cpu1, wall = cpu_seconds(pids), time.monotonic() - t0
    result: dict[str, object] = {
        "target": target.name,
        "workload": workload.key,
        # Cores' share used by processes outside this benchmark (other work on the machine).
        "foreign_cpu_pct": foreign(),
    }
    if proc.returncode != 0:
        result["error"] = (proc.stderr or proc.stdout)[-1500:]
        return result
    stats = parse(proc.stdout)
    result.update(stats)
    if pids:
        # Connect/disconnect are inside the window; with thousands of queries they are noise.
        result["target_cpu_s"] = round(cpu1 - cpu0, 3)
        result["cpu_us_per_query"] = round((cpu1 - cpu0) / max(stats["queries"], 1) * 1e6, 2)
        result["wall_s"] = round(wall, 2)
    return result
