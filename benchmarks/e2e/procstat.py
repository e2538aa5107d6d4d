"""CPU and memory of a process tree, read from /proc (no psutil on purpose: fewer moving parts)."""

from __future__ import annotations

import os
import resource
from collections.abc import Callable
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may contain spaces: split after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def descendants(root: int) -> list[int]:
    """``root`` and every process below it (myguard's workers are children of the supervisor)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of ``pids`` (each process's own threads included, children's not)."""
    return sum(cpu_split(pids))


def cpu_split(pids: list[int]) -> tuple[float, float]:
    """(utime, stime) of ``pids``: user space and kernel, in seconds."""
    user = system = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is not None:
            user += int(fields[11])
            system += int(fields[12])
    return user / _TICK, system / _TICK


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def _host_jiffies() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(fields) - fields[3] - fields[4], sum(fields)


def _own_seconds() -> float:
    """CPU of this process, its live descendants and its reaped children (sysbench, CLI)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
    live = [p for p in descendants(os.getpid()) if p != os.getpid()]
    return me.ru_utime + me.ru_stime + reaped.ru_utime + reaped.ru_stime + cpu_seconds(live)


def foreign_cpu() -> Callable[[], float]:
    """Start a window; calling the result gives the % of all cores used by others meanwhile.

    The machine may be shared (other people's tests); their load skews absolute numbers.
    """
    busy0, total0 = _host_jiffies()
    own0 = _own_seconds()

    def stop() -> float:
        busy1, total1 = _host_jiffies()
        own = (_own_seconds() - own0) * _TICK
        total = total1 - total0
        return round(max(0.0, 100 * (busy1 - busy0 - own) / total), 1) if total else 0.0

    return stop
