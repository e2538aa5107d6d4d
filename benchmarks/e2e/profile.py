"""py-spy on one myguard worker during a point-select run: where the proxy's time goes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from . import sysbench
from .targets import Target


def py_spy() -> str | None:
    here = Path(sys.executable).with_name("py-spy")
    return str(here) if here.exists() else shutil.which("py-spy")


def top_frames(collapsed: str, limit: int = 25) -> dict[str, object]:
    """Self and inclusive share of samples per function from py-spy's raw (collapsed) output."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        total += n
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    share = lambda c: [(f, round(100 * n / total, 1)) for f, n in c.most_common(limit)]  # noqa: E731
    return {"samples": total, "self": share(own), "inclusive": share(inclusive)}


def profile(
    worker: int, duration: int, out: Path, load: Callable[[int], dict[str, object]]
) -> dict[str, object]:
    """Record ``worker`` with py-spy while ``load(seconds)`` keeps the proxy busy."""
    spy = py_spy()
    if spy is None:
        return {"error": "py-spy not installed (.venv/bin/pip install py-spy)"}
    done: dict[str, object] = {}
    # The load runs a little longer than py-spy so every sample sees a loaded proxy.
    runner = threading.Thread(target=lambda: done.update(load(duration + 3)))
    runner.start()
    rec = subprocess.run(
        [spy, "record", "--pid", str(worker), "--duration", str(duration), "--rate", "200",
         "--format", "raw", "--nolineno", "--output", str(out)],
        capture_output=True, text=True,
    )  # fmt: skip
    runner.join()
    if rec.returncode != 0 or not out.exists():
        return {"error": rec.stderr[-1500:], "load": done}
    result = top_frames(out.read_text())
    result["load"] = done
    result["worker_pid"] = worker
    return result


def point_selects(target: Target) -> Callable[[int], dict[str, object]]:
    workload = sysbench.Workload("oltp_point_select", 16, "auto")
    return lambda seconds: sysbench.run(target, workload, seconds)
