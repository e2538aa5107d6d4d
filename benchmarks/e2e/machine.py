"""What the numbers were measured on: hardware, kernel, versions, myguard's commit."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _out(*args: str) -> str:
    try:
        r = subprocess.run(args, capture_output=True, text=True, timeout=10, cwd=ROOT)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (r.stdout or r.stderr).strip()


def describe() -> dict[str, object]:
    lscpu = dict(
        (k.strip(), v.strip())
        for k, _, v in (line.partition(":") for line in _out("lscpu").splitlines())
    )
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    # Uncommitted changes under src/ change what was measured: list them with the commit.
    dirty = [line[3:] for line in _out("git", "status", "--porcelain", "--", "src").splitlines()]
    return {
        "cpu_model": lscpu.get("Model name", platform.processor()),
        "cores": os.cpu_count(),
        "hypervisor": lscpu.get("Hypervisor vendor", ""),
        "ram_gib": round(int(meminfo[1]) / 2**20, 1),
        "kernel": platform.release(),
        "mariadb": _out("mariadbd", "--version"),
        "sysbench": _out("sysbench", "--version"),
        "haproxy": _out("haproxy", "-v").splitlines()[0] if _out("haproxy", "-v") else "",
        "python": sys.version.split()[0],
        "myguard_commit": _out("git", "rev-parse", "HEAD"),
        "myguard_uncommitted_src": dirty,
    }
